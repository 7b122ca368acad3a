// sluice/client_options.hpp: what the reconnecting clients (`ws_client`,
// `sse_client`) share: their options, connection states, error codes, the
// event and subscription-status types handed to the application, and the
// subscription handle.
//
// Defines `sluice::client_errc` (with `client_error_category()`),
// `sluice::client_state_kind`, `sluice::client_state`, `sluice::tls_options`,
// `sluice::client_options`, `sluice::ws_client_options`,
// `sluice::sse_client_options`, `sluice::client_event`,
// `sluice::subscription_status`, `sluice::subscribe_options`,
// `sluice::client_publish_options` and `sluice::subscription`.
//
// Guarantees: every option is a plain member with a documented default; the
// views inside `client_event` and `subscription_status` point into the
// client's receive buffer and are valid during the callback only (copy what
// you keep), so delivering an event allocates nothing for the application.
//
// Thread-safety: plain data, except `subscription` (see there).
#pragma once

#include <sluice/backoff.hpp>
#include <sluice/circuit_breaker.hpp>
#include <sluice/error.hpp>
#include <sluice/outbox.hpp>
#include <sluice/publication.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

/// Errors that only a client sees (the server's own errors are `sluice::errc`:
/// a refused handshake reports `errc::unauthorized` for HTTP 401 / close 4401,
/// `errc::forbidden` for HTTP 403 / close 1008 / 4503, `errc::rate_limited`
/// for HTTP 429 / close 4429). Zero is never used.
///
/// Thread-safety: a plain enumeration.
enum class client_errc {
    connect_timeout =
        1,  ///< resolve + TCP + TLS + HTTP handshake took longer than `connect_timeout`
    tls_verification_failed,  ///< the server's certificate chain or host name did not verify
    tls_handshake_failed,     ///< the TLS handshake failed for another reason
    handshake_failed,         ///< an unexpected HTTP answer to the upgrade / stream request
    heartbeat_timeout,        ///< nothing received within the heartbeat timeout: a dead link
    connection_lost,          ///< EOF, reset, or a close frame with a reconnectable code
    protocol_error,     ///< the server broke the wire protocol (bad frame, bad JSON, no welcome)
    message_too_big,    ///< an inbound message over `max_message_bytes`
    closed_by_server,   ///< a close code that says "stop" (1000, 1002, 1003, 1007, 1009, 45xx)
    retries_exhausted,  ///< `reconnect.max_attempts` delays were used up
    closed,             ///< the client was closed (`close()`) before the operation completed
};

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::client_errc> : std::true_type {};

namespace sluice {

/// The lower-case name of `e` (`"connect_timeout"`, …), for logs.
constexpr std::string_view to_string(client_errc e) noexcept {
    switch (e) {
    case client_errc::connect_timeout: return "connect_timeout";
    case client_errc::tls_verification_failed: return "tls_verification_failed";
    case client_errc::tls_handshake_failed: return "tls_handshake_failed";
    case client_errc::handshake_failed: return "handshake_failed";
    case client_errc::heartbeat_timeout: return "heartbeat_timeout";
    case client_errc::connection_lost: return "connection_lost";
    case client_errc::protocol_error: return "protocol_error";
    case client_errc::message_too_big: return "message_too_big";
    case client_errc::closed_by_server: return "closed_by_server";
    case client_errc::retries_exhausted: return "retries_exhausted";
    case client_errc::closed: return "closed";
    }
    return "unknown";
}

namespace detail {
class client_error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sluice.client"; }
    std::string message(int value) const override {
        return std::string(to_string(static_cast<client_errc>(value)));
    }
};
}  // namespace detail

/// The category of `sluice::client_errc`; one instance per program.
inline const std::error_category& client_error_category() noexcept {
    static const detail::client_error_category_impl instance;
    return instance;
}

/// Makes `std::error_code ec = sluice::client_errc::heartbeat_timeout;` work.
inline std::error_code make_error_code(client_errc e) noexcept {
    return {static_cast<int>(e), client_error_category()};
}

/// The states a client goes through. `connecting` → `connected` →
/// (`reconnecting` | `circuit_open`)* → … → `closed`.
enum class client_state_kind {
    connecting,    ///< an attempt is under way (resolve, TCP, TLS, HTTP handshake)
    connected,     ///< the session is up (WebSocket: `welcome` received; SSE: `200` received)
    reconnecting,  ///< waiting `delay` (backoff with jitter) before attempt `attempt`
    circuit_open,  ///< the breaker refuses attempts; the next probe comes in `delay`
    closed,        ///< no more attempts: `close()` (no error) or a fatal error
};

