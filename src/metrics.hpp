// The server's counters and their Prometheus text exposition (format 0.0.4,
// PROTOCOL.md section 7).
//
// Thread-safety: every member is a relaxed atomic; update and render from any
// thread. Counters are monotonic; gauges are adjusted by +/- pairs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::detail {

/// Close codes that get their own `sluice_close_total{code}` series; any other
/// code is counted under "other".
inline constexpr std::array<std::uint16_t, 15> tracked_close_codes = {
    1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013, 4001, 4401, 4429, 4500};

/// Upper bounds of the publish-to-write histogram, in seconds (several below
/// 1 ms, as PROTOCOL.md asks).
inline constexpr std::array<double, 14> delivery_buckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0};

struct metrics {
    using counter = std::atomic<std::uint64_t>;
    using gauge = std::atomic<std::int64_t>;

    gauge ws_connections{0};
    gauge sse_connections{0};
    counter published{0};
    counter delivered{0};
    counter dropped_slow_consumer{0};
    counter dropped_closed{0};
    gauge send_queue_bytes{0};
    counter slow_consumer_disconnects{0};
    counter rate_limited{0};
    counter recovered{0};
    counter not_recovered{0};
    counter handshakes_refused{0};
    std::array<counter, tracked_close_codes.size() + 1> closes{};  // last: other
    std::atomic<bool> backplane_up{true};
    gauge history_topics{0};
    gauge history_events{0};
    gauge history_bytes{0};

    std::array<counter, delivery_buckets.size()> delivery_bucket_counts{};  // non-cumulative
    counter delivery_count{0};
    counter delivery_sum_ns{0};

    void count_close(std::uint16_t code) noexcept {
        for (std::size_t i = 0; i < tracked_close_codes.size(); ++i) {
            if (tracked_close_codes[i] == code) {
                closes[i].fetch_add(1, std::memory_order_relaxed);
                return;
            }
        }
        closes.back().fetch_add(1, std::memory_order_relaxed);
    }

    /// Records `count` deliveries that each took `latency` from publish to write.
    void observe_delivery(std::chrono::nanoseconds latency, std::uint64_t count = 1) noexcept {
        double seconds = std::chrono::duration<double>(latency).count();
        std::size_t i = 0;
        while (i < delivery_buckets.size() && seconds > delivery_buckets[i]) ++i;
        if (i < delivery_buckets.size())
            delivery_bucket_counts[i].fetch_add(count, std::memory_order_relaxed);
        delivery_count.fetch_add(count, std::memory_order_relaxed);
        auto ns = latency.count() > 0 ? static_cast<std::uint64_t>(latency.count()) : 0;
        delivery_sum_ns.fetch_add(ns * count, std::memory_order_relaxed);
    }

    /// The exposition text. `extra` is appended verbatim (history gauges the
    /// hub adds).
    std::string render(const std::string& extra = {}) const;
};

}  // namespace sluice::detail
