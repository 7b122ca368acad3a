#include "hub_core.hpp"

#include "client_message.hpp"
#include "http_routes.hpp"

#include <sluice/detail/json_string.hpp>
#include <sluice/filter.hpp>
#include <sluice/topic.hpp>
#include <sluice/version.hpp>

#include <asio/post.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <random>

namespace sluice::detail {
namespace {

constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string random_generation() {
    std::random_device device;
    std::uint64_t value = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(12, '0');
    for (auto& c : out) {
        c = digits[value & 0xF];
        value >>= 4;
    }
    return out;
}

/// Builds one JSON reply object.
class json_reply {
public:
    json_reply(std::string_view type, const reply_id& id) : writer_(buffer_) {
        writer_.StartObject();
        field("type", type);
        if (id.value) {
            writer_.Key("id");
            id.value->Accept(writer_);
        } else if (!id.raw.empty()) {
            writer_.Key("id");
            writer_.RawValue(id.raw.data(), id.raw.size(), rapidjson::kStringType);
        }
    }
    json_reply& field(std::string_view key, std::string_view value) {
        writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
        return *this;
    }
    json_reply& field(std::string_view key, std::uint64_t value) {
        writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        writer_.Uint64(value);
        return *this;
    }
    json_reply& field(std::string_view key, std::int64_t value) {
        writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        writer_.Int64(value);
        return *this;
    }
    json_reply& flag(std::string_view key, bool value) {
        writer_.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        writer_.Bool(value);
        return *this;
    }
    std::string str() {
        writer_.EndObject();
        return std::string(buffer_.GetString(), buffer_.GetSize());
    }

private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

/// The JSON text of a request's `id`, kept for a reply made later.
std::string id_text(const rapidjson::Value* id) {
    if (!id) return {};
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    id->Accept(w);
    return std::string(buffer.GetString(), buffer.GetSize());
}

std::string error_reply(const reply_id& id, std::error_code code, std::string_view message,
                        std::chrono::milliseconds retry_after = std::chrono::milliseconds(0)) {
    json_reply r("error", id);
    r.field("code", to_wire(code)).field("message", message);
    if (code == errc::rate_limited)
        r.field("retry_after_ms", static_cast<std::int64_t>(retry_after.count()));
    return r.str();
}

std::string subscribed_reply(const reply_id& id, std::string_view topic,
                             const stream_position* position, const bool* recovered) {
    json_reply r("subscribed", id);
    r.field("topic", topic);
    if (position) r.field("epoch", position->epoch).field("offset", position->offset);
    if (recovered) r.flag("recovered", *recovered);
    return r.str();
}

history_options make_history_options(const hub_options& o) {
    history_options h;
    h.max_events_per_topic = o.history_size;
    h.event_ttl = o.history_ttl;
    h.metadata_ttl = o.position_ttl;
    h.max_bytes = o.history_max_bytes;
    h.max_topics = o.max_topics;
    h.replay_limit = o.replay_limit;
    return h;
}

}  // namespace

hub_core::hub_core(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
                   hub_options options, const backplane_factory& factory)
    : executor_(executor),
      strand_(asio::make_strand(executor)),
      sweep_timer_(strand_),
      policy_(std::move(policy)),
      options_(options),
      generation_(random_generation()),
      session_prefix_(generation_),
      history_(make_history_options(options)),
      idempotency_(options.idempotency_max_keys, options.idempotency_ttl) {
    if (factory) {
        backplane_ = factory(strand_, *this);
        // Resume tokens stay valid on every hub of the cluster.
        generation_ = backplane_->generation();
        stats_.backplane_up.store(false, std::memory_order_relaxed);
    }
}

void hub_core::start() {
    asio::post(strand_, [self = shared_from_this()] { self->sweep(); });
    if (backplane_) backplane_->start();
}

void hub_core::shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
        self->sweep_timer_.cancel();
        self->stop_backplane();
    });
}

void hub_core::stop_backplane() {
    if (backplane_) backplane_->stop();
}

void hub_core::deliver(const publication_ptr& pub, const rapidjson::Value& data) {
    fan_out(pub, data);
}

