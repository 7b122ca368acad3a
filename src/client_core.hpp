// client_core.hpp: what `ws_client` and `sse_client` share: the connection
// (TCP or TLS, connect timeout, HTTP request and response head), the
// reconnection loop (backoff, breaker, healthy reset), the heartbeat, the
// state callbacks and the subscription registry. The protocol of each client
// lives in its own file (ws_client.cpp, sse_client.cpp) behind a few hooks.
//
// Everything here runs on the client's strand; the public members post to it.
#pragma once

#include "client_policy.hpp"
#include "client_url.hpp"
#include "client_wire.hpp"

#include <sluice/client_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace sluice::detail {

using client_clock = std::chrono::steady_clock;
using client_strand = asio::strand<asio::any_io_executor>;

/// One subscription as the client keeps it across connections.
struct client_sub {
    std::uint64_t id = 0;
    std::string topic;
    bool exact = true;
    std::string filter_json;
    client_event_handler on_event;
    subscription_status_handler on_status;
    resume_position position;
    bool confirmed_before = false;  ///< a `subscribed` answer came on an earlier connection
    bool confirmed = false;         ///< on the current connection
    bool sent_since = false;        ///< the current request carried `since` / a token
    bool requested = false;         ///< sent on the current connection
};

/// How a connection or an attempt ended.
struct client_ending {
    std::error_code error;
    disconnect_action action = disconnect_action::reconnect;
    std::uint16_t close_code = 0;
    int http_status = 0;
    std::chrono::nanoseconds at_least{0};
};

/// An ending that calls for a reconnection with backoff.
inline client_ending lost(client_errc e) {
    client_ending ending;
    ending.error = make_error_code(e);
    return ending;
}

/// One connection attempt and, if it succeeds, the connection: the socket
/// (plain or TLS), its buffers and its timers. Handlers hold it alive; the
/// core forgets it when it ends, so late handlers see a stale connection.
struct client_connection {
    client_connection(const client_strand& strand, asio::ssl::context* tls)
        : resolver(strand),
          tcp(strand),
          connect_timer(strand),
          heartbeat_timer(strand),
          pace_timer(strand) {
        if (tls) this->tls.emplace(strand, *tls);
    }
    asio::ip::tcp::socket& socket() { return tls ? tls->next_layer() : tcp; }
    void close() {
        std::error_code ignored;
        resolver.cancel();
        socket().close(ignored);
        connect_timer.cancel();
        heartbeat_timer.cancel();
        pace_timer.cancel();
    }

    asio::ip::tcp::resolver resolver;
    asio::ip::tcp::socket tcp;
    std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls;
    asio::steady_timer connect_timer;
    asio::steady_timer heartbeat_timer;
    asio::steady_timer pace_timer;
    std::vector<char> rbuf;
    std::size_t rsize = 0;  // unconsumed bytes at the front of rbuf
    std::string out_pending, out_writing;
    bool writing = false;
    bool request_sent = false;  // the request (with its topics) went out
    bool head_done = false;
    bool open = false;  // established (the protocol said so)
    bool timed_out = false;
    http_response response;
    std::size_t body_wanted = 0;  // error answers: bytes of body to read
    client_clock::time_point last_rx{};
    client_clock::time_point ping_sent{};
    bool ping_outstanding = false;
};

/// The members of one server message the clients read, as raw JSON values.
struct message_fields {
    std::string_view type, sub, topic, offset, epoch, ts, data, event, id, code, recovered;
};

/// Reads the members of one message; false when it is not a JSON object.
bool parse_message(std::string_view text, message_fields& f);

class client_core : public subscription_owner, public std::enable_shared_from_this<client_core> {
public:
    client_core(asio::any_io_executor executor, std::string_view url, std::string_view default_path,
                const client_options& options, const backoff_options& reconnect);
    virtual ~client_core();
    client_core(const client_core&) = delete;
    client_core& operator=(const client_core&) = delete;

    // The public API (any thread).
    asio::any_io_executor get_executor() const noexcept { return executor_; }
    void connect();
    void close();
    void set_token(std::string token);
    void on_state(client_state_handler handler);
    void reset_connection();
    /// The facade is being destroyed: no callback starts after this returns.
    void detach();
    subscription subscribe(std::string topic, subscribe_options options,
                           client_event_handler on_event);

    // subscription_owner (any thread)
    void unsubscribe(std::uint64_t id) override;
    bool subscription_active(std::uint64_t id) const override;

protected:
    enum class phase { idle, connecting, open, closing, waiting, closed };

