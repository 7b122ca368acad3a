// The Server-Sent Events protocol of `sluice::sse_client` (PROTOCOL.md 4) on
// top of the shared connection loop of client_core.
#include <sluice/sse_client.hpp>

#include "client_core.hpp"
#include "client_json.hpp"

#include <sluice/detail/throw.hpp>

#include <asio/post.hpp>

#include <cctype>

namespace sluice {

namespace {

/// Percent-encodes a query value (`+` as %2B: servers decode `+` as a space).
void append_query_value(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' ||
            c == '@') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
}

}  // namespace

class sse_client::impl final : public detail::client_core {
public:
    impl(asio::any_io_executor executor, std::string_view url, const sse_client_options& o)
        : client_core(std::move(executor), url, "/events", o, o.reconnect),
          sopts_(o),
          parser_(o.max_message_bytes) {
        if (o.heartbeat_timeout <= std::chrono::milliseconds::zero())
            detail::throw_invalid_argument("sse_client_options: heartbeat_timeout must be > 0");
        set_heartbeat(o.heartbeat_timeout, {});
    }

    std::string last_event_id() const {
        std::lock_guard<std::mutex> lock(id_mutex_);
        return last_id_;
    }

private:
    std::string request_head() override {
        removed_requested_ = false;
        std::string target = url_.path + "?";
        bool first = true;
        if (!url_.query.empty()) {
            target += url_.query;
            first = false;
        }
        for (const auto& [id, sub] : subs_by_id_) {
            if (!first) target += '&';
            first = false;
            target += "topic=";
            append_query_value(target, sub->topic);
            sub->sent_since = !last_id_.empty();
            sub->requested = true;
        }
        if (!sopts_.filter_json.empty()) {
            target += "&filter=";
            append_query_value(target, sopts_.filter_json);
        }
        std::string h = "GET " + target + " HTTP/1.1\r\nHost: " + url_.host_header +
                        "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n";
        if (!token_.empty()) h += "Authorization: Bearer " + token_ + "\r\n";
        if (!last_id_.empty()) h += "Last-Event-ID: " + last_id_ + "\r\n";
        for (const auto& [k, v] : options_.headers) h += k + ": " + v + "\r\n";
        return h;
    }

    int expected_status() const override { return 200; }

    std::optional<detail::client_ending> on_response(const detail::http_response& r) override {
        auto type = r.header("content-type");
        if (!type || type->substr(0, 17) != "text/event-stream") {
            auto e = detail::lost(client_errc::handshake_failed);
            e.http_status = 200;
            return e;
        }
        chunked_ = r.has_token("transfer-encoding", "chunked");
        dechunk_ = detail::chunked_decoder{};
        parser_.reset();
        established();
        return std::nullopt;
    }

    std::size_t on_bytes(char* data, std::size_t size,
                         std::optional<detail::client_ending>& ending) override {
        std::size_t n = size;
        if (chunked_) {
            if (!dechunk_.decode(data, size, n)) {
                ending = detail::lost(client_errc::protocol_error);
                return size;
            }
        }
        const bool ok = parser_.feed(
            std::string_view(data, n),
            [&](const detail::sse_event_view& b) {
                if (!ending) on_block(b, ending);
            },
            [&](std::uint64_t ms) {
                if (sopts_.use_retry_hint && ms > 0) {
                    policy_.set_initial_delay(std::chrono::milliseconds(ms));
                }
            });
        if (!ok && !ending) {
            ending = detail::lost(client_errc::message_too_big);
        }
        if (chunked_ && dechunk_.done() && !ending) {
            ending = detail::lost(client_errc::connection_lost);
        }
        return size;  // everything is consumed (the parser keeps partial lines)
    }

    void on_connection_ended() override {
        for (auto& [id, sub] : subs_by_id_) {
            sub->confirmed = false;
            sub->requested = false;
        }
    }

    bool wants_connection() const override { return !subs_.empty(); }

