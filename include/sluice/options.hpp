// sluice/options.hpp: the options of the hub, of its Redis backplane and of
// the server, with the defaults of PROTOCOL.md (sections 3.3, 4, 8 and 9).
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
/// With a Redis backplane the retention settings apply to what Redis keeps:
/// `history_size` bounds each topic's stream, `history_ttl` is the stream's
/// TTL, `position_ttl` the TTL of the topic's epoch and top offset, and
/// `idempotency_ttl` that of the remembered keys (cluster-wide).
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

/// Where and how a hub joins a cluster through Redis (PROTOCOL.md section 9;
/// `sluice-hub --redis HOST:PORT`). Give it to the hub's constructor; hubs
/// with the same Redis (address, `database`, `key_prefix`) form one cluster:
/// a publish on any of them reaches the subscribers of all, every topic has
/// one sequence of offsets and one epoch, and a client may resume on any hub.
///
/// The hub keeps two connections to Redis (commands, and pub/sub) on the
/// executor it is given, and judges Redis up only when the probe it
/// publishes every `probe_interval` comes back through its own pub/sub
/// subscription within `probe_timeout`. While Redis is down, publishes fail
/// with `errc::unavailable` (HTTP 503); subscribers stay connected, and when
/// Redis returns the hub fills their gaps from the Redis streams.
///
///     sluice::redis_options redis;
///     redis.host = "10.0.0.5";
///     redis.port = 6379;
///     sluice::hub hub(io.get_executor(), policy, {}, redis);
///
/// Thread-safety: plain data.
struct redis_options {
    /// IP address or host name of the Redis server (a name is resolved by
    /// the system resolver, blocking, at each connection attempt).
    std::string host = "127.0.0.1";
    /// Its TCP port.
    std::uint16_t port = 6379;
    /// `AUTH` password; empty: no AUTH.
    std::string password;
    /// `AUTH` user name (Redis 6 ACLs), used only with a password; empty: the
    /// default user.
    std::string username;
    /// The database number (`SELECT`); every hub of a cluster must use the same.
    int database = 0;
    /// Prefix of every key and channel the hub uses (`sluice:`); clusters
    /// sharing one Redis database are told apart by it.
    std::string key_prefix = "sluice:";
    /// Time for a TCP connection to Redis to be established (and AUTH/SELECT
    /// answered).
    std::chrono::milliseconds connect_timeout = std::chrono::seconds(2);
    /// Time for Redis to answer one command; past it the connection is
    /// dropped and re-established.
    std::chrono::milliseconds command_timeout = std::chrono::seconds(2);
    /// How often the hub publishes a probe to itself through Redis.
    std::chrono::milliseconds probe_interval = std::chrono::seconds(1);
    /// Redis is down when no probe came back for this long (more than
    /// `probe_interval`).
    std::chrono::milliseconds probe_timeout = std::chrono::seconds(3);
    /// First delay before reconnecting after a failure (> 0); it doubles
    /// (with full jitter) up to `reconnect_max_delay`.
    std::chrono::milliseconds reconnect_initial_delay = std::chrono::milliseconds(100);
    /// The longest delay between two reconnection attempts.
    std::chrono::milliseconds reconnect_max_delay = std::chrono::seconds(2);
    /// Consecutive failed commands (errors, timeouts; >= 1) after which the command
    /// path's circuit breaker opens: publishes fail at once with
    /// `unavailable` for `breaker_open_duration`, then one trial is let through.
    std::size_t breaker_failures = 5;
    /// How long the breaker stays open after it trips.
    std::chrono::milliseconds breaker_open_duration = std::chrono::seconds(1);
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
