// One connection to Redis through hiredis' asynchronous API, driven by the
// host's io_context (no thread, no event library).
//
// hiredis asks for readability/writability through its `ev` hooks; the
// adapter answers them with `async_wait` on a non-owning
// `asio::posix::stream_descriptor` over hiredis' socket, released (never
// closed) when hiredis cleans up, since hiredis closes the fd itself.
//
// A link connects (with a deadline), authenticates and selects the database,
// then runs commands whose replies come back in order; a command that gets no
// reply within `command_timeout` drops the link (every pending handler then
// gets a null reply). A pub/sub link subscribes once and hands every message
// to its message handler.
//
// Thread-safety: everything runs on the strand given at construction; call
// every member from it.
#pragma once

#include <sluice/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::detail::redis {

class asio_events;

class link : public std::enable_shared_from_this<link> {
public:
    using strand_type = asio::strand<asio::any_io_executor>;
    /// A reply, valid only during the call; null when the link failed (the
    /// call is then posted, never made inside hiredis).
    using reply_handler = std::function<void(const redisReply*)>;
    /// A pub/sub message: the channel and the payload (valid during the call).
    using message_handler = std::function<void(std::string_view, std::string_view)>;

    link(strand_type strand, const redis_options& options, std::string name);
    ~link();
    link(const link&) = delete;
    link& operator=(const link&) = delete;

    /// Connects, authenticates and selects the database; `done` runs once,
    /// posted, with an empty error when the link is ready.
    void connect(std::function<void(std::error_code, std::string)> done);
    /// Runs once, posted, when a ready link drops (not after `close()`).
    void on_closed(std::function<void(std::string)> handler) { on_closed_ = std::move(handler); }
    /// True between a successful `connect` and the end of the link.
    bool ready() const noexcept { return ready_; }
    /// Sends a command; false (and `handler` is not called) when not ready.
    bool command(const std::vector<std::string_view>& argv, reply_handler handler);
    /// SUBSCRIBEs to `channels`; every message goes to `handler`.
    bool subscribe(const std::vector<std::string>& channels, message_handler handler);
    /// Drops the connection. Pending handlers get a null reply (posted).
    void close();

    // Called by the adapter and hiredis trampolines.
    void handle_connect(int status);
    void handle_disconnect();
    void handle_message(const redisReply* reply);
    void reply_arrived();

private:
    bool send(const std::vector<std::string_view>& argv, reply_handler handler, bool track);
    void handshake();
    void fail(std::string reason);
    void arm_command_timer();

    strand_type strand_;
    const redis_options options_;
    const std::string name_;
    redisAsyncContext* ac_ = nullptr;
    std::shared_ptr<asio_events> events_;
    asio::steady_timer connect_timer_;
    asio::steady_timer command_timer_;
    bool command_timer_armed_ = false;
    std::deque<std::chrono::steady_clock::time_point> sent_;
    bool ready_ = false;
    bool closing_ = false;
    std::function<void(std::error_code, std::string)> connect_done_;
    std::function<void(std::string)> on_closed_;
    message_handler on_message_;
};

/// The text of a reply for logs (`ERR ...`, or the kind of reply).
std::string describe(const redisReply* reply);

}  // namespace sluice::detail::redis