bool hub_core::interested(std::string_view topic) {
    return router_.match(topic, [](const auto&) {}) > 0;
}

void hub_core::backplane_changed(bool up) {
    stats_.backplane_up.store(up, std::memory_order_relaxed);
}

void hub_core::backplane_log(bool error, std::string_view message) {
    log(error ? log_level::error : log_level::info, message);
}

void hub_core::sweep() {
    auto now = clock::now();
    if (backplane_) backplane_->sweep();
    history_.expire(now, 10000);
    idempotency_.expire(now);
    const auto& c = history_.counters();
    stats_.history_topics.store(static_cast<std::int64_t>(c.topics), std::memory_order_relaxed);
    stats_.history_events.store(static_cast<std::int64_t>(c.events), std::memory_order_relaxed);
    stats_.history_bytes.store(static_cast<std::int64_t>(c.bytes), std::memory_order_relaxed);
    sweep_timer_.expires_after(std::chrono::seconds(1));
    sweep_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) self->sweep();
    });
}

void hub_core::set_logger(log_handler handler) {
    std::lock_guard<std::mutex> lock(log_mutex_);
    logger_ = std::move(handler);
}

void hub_core::log(log_level level, std::string_view message) const {
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (logger_) logger_(level, message);
}

std::size_t hub_core::connection_count() const noexcept {
    auto n = stats_.ws_connections.load(std::memory_order_relaxed) +
             stats_.sse_connections.load(std::memory_order_relaxed);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::string hub_core::metrics_text() const { return stats_.render(); }

std::string hub_core::health_json() const {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    bool up = stats_.backplane_up.load(std::memory_order_relaxed);
    w.StartObject();
    w.Key("status");
    w.String(up ? "ok" : "degraded");
    w.Key("backplane");
    w.String(!backplane_ ? "memory" : up ? "up" : "down");
    w.Key("connections");
    w.StartObject();
    w.Key("ws");
    w.Int64(stats_.ws_connections.load(std::memory_order_relaxed));
    w.Key("sse");
    w.Int64(stats_.sse_connections.load(std::memory_order_relaxed));
    w.EndObject();
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------
// Connections

void hub_core::attach_websocket(std::shared_ptr<connection> c, principal who) {
    asio::post(
        strand_, [self = shared_from_this(), c = std::move(c), who = std::move(who)]() mutable {
            auto& side = c->hub_side();
            if (side.detached) return;
            side.who = std::move(who);
            side.attached = true;
            self->connections_[c.get()] = c;
            const auto& o = c->context().options;
            json_reply r("welcome", nullptr);
            r.field("version", static_cast<std::int64_t>(protocol_version))
                .field("session", self->session_prefix_ + "-" + std::to_string(c->id()))
                .field("server_time", now_ms())
                .field("ping_interval_ms", static_cast<std::int64_t>(o.ping_interval.count()))
                .field("pong_timeout_ms", static_cast<std::int64_t>(o.pong_timeout.count()));
            c->send_text(r.str());
        });
}

void hub_core::detach(std::shared_ptr<connection> c) {
    asio::post(strand_, [self = shared_from_this(), c = std::move(c)] {
        auto& side = c->hub_side();
        side.detached = true;
        if (!side.attached) return;
        side.attached = false;
        self->router_.unsubscribe_all(c.get());
        side.subscriptions.clear();
        self->connections_.erase(c.get());
        self->waiting_.erase(c.get());
        self->publishing_.erase(c.get());
    });
}

void hub_core::on_ws_texts(std::shared_ptr<connection> c,
                           std::vector<connection::inbound_text> texts) {
    asio::post(strand_,
               [self = shared_from_this(), c = std::move(c), texts = std::move(texts)]() mutable {
                   for (auto& t : texts) {
                       if (!c->hub_side().attached) return;
                       if (auto w = self->waiting_.find(c.get()); w != self->waiting_.end()) {
                           w->second.push_back(std::move(t));
                           continue;
                       }
                       self->handle_ws(c, t.text, t.rate);
                   }
               });
}

void hub_core::hold(const std::shared_ptr<connection>& c) { waiting_[c.get()]; }

void hub_core::release(const std::shared_ptr<connection>& c) {
    auto it = waiting_.find(c.get());
    if (it == waiting_.end()) return;
    auto queue = std::move(it->second);
    waiting_.erase(it);
    while (!queue.empty()) {
        if (!c->hub_side().attached) return;
        auto t = std::move(queue.front());
        queue.pop_front();
        handle_ws(c, t.text, t.rate);
        if (auto w = waiting_.find(c.get()); w != waiting_.end()) {
            // Waiting again: the rest goes before anything newer.
            for (auto& later : w->second) queue.push_back(std::move(later));
            w->second = std::move(queue);
            return;
        }
    }
}

void hub_core::release_connections() {
    waiting_.clear();
    publishing_.clear();
    router_.clear();
    for (auto& [raw, c] : connections_) c->hub_side().subscriptions.clear();
    connections_.clear();
}

void hub_core::handle_ws(const std::shared_ptr<connection>& c, const std::string& text,
                         connection::rate_decision rate) {
    rapidjson::Document doc;
    auto decoded = decode_client_message(text, doc);
    const bool is_publish =
        rate.allowed && !decoded.error && decoded.request.type == client_type::publish;
    if (!is_publish && publishing_.count(c.get())) {
        // Publishes are pipelined to the backplane; anything else is answered
        // after them, in request order.
        waiting_[c.get()].push_back({text, rate});
        return;
    }
    if (!rate.allowed) {
        c->send_text(
            error_reply(decoded.id, errc::rate_limited, "too many messages", rate.retry_after));
        if (rate.close_after) c->close(4429, "too many requests");
        return;
    }
    if (decoded.error) return c->send_text(error_reply(decoded.id, decoded.error, decoded.message));
    auto& r = decoded.request;
    switch (r.type) {
    case client_type::subscribe: return ws_subscribe(c, r, decoded.id);
    case client_type::unsubscribe: return ws_unsubscribe(*c, r, decoded.id);
    case client_type::publish: return ws_publish(c, r, decoded.id);
    case client_type::refresh: return ws_refresh(*c, r, decoded.id);
    case client_type::ping: {
        json_reply reply("pong", decoded.id);
        reply.field("ts", now_ms());
        return c->send_text(reply.str());
    }
    }
}

// ---------------------------------------------------------------------------
// Subscriptions

void hub_core::ws_subscribe(const std::shared_ptr<connection>& c, client_request& r,
                            const rapidjson::Value* id) {
    auto& side = c->hub_side();
    if (auto denied = policy_->authorize(side.who, action::subscribe, r.topic)) {
        return c->send_text(error_reply(id, denied, "not allowed to subscribe to this topic"));
    }
    if (router_.contains(c.get(), r.topic)) {
        return c->send_text(
            error_reply(id, errc::already_subscribed, "already subscribed to this topic"));
    }
    if (side.subscriptions.size() >= c->context().options.max_subscriptions) {
        return c->send_text(
            error_reply(id, errc::too_many_subscriptions, "subscription limit reached"));
    }
    auto state = std::make_shared<subscription_state>();
    state->sub = std::string(r.topic);
    state->sub_json = json_string(r.topic);
    state->exact = !r.pattern;
    subscription_ptr sub = state;

    if (r.pattern) {
        c->send_text(subscribed_reply(id, r.topic, nullptr, nullptr));
        router_.subscribe(c.get(), r.topic, std::move(r.where), sub);
        side.subscriptions.push_back(std::move(sub));
        return;
    }
    const bool resuming = r.since.has_value();
    if (!backplane_) {
        auto rec = resuming ? history_.recover(r.topic, *r.since, options_.replay_limit)
                            : recovery{false, history_.position(r.topic), {}};
        return finish_subscribe(*c, sub, std::move(r.where), id, resuming, rec);
    }
    // The backplane answers when the topic's position is known here; the
    // connection's later requests wait until then.
    hold(c);
    std::vector<backplane_subscription> wanted{{std::string(r.topic), r.since}};
    backplane_->subscribe(
        std::move(wanted), options_.replay_limit,
        [self = shared_from_this(), c, sub, where = std::move(r.where), id = id_text(id),
         resuming](std::vector<std::optional<recovery>> results) mutable {
            if (c->hub_side().attached) {
                self->finish_subscribe(*c, sub, std::move(where), id, resuming, results.front());
            }
            self->release(c);
        });
}

void hub_core::finish_subscribe(connection& c, const subscription_ptr& sub, filter where,
                                const reply_id& id, bool resuming,
                                const std::optional<recovery>& rec) {
    if (!rec) {
        return c.send_text(error_reply(id, errc::unavailable,
                                       "the backplane is down and this topic's position unknown"));
    }
    if (resuming) {
        (rec->recovered ? stats_.recovered : stats_.not_recovered)
            .fetch_add(1, std::memory_order_relaxed);
        c.send_text(subscribed_reply(id, sub->sub, &rec->position, &rec->recovered));
        if (rec->recovered) replay(c, sub, where, rec->events);
    } else {
        c.send_text(subscribed_reply(id, sub->sub, &rec->position, nullptr));
    }
    // Registered in the same handler as the position was taken: the next
    // event of this topic is the first live one, offset top + 1.
    router_.subscribe(&c, sub->sub, std::move(where), sub);
    c.hub_side().subscriptions.push_back(sub);
}

void hub_core::replay(connection& c, const subscription_ptr& sub, const filter& where,
                      const std::vector<publication_ptr>& events) {
    auto now = clock::now();
    for (const auto& pub : events) {
        bool pass = where.empty();
        if (!pass) {
            rapidjson::Document data;
            data.Parse<parse_flags>(pub->data().data(), pub->data().size());
            pass = !data.HasParseError() && where.matches(data);
        }
        if (pass) {
            c.send_event(pub, sub, true, now);
        } else if (sub->position_index >= 0) {
            c.send_position(pub, sub);
        }
    }
}

void hub_core::ws_unsubscribe(connection& c, const client_request& r, const rapidjson::Value* id) {
    if (auto ec = router_.unsubscribe(&c, r.topic)) {
        return c.send_text(error_reply(id, ec, "not subscribed to this topic"));
    }
    auto& subs = c.hub_side().subscriptions;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const subscription_ptr& s) { return s->sub == r.topic; }),
               subs.end());
    json_reply reply("unsubscribed", id);
    reply.field("topic", r.topic);
    c.send_text(reply.str());
}