/// `"connecting"`, `"connected"`, `"reconnecting"`, `"circuit_open"` or `"closed"`.
constexpr std::string_view to_string(client_state_kind k) noexcept {
    switch (k) {
    case client_state_kind::connecting: return "connecting";
    case client_state_kind::connected: return "connected";
    case client_state_kind::reconnecting: return "reconnecting";
    case client_state_kind::circuit_open: return "circuit_open";
    case client_state_kind::closed: return "closed";
    }
    return "unknown";
}

/// One state change, as the state handler receives it.
///
/// Example:
/// ```
/// client.on_state([](const sluice::client_state& s) {
///     if (s.kind == sluice::client_state_kind::closed && s.error) std::cerr << s.error.message();
/// });
/// ```
struct client_state {
    /// The new state.
    client_state_kind kind = client_state_kind::connecting;
    /// `reconnecting`: the wait before the next attempt (jitter included);
    /// `circuit_open`: the time until the breaker lets a probe through. Else 0.
    std::chrono::nanoseconds delay{0};
    /// `connecting` / `reconnecting`: the retry number of the coming attempt
    /// since the last healthy connection (0 for a first connection or after
    /// `connect()`, 1 for the first retry, 2 for the second, …). Else 0.
    std::uint32_t attempt = 0;
    /// `reconnecting` / `circuit_open`: why the last connection or attempt
    /// ended; `closed`: the fatal error (empty after `close()`). Else empty.
    std::error_code error{};
    /// The WebSocket close code that ended the last connection (0: none).
    std::uint16_t close_code = 0;
    /// The HTTP status of a refused handshake (0: none).
    int http_status = 0;
};

/// TLS settings of `wss://` and `https://` URLs (OpenSSL through asio::ssl).
///
/// Example: `o.tls.ca_file = "/etc/myca.pem";`
struct tls_options {
    /// Verify the server's certificate chain and host name. Default true;
    /// turning it off makes TLS worthless against an active attacker.
    bool verify_peer = true;
    /// A PEM file of trusted CA certificates. Default empty: OpenSSL's default
    /// verify paths (the system store).
    std::string ca_file;
    /// The name sent as SNI and checked against the certificate. Default
    /// empty: the URL's host.
    std::string server_name;
};

/// What both clients share. Use `ws_client_options` or `sse_client_options`.
struct client_options {
    /// Sent as `Authorization: Bearer <token>` on every attempt (PROTOCOL.md 6;
    /// never in the URL, never logged). Default empty: no header. Change it
    /// later with `set_token()`.
    std::string token;
    /// Extra request headers sent on every attempt (e.g. `Origin`). Default none.
    std::vector<std::pair<std::string, std::string>> headers;
    /// Bound on one attempt: resolve, TCP connect, TLS handshake and the HTTP
    /// answer (WebSocket: up to the `welcome` frame). Default 10 s.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
    /// A connection that stayed up this long resets the backoff (the next drop
    /// retries after the first, short delay again). Default 10 s.
    std::chrono::milliseconds healthy_after = std::chrono::seconds(10);
    /// The circuit breaker around connection attempts; empty disables it.
    /// Default `default_breaker()`: opens after 5 failed attempts in a row,
    /// stays open 30 s growing x2 (equal jitter) up to 5 min, then lets one probe
    /// through (half-open); a successful handshake closes it.
    std::optional<circuit_breaker_options> breaker = default_breaker();
    /// The largest inbound message (WebSocket message or SSE block). Past it:
    /// `client_errc::message_too_big`, then a reconnection. Default 16 MiB.
    std::size_t max_message_bytes = std::size_t{16} << 20;
    /// Seeds the jitter of the backoff and of the breaker (and nothing else:
    /// idempotency keys and WebSocket masks always come from
    /// std::random_device). Default empty: seeded from std::random_device.
    std::optional<std::uint64_t> seed{};
    /// TLS settings (used by `wss://` and `https://` URLs only).
    tls_options tls;

    /// The default breaker (see `breaker`).
    static circuit_breaker_options default_breaker() {
        circuit_breaker_options o;
        o.mode = trip_mode::consecutive_failures;
        o.consecutive_failures = 5;
        o.open_duration = std::chrono::seconds(30);
        backoff_options grow;
        grow.initial_delay = std::chrono::seconds(30);
        grow.multiplier = 2.0;
        grow.max_delay = std::chrono::minutes(5);
        grow.jitter = jitter_mode::equal;
        o.open_backoff = grow;
        o.half_open_trials = 1;
        return o;
    }
};

