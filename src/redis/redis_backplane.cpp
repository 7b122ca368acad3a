#include "redis/redis_backplane.hpp"

#include "redis/redis_link.hpp"
#include "redis/redis_scripts.hpp"

#include <sluice/backoff.hpp>
#include <sluice/circuit_breaker.hpp>
#include <sluice/detail/history_epoch.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <deque>
#include <random>
#include <unordered_map>

namespace sluice::detail {
namespace {

using namespace redis;
using steady = std::chrono::steady_clock;

constexpr unsigned parse_flags = rapidjson::kParseIterativeFlag;

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string random_hex(std::uint64_t bits) {
    char out[epoch_size];
    format_epoch(bits, out);
    return std::string(out, epoch_size);
}

std::uint32_t fnv1a(std::string_view text) {
    std::uint32_t hash = 2166136261U;
    for (unsigned char c : text) {
        hash ^= c;
        hash *= 16777619U;
    }
    return hash;
}

template <class T>
bool to_number(std::string_view text, T& value) {
    auto r = std::from_chars(text.data(), text.data() + text.size(), value);
    return r.ec == std::errc() && r.ptr == text.data() + text.size() && !text.empty();
}

std::string_view str(const redisReply* r) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
               ? std::string_view(r->str, r->len)
               : std::string_view();
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

/// One event as Redis carries it.
struct event_fields {
    std::string topic;
    std::uint64_t offset = 0;
    std::string epoch;
    std::int64_t ts = 0;
    std::string name;
    std::string data;
};

// Pub/sub payload: offset \n epoch \n ts \n name \n topic \n data.
bool parse_message(std::string_view payload, event_fields& out) {
    std::string_view field[5];
    for (auto& f : field) {
        auto at = payload.find('\n');
        if (at == std::string_view::npos) return false;
        f = payload.substr(0, at);
        payload.remove_prefix(at + 1);
    }
    if (!to_number(field[0], out.offset) || !to_number(field[2], out.ts)) return false;
    out.epoch = std::string(field[1]);
    out.name = std::string(field[3]);
    out.topic = std::string(field[4]);
    out.data = std::string(payload);
    return !out.epoch.empty() && !out.topic.empty();
}

// A stream entry: [id "<offset>-0", [field, value, ...]].
bool parse_entry(const redisReply* entry, const std::string& topic, event_fields& out) {
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return false;
    auto id = str(entry->element[0]);
    auto dash = id.find('-');
    if (dash == std::string_view::npos || !to_number(id.substr(0, dash), out.offset)) return false;
    const redisReply* fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) return false;
    out.topic = topic;
    for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
        auto key = str(fields->element[i]);
        auto value = str(fields->element[i + 1]);
        if (key == "e") {
            out.epoch = std::string(value);
        } else if (key == "t") {
            if (!to_number(value, out.ts)) return false;
        } else if (key == "n") {
            out.name = std::string(value);
        } else if (key == "d") {
            out.data = std::string(value);
        }
    }
    return !out.epoch.empty();
}

struct sync_result {
    std::string epoch;
    std::uint64_t top = 0;
    std::vector<event_fields> entries;  // offsets > the script's `from`, in order
};

std::optional<sync_result> parse_sync(const redisReply* r, const std::string& topic) {
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 4) return std::nullopt;
    sync_result out;
    out.epoch = std::string(str(r->element[0]));
    if (out.epoch.empty() || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->integer < 0 || r->element[3]->type != REDIS_REPLY_ARRAY) {
        return std::nullopt;
    }
    out.top = static_cast<std::uint64_t>(r->element[1]->integer);
    const redisReply* entries = r->element[3];
    out.entries.reserve(entries->elements);
    for (std::size_t i = 0; i < entries->elements; ++i) {
        event_fields e;
        if (!parse_entry(entries->element[i], topic, e)) return std::nullopt;
        out.entries.push_back(std::move(e));
    }
    return out;
}