    bool topics_changed() const override {
        if (removed_requested_) return true;
        for (const auto& [id, sub] : subs_by_id_) {
            if (!sub->requested) return true;
        }
        return false;
    }

    void on_subscribe(detail::client_sub&) override { restart_now(); }
    void on_unsubscribe(detail::client_sub& sub) override {
        if (!sub.requested) return;
        removed_requested_ = true;
        restart_now();
    }

    std::error_code check_subscribe(const detail::client_sub& sub,
                                    const subscribe_options&) override {
        if (!sub.filter_json.empty()) return make_error_code(errc::invalid_filter);
        return {};
    }

    void on_block(const detail::sse_event_view& b, std::optional<detail::client_ending>& ending) {
        if (b.has_data) {
            if (b.event == "subscribed") {
                on_subscribed(b.data);
            } else if (!on_event(b.data)) {
                ending = detail::lost(client_errc::protocol_error);
                return;
            }
        }
        if (b.has_id) {
            // Committed after the block was delivered: a reconnection resumes
            // after it, never before.
            std::lock_guard<std::mutex> lock(id_mutex_);
            last_id_.assign(b.id.data(), b.id.size());
        }
    }

    void on_subscribed(std::string_view text) {
        detail::message_fields f;
        if (!detail::parse_message(text, f)) return;
        std::string_view topic;
        if (!detail::json_string(f.topic, topic_scratch_, topic)) return;
        auto it = subs_.find(topic);
        if (it == subs_.end()) return;
        std::shared_ptr<detail::client_sub> keep = it->second;
        detail::client_sub& s = *keep;
        subscription_status st;
        st.topic = s.topic;
        detail::json_u64(f.offset, st.offset);
        if (!f.epoch.empty()) detail::json_string(f.epoch, epoch_scratch_, st.epoch);
        bool recovered = false;
        const bool has_recovered = detail::json_bool(f.recovered, recovered);
        // A topic new to this stream starts at the top whatever the token
        // says: nothing to miss.
        const bool resumed = s.confirmed_before;
        st.resumed = resumed;
        st.recovered = resumed ? (has_recovered && recovered) : true;
        if (s.exact)
            s.position.on_subscribed(resumed && has_recovered, recovered, st.offset, st.epoch);
        s.confirmed = true;
        s.confirmed_before = true;
        deliver_status(s, st);
    }

    bool on_event(std::string_view text) {
        detail::message_fields f;
        if (!detail::parse_message(text, f)) return false;
        if (f.type != R"("event")") return true;  // unknown messages are skipped
        return deliver_event(f);
    }

    sse_client_options sopts_;
    detail::sse_parser parser_;
    detail::chunked_decoder dechunk_;
    bool chunked_ = false;
    bool removed_requested_ = false;
    mutable std::mutex id_mutex_;
    std::string last_id_;
};

sse_client::sse_client(asio::any_io_executor executor, std::string url, sse_client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), url, options)) {}

sse_client::~sse_client() { impl_->detach(); }

asio::any_io_executor sse_client::get_executor() const noexcept { return impl_->get_executor(); }
void sse_client::connect() { impl_->connect(); }
void sse_client::close() { impl_->close(); }
subscription sse_client::subscribe(std::string topic, subscribe_options options,
                                   client_event_handler on_event) {
    return impl_->subscribe(std::move(topic), std::move(options), std::move(on_event));
}
subscription sse_client::subscribe(std::string topic, client_event_handler on_event) {
    return impl_->subscribe(std::move(topic), {}, std::move(on_event));
}
void sse_client::set_token(std::string token) { impl_->set_token(std::move(token)); }
void sse_client::on_state(client_state_handler handler) { impl_->on_state(std::move(handler)); }
void sse_client::reset_connection() { impl_->reset_connection(); }
std::string sse_client::last_event_id() const { return impl_->last_event_id(); }

}  // namespace sluice