/// Options of `ws_client`. Defaults follow PROTOCOL.md sections 3.3 and 3.4.
///
/// Example:
/// ```
/// sluice::ws_client_options o;
/// o.token = jwt;
/// o.reconnect.max_delay = std::chrono::seconds(10);
/// ```
struct ws_client_options : client_options {
    /// Delays between attempts. Default `backoff_options::browser()`: 1 s, x2,
    /// at most 30 s, full jitter (uniform in [0, d]), unlimited attempts, so a
    /// crowd of clients that lost one server spreads over the whole window.
    /// Close 4429 (and HTTP 429) skips three steps ahead ("a longer backoff"),
    /// and HTTP 429's `Retry-After` is a lower bound.
    backoff_options reconnect = backoff_options::browser();
    /// The client sends a WebSocket ping after this long without receiving
    /// anything. Default 20 s (below the server's own 25 s ping interval).
    std::chrono::milliseconds ping_interval = std::chrono::seconds(20);
    /// After its ping, nothing received (pong or anything else) for this long
    /// means a dead link: `client_errc::heartbeat_timeout`, then a
    /// reconnection. Default 10 s.
    std::chrono::milliseconds pong_timeout = std::chrono::seconds(10);
    /// Client-side pacing of the messages it sends (subscribe, unsubscribe,
    /// publish; not pings), under the server's inbound limit (PROTOCOL.md 3.3:
    /// 100 per 1 s, counted per connection), so that flushing the outbox or
    /// resubscribing many topics never trips `rate_limited` or close 4429:
    /// at most `send_rate` per `send_window`. Default 90 per 1 s; 0 disables.
    std::size_t send_rate = 90;
    /// The window of `send_rate`. Default 1 s.
    std::chrono::milliseconds send_window = std::chrono::seconds(1);
    /// How long `close()` waits for the server's close frame. Default 1 s.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(1);
    /// The offline outbox of `publish` (capacity, TTL, overflow policy).
    /// Default: 1000 messages, 1 MiB, TTL 60 s, drop_oldest.
    outbox_options outbox{};
};

/// Options of `sse_client`. Defaults follow PROTOCOL.md section 4.
struct sse_client_options : client_options {
    /// Delays between attempts. Default: 1 s, x2, at most 30 s, `equal` jitter
    /// (uniform in [d/2, d]), unlimited attempts; with `use_retry_hint` the
    /// server's `retry:` value replaces the 1 s.
    backoff_options reconnect = sse_reconnect_defaults();
    /// Use the server's `retry:` hint as the first delay after a drop (the
    /// server already spreads it per connection). Default true.
    bool use_retry_hint = true;
    /// No byte received (events, `: ping` comments) for this long means a dead
    /// stream: `client_errc::heartbeat_timeout`, then a reconnection. Default
    /// 45 s, three of the server's 15 s heartbeats.
    std::chrono::milliseconds heartbeat_timeout = std::chrono::seconds(45);
    /// A filter (PROTOCOL.md 3.1, JSON object text) applied by the server to
    /// every topic of the stream. Default empty: none. (SSE has one filter per
    /// stream; `ws_client` has one per subscription.)
    std::string filter_json;

    /// The default of `reconnect`.
    static backoff_options sse_reconnect_defaults() noexcept {
        backoff_options o = backoff_options::browser();
        o.jitter = jitter_mode::equal;
        return o;
    }
};

/// One event delivered to a subscription (the protocol's `event` message).
/// The views are valid during the callback only.
///
/// Example: `[](const sluice::client_event& e) { store(e.topic, e.offset, std::string(e.data)); }`
struct client_event {
    std::string_view sub;      ///< the subscription string it matched, as given to `subscribe`
    std::string_view topic;    ///< the concrete topic
    std::uint64_t offset = 0;  ///< its offset in the topic
    std::string_view epoch;    ///< the topic's epoch
    std::int64_t ts = 0;       ///< server time of the publish, ms since the Unix epoch
    std::string_view data;     ///< the `data` value as JSON text (as the server wrote it)
    std::string_view event;    ///< the publisher's event name; empty when none
    /// `{offset, epoch}` as an owning value (allocates).
    stream_position position() const { return {offset, std::string(epoch)}; }
};