void hub_core::ws_refresh(connection& c, const client_request& r, const rapidjson::Value* id) {
    auto& side = c.hub_side();
    auto result = policy_->refresh(side.who, r.token);
    if (!result) return c.send_text(error_reply(id, result.error, result.message));
    side.who = std::move(result.who);
    c.set_expiry(side.who.expires_at);
    json_reply reply("refreshed", id);
    if (side.who.expires_at) {
        reply.field("expires_at",
                    static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  side.who.expires_at->time_since_epoch())
                                                  .count()));
    }
    c.send_text(reply.str());
}

// ---------------------------------------------------------------------------
// Publishing

void hub_core::ws_publish(const std::shared_ptr<connection>& c, const client_request& r,
                          const rapidjson::Value* id) {
    if (!backplane_) {
        auto outcome = publish(&c->hub_side().who, r.publish);
        if (outcome.error) return c->send_text(error_reply(id, outcome.error, outcome.message));
        json_reply reply("published", id);
        reply.field("topic", r.publish.topic)
            .field("offset", outcome.position.offset)
            .field("epoch", outcome.position.epoch);
        return c->send_text(reply.str());
    }
    auto& pipeline = publishing_[c.get()];
    const std::uint64_t seq = pipeline.first + pipeline.replies.size();
    pipeline.replies.emplace_back();
    publish_async(&c->hub_side().who, r.publish,
                  [self = shared_from_this(), c, seq, id = id_text(id),
                   topic = std::string(r.publish.topic)](publish_outcome outcome) {
                      if (outcome.error) {
                          return self->publish_answered(
                              c, seq, error_reply(id, outcome.error, outcome.message));
                      }
                      json_reply reply("published", id);
                      reply.field("topic", topic)
                          .field("offset", outcome.position.offset)
                          .field("epoch", outcome.position.epoch);
                      self->publish_answered(c, seq, reply.str());
                  });
}