    // Hooks of the protocol.
    virtual std::string request_head() = 0;  ///< the request, without the final CRLF
    virtual int expected_status() const = 0;
    /// The expected status arrived: checks the head; returns an ending to
    /// refuse it.
    virtual std::optional<client_ending> on_response(const http_response& r) = 0;
    /// Bytes after the head; returns how many were consumed (the rest stays
    /// at the front of the buffer), or sets `ending`.
    virtual std::size_t on_bytes(char* data, std::size_t size,
                                 std::optional<client_ending>& ending) = 0;
    /// The connection ended (whatever the reason); forget per-connection state.
    virtual void on_connection_ended() {}
    /// The client reached `closed`.
    virtual void on_closed() {}
    /// Sends what the protocol wants to send now (rate-paced by the derived class).
    virtual void pump() {}
    /// `close()` while open: starts a graceful close and returns how long to
    /// wait for its end; zero: end at once.
    virtual std::chrono::nanoseconds begin_graceful_close() { return {}; }
    /// The heartbeat probe (WebSocket ping); false when the protocol has none.
    virtual bool send_probe() { return false; }
    /// SSE: no subscription means no stream.
    virtual bool wants_connection() const { return true; }
    /// SSE: whether the current request misses a topic change.
    virtual bool topics_changed() const { return true; }
    /// A subscription was added or removed (on the strand).
    virtual void on_subscribe(client_sub& sub) = 0;
    virtual void on_unsubscribe(client_sub& sub) = 0;
    /// A refusal that the protocol must check locally (e.g. SSE filters).
    virtual std::error_code check_subscribe(const client_sub&, const subscribe_options&) {
        return {};
    }

    // Services for the protocol (strand only).
    void send(std::string_view bytes);
    void established();
    void end_connection(client_ending ending);
    /// Ends the connection without counting it as a failure and connects
    /// again at once (SSE topic changes).
    void restart_now();
    void finish_close();
    bool is_open() const noexcept { return phase_ == phase::open; }
    bool is_closing() const noexcept { return phase_ == phase::closing; }
    void set_heartbeat(std::chrono::nanoseconds idle, std::chrono::nanoseconds probe_timeout) {
        heartbeat_idle_ = idle;
        probe_timeout_ = probe_timeout;
    }
    void deliver_status(client_sub& sub, const subscription_status& status);
    /// Runs `f` unless detached; serialized with `detach()`.
    template <class F>
    void call_user(F&& f) {
        std::lock_guard<std::mutex> lock(user_mutex_);
        if (detached_.load(std::memory_order_relaxed)) return;
        f();
    }
    void drop_subscription(client_sub& sub);
    /// Delivers an `event` message to its subscription once (duplicates at or
    /// before the last delivered position are dropped). False when malformed.
    bool deliver_event(const message_fields& f);
    client_sub* find_sub(std::string_view topic) {
        auto it = subs_.find(topic);
        return it == subs_.end() ? nullptr : it->second.get();
    }
    client_sub* find_sub_id(std::uint64_t id) {
        auto it = subs_by_id_.find(id);
        return it == subs_by_id_.end() ? nullptr : it->second.get();
    }

    client_strand strand_;
    client_url url_;
    client_options options_;
    std::string token_;
    std::shared_ptr<client_connection> conn_;
    std::map<std::string, std::shared_ptr<client_sub>, std::less<>> subs_;
    std::map<std::uint64_t, std::shared_ptr<client_sub>> subs_by_id_;
    basic_reconnect_policy<client_clock> policy_;
    std::minstd_rand mask_rng_;
    std::string scratch_, sub_scratch_, topic_scratch_, epoch_scratch_, event_scratch_;
    phase phase_ = phase::idle;

private:
    void start_attempt();
    void schedule(client_state_kind kind, std::chrono::nanoseconds delay, std::uint32_t attempt,
                  const client_ending& why);
    void emit(const client_state& s);
    void go_closed(std::error_code error, std::uint16_t close_code, int http_status);
    void on_connected(const std::shared_ptr<client_connection>& c);
    void write_request(const std::shared_ptr<client_connection>& c);
    void read_some(const std::shared_ptr<client_connection>& c);
    void on_read(const std::shared_ptr<client_connection>& c, std::size_t n);
    void flush(const std::shared_ptr<client_connection>& c);
    void arm_heartbeat(const std::shared_ptr<client_connection>& c);
    void attempt_error(const std::shared_ptr<client_connection>& c, std::error_code ec);

    asio::any_io_executor executor_;
    std::unique_ptr<asio::ssl::context> tls_context_;
    asio::steady_timer retry_timer_;
    client_state_handler state_handler_;
    std::chrono::nanoseconds heartbeat_idle_{0};
    std::chrono::nanoseconds probe_timeout_{0};
    std::atomic<bool> detached_{false};
    std::mutex user_mutex_;
    mutable std::mutex active_mutex_;
    std::unordered_set<std::uint64_t> active_ids_;
    std::atomic<std::uint64_t> next_sub_id_{1};
    std::uint64_t generation_ = 0;
    bool restart_pending_ = false;
    bool want_connect_ = false;
};

}  // namespace sluice::detail
