// The WebSocket protocol of `sluice::ws_client` (PROTOCOL.md 3) on top of the
// shared connection loop of client_core.
#include <sluice/ws_client.hpp>

#include "client_core.hpp"
#include "client_json.hpp"
#include "ws_codec.hpp"

#include <sluice/detail/json_string.hpp>
#include <sluice/detail/throw.hpp>
#include <sluice/outbox.hpp>
#include <sluice/sliding_window_limiter.hpp>

#include <asio/post.hpp>

#include <rapidjson/document.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>

#include <array>
#include <deque>

namespace sluice {

namespace detail {

/// One publish in the outbox, with the application's completion handler.
struct ws_publish_message {
    std::string topic;
    std::string data_json;
    std::string event;
    client_publish_handler done;
};

inline std::size_t outbox_size(const ws_publish_message& m) noexcept {
    return m.topic.size() + m.data_json.size() + m.event.size();
}

inline bool valid_json(std::string_view text) {
    rapidjson::Reader reader;
    rapidjson::BaseReaderHandler<> handler;
    rapidjson::MemoryStream ms(text.data(), text.size());
    return !reader.Parse(ms, handler).IsError() && !text.empty();
}

inline bool valid_json_object(std::string_view text) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    return !d.HasParseError() && d.IsObject();
}

}  // namespace detail

class ws_client::impl final : public detail::client_core {
public:
    using outbox_type = basic_outbox<detail::ws_publish_message>;

    impl(asio::any_io_executor executor, std::string_view url, const ws_client_options& o)
        : client_core(std::move(executor), url, "/ws", o, o.reconnect),
          wopts_(o),
          decoder_(o.max_message_bytes),
          outbox_(o.outbox) {
        if (o.ping_interval <= std::chrono::milliseconds::zero() ||
            o.pong_timeout <= std::chrono::milliseconds::zero())
            detail::throw_invalid_argument(
                "ws_client_options: ping_interval and pong_timeout must be > 0");
        if (o.close_timeout <= std::chrono::milliseconds::zero())
            detail::throw_invalid_argument("ws_client_options: close_timeout must be > 0");
        if (o.send_rate > 0) {
            if (o.send_window <= std::chrono::milliseconds::zero())
                detail::throw_invalid_argument("ws_client_options: send_window must be > 0");
            limiter_.emplace(sliding_window_options{
                static_cast<std::uint32_t>(std::min<std::size_t>(o.send_rate, max_log_limit)),
                o.send_window});
        }
        set_heartbeat(o.ping_interval, o.pong_timeout);
        outbox_.on_complete([this](const outbox_type::completion& c) {
            auto done = std::move(c.message.done);
            if (!done) return;
            stream_position position;
            if (c.ack) position = {c.ack->offset, c.ack->epoch};
            call_user([&] { done(c.error, position); });
        });
    }

    void publish(std::string topic, std::string data, client_publish_handler done,
                 client_publish_options options) {
        asio::post(strand_,
                   [self = std::static_pointer_cast<impl>(shared_from_this()),
                    m = detail::ws_publish_message{std::move(topic), std::move(data),
                                                   std::move(options.event), std::move(done)},
                    options = std::move(options)]() mutable { self->push(std::move(m), options); });
    }

private:
    void push(detail::ws_publish_message m, const client_publish_options& options) {
        std::error_code refusal;
        if (phase_ == phase::closed) {
            refusal = make_error_code(client_errc::closed);
        } else if (!detail::valid_json(m.data_json)) {
            refusal = make_error_code(errc::bad_request);
        }
        outbox_push_options po;
        if (!options.idempotency_key.empty()) po.idempotency_key = options.idempotency_key;
        po.priority = options.priority;
        po.ttl = options.ttl;
        if (!refusal) {
            auto done = m.done;  // kept in case the push is refused
            auto r = outbox_.push(std::move(m), po);
            if (r) return pump();
            refusal = r.error;
            m.done = std::move(done);
        }
        if (m.done) call_user([&] { m.done(refusal, stream_position{}); });
    }