void hub_core::publish_answered(const std::shared_ptr<connection>& c, std::uint64_t seq,
                                std::string reply) {
    auto it = publishing_.find(c.get());
    if (it == publishing_.end()) return;  // detached meanwhile
    auto& pipeline = it->second;
    pipeline.replies[seq - pipeline.first] = std::move(reply);
    while (!pipeline.replies.empty() && pipeline.replies.front()) {
        if (c->hub_side().attached) c->send_text(std::move(*pipeline.replies.front()));
        pipeline.replies.pop_front();
        ++pipeline.first;
    }
    if (!pipeline.replies.empty()) return;
    publishing_.erase(it);
    release(c);
}

void hub_core::publish_async(const principal* who, const publish_fields& fields,
                             publish_done done) {
    if (!backplane_) return done(publish(who, fields));
    if (who) {
        if (auto denied = policy_->authorize(*who, action::publish, fields.topic)) {
            return done({denied, "not allowed to publish to this topic", {}});
        }
    }
    if (!backplane_->up()) return done({errc::unavailable, "the backplane is down", {}});
    // The data goes to Redis compact; every hub builds its publication from it.
    rapidjson::StringBuffer buffer;
    detail::json_writer writer(buffer);
    if (!write_json(*fields.data, writer, 0) || !writer.IsComplete()) {
        return done({errc::bad_request, "data cannot be stored", {}});
    }
    backplane_->publish(
        fields.topic, std::string(buffer.GetString(), buffer.GetSize()), fields.event,
        fields.idempotency_key,
        [self = shared_from_this(), done = std::move(done)](std::error_code ec,
                                                            stream_position position) {
            if (ec) {
                return done({ec,
                             ec == errc::unavailable ? "the backplane is down"
                                                     : "the backplane failed to publish",
                             {}});
            }
            self->stats_.published.fetch_add(1, std::memory_order_relaxed);
            done({{}, {}, std::move(position)});
        });
}

