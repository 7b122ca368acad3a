// sluice/ws_client.hpp: a reconnecting WebSocket client of the sluice wire
// protocol (PROTOCOL.md sections 3, 3.1, 3.2, 3.4 and 6), for any conforming
// server.
//
// Defines `sluice::ws_client`.
//
// Guarantees: connects to `ws://` or `wss://` URLs (TLS through OpenSSL, the
// certificate chain and host name verified by default, SNI sent); on every
// connection loss it reconnects with exponential backoff and jitter behind a
// circuit breaker, re-sends every subscription with `since` = the position of
// the last event it delivered to the application, and drops any event at or
// before that position, so each subscription sees every event once, in
// offset order, and is told `recovered == false` when the server could not
// fill a gap. Publishes wait in an offline outbox while disconnected, go out
// in order with a stable idempotency key, and complete exactly once. Close
// codes 1001, 1011, 1013, 4001, 4429 and a lost or silent link reconnect;
// HTTP 401/403 and closes 1008, 4401 and 4500-4999 are fatal (state `closed`
// with the error).
//
// The client owns no thread: it runs on the executor given at construction.
#pragma once

#include <sluice/client_options.hpp>

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// A reconnecting WebSocket client (see the header comment for the
/// guarantees).
///
/// Callbacks (state, events, statuses, publish outcomes) run on the client's
/// strand (a strand of the executor given), one at a time, never inside the
/// call that caused them. Set the handlers before `connect()` to see every
/// state.
///
/// Thread-safety: every member function may be called from any thread,
/// including from the client's own callbacks; each posts its work to the
/// strand. Destroy the client from any thread: the destructor closes the
/// connection (without waiting for the close handshake), waits for a callback
/// running on another thread to return, and no callback starts after it
/// returned.
///
/// Example:
/// ```
/// asio::io_context io;
/// sluice::ws_client client(io.get_executor(), "ws://127.0.0.1:8080/ws");
/// client.on_state([](const sluice::client_state& s) { log(sluice::to_string(s.kind)); });
/// auto sub = client.subscribe("prices:AAPL", [](const sluice::client_event& e) {
///     std::printf("%llu %.*s\n", (unsigned long long)e.offset, (int)e.data.size(), e.data.data());
/// });
/// client.publish("chat:1", R"({"text":"hi"})",
///                [](std::error_code ec, const sluice::stream_position& p) {
///                    // ec empty: published at p.offset
///                });
/// client.connect();
/// io.run();
/// ```
class ws_client {
public:
    /// A client of `url` (`ws://host[:port][/path][?query]` or `wss://…`; no
    /// path or `/` means `/ws`). Starts nothing: call `connect()`. Throws
    /// `std::invalid_argument` for a URL it cannot use or options out of range
    /// (backoff, breaker, outbox, zero timeouts).
    ws_client(asio::any_io_executor executor, std::string url, ws_client_options options = {});
    /// Closes (see the class comment).
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    /// The executor given at construction (not the strand).
    asio::any_io_executor get_executor() const noexcept;

    /// Starts connecting (state `connecting`), or starts again after `closed`
    /// (subscriptions kept, resumed with `since`). Does nothing while already
    /// connecting, connected or waiting to reconnect.
    void connect();

    /// Closes: sends close 1000, stops reconnecting, completes the publishes
    /// still in the outbox with `std::errc::operation_canceled`, then state
    /// `closed` with no error. Subscriptions stay registered (a later
    /// `connect()` resumes them); idempotent.
    void close();

    /// Subscribes to `topic` (an exact topic or a pattern, PROTOCOL.md 2):
    /// sent at once when connected, else on connection; re-sent after every
    /// reconnection. `on_event` gets each event once and in offset order per
    /// topic. A refusal goes to `options.on_status` and drops the subscription.
    /// Subscribing twice to the same string is refused locally with
    /// `errc::already_subscribed`.
    subscription subscribe(std::string topic, subscribe_options options,
                           client_event_handler on_event);
    /// `subscribe(topic, {}, on_event)`.
    subscription subscribe(std::string topic, client_event_handler on_event);

    /// Publishes `data_json` (any JSON text) to `topic` through the outbox:
    /// sent now when connected, else kept (bounded by `outbox` options) and
    /// sent in order after the next connection. A connection lost before the
    /// answer re-sends it with the same idempotency key, so it is published
    /// once. `on_done` (may be empty) is called exactly once.
    void publish(std::string topic, std::string data_json, client_publish_handler on_done = {},
                 client_publish_options options = {});

    /// Replaces the token used by the next attempts (e.g. after a fatal
    /// `errc::unauthorized`; then call `connect()`). The current connection is
    /// not refreshed.
    void set_token(std::string token);

    /// Sets the state handler (replacing the previous one).
    void on_state(client_state_handler handler);

    /// Drops the connection at once (no close frame) as if the network failed,
    /// and reconnects per the usual rules. For tests and for forcing a failover.
    void reset_connection();

    /// Internal.
    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace sluice
