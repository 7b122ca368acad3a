// sluice/sse_client.hpp: a reconnecting Server-Sent Events client of the
// sluice wire protocol (PROTOCOL.md sections 4 and 6), for any conforming
// server.
//
// Defines `sluice::sse_client`.
//
// Guarantees: connects to `http://` or `https://` URLs (TLS through OpenSSL,
// certificate chain and host name verified by default, SNI sent) with
// `GET /events?topic=…`; on every connection loss, silent stream or end of
// stream it reconnects with exponential backoff and jitter (the server's
// `retry:` hint as the first delay) behind a circuit breaker, sending the
// server's resume token from the last `id:` line as `Last-Event-ID`, so every
// exact topic sees each event once, in offset order, and is told
// `recovered == false` when the server could not fill a gap (patterns resume
// live only, PROTOCOL.md 4). HTTP 401/403 and the 400 errors (`invalid_topic`,
// `invalid_filter`, `too_many_subscriptions`) are fatal: state `closed` with
// the error.
//
// No publish: an SSE stream carries nothing from client to server, and
// `POST /publish` (PROTOCOL.md 5) is a plain HTTP request that any HTTP client
// makes without a long-lived connection, a reconnection policy or resume
// state; an application that publishes and wants the offline outbox uses
// `ws_client`.
//
// The client owns no thread: it runs on the executor given at construction.
#pragma once

#include <sluice/client_options.hpp>

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace sluice {

/// A reconnecting SSE client (see the header comment for the guarantees).
///
/// One client is one stream: its topics are the active subscriptions. SSE
/// cannot change the topics of an open stream, so a `subscribe` or
/// `unsubscribe` while connected reopens the stream at once (no backoff),
/// resuming with the last token; subscribe before `connect()` to avoid it.
///
/// Callbacks run on the client's strand, one at a time, never inside the call
/// that caused them. Thread-safety: every member function may be called from
/// any thread; the destructor closes, waits for a callback running on another
/// thread to return, and no callback starts after it returned.
///
/// Example:
/// ```
/// asio::io_context io;
/// sluice::sse_client client(io.get_executor(), "http://127.0.0.1:8080/events");
/// client.subscribe("prices:AAPL", [](const sluice::client_event& e) { use(e.offset, e.data); });
/// client.connect();
/// io.run();
/// ```
class sse_client {
public:
    /// A client of `url` (`http://host[:port][/path][?query]` or `https://…`;
    /// no path or `/` means `/events`; the query is kept and the `topic`
    /// parameters are appended). Starts nothing: call `connect()`. Throws
    /// `std::invalid_argument` for a URL it cannot use or options out of range.
    sse_client(asio::any_io_executor executor, std::string url, sse_client_options options = {});
    /// Closes (see the class comment).
    ~sse_client();
    sse_client(const sse_client&) = delete;
    sse_client& operator=(const sse_client&) = delete;

    /// The executor given at construction (not the strand).
    asio::any_io_executor get_executor() const noexcept;

    /// Starts connecting, or starts again after `closed` (resuming with the
    /// last token). With no subscription it waits for the first one.
    void connect();

    /// Closes the stream, stops reconnecting, then state `closed` with no
    /// error. Subscriptions and the resume token are kept; idempotent.
    void close();

    /// Adds `topic` (exact or pattern) to the stream. `options.filter_json`
    /// must be empty (the filter is per stream: `sse_client_options::filter_json`;
    /// otherwise refused with `errc::invalid_filter`); `options.since` is
    /// ignored (the resume token covers the stream). A refusal goes to
    /// `options.on_status`. Subscribing twice to the same string is refused
    /// locally with `errc::already_subscribed`.
    subscription subscribe(std::string topic, subscribe_options options,
                           client_event_handler on_event);
    /// `subscribe(topic, {}, on_event)`.
    subscription subscribe(std::string topic, client_event_handler on_event);

    /// Replaces the token used by the next attempts.
    void set_token(std::string token);

    /// Sets the state handler (replacing the previous one).
    void on_state(client_state_handler handler);

    /// Drops the stream at once as if the network failed, and reconnects per
    /// the usual rules. For tests and for forcing a failover.
    void reset_connection();

    /// The resume token of the last `id:` line received (empty before any),
    /// sent as `Last-Event-ID` by the next attempt. Thread-safe (a copy).
    std::string last_event_id() const;

    /// Internal.
    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace sluice
