// One accepted TCP connection: HTTP/1.1 requests, then possibly a WebSocket
// session or an SSE stream (PROTOCOL.md sections 1, 3 and 4).
//
// Reading: the connection waits for readability and reads into a buffer
// shared by all connections of the thread, so an idle connection holds no read
// buffer. Writing: everything sent goes through one queue; the writer takes the
// whole queue at once and sends it with one gathered write. Events are not
// copied: a WebSocket event frame is [header][publication head][sub JSON]
// [publication tail], the last three shared by every subscriber.
//
// Thread-safety: socket work runs on the connection's strand. The `send_*` and
// `close` members are called by the hub from its strand and only touch the
// queue under `queue_mutex_`. `hub_side()` is touched only on the hub strand.
#pragma once

#include "http_request.hpp"
#include "server_context.hpp"
#include "sse_token.hpp"
#include "subscription_state.hpp"
#include "ws_codec.hpp"

#include <sluice/auth.hpp>
#include <sluice/publication.hpp>
#include <sluice/sliding_window_limiter.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/strand.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace sluice::detail {

/// The state of a connection that only the hub strand reads and writes.
struct hub_side_state {
    principal who;
    std::vector<subscription_ptr> subscriptions;
    bool attached = false;
    bool detached = false;  ///< the connection ended; attach nothing more
};

class connection final : public timed_target, public std::enable_shared_from_this<connection> {
public:
    enum class mode : std::uint8_t { http, websocket, sse };
    using clock = std::chrono::steady_clock;

    connection(std::shared_ptr<server_context> context, asio::ip::tcp::socket socket);
    ~connection() override;

    /// Starts reading the first request. Call once, from any thread.
    void start();

    std::uint64_t id() const noexcept { return id_; }
    mode transport() const noexcept { return mode_.load(std::memory_order_acquire); }
    const std::string& remote_ip() const noexcept { return remote_ip_; }

    // ---- From the hub strand -------------------------------------------------

    /// Queues a WebSocket text frame (a reply): ordered after everything queued
    /// before it.
    void send_text(std::string json);
    /// Queues an event for one subscription. `replay` events never count as
    /// slow consumption. `enqueued` is the publish time (for the delivery
    /// histogram and the send-age limit).
    void send_event(const publication_ptr& pub, const subscription_ptr& sub, bool replay,
                    clock::time_point enqueued);
    /// SSE: an event that moved a position but failed the filter.
    void send_position(const publication_ptr& pub, const subscription_ptr& sub);
    /// Queues bytes written as they are (HTTP responses, SSE stream head).
    void send_raw(std::string bytes);
    /// SSE: a pre-rendered block (`event: …\ndata: …\n\n`); the writer puts
    /// the stream's current `id:` line in front.
    void send_sse_block(std::string block);
    /// SSE: sets the stream's positions (before any block is queued).
    void set_sse_positions(std::vector<token_position> positions, std::string generation);
    /// Ends the connection after what is queued: WebSocket close frame with
    /// `code`; SSE and HTTP end the stream.
    void close(std::uint16_t code, std::string_view reason);
    /// HTTP: the response to the current request is queued; read the next one
    /// (keep-alive) or close after the write (`keep_alive == false`).
    void finish_request(bool keep_alive);
    /// WebSocket: the token now expires at `expires_at` (a refresh).
    void set_expiry(std::optional<std::chrono::system_clock::time_point> expires_at);

    hub_side_state& hub_side() noexcept { return hub_side_; }

    // ---- From the request router (on the connection strand) -------------------

    /// Switches to WebSocket after the 101 answer has been queued.
    void become_websocket(std::optional<std::chrono::system_clock::time_point> expires_at);
    /// Switches to an SSE stream; called by the hub before it queues the 200
    /// head (the switch is posted to the strand ahead of the first write).
    void activate_sse(std::optional<std::chrono::system_clock::time_point> expires_at);
    server_context& context() noexcept { return *context_; }
    /// Counts an inbound message against the per-connection limit; returns
    /// the retry-after when refused, and whether this refusal must close.
    struct rate_decision {
        bool allowed = true;
        std::chrono::milliseconds retry_after{0};
        bool close_after = false;
    };
    rate_decision count_inbound();
    /// A text message with the rate decision taken when it arrived.
    struct inbound_text {
        std::string text;
        rate_decision rate;
    };

    /// stop(): close a WebSocket with 1001 at `when`, end an SSE stream now.
    void drain_at(clock::time_point when);