publish_outcome hub_core::publish(const principal* who, const publish_fields& fields) {
    if (who) {
        if (auto denied = policy_->authorize(*who, action::publish, fields.topic)) {
            return {denied, "not allowed to publish to this topic", {}};
        }
    }
    if (!stats_.backplane_up.load(std::memory_order_relaxed)) {
        return {errc::unavailable, "the backplane is down", {}};
    }
    if (!fields.idempotency_key.empty()) {
        if (const auto* known = idempotency_.find(fields.topic, fields.idempotency_key)) {
            return {{}, {}, *known};
        }
    }
    std::error_code ec;
    auto pub = history_.append(fields.topic, *fields.data, fields.event, now_ms(), ec);
    if (!pub) return {ec ? ec : make_error_code(errc::internal), "data cannot be stored", {}};
    stats_.published.fetch_add(1, std::memory_order_relaxed);
    publish_outcome outcome{{}, {}, pub->position()};
    if (!fields.idempotency_key.empty()) {
        idempotency_.remember(fields.topic, fields.idempotency_key, outcome.position);
    }
    fan_out(pub, *fields.data);
    return outcome;
}

void hub_core::fan_out(const publication_ptr& pub, const rapidjson::Value& data) {
    const auto now = clock::now();
    router_.match(pub->topic(), [&](auto& s) {
        connection* c = s.subscriber();
        const subscription_ptr& state = s.value();
        if (s.filter().empty() || s.filter().matches(data)) {
            c->send_event(pub, state, false, now);
        } else if (state->position_index >= 0) {
            c->send_position(pub, state);
        }
    });
}

