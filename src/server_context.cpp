#include "server_context.hpp"

#include "connection.hpp"
#include "hub_core.hpp"

namespace sluice::detail {

server_context::server_context(const server_options& o, std::shared_ptr<hub_core> h,
                               asio::any_io_executor ex)
    : options(o),
      hub(std::move(h)),
      stats(hub->stats()),
      timers(std::make_shared<timer_queue>(ex, std::chrono::milliseconds(10))),
      files(o.static_dir),
      ip_limiter_(keyed_limiter_options{
          sliding_window_options{static_cast<std::uint32_t>(o.handshake_rate), o.handshake_window},
          o.max_tracked_ips}) {}

std::chrono::milliseconds server_context::admit_connection(const std::string& ip) {
    std::lock_guard<std::mutex> lock(ip_mutex_);
    auto result = ip_limiter_.try_acquire(ip);
    if (result) return std::chrono::milliseconds(0);
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::ceil<std::chrono::milliseconds>(result.retry_after));
}

void server_context::add(const std::shared_ptr<connection>& c) {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    registry_[c->id()] = c;
}

void server_context::remove(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    registry_.erase(id);
}

std::vector<std::shared_ptr<connection>> server_context::snapshot() {
    std::vector<std::shared_ptr<connection>> out;
    std::lock_guard<std::mutex> lock(registry_mutex_);
    out.reserve(registry_.size());
    for (auto& [id, weak] : registry_) {
        if (auto c = weak.lock()) out.push_back(std::move(c));
    }
    return out;
}

}  // namespace sluice::detail