/// The answer to one (re)subscription, as the status handler receives it:
/// once per `subscribed` answer (after every reconnection too), or once with
/// an error when the server refused the subscription (it is then dropped:
/// `subscription::active()` turns false; a refusal is never retried).
///
/// `recovered == false` is the explicit notice that events may have been
/// missed: the server could not fill the gap since the last event delivered
/// (history trimmed, epoch changed, more than the replay limit), or the
/// subscription is a pattern, which resumes live only. Events then continue
/// from `offset + 1` of the new position.
struct subscription_status {
    std::string_view topic;   ///< the subscription string
    std::error_code error{};  ///< the refusal (`forbidden`, `invalid_topic`, `invalid_filter`, …)
    /// True when this answer follows a resubscription that asked to resume
    /// (after a reconnection, or with `subscribe_options::since`).
    bool resumed = false;
    /// False when events may have been missed (see above). True for a first
    /// subscription without `since` (nothing to miss).
    bool recovered = true;
    std::uint64_t offset = 0;  ///< exact topics: the topic's current top offset
    std::string_view epoch;    ///< exact topics: the topic's epoch; empty for patterns
};

/// Called for every event of a subscription, on the client's strand.
using client_event_handler = std::function<void(const client_event&)>;
/// Called for every `subscribed` answer or refusal of a subscription.
using subscription_status_handler = std::function<void(const subscription_status&)>;
/// Called once per `publish`: empty error and the position assigned, or the
/// error (server's `errc`, `std::errc::timed_out` when its TTL passed
/// offline, `std::errc::no_buffer_space` when the outbox dropped it,
/// `std::errc::operation_canceled` when the client closed first).
using client_publish_handler = std::function<void(std::error_code, const stream_position&)>;
/// Called for every state change.
using client_state_handler = std::function<void(const client_state&)>;

/// Settings of one subscription. All optional.
///
/// Example: `client.subscribe("prices:AAPL", {R"({"price":{"gt":100}})"}, on_event);`
struct subscribe_options {
    /// A filter (PROTOCOL.md 3.1) as JSON object text (`ws_client` only; the
    /// SSE filter is `sse_client_options::filter_json`). Default empty: none.
    std::string filter_json;
    /// Resume from a position the application stored (exact topics only): the
    /// first subscribe is sent with `since` and answers `recovered`. Default
    /// empty: start at the topic's current top.
    std::optional<stream_position> since{};
    /// Receives every `subscribed` answer and a refusal. Default none.
    subscription_status_handler on_status{};
};

/// Settings of one publish. All optional.
struct client_publish_options {
    /// The event name (PROTOCOL.md section 2; copied to SSE `event:`). Default none.
    std::string event;
    /// The idempotency key (1-64 bytes). Default empty: the outbox generates one;
    /// either way it stays the same across re-sends.
    std::string idempotency_key;
    /// `critical` messages are never evicted by the outbox's overflow policy.
    outbox_priority priority = outbox_priority::normal;
    /// Time to live while offline or unanswered; zero: `outbox.ttl`.
    std::chrono::nanoseconds ttl{0};
};

namespace detail {
/// What a `subscription` handle refers to (implemented by each client).
class subscription_owner {
public:
    virtual void unsubscribe(std::uint64_t id) = 0;
    virtual bool subscription_active(std::uint64_t id) const = 0;

protected:
    ~subscription_owner() = default;
};
}  // namespace detail

/// A handle to one subscription, returned by `subscribe`. Copyable, cheap; it
/// does not keep the client alive, and destroying it does not unsubscribe
/// (call `unsubscribe()`).
///
/// Thread-safety: every member may be called from any thread.
///
/// Example:
/// ```
/// sluice::subscription s = client.subscribe("chat:1", on_event);
/// s.unsubscribe();  // no event is delivered to it once the client's strand ran this
/// ```
class subscription {
public:
    /// An empty handle (refers to nothing; `active()` is false).
    subscription() = default;
    /// For the clients.
    subscription(std::weak_ptr<detail::subscription_owner> owner, std::uint64_t id,
                 std::string topic)
        : owner_(std::move(owner)), id_(id), topic_(std::move(topic)) {}

    /// Unsubscribes: sends `unsubscribe` when connected and stops delivering
    /// events to this subscription (from when the client's strand runs it; at
    /// once when called from a callback of this client). Idempotent; does
    /// nothing on an empty handle or after the client is gone.
    void unsubscribe() {
        if (auto o = owner_.lock()) o->unsubscribe(id_);
    }
    /// True while subscribed (not unsubscribed, not refused, client alive).
    bool active() const {
        auto o = owner_.lock();
        return o && o->subscription_active(id_);
    }
    /// The subscription string given to `subscribe`.
    const std::string& topic() const noexcept { return topic_; }
    /// The client-wide identifier of this subscription (0 for an empty handle).
    std::uint64_t id() const noexcept { return id_; }

private:
    std::weak_ptr<detail::subscription_owner> owner_;
    std::uint64_t id_ = 0;
    std::string topic_;
};

}  // namespace sluice