void hub_core::http_publish(std::shared_ptr<connection> c, http_publish_request request) {
    asio::post(strand_, [self = shared_from_this(), c = std::move(c),
                         request = std::move(request)] {
        rapidjson::Document doc;
        doc.Parse<parse_flags>(request.body.data(), request.body.size());
        publish_outcome outcome;
        publish_fields fields;
        auto answer = [c, keep_alive = request.keep_alive, headers = request.extra_headers](
                          const std::string& topic, const publish_outcome& outcome) {
            if (outcome.error) {
                c->send_raw(http_error_response(http_status_for(outcome.error),
                                                to_wire(outcome.error), outcome.message, keep_alive,
                                                headers));
            } else {
                rapidjson::StringBuffer buffer;
                rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
                w.StartObject();
                w.Key("topic");
                w.String(topic.data(), static_cast<rapidjson::SizeType>(topic.size()));
                w.Key("offset");
                w.Uint64(outcome.position.offset);
                w.Key("epoch");
                w.String(outcome.position.epoch.c_str(),
                         static_cast<rapidjson::SizeType>(outcome.position.epoch.size()));
                w.EndObject();
                c->send_raw(http_response(200, "application/json",
                                          std::string_view(buffer.GetString(), buffer.GetSize()),
                                          keep_alive, headers));
            }
            c->finish_request(keep_alive);
        };
        if (doc.HasParseError() || !doc.IsObject()) {
            outcome = {errc::bad_request, "the body is not a JSON object", {}};
        } else if (auto ec = decode_publish_fields(doc, fields, outcome.message)) {
            outcome.error = ec;
        } else {
            return self->publish_async(&request.who, fields,
                                       [answer, topic = std::string(fields.topic)](
                                           publish_outcome done) { answer(topic, done); });
        }
        answer(std::string(fields.topic), outcome);
    });
}

void hub_core::host_publish(std::string topic, std::string data_json, publish_options options,
                            std::function<void(std::error_code, stream_position)> done) {
    asio::post(strand_, [self = shared_from_this(), topic = std::move(topic),
                         data_json = std::move(data_json), options = std::move(options),
                         done = std::move(done)] {
        rapidjson::Document data;
        data.Parse<parse_flags>(data_json.data(), data_json.size());
        publish_outcome outcome;
        if (data.HasParseError()) {
            outcome = {errc::bad_request, "data is not JSON", {}};
        } else if (auto check = check_topic(topic); !check) {
            outcome = {check.error, check.message(), {}};
        } else if (auto name = check_event_name(options.event); !options.event.empty() && !name) {
            outcome = {errc::bad_request, "event: " + name.message(), {}};
        } else if (options.idempotency_key.size() > 64) {
            outcome = {errc::bad_request, "idempotency_key must be 1-64 bytes", {}};
        }
        auto finish = [self, topic, done](publish_outcome outcome) {
            if (outcome.error)
                self->log(log_level::warning,
                          "host publish to " + topic + " failed: " + outcome.message);
            if (done) done(outcome.error, std::move(outcome.position));
        };
        if (outcome.error) return finish(std::move(outcome));
        self->publish_async(nullptr, {topic, &data, options.event, options.idempotency_key},
                            std::move(finish));
    });
}

// ---------------------------------------------------------------------------
// SSE

void hub_core::start_sse(std::shared_ptr<connection> c, sse_request request) {
    asio::post(strand_, [self = shared_from_this(), c = std::move(c),
                         request = std::move(request)]() mutable {
        auto& side = c->hub_side();
        if (side.detached) return;
        for (const auto& topic : request.topics) {
            if (auto denied = self->policy_->authorize(request.who, action::subscribe, topic)) {
                c->send_raw(http_error_response(403, to_wire(denied),
                                                "not allowed to subscribe to " + topic, false,
                                                request.extra_headers));
                c->finish_request(false);
                return;
            }
        }
        // What each exact topic asks: its position, or a resume from the
        // position the token recorded for it.
        const bool resuming = !request.last_event_id.empty();
        auto resume = parse_resume_token(request.last_event_id, self->generation_);
        std::vector<backplane_subscription> wanted;
        for (const auto& topic : request.topics) {
            if (is_pattern(topic)) continue;
            backplane_subscription w{topic, std::nullopt};
            const auto tag = topic_tag(topic);
            for (const auto& r : resume) {
                if (r.tag == tag) w.since = stream_position{r.offset, r.epoch};
            }
            wanted.push_back(std::move(w));
        }
        if (!self->backplane_) {
            std::vector<std::optional<recovery>> results;
            for (const auto& w : wanted) {
                results.emplace_back(
                    w.since ? self->history_.recover(w.topic, *w.since, self->options_.replay_limit)
                            : recovery{false, self->history_.position(w.topic), {}});
            }
            return self->open_sse(c, request, resuming, wanted, results);
        }
        auto copy = wanted;
        self->backplane_->subscribe(
            std::move(copy), self->options_.replay_limit,
            [self, c, request = std::move(request), resuming,
             wanted = std::move(wanted)](std::vector<std::optional<recovery>> results) mutable {
                self->open_sse(c, request, resuming, wanted, results);
            });
    });
}

