// Cost of sluice's sliding-window limiters per try_acquire, single-threaded.
//
// Time is synthetic and passed explicitly (`now` advances by a fixed step per
// call), at a rate that keeps the window full so that every call does real
// work: expiring old permits and counting or refusing a new one. The exact
// limiter is compared, at growing limits, with the naive O(limit) approach (a
// std::vector of timestamps filtered on every call) measured in the same run.
//
// Usage: limiter_bench [--quick]
#include "sluice/sliding_window_limiter.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

const clock_type::time_point base = clock_type::time_point{} + 1000h;

clock_type::time_point at(std::int64_t step_ns, std::size_t i) {
    return base + std::chrono::nanoseconds(step_ns * static_cast<std::int64_t>(i));
}

// The O(limit) sliding log: filter the whole array on every call.
class naive_limiter {
public:
    naive_limiter(std::size_t limit, std::chrono::nanoseconds window)
        : limit_(limit), window_(window) {}
    bool try_acquire(std::uint32_t /* always 1 */, clock_type::time_point now) {
        log_.erase(std::remove_if(log_.begin(), log_.end(),
                                  [&](clock_type::time_point t) { return now - t >= window_; }),
                   log_.end());
        if (log_.size() >= limit_) return false;
        log_.push_back(now);
        return true;
    }
    // Filling the window through try_acquire would cost O(limit^2).
    void prefill(clock_type::time_point t) { log_.push_back(t); }

private:
    std::size_t limit_;
    std::chrono::nanoseconds window_;
    std::vector<clock_type::time_point> log_;
};

template <class Limiter>
void prefill(Limiter& lim, clock_type::time_point t) {
    lim.try_acquire(1, t);
}
void prefill(naive_limiter& lim, clock_type::time_point t) { lim.prefill(t); }

// One permit leaves and one is counted per call: the window stays exactly full.
template <class Limiter>
double full_window(const sluice::bench::settings& s, Limiter& lim, std::uint32_t limit,
                   std::chrono::nanoseconds window) {
    const std::int64_t step = window.count() / limit;
    for (std::uint32_t j = 0; j < limit; ++j)
        prefill(lim, base - (limit - j) * std::chrono::nanoseconds(step));
    return sluice::bench::measure(s, [&](std::size_t i) {
        auto r = lim.try_acquire(1, at(step, i));
        sluice::bench::do_not_optimize(r);
    });
}

// Ten times the allowed rate: most calls are refused.
template <class Limiter>
double overloaded(const sluice::bench::settings& s, Limiter& lim, std::uint32_t limit,
                  std::chrono::nanoseconds window) {
    const std::int64_t step = std::max<std::int64_t>(1, window.count() / limit / 10);
    return sluice::bench::measure(s, [&](std::size_t i) {
        auto r = lim.try_acquire(1, at(step, i));
        sluice::bench::do_not_optimize(r);
    });
}

void single_limiters(const sluice::bench::settings& s) {
    std::printf("### One limiter\n\n");
    std::printf("| limiter | options | traffic | ns/try_acquire | heap bytes | sizeof |\n");
    std::printf("|---|---|---|---:|---:|---:|\n");
    {
        sluice::sliding_log_limiter lim({100, 1s});
        const double ns = full_window(s, lim, 100, 1s);
        std::printf("| exact (sliding log) | 100 / 1 s | window full | %.1f | %zu | %zu |\n", ns,
                    lim.memory_bytes(), sizeof(lim));
    }
    {
        sluice::sliding_log_limiter lim({100, 1s});
        const double ns = overloaded(s, lim, 100, 1s);
        std::printf(
            "| exact (sliding log) | 100 / 1 s | 10x over (mostly refused) | %.1f | %zu | %zu |\n",
            ns, lim.memory_bytes(), sizeof(lim));
    }
    {
        sluice::sliding_log_limiter lim({50, 10s});
        const double ns = full_window(s, lim, 50, 10s);
        std::printf("| exact (sliding log) | 50 / 10 s | window full | %.1f | %zu | %zu |\n", ns,
                    lim.memory_bytes(), sizeof(lim));
    }
    {
        sluice::sliding_counter_limiter lim({100, 1s});
        const double ns = full_window(s, lim, 100, 1s);
        std::printf("| approximate (counter) | 100 / 1 s | window full | %.1f | %zu | %zu |\n", ns,
                    lim.memory_bytes(), sizeof(lim));
    }
    {
        sluice::sliding_counter_limiter lim({100, 1s});
        const double ns = overloaded(s, lim, 100, 1s);
        std::printf(
            "| approximate (counter) | 100 / 1 s | 10x over (mostly refused) | %.1f | %zu | %zu "
            "|\n",
            ns, lim.memory_bytes(), sizeof(lim));
    }
    std::printf("\n");
}

std::vector<std::string> ip_strings(std::size_t count) {
    std::vector<std::string> ips;
    ips.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        ips.push_back("10." + std::to_string((i >> 16) & 255) + "." +
                      std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255));
    }
    return ips;
}