    // --- hooks ---------------------------------------------------------------

    std::string request_head() override {
        std::array<char, 16> raw{};
        for (auto& b : raw) b = static_cast<char>(mask_rng_() & 0xFF);
        key_ = detail::base64_encode(std::string_view(raw.data(), raw.size()));
        std::string h =
            "GET " + url_.target() + " HTTP/1.1\r\nHost: " + url_.host_header +
            "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key_ +
            "\r\nSec-WebSocket-Version: 13\r\n";
        if (!token_.empty()) h += "Authorization: Bearer " + token_ + "\r\n";
        for (const auto& [k, v] : options_.headers) h += k + ": " + v + "\r\n";
        return h;
    }

    int expected_status() const override { return 101; }

    std::optional<detail::client_ending> on_response(const detail::http_response& r) override {
        auto accept = r.header("sec-websocket-accept");
        if (!r.has_token("upgrade", "websocket") || !r.has_token("connection", "upgrade") ||
            !accept || *accept != detail::ws_accept_key(key_)) {
            auto e = detail::lost(client_errc::handshake_failed);
            e.http_status = 101;
            return e;
        }
        decoder_.reset();
        welcome_ = false;
        return std::nullopt;
    }

    std::size_t on_bytes(char* data, std::size_t size,
                         std::optional<detail::client_ending>& ending) override {
        std::uint16_t error = 0;
        const std::size_t used =
            decoder_.feed(reinterpret_cast<const std::uint8_t*>(data), size, error,
                          [&](std::uint8_t opcode, std::string_view payload) {
                              if (!ending) on_message(opcode, payload, ending);
                          });
        if (error != 0 && !ending) {
            ending = detail::lost(error == 1009 ? client_errc::message_too_big
                                                : client_errc::protocol_error);
        }
        return used;
    }

    void on_connection_ended() override {
        outbox_.on_disconnect();
        requests_.clear();
        decoder_.reset();
        welcome_ = false;
        pace_armed_ = false;
        for (auto& [id, sub] : subs_by_id_) {
            sub->confirmed = false;
            sub->requested = false;
        }
    }

    void on_closed() override { outbox_.clear(); }

    std::chrono::nanoseconds begin_graceful_close() override {
        send_frame(8, ws_close_payload(1000, "client closing"));
        return wopts_.close_timeout;
    }

    bool send_probe() override {
        send_frame(9, {});
        return true;
    }

    void on_subscribe(detail::client_sub& sub) override {
        if (!is_open()) return;
        queue_subscribe(sub);
        pump();
    }

    void on_unsubscribe(detail::client_sub& sub) override {
        if (!is_open() || !sub.requested) return;
        std::string r =
            R"({"type":"unsubscribe","id":"u)" + std::to_string(sub.id) + R"(","topic":)";
        detail::append_json_string(r, sub.topic);
        r += '}';
        requests_.push_back(std::move(r));
        pump();
    }

    std::error_code check_subscribe(const detail::client_sub& sub,
                                    const subscribe_options& options) override {
        if (!sub.filter_json.empty() && !detail::valid_json_object(sub.filter_json))
            return make_error_code(errc::invalid_filter);
        if (options.since && !sub.exact) return make_error_code(errc::recovery_unsupported);
        return {};
    }

    // --- protocol ------------------------------------------------------------