    void wake() override;

private:
    enum class item_kind : std::uint8_t { event, position, text, raw, sse_block, heartbeat };
    struct item {
        item_kind kind;
        bool replay = false;
        publication_ptr pub;
        subscription_ptr sub;
        std::string bytes;
        clock::time_point enqueued{};
    };
    enum class close_stage : std::uint8_t { open, closing, close_sent, finished };

    // Strand-side.
    void become_sse(std::optional<std::chrono::system_clock::time_point> expires_at);
    void read_some();
    void on_readable(const std::error_code& ec);
    bool on_bytes(std::uint8_t* data, std::size_t size);
    bool on_http_bytes(const std::uint8_t* data, std::size_t size);
    bool process_http_buffer();
    bool on_ws_bytes(std::uint8_t* data, std::size_t size);
    void on_ws_message(ws_message&& message);
    void flush();
    /// Accounts a written batch (or fails the connection on `ec`); true when
    /// the writer may go on with the next batch.
    bool finish_batch(const std::error_code& ec);
    void finish_if_drained();
    void rearm();
    void abort();
    void terminate();
    void send_control(ws_opcode opcode, std::string payload);
    std::size_t wire_size(const item& i) const noexcept;
    void slow_consumer_locked();
    /// Posts one flush unless one is posted or a write is running (queue lock held).
    void schedule_flush_locked();
    void append_buffers_ws();
    void append_buffers_sse();
    /// Drops the first `bytes` of buffers_ (a partial write).
    void consume_written(std::size_t bytes);
    static bool is_close_frame(const std::string& frame) noexcept;
    void gather(std::string_view bytes);
    void extend_scratch_segment();
    void finish_gather();
    void append_sse_id(std::string_view after);

    const std::shared_ptr<server_context> context_;
    const std::uint64_t id_;
    asio::strand<asio::any_io_executor> strand_;
    asio::ip::tcp::socket socket_;
    std::string remote_ip_;
    std::atomic<mode> mode_{mode::http};

    // HTTP state (strand).
    std::string http_buffer_;
    std::optional<http_request_parser> parser_;
    std::optional<body_reader> body_;
    std::string body_bytes_;
    bool request_in_progress_ = false;
    bool reading_ = false;
    bool read_paused_ = false;

    // WebSocket state (strand).
    std::unique_ptr<ws_decoder> decoder_;
    sliding_log_limiter limiter_;
    std::optional<sliding_log_limiter> refusals_;  // none: the first refusal closes
    std::vector<inbound_text> inbox_;              // text messages of the current read

    // Deadlines (strand); time_point{} means none.
    clock::time_point head_deadline_{};
    clock::time_point ping_due_{};
    clock::time_point pong_deadline_{};
    clock::time_point age_deadline_{};
    clock::time_point close_deadline_{};
    clock::time_point heartbeat_due_{};
    clock::time_point drain_close_at_{};
    clock::time_point armed_for_{};
    std::atomic<std::int64_t> expires_at_ms_{0};  // system clock ms; 0: never

    // The queue (guarded by queue_mutex_).
    std::mutex queue_mutex_;
    std::vector<item> pending_;
    std::vector<std::string> control_;  // complete control frames, sent first
    std::size_t pending_bytes_ = 0;
    std::size_t inflight_bytes_ = 0;
    clock::time_point oldest_pending_{};
    clock::time_point oldest_inflight_{};
    bool flush_posted_ = false;
    bool writing_ = false;
    close_stage close_stage_ = close_stage::open;
    bool finish_after_drain_ = false;  // HTTP/SSE: close TCP after the queue drains
    bool slow_ = false;
    std::uint16_t close_code_ = 0;

    // The writer (strand).
    std::vector<item> batch_;
    std::vector<std::string> batch_control_;
    std::vector<asio::const_buffer> buffers_;
    // One write, gathered: bytes copied into scratch_, and segments that are
    // either a range of scratch_ or (external) large shared bytes.
    struct segment {
        const char* external;
        std::size_t offset;
        std::size_t length;
    };
    std::string scratch_;
    std::size_t scratch_used_ = 0;
    std::vector<segment> segments_;
    std::vector<token_position> sse_positions_;
    std::string sse_generation_;
    bool moved_without_send_ = false;

    hub_side_state hub_side_;
    bool terminated_ = false;
    bool peer_closed_ = false;
};

}  // namespace sluice::detail