void keyed_limiters(const sluice::bench::settings& s) {
    std::printf("### Keyed limiter (exact per key, 50 / 10 s, max_keys 10,000)\n\n");
    std::printf("| keys | traffic | ns/try_acquire | keys held | evicted |\n");
    std::printf("|---|---|---:|---:|---:|\n");
    sluice::keyed_limiter_options options;  // 50 per 10 s
    options.max_keys = 10000;
    const std::size_t resident = 1000;
    // Each of the resident keys gets its 50 permits per 10 s: windows stay full.
    const std::int64_t hit_step = std::chrono::nanoseconds(10s).count() / (50 * resident);
    {
        sluice::keyed_limiter<std::uint64_t> keyed(options);
        const double ns = sluice::bench::measure(s, [&](std::size_t i) {
            auto r = keyed.try_acquire(i % resident, 1, at(hit_step, i));
            sluice::bench::do_not_optimize(r);
        });
        std::printf("| uint64, 1,000 resident | hit, windows full | %.1f | %zu | %llu |\n", ns,
                    keyed.size(), static_cast<unsigned long long>(keyed.stats().evicted()));
    }
    const auto ips = ip_strings(std::size_t{1} << 20);
    {
        sluice::keyed_limiter<std::string> keyed(options);
        const double ns = sluice::bench::measure(s, [&](std::size_t i) {
            auto r = keyed.try_acquire(ips[i % resident], 1, at(hit_step, i));
            sluice::bench::do_not_optimize(r);
        });
        std::printf("| IPv4 string, 1,000 resident | hit, windows full | %.1f | %zu | %llu |\n", ns,
                    keyed.size(), static_cast<unsigned long long>(keyed.stats().evicted()));
    }
    // A new key on every call, 1 us apart: the table is full of active keys and
    // every call evicts the least recently counted one and reuses its node.
    {
        sluice::keyed_limiter<std::uint64_t> keyed(options);
        const double ns = sluice::bench::measure(s, [&](std::size_t i) {
            auto r = keyed.try_acquire(i, 1, at(1000, i));
            sluice::bench::do_not_optimize(r);
        });
        std::printf(
            "| uint64, a new key per call | flood, evicting active keys | %.1f | %zu | %llu |\n",
            ns, keyed.size(), static_cast<unsigned long long>(keyed.stats().evicted()));
    }
    {
        sluice::keyed_limiter<std::string> keyed(options);
        const double ns = sluice::bench::measure(s, [&](std::size_t i) {
            auto r = keyed.try_acquire(ips[i % ips.size()], 1, at(1000, i));
            sluice::bench::do_not_optimize(r);
        });
        std::printf(
            "| IPv4 string, a new key per call | flood, evicting active keys | %.1f | %zu | %llu "
            "|\n",
            ns, keyed.size(), static_cast<unsigned long long>(keyed.stats().evicted()));
    }
    // New keys 2 ms apart: each is idle before it would be evicted (the table
    // drains by itself and allocates a node per key).
    {
        sluice::keyed_limiter<std::uint64_t> keyed(options);
        const double ns = sluice::bench::measure(s, [&](std::size_t i) {
            auto r = keyed.try_acquire(i, 1, at(2'000'000, i));
            sluice::bench::do_not_optimize(r);
        });
        std::printf("| uint64, a new key per call | keys going idle | %.1f | %zu | %llu |\n", ns,
                    keyed.size(), static_cast<unsigned long long>(keyed.stats().evicted()));
    }
    std::printf("\n");
}

void scaling(const sluice::bench::settings& s) {
    std::printf("### Exact limiter vs the naive vector filter, window full (1 s window)\n\n");
    std::printf("| limit | exact ns/call | naive ns/call | naive / exact | exact heap bytes |\n");
    std::printf("|---:|---:|---:|---:|---:|\n");
    double first = 0, last = 0;
    for (std::uint32_t limit : {10u, 100u, 1000u, 10000u, 100000u}) {
        sluice::sliding_log_limiter exact({limit, 1s});
        const double exact_ns = full_window(s, exact, limit, 1s);
        naive_limiter naive(limit, 1s);
        const double naive_ns = full_window(s, naive, limit, 1s);
        std::printf("| %u | %.1f | %.1f | %.1f | %zu |\n", limit, exact_ns, naive_ns,
                    naive_ns / exact_ns, exact.memory_bytes());
        if (first == 0) first = exact_ns;
        last = exact_ns;
    }
    std::printf("\nExact limiter, cost at limit 100,000 / cost at limit 10: %.2f\n\n",
                last / first);
}

}  // namespace

int main(int argc, char** argv) {
    const auto s = sluice::bench::parse_args(argc, argv);
    std::printf("## Sliding-window limiters%s\n\n", s.quick ? " (--quick)" : "");
    single_limiters(s);
    keyed_limiters(s);
    scaling(s);
    return 0;
}