    static std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
        std::string p;
        p += static_cast<char>(code >> 8);
        p += static_cast<char>(code & 0xFF);
        p.append(reason.data(), reason.size());
        return p;
    }

    void send_frame(std::uint8_t opcode, std::string_view payload) {
        frame_.clear();
        detail::ws_append_client_frame(frame_, opcode, payload,
                                       static_cast<std::uint32_t>(mask_rng_()));
        send(frame_);
    }

    void queue_subscribe(detail::client_sub& sub) {
        std::string r = R"({"type":"subscribe","id":"s)" + std::to_string(sub.id) + R"(","topic":)";
        detail::append_json_string(r, sub.topic);
        if (!sub.filter_json.empty()) {
            r += R"(,"filter":)";
            r += sub.filter_json;
        }
        sub.sent_since = sub.exact && sub.position.known();
        if (sub.sent_since) {
            r += R"(,"since":{"offset":)" + std::to_string(sub.position.offset()) + R"(,"epoch":)";
            detail::append_json_string(r, sub.position.epoch());
            r += '}';
        }
        r += '}';
        sub.requested = true;
        sub.confirmed = false;
        requests_.push_back(std::move(r));
    }

    void pump() override {
        if (!is_open() || !conn_) return;
        const auto now = detail::client_clock::now();
        for (;;) {
            if (requests_.empty() && outbox_.pending() == 0) return;
            if (limiter_) {
                auto r = limiter_->try_acquire(1, now);
                if (!r) return arm_pace(r.retry_after);
            }
            if (!requests_.empty()) {
                send_frame(1, requests_.front());
                requests_.pop_front();
                continue;
            }
            const auto* e = outbox_.next_to_send(now);
            if (!e) return;
            const auto& m = e->message();
            std::string& r = publish_buf_;
            r = R"({"type":"publish","id":)";
            r += std::to_string(e->id());
            r += R"(,"topic":)";
            detail::append_json_string(r, m.topic);
            r += R"(,"data":)";
            r += m.data_json;
            if (!m.event.empty()) {
                r += R"(,"event":)";
                detail::append_json_string(r, m.event);
            }
            r += R"(,"idempotency_key":)";
            detail::append_json_string(r, e->idempotency_key());
            r += '}';
            send_frame(1, r);
        }
    }

    void arm_pace(std::chrono::nanoseconds wait) {
        if (pace_armed_ || !conn_) return;
        pace_armed_ = true;
        auto c = conn_;
        c->pace_timer.expires_after(
            std::chrono::duration_cast<detail::client_clock::duration>(wait));
        c->pace_timer.async_wait(
            [self = std::static_pointer_cast<impl>(shared_from_this()), c](std::error_code ec) {
                if (ec || c != self->conn_) return;
                self->pace_armed_ = false;
                self->pump();
            });
    }

    void on_message(std::uint8_t opcode, std::string_view payload,
                    std::optional<detail::client_ending>& ending) {
        switch (opcode) {
        case 1: return on_text(payload, ending);
        case 2: ending = detail::lost(client_errc::protocol_error); return;
        case 8: {
            std::uint16_t code = 1005;
            if (payload.size() >= 2) {
                code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                                  static_cast<std::uint8_t>(payload[1]));
            }
            if (!is_closing()) send_frame(8, payload.substr(0, 2));
            const auto k = detail::classify_close_code(code);
            ending = detail::client_ending{k.error, k.action, code, 0, {}};
            return;
        }
        case 9: send_frame(10, payload); return;
        default: return;  // pong: any traffic counts for the heartbeat
        }
    }

    void on_text(std::string_view text, std::optional<detail::client_ending>& ending) {
        detail::message_fields f;
        const bool ok = detail::parse_message(text, f);
        if (!ok || f.type.empty()) {
            ending = detail::lost(client_errc::protocol_error);
            return;
        }
        if (!welcome_) {
            if (f.type != R"("welcome")") {
                ending = detail::lost(client_errc::protocol_error);
                return;
            }
            welcome_ = true;
            if (limiter_) limiter_->reset();
            established();
            if (!is_open()) return;
            for (auto& [id, sub] : subs_by_id_) queue_subscribe(*sub);
            pump();
            return;
        }
        if (f.type == R"("event")") return on_event(f, ending);
        if (f.type == R"("subscribed")") return on_subscribed(f);
        if (f.type == R"("published")") return on_published(f);
        if (f.type == R"("error")") return on_error(f);
        // unsubscribed, pong, refreshed and unknown types need nothing.
    }

    void on_event(const detail::message_fields& f, std::optional<detail::client_ending>& ending) {
        if (!deliver_event(f)) ending = detail::lost(client_errc::protocol_error);
    }

    static bool request_id(std::string_view raw, char prefix, std::uint64_t& id) {
        if (raw.size() < 4 || raw.front() != '"' || raw[1] != prefix) return false;
        return detail::json_u64(raw.substr(2, raw.size() - 3), id);
    }

    void on_subscribed(const detail::message_fields& f) {
        std::uint64_t id = 0;
        if (!request_id(f.id, 's', id)) return;
        auto it = subs_by_id_.find(id);
        if (it == subs_by_id_.end()) return;
        std::shared_ptr<detail::client_sub> keep = it->second;
        detail::client_sub& s = *keep;
        bool recovered = false;
        detail::json_bool(f.recovered, recovered);
        subscription_status st;
        st.topic = s.topic;
        detail::json_u64(f.offset, st.offset);
        if (!f.epoch.empty()) detail::json_string(f.epoch, epoch_scratch_, st.epoch);
        st.resumed = s.sent_since || s.confirmed_before;
        st.recovered = s.sent_since ? recovered : !s.confirmed_before;
        if (s.exact) s.position.on_subscribed(s.sent_since, recovered, st.offset, st.epoch);
        s.confirmed = true;
        s.confirmed_before = true;
        deliver_status(s, st);
    }

    void on_published(const detail::message_fields& f) {
        std::uint64_t id = 0, offset = 0;
        if (!detail::json_u64(f.id, id) || !detail::json_u64(f.offset, offset)) return;
        std::string_view epoch;
        detail::json_string(f.epoch, epoch_scratch_, epoch);
        outbox_.acknowledge(id, outbox_ack{offset, std::string(epoch)});
    }

    void on_error(const detail::message_fields& f) {
        std::string_view code;
        detail::json_string(f.code, sub_scratch_, code);
        const std::error_code error = make_error_code(errc_from_wire(code));
        std::uint64_t id = 0;
        if (request_id(f.id, 's', id)) {
            auto it = subs_by_id_.find(id);
            if (it == subs_by_id_.end()) return;
            std::shared_ptr<detail::client_sub> keep = it->second;
            drop_subscription(*keep);
            subscription_status st;
            st.topic = keep->topic;
            st.error = error;
            st.recovered = false;
            deliver_status(*keep, st);
            return;
        }
        if (detail::json_u64(f.id, id)) outbox_.fail(id, error);
    }

    ws_client_options wopts_;
    detail::ws_client_decoder decoder_;
    outbox_type outbox_;
    std::optional<basic_sliding_log_limiter<>> limiter_;
    std::deque<std::string> requests_;
    std::string key_;
    std::string frame_, publish_buf_;
    bool welcome_ = false;
    bool pace_armed_ = false;
};

ws_client::ws_client(asio::any_io_executor executor, std::string url, ws_client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), url, options)) {}

ws_client::~ws_client() { impl_->detach(); }

asio::any_io_executor ws_client::get_executor() const noexcept { return impl_->get_executor(); }
void ws_client::connect() { impl_->connect(); }
void ws_client::close() { impl_->close(); }
subscription ws_client::subscribe(std::string topic, subscribe_options options,
                                  client_event_handler on_event) {
    return impl_->subscribe(std::move(topic), std::move(options), std::move(on_event));
}
subscription ws_client::subscribe(std::string topic, client_event_handler on_event) {
    return impl_->subscribe(std::move(topic), {}, std::move(on_event));
}
void ws_client::publish(std::string topic, std::string data_json, client_publish_handler on_done,
                        client_publish_options options) {
    impl_->publish(std::move(topic), std::move(data_json), std::move(on_done), std::move(options));
}
void ws_client::set_token(std::string token) { impl_->set_token(std::move(token)); }
void ws_client::on_state(client_state_handler handler) { impl_->on_state(std::move(handler)); }
void ws_client::reset_connection() { impl_->reset_connection(); }

}  // namespace sluice
