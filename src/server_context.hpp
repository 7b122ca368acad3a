// State shared by one server's connections: options, the hub, the timer queue,
// static files, the per-IP handshake limiter and the live-connection registry.
//
// Thread-safety: immutable members after construction, except those guarded by
// their own mutex as noted.
#pragma once

#include "metrics.hpp"
#include "static_files.hpp"
#include "timer_queue.hpp"

#include <sluice/options.hpp>
#include <sluice/sliding_window_limiter.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sluice {
class hub;
}

namespace sluice::detail {

class connection;
class hub_core;

struct server_context {
    server_context(const server_options& o, std::shared_ptr<hub_core> h, asio::any_io_executor ex);

    const server_options options;
    const std::shared_ptr<hub_core> hub;
    metrics& stats;
    const std::shared_ptr<timer_queue> timers;
    const static_files files;

    /// Admits a new WebSocket or SSE connection from `ip` (counting it), or
    /// gives how long until one would be admitted.
    std::chrono::milliseconds admit_connection(const std::string& ip);

    /// Registry of open connections, for stop().
    void add(const std::shared_ptr<connection>& c);
    void remove(std::uint64_t id);
    std::vector<std::shared_ptr<connection>> snapshot();
    std::size_t open_streams() const noexcept { return streams.load(std::memory_order_relaxed); }

    std::atomic<bool> stopping{false};
    std::atomic<std::size_t> streams{0};
    std::atomic<std::uint64_t> next_id{1};

private:
    std::mutex ip_mutex_;
    keyed_limiter<std::string> ip_limiter_;
    std::mutex registry_mutex_;
    std::unordered_map<std::uint64_t, std::weak_ptr<connection>> registry_;
};

}  // namespace sluice::detail