void hub_core::open_sse(const std::shared_ptr<connection>& c, sse_request& request, bool resuming,
                        const std::vector<backplane_subscription>& wanted,
                        const std::vector<std::optional<recovery>>& results) {
    auto& side = c->hub_side();
    if (side.detached) return;
    for (const auto& r : results) {
        if (!r) {
            c->send_raw(http_error_response(503, to_wire(errc::unavailable),
                                            "the backplane is down", false, request.extra_headers));
            c->finish_request(false);
            return;
        }
    }
    c->activate_sse(request.who.expires_at);
    side.who = std::move(request.who);
    side.attached = true;
    connections_[c.get()] = c;

    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "X-Accel-Buffering: no\r\nConnection: keep-alive\r\n";
    head += request.extra_headers;
    head += "\r\nretry: " + std::to_string(request.retry.count()) + "\n\n";
    c->send_raw(std::move(head));

    struct pending_replay {
        subscription_ptr sub;
        const std::vector<publication_ptr>* events;
    };
    std::vector<token_position> positions;
    std::vector<std::string> blocks;
    std::vector<pending_replay> replays;
    std::vector<subscription_ptr> subs;
    std::size_t exact = 0;
    for (const auto& topic : request.topics) {
        auto state = std::make_shared<subscription_state>();
        state->sub = topic;
        state->sub_json = json_string(topic);
        state->exact = !is_pattern(topic);
        std::string json;
        if (state->exact) {
            const auto& rec = *results[exact];
            const auto& since = wanted[exact].since;
            ++exact;
            state->position_index = static_cast<int>(positions.size());
            token_position p;
            p.tag = topic_tag(topic);
            p.epoch = rec.position.epoch;
            if (resuming) {
                const bool recovered = since && rec.recovered;
                (recovered ? stats_.recovered : stats_.not_recovered)
                    .fetch_add(1, std::memory_order_relaxed);
                json = subscribed_reply(nullptr, topic, &rec.position, &recovered);
                // The token records what the client has: the replayed
                // events move it forward as they are written.
                p.offset = recovered ? since->offset : rec.position.offset;
                if (recovered && !rec.events.empty()) replays.push_back({state, &rec.events});
            } else {
                json = subscribed_reply(nullptr, topic, &rec.position, nullptr);
                p.offset = rec.position.offset;
            }
            positions.push_back(std::move(p));
        } else {
            json = subscribed_reply(nullptr, topic, nullptr, nullptr);
        }
        blocks.push_back("event: subscribed\ndata: " + json + "\n\n");
        subs.push_back(std::move(state));
    }
    c->set_sse_positions(std::move(positions), generation_);
    for (auto& block : blocks) c->send_sse_block(std::move(block));
    for (std::size_t i = 0; i < subs.size(); ++i) {
        auto where =
            request.filter_json.empty() ? filter{} : parse_filter(request.filter_json).compiled;
        for (const auto& r : replays) {
            if (r.sub == subs[i]) replay(*c, r.sub, where, *r.events);
        }
        router_.subscribe(c.get(), subs[i]->sub, std::move(where), subs[i]);
        side.subscriptions.push_back(subs[i]);
    }
}

}  // namespace sluice::detail