class redis_backplane final : public backplane,
                              public std::enable_shared_from_this<redis_backplane> {
public:
    using strand_type = asio::strand<asio::any_io_executor>;

    redis_backplane(strand_type strand, const redis_options& redis, const hub_options& options,
                    backplane_delegate& delegate)
        : strand_(std::move(strand)),
          redis_(redis),
          options_(options),
          delegate_(delegate),
          hub_id_(random_hex(secure_())),
          events_channel_(redis.key_prefix + "events"),
          probe_channel_(redis.key_prefix + "probe:" + hub_id_),
          generation_(make_generation(redis)),
          tick_timer_(strand_),
          reconnect_timer_(strand_),
          backoff_(make_backoff(redis), std::minstd_rand(static_cast<std::uint32_t>(secure_()))),
          breaker_(make_breaker(redis)) {}

    ~redis_backplane() override { teardown(); }

    void start() override {
        asio::post(strand_, [weak = weak_from_this()] {
            if (auto self = weak.lock()) {
                self->connect();
                self->tick();
            }
        });
    }

    void stop() override {
        stopped_ = true;
        teardown();
        tick_timer_.cancel();
        reconnect_timer_.cancel();
        topics_.clear();
    }

    bool up() const noexcept override { return up_; }

    std::string generation() const override { return generation_; }

    void publish(std::string_view topic, std::string data, std::string_view event,
                 std::string_view idempotency_key, publish_handler done) override {
        auto permit =
            up_ && cmd_ && cmd_->ready() ? breaker_.try_acquire() : circuit_breaker::permit{};
        if (!permit) {
            asio::post(strand_,
                       [done = std::move(done)] { done(make_error_code(errc::unavailable), {}); });
            return;
        }
        struct pending {
            std::string topic, data, event, ts, epoch, idem;
        };
        auto p = std::make_shared<pending>();
        p->topic = std::string(topic);
        p->data = std::move(data);
        p->event = std::string(event);
        p->ts = std::to_string(now_ms());
        p->epoch = random_hex(secure_());
        if (!idempotency_key.empty()) {
            p->idem = redis_.key_prefix + "i:" + p->topic + "\n" + std::string(idempotency_key);
        }
        const std::string meta = key("m:", topic), stream = key("s:", topic);
        const std::string maxlen = std::to_string(options_.history_size);
        const std::string history_ttl = ms(options_.history_ttl);
        const std::string position_ttl = ms(options_.position_ttl);
        const std::string idem_ttl = p->idem.empty() ? "0" : ms(options_.idempotency_ttl);
        const std::string& idem_key = p->idem.empty() ? meta : p->idem;
        std::vector<std::string_view> args = {
            meta,  stream,   idem_key, events_channel_, p->topic,     p->data, p->event,
            p->ts, p->epoch, maxlen,   history_ttl,     position_ttl, idem_ttl};
        const auto started = steady::now();
        eval(script::publish, 3, args,
             [weak = weak_from_this(), p, permit, started,
              done = std::move(done)](const redisReply* reply) {
                 auto self = weak.lock();
                 if (!self) return;
                 stream_position position;
                 bool fresh = false;
                 std::error_code ec = parse_published(reply, position, fresh);
                 const bool refused = reply && reply->type == REDIS_REPLY_ERROR;
                 self->breaker_.record(permit,
                                       reply == nullptr || refused || ec == errc::internal
                                           ? call_outcome::failure
                                           : call_outcome::success,
                                       steady::now() - started);
                 if (refused || ec == errc::internal) {
                     self->delegate_.backplane_log(true,
                                                   "redis publish failed: " + describe(reply));
                 }
                 if (!ec && fresh) {
                     event_fields e;
                     e.topic = p->topic;
                     e.offset = position.offset;
                     e.epoch = position.epoch;
                     to_number(std::string_view(p->ts), e.ts);
                     e.name = p->event;
                     e.data = std::move(p->data);
                     self->own_event(std::move(e));
                 }
                 done(ec, std::move(position));
             });
    }

    void subscribe(std::vector<backplane_subscription> topics, std::size_t replay_limit,
                   ready_handler ready) override {
        auto b = std::make_shared<batch>();
        b->topics = std::move(topics);
        b->ready = std::move(ready);
        b->results.resize(b->topics.size());
        b->synced.assign(b->topics.size(), false);
        b->catch_up.resize(b->topics.size());
        b->pending = 1;  // released below, after every sync has been started
        for (std::size_t i = 0; i < b->topics.size(); ++i) {
            const auto& want = b->topics[i];
            auto& t = topics_[want.topic];
            ++t.holds;  // released after `ready`: nothing goes out meanwhile
            const bool known = !t.epoch.empty();
            const bool at_top =
                known &&
                (!want.since || (want.since->epoch == t.epoch && want.since->offset == t.top));
            if (at_top || !up_) continue;
            ++b->pending;
            b->synced[i] = true;
            std::optional<stream_position> since = want.since;
            start_sync(want.topic, since, replay_limit,
                       [weak = weak_from_this(), b, i, since](const sync_result* r) {
                           if (auto self = weak.lock()) self->sync_done(b, i, since, r);
                       });
        }
        if (--b->pending == 0) finish(b);
    }

    void sweep() override {
        for (auto it = topics_.begin(); it != topics_.end();) {
            auto& t = it->second;
            if (t.holds == 0 && t.buffer.empty() && !delegate_.interested(it->first)) {
                it = topics_.erase(it);
            } else {
                ++it;
            }
        }
    }

private:
    struct batch;

    struct topic_track {
        std::string epoch;      // empty: not known yet
        std::uint64_t top = 0;  // the last offset delivered here
        int holds = 0;          // live events are buffered while > 0
        bool lenient = false;   // a fill failed: deliver the buffer past its gaps
        std::deque<event_fields> buffer;
        // Subscriptions whose position is fixed but which are not registered
        // yet: they get what is delivered meanwhile.
        std::vector<std::pair<std::shared_ptr<batch>, std::size_t>> watchers;
    };

    struct batch {
        std::vector<backplane_subscription> topics;
        ready_handler ready;
        std::vector<std::optional<recovery>> results;
        std::vector<bool> synced;
        std::vector<std::vector<publication_ptr>> catch_up;
        std::size_t pending = 0;
    };

    static std::string make_generation(const redis_options& r) {
        char out[16];
        std::snprintf(out, sizeof out, "r%08x",
                      fnv1a(std::to_string(r.database) + "/" + r.key_prefix));
        return out;
    }

    static backoff_options make_backoff(const redis_options& r) {
        backoff_options b;
        b.initial_delay = r.reconnect_initial_delay;
        b.max_delay = r.reconnect_max_delay;
        b.jitter = jitter_mode::full;
        return b;
    }

    static circuit_breaker_options make_breaker(const redis_options& r) {
        circuit_breaker_options b;
        b.consecutive_failures = r.breaker_failures;
        b.open_duration = r.breaker_open_duration;
        return b;
    }

    std::string key(std::string_view kind, std::string_view topic) const {
        std::string k;
        k.reserve(redis_.key_prefix.size() + kind.size() + topic.size());
        k.append(redis_.key_prefix).append(kind).append(topic);
        return k;
    }

    static std::error_code parse_published(const redisReply* r, stream_position& position,
                                           bool& fresh) {
        // No answer, or Redis refusing (OOM, read-only replica...): retry later.
        if (r == nullptr || r->type == REDIS_REPLY_ERROR) return make_error_code(errc::unavailable);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER) {
            return make_error_code(errc::internal);
        }
        if (r->element[0]->integer == 1 && r->elements == 3 &&
            r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0) {
            fresh = true;
            position.offset = static_cast<std::uint64_t>(r->element[1]->integer);
            position.epoch = std::string(str(r->element[2]));
            return position.epoch.empty() ? make_error_code(errc::internal) : std::error_code();
        }
        // A repeated idempotency key: "offset epoch" of the first publish.
        auto first = str(r->element[1]);
        auto space = first.find(' ');
        if (space == std::string_view::npos || !to_number(first.substr(0, space), position.offset))
            return make_error_code(errc::internal);
        position.epoch = std::string(first.substr(space + 1));
        return std::error_code();
    }

    // EVALSHA, and EVAL when Redis forgot the script (SCRIPT FLUSH).
    void eval(const script::text& s, int keys, const std::vector<std::string_view>& args,
              link::reply_handler handler) {
        auto link = cmd_;
        if (!link || !link->ready()) {
            asio::post(strand_, [handler = std::move(handler)] { handler(nullptr); });
            return;
        }
        std::string nkeys = std::to_string(keys);
        std::vector<std::string_view> argv{"EVALSHA", s.sha1, nkeys};
        argv.insert(argv.end(), args.begin(), args.end());
        auto retry = std::make_shared<std::vector<std::string>>(args.begin(), args.end());
        bool sent = link->command(argv, [weak = std::weak_ptr<redis::link>(link), &s, nkeys, retry,
                                         handler](const redisReply* reply) mutable {
            auto l = weak.lock();
            if (l && reply && reply->type == REDIS_REPLY_ERROR &&
                std::string_view(reply->str, reply->len).substr(0, 8) == "NOSCRIPT") {
                std::vector<std::string_view> again{"EVAL", s.body, nkeys};
                again.insert(again.end(), retry->begin(), retry->end());
                if (l->command(again, handler)) return;
                reply = nullptr;
            }
            handler(reply);
        });
        if (!sent) asio::post(strand_, [handler = std::move(handler)] { handler(nullptr); });
    }

    // ---- Topics -----------------------------------------------------------

    void start_sync(const std::string& topic, const std::optional<stream_position>& since,
                    std::size_t replay_limit, std::function<void(const sync_result*)> done) {
        auto& t = topics_[topic];
        ++t.holds;
        auto permit = up_ ? breaker_.try_acquire() : circuit_breaker::permit{};
        auto finish = [weak = weak_from_this(), topic, permit,
                       done = std::move(done)](const redisReply* reply) {
            auto self = weak.lock();
            if (!self) return;
            auto it = self->topics_.find(topic);
            if (it == self->topics_.end()) return;  // stopped
            auto result = parse_sync(reply, topic);
            self->breaker_.record(permit, result ? call_outcome::success : call_outcome::failure);
            if (!result && reply) {
                self->delegate_.backplane_log(
                    true, "redis sync of " + topic + " failed: " + describe(reply));
            }
            if (result) {
                self->apply(topic, it->second, *result);
            } else if (self->cmd_ && self->cmd_->ready()) {
                // Redis answered with an error (or the breaker is open): go
                // on past the gap rather than ask again and again. A lost
                // connection instead keeps the events for the resync.
                it->second.lenient = true;
            }
            done(result ? &*result : nullptr);
            auto& t = it->second;
            if (--t.holds == 0) self->drain(topic, t);
        };
        if (!permit) {
            asio::post(strand_, [finish = std::move(finish)] { finish(nullptr); });
            return;
        }
        const std::string meta = key("m:", topic), stream = key("s:", topic);
        const std::string local_top = std::to_string(t.top);
        const std::string since_offset = since ? std::to_string(since->offset) : "0";
        const std::string limit = std::to_string(replay_limit);
        const std::string epoch = random_hex(secure_());
        const std::string position_ttl = ms(options_.position_ttl);
        const std::string& since_epoch = since ? since->epoch : empty_;
        eval(script::sync, 2,
             {meta, stream, t.epoch, local_top, since_epoch, since_offset, limit, epoch,
              position_ttl},
             std::move(finish));
    }

    // The sync result brings this hub's view of the topic up to Redis'.
    void apply(const std::string& topic, topic_track& t, const sync_result& r) {
        if (t.epoch.empty()) {
            t.epoch = r.epoch;
            t.top = r.top;
            return;
        }
        if (t.epoch != r.epoch) {
            // Redis lost the topic's position: what follows is a new epoch.
            delegate_.backplane_log(false, "topic " + topic + " has a new epoch " + r.epoch);
            t.epoch = r.epoch;
            t.top = 0;
        }
        for (const auto& e : r.entries) {
            if (e.epoch == t.epoch && e.offset > t.top) deliver(t, e);
        }
        if (r.top > t.top) t.top = r.top;  // what Redis no longer has is lost
    }

    void sync_done(const std::shared_ptr<batch>& b, std::size_t i,
                   const std::optional<stream_position>& since, const sync_result* r) {
        if (r) {
            recovery rec;
            rec.position = {r->top, r->epoch};
            if (since) {
                rec.recovered = since->epoch == r->epoch && since->offset <= r->top;
                std::uint64_t next = since->offset + 1;
                for (const auto& e : r->entries) {
                    if (!rec.recovered) break;
                    if (e.offset < next) continue;
                    auto pub = e.offset == next ? make_publication(e) : nullptr;
                    if (!pub) {
                        rec.recovered = false;
                        break;
                    }
                    rec.events.push_back(std::move(pub));
                    ++next;
                }
                if (rec.recovered && next != r->top + 1) rec.recovered = false;
                if (!rec.recovered) rec.events.clear();
            }
            b->results[i] = std::move(rec);
            // From here on, what this hub delivers on the topic comes after
            // the position just fixed: collect it until `ready`.
            topics_[b->topics[i].topic].watchers.emplace_back(b, i);
        }
        if (--b->pending == 0) finish(b);
    }

    void finish(const std::shared_ptr<batch>& b) {
        for (std::size_t i = 0; i < b->topics.size(); ++i) {
            auto& t = topics_[b->topics[i].topic];
            auto& w = t.watchers;
            w.erase(std::remove_if(w.begin(), w.end(), [&](const auto& x) { return x.first == b; }),
                    w.end());
            auto& result = b->results[i];
            const auto& since = b->topics[i].since;
            if (!b->synced[i] || !result) {
                // Answered from what this hub follows (or nothing: Redis is
                // down and the topic was never seen here).
                if (t.epoch.empty()) {
                    result.reset();
                } else {
                    recovery rec;
                    rec.position = {t.top, t.epoch};
                    rec.recovered = since && since->epoch == t.epoch && since->offset == t.top;
                    result = std::move(rec);
                }
                continue;
            }
            // Events delivered here after the position was fixed: the new
            // subscription's position moves past them, and a recovery
            // replays them too.
            const auto& caught = b->catch_up[i];
            if (caught.empty()) continue;
            const auto& last = caught.back();
            if (last->epoch() != result->position.epoch) {
                result->recovered = false;
                result->events.clear();
            } else if (result->recovered) {
                result->events.insert(result->events.end(), caught.begin(), caught.end());
            }
            result->position = last->position();
        }
        b->ready(std::move(b->results));
        for (const auto& want : b->topics) {
            auto it = topics_.find(want.topic);
            if (it == topics_.end()) continue;
            if (--it->second.holds == 0) drain(it->first, it->second);
        }
    }

    publication_ptr make_publication(const event_fields& e) {
        rapidjson::Document data;
        data.Parse<parse_flags>(e.data.data(), e.data.size());
        if (data.HasParseError()) return nullptr;
        auto made = publication::create(e.topic, e.offset, e.epoch, e.ts, data, e.name);
        return made ? std::move(made.publication) : nullptr;
    }

    void deliver(topic_track& t, const event_fields& e) {
        t.top = e.offset;
        rapidjson::Document data;
        data.Parse<parse_flags>(e.data.data(), e.data.size());
        if (data.HasParseError()) return;
        auto made = publication::create(e.topic, e.offset, e.epoch, e.ts, data, e.name);
        if (!made) return;
        delegate_.deliver(made.publication, data);
        for (auto& [b, i] : t.watchers) b->catch_up[i].push_back(made.publication);
    }

    // Delivers `e` when it is the next one (or skips it when it is old);
    // false when the events before it are missing.
    bool take(topic_track& t, const event_fields& e) {
        if (t.epoch.empty() || (t.lenient && e.epoch != t.epoch)) {
            t.epoch = e.epoch;
            t.top = e.offset - 1;
        }
        if (e.epoch == t.epoch) {
            if (e.offset <= t.top) return true;
            if (e.offset == t.top + 1 || t.lenient) {
                deliver(t, e);
                return true;
            }
        }
        return false;
    }

    void drain(const std::string& topic, topic_track& t) {
        while (t.holds == 0 && !t.buffer.empty()) {
            if (take(t, t.buffer.front())) {
                t.buffer.pop_front();
                continue;
            }
            if (!up_ || !cmd_ || !cmd_->ready()) return;  // filled when Redis is back
            start_sync(topic, std::nullopt, 0, [](const sync_result*) {});
            if (t.holds == 0) return;
        }
        if (t.buffer.empty()) t.lenient = false;
    }

    void live_event(event_fields e) {
        auto it = topics_.find(e.topic);
        if (it == topics_.end()) {
            if (!delegate_.interested(e.topic)) return;
            it = topics_.emplace(e.topic, topic_track{}).first;
        }
        auto& t = it->second;
        t.buffer.push_back(std::move(e));
        if (t.holds == 0) drain(it->first, t);
    }

    void own_event(event_fields e) {
        // Deliver at once when it is the next one (before the `published`
        // answer, as the in-memory hub does); else its pub/sub copy will.
        auto it = topics_.find(e.topic);
        if (it == topics_.end()) return;
        auto& t = it->second;
        if (t.holds == 0 && t.buffer.empty() && e.epoch == t.epoch && e.offset == t.top + 1)
            deliver(t, e);
    }

    // ---- Connections --------------------------------------------------------

    void connect() {
        if (stopped_) return;
        const auto attempt = ++attempt_;
        cmd_ = std::make_shared<link>(strand_, redis_, "command");
        sub_ = std::make_shared<link>(strand_, redis_, "pubsub");
        links_ready_ = 0;
        auto on_ready = [weak = weak_from_this(), attempt](std::error_code ec, std::string why) {
            auto self = weak.lock();
            if (!self || attempt != self->attempt_) return;
            if (ec) return self->connection_failed(why);
            if (++self->links_ready_ == 3) self->join();
        };
        auto on_closed = [weak = weak_from_this(), attempt](std::string why) {
            auto self = weak.lock();
            if (!self || attempt != self->attempt_) return;
            self->connection_failed(why);
        };
        cmd_->on_closed(on_closed);
        sub_->on_closed(on_closed);
        cmd_->connect(
            [weak = weak_from_this(), attempt, on_ready](std::error_code ec, std::string why) {
                auto self = weak.lock();
                if (!self || attempt != self->attempt_) return;
                if (ec) return on_ready(ec, why);
                on_ready({}, {});
                self->load_scripts(on_ready);
            });
        sub_->connect(on_ready);
    }

    template <class Done>
    void load_scripts(Done done) {
        auto left = std::make_shared<int>(2);
        for (const script::text* s : {&script::publish, &script::sync}) {
            bool sent = cmd_->command(
                {"SCRIPT", "LOAD", s->body}, [s, left, done](const redisReply* reply) {
                    if (str(reply) != s->sha1) {
                        return done(std::make_error_code(std::errc::protocol_error),
                                    "SCRIPT LOAD: " + describe(reply));
                    }
                    if (--*left == 0) done({}, {});
                });
            if (!sent) return done(std::make_error_code(std::errc::not_connected), "SCRIPT LOAD");
        }
    }

    void join() {
        sub_->subscribe(
            {events_channel_, probe_channel_},
            [weak = weak_from_this()](std::string_view channel, std::string_view payload) {
                if (auto self = weak.lock()) self->message(channel, payload);
            });
        joined_ = true;
        last_probe_ = steady::now();
        send_probe();
    }

    void message(std::string_view channel, std::string_view payload) {
        if (channel == probe_channel_) {
            last_probe_ = steady::now();
            if (!up_) go_up();
            return;
        }
        event_fields e;
        if (parse_message(payload, e)) live_event(std::move(e));
    }

    void send_probe() {
        if (!joined_ || !cmd_) return;
        cmd_->command({"PUBLISH", probe_channel_, std::to_string(++probe_seq_)},
                      [](const redisReply*) {});
    }

    void tick() {
        if (stopped_) return;
        if (joined_) {
            if (steady::now() - last_probe_ > redis_.probe_timeout) {
                connection_failed("no probe came back within the probe timeout");
            } else {
                send_probe();
            }
        }
        tick_timer_.expires_after(redis_.probe_interval);
        tick_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) self->tick();
        });
    }

    void go_up() {
        up_ = true;
        failing_ = false;
        backoff_.reset();
        breaker_.reset();
        delegate_.backplane_changed(true);
        delegate_.backplane_log(
            false, "redis backplane up (" + redis_.host + ":" + std::to_string(redis_.port) + ")");
        // Fill, once per topic, what this hub missed while it was away.
        std::vector<std::string> names;
        for (auto& [name, t] : topics_) {
            if (t.holds == 0 && t.buffer.empty() && !delegate_.interested(name)) continue;
            names.push_back(name);
        }
        for (const auto& name : names) start_sync(name, std::nullopt, 0, [](const sync_result*) {});
    }

    void connection_failed(const std::string& why) {
        if (stopped_) return;
        teardown();
        if (up_) {
            up_ = false;
            delegate_.backplane_changed(false);
        }
        if (!failing_) {
            delegate_.backplane_log(true, "redis backplane down: " + why);
        }
        failing_ = true;
        auto delay = backoff_.next().value_or(redis_.reconnect_max_delay);
        reconnect_timer_.expires_after(delay);
        reconnect_timer_.async_wait([weak = weak_from_this()](const std::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) self->connect();
        });
    }

    void teardown() {
        ++attempt_;
        joined_ = false;
        if (cmd_) std::exchange(cmd_, nullptr)->close();
        if (sub_) std::exchange(sub_, nullptr)->close();
    }

    strand_type strand_;
    const redis_options redis_;
    const hub_options options_;
    backplane_delegate& delegate_;
    secure_random_source secure_;
    const std::string hub_id_;
    const std::string events_channel_;
    const std::string probe_channel_;
    const std::string generation_;
    const std::string empty_;
    asio::steady_timer tick_timer_;
    asio::steady_timer reconnect_timer_;
    basic_backoff<std::chrono::steady_clock, std::minstd_rand> backoff_;
    circuit_breaker breaker_;
    std::shared_ptr<link> cmd_;
    std::shared_ptr<link> sub_;
    std::uint64_t attempt_ = 0;
    int links_ready_ = 0;
    bool joined_ = false;
    bool up_ = false;
    bool failing_ = false;
    bool stopped_ = false;
    std::uint64_t probe_seq_ = 0;
    steady::time_point last_probe_{};
    std::unordered_map<std::string, topic_track> topics_;
};

}  // namespace

std::shared_ptr<backplane> make_redis_backplane(asio::strand<asio::any_io_executor> strand,
                                                const redis_options& redis,
                                                const hub_options& options,
                                                backplane_delegate& delegate) {
    return std::make_shared<redis_backplane>(std::move(strand), redis, options, delegate);
}

}  // namespace sluice::detail
