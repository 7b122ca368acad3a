// sluice/options.hpp: the options of the hub and the server, with the defaults
// of PROTOCOL.md (sections 3.3, 4 and 8).
//
// Plain structs: set the members you care about, keep the rest. Every duration
// is a std::chrono duration; fractions of a second work (`ping_interval =
// 500ms`). Values are checked when the hub or server is constructed (misuse
// throws std::invalid_argument there, never later).
//
// Thread-safety: plain data.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

/// What the hub keeps and how it answers (the protocol state, PROTOCOL.md 3.2).
struct hub_options {
    /// Events kept per topic for recovery (`--history`); 0 keeps none, while
    /// every topic's position is still kept.
    std::size_t history_size = 1000;
    /// How long events are kept (`--history-ttl`).
    std::chrono::milliseconds history_ttl = std::chrono::seconds(300);
    /// How long a topic's epoch and top offset are kept after its last publish.
    std::chrono::milliseconds position_ttl = std::chrono::hours(24);
    /// Global bound on the bytes of retained events, all topics together.
    std::size_t history_max_bytes = std::size_t{256} << 20;
    /// Global bound on the topics whose position is kept (least recently
    /// published evicted first).
    std::size_t max_topics = 1'000'000;
    /// The most events one recovery replays (`--replay-limit`); a longer gap
    /// is answered `recovered: false`.
    std::size_t replay_limit = 1000;
    /// How long a publish's `idempotency_key` is remembered per topic.
    std::chrono::milliseconds idempotency_ttl = std::chrono::seconds(300);
    /// Bound on remembered idempotency keys (oldest forgotten first).
    std::size_t idempotency_max_keys = 100'000;
};

/// Limits and behaviour of the transport (one listening port).
struct server_options {
    /// The largest inbound message: a WebSocket message after reassembly, or a
    /// `/publish` body (`--max-message-bytes`). Past it: close 1009 / HTTP 413.
    std::size_t max_message_bytes = std::size_t{1} << 20;
    /// Inbound messages per connection per `client_rate_window`
    /// (`--client-rate`): WebSocket messages, or HTTP requests on one
    /// keep-alive connection. Past it: `rate_limited` / HTTP 429.
    std::size_t client_rate = 100;
    /// The window `client_rate` is counted over.
    std::chrono::milliseconds client_rate_window = std::chrono::seconds(1);
    /// Refusals within one window after which the connection is closed 4429
    /// (1 to 1000).
    std::size_t rate_refusals_before_close = 10;
    /// Subscriptions per WebSocket connection; past it `too_many_subscriptions`.
    std::size_t max_subscriptions = 256;
    /// Topics per SSE stream; past it `400 too_many_subscriptions`.
    std::size_t max_sse_topics = 64;
    /// Bytes queued to one client before it is a slow consumer (`--max-queue-bytes`).
    std::size_t max_queue_bytes = std::size_t{4} << 20;
    /// The oldest queued frame's age before the client is a slow consumer
    /// (`--send-timeout`).
    std::chrono::milliseconds send_timeout = std::chrono::seconds(10);
    /// WebSocket ping interval and pong timeout (`--ping-interval`,
    /// `--pong-timeout`); past the timeout: close 4001.
    ///@{
    std::chrono::milliseconds ping_interval = std::chrono::seconds(25);
    std::chrono::milliseconds pong_timeout = std::chrono::seconds(10);
    ///@}
    /// SSE heartbeat (`--sse-heartbeat`): a `: ping` comment, or an id-only
    /// block when positions moved without anything sent.
    std::chrono::milliseconds sse_heartbeat = std::chrono::seconds(15);
    /// The range of the SSE `retry:` hint, chosen per connection at random.
    ///@{
    std::chrono::milliseconds sse_retry_min = std::chrono::seconds(1);
    std::chrono::milliseconds sse_retry_max = std::chrono::seconds(5);
    ///@}
    /// New WebSocket and SSE connections per client IP per window; past it
    /// HTTP 429 with Retry-After. Refused connections do not count.
    std::size_t handshake_rate = 50;
    /// The window `handshake_rate` is counted over.
    std::chrono::milliseconds handshake_window = std::chrono::seconds(10);
    /// Bound on the client IPs tracked by the handshake limiter.
    std::size_t max_tracked_ips = 100'000;
    /// Grace after a token's `exp` before close 4401 (`--token-grace`).
    std::chrono::milliseconds token_grace = std::chrono::seconds(25);
    /// The largest request head (request line and headers); past it 431.
    std::size_t max_head_bytes = 16384;
    /// Time from accept to a complete request head; also the keep-alive idle
    /// time between requests. Bytes trickling in do not extend it.
    std::chrono::milliseconds head_timeout = std::chrono::seconds(10);
    /// How long to wait for the peer's close frame after sending ours.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(2);
    /// On stop(), WebSocket closes (1001) are spread over this time (`--drain-seconds`).
    std::chrono::milliseconds drain = std::chrono::milliseconds(0);
    /// Origins allowed for CORS and WebSocket upgrades (`--allowed-origin`);
    /// empty: any origin (`Access-Control-Allow-Origin: *`).
    std::vector<std::string> allowed_origins;
    /// `Access-Control-Max-Age` of preflight answers.
    std::chrono::seconds cors_max_age = std::chrono::seconds(600);
    /// Serve files from this directory (`--static`); empty: no files.
    std::string static_dir;
};

}  // namespace sluice
