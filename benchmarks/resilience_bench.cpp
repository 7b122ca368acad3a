// resilience_bench: the cost of sluice::backoff::next() per jitter mode and of a
// circuit breaker decision (try_acquire() + record() while closed, and the
// refusal fast path while open), single-threaded.
//
// Two baselines measured in the same run make the figures comparable across
// machines: one raw std::minstd_rand draw and one steady_clock::now(). Run with
// --quick for the CI smoke run. Prints a Markdown table.
#include <sluice/backoff.hpp>
#include <sluice/circuit_breaker.hpp>

#include "bench.hpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct row {
    std::string name;
    double ns;
};

sluice::backoff_options backoff_with(sluice::jitter_mode mode) {
    auto o = sluice::backoff_options::grpc();
    o.jitter = mode;
    return o;
}

const char* mode_name(sluice::jitter_mode m) {
    switch (m) {
    case sluice::jitter_mode::none: return "none";
    case sluice::jitter_mode::full: return "full";
    case sluice::jitter_mode::equal: return "equal";
    case sluice::jitter_mode::decorrelated: return "decorrelated";
    case sluice::jitter_mode::proportional: return "proportional";
    }
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    const auto settings = sluice::bench::parse_args(argc, argv);
    using clock = std::chrono::steady_clock;
    std::vector<row> rows;

    {
        std::minstd_rand gen(1);
        rows.push_back(
            {"baseline: std::minstd_rand draw", sluice::bench::measure(settings, [&](std::size_t) {
                 sluice::bench::do_not_optimize(gen());
             })});
    }
    const double draw_ns = rows.back().ns;
    rows.push_back(
        {"baseline: steady_clock::now()", sluice::bench::measure(settings, [&](std::size_t) {
             sluice::bench::do_not_optimize(clock::now());
         })});
    const double now_ns = rows.back().ns;

    // backoff::next(), restarting every 16 delays so both the growing and the
    // capped phases are measured (the reset is included).
    for (auto mode :
         {sluice::jitter_mode::none, sluice::jitter_mode::full, sluice::jitter_mode::equal,
          sluice::jitter_mode::decorrelated, sluice::jitter_mode::proportional}) {
        sluice::backoff b(backoff_with(mode), std::minstd_rand(1));
        rows.push_back({std::string("backoff::next(), ") + mode_name(mode) + " jitter",
                        sluice::bench::measure(settings, [&](std::size_t i) {
                            if ((i & 15) == 0) b.reset();
                            sluice::bench::do_not_optimize(b.next());
                        })});
    }
    {
        sluice::basic_backoff<clock, std::mt19937_64> b(backoff_with(sluice::jitter_mode::full),
                                                        std::mt19937_64(1));
        rows.push_back({"backoff::next(), full jitter, std::mt19937_64",
                        sluice::bench::measure(settings, [&](std::size_t i) {
                            if ((i & 15) == 0) b.reset();
                            sluice::bench::do_not_optimize(b.next());
                        })});
    }

    // Breaker decisions with `now` passed in (the state machine alone), except
    // where the row says it reads the clock.
    const clock::time_point t0 = clock::now();
    auto closed_row = [&](const char* name, sluice::circuit_breaker_options o) {
        sluice::circuit_breaker b(o);
        rows.push_back({name, sluice::bench::measure(settings, [&](std::size_t i) {
                            const auto now = t0 + std::chrono::microseconds(i);
                            auto p = b.try_acquire(now);
                            // One failure in 8: never enough to trip.
                            b.record(p,
                                     (i & 7) == 0 ? sluice::call_outcome::failure
                                                  : sluice::call_outcome::success,
                                     1ms, now);
                        })});
    };
    {
        sluice::circuit_breaker_options o;
        closed_row("breaker try_acquire+record, closed, consecutive failures", o);
        o.mode = sluice::trip_mode::count_window;
        closed_row("breaker try_acquire+record, closed, count window (100)", o);
        o.mode = sluice::trip_mode::time_window;
        closed_row("breaker try_acquire+record, closed, time window (10 buckets)", o);
    }
    {
        sluice::circuit_breaker b;
        rows.push_back({"breaker try_acquire+record, closed, reading steady_clock",
                        sluice::bench::measure(settings, [&](std::size_t) {
                            auto p = b.try_acquire();
                            b.record(p, sluice::call_outcome::success, 1ms);
                        })});
    }
    {
        sluice::circuit_breaker_options o;
        o.consecutive_failures = 1;
        o.open_duration = 24h;
        sluice::circuit_breaker b(o);
        b.record(b.try_acquire(t0), sluice::call_outcome::failure, 0ms, t0);
        rows.push_back({"breaker try_acquire, open (refusal fast path)",
                        sluice::bench::measure(settings, [&](std::size_t i) {
                            auto p = b.try_acquire(t0 + std::chrono::microseconds(i));
                            sluice::bench::do_not_optimize(p);
                        })});
    }
    {
        sluice::keyed_circuit_breaker<int> set({}, 1024);
        rows.push_back({"keyed breaker try_acquire+record, 1000 int keys",
                        sluice::bench::measure(settings, [&](std::size_t i) {
                            const int key = static_cast<int>(i % 1000);
                            const auto now = t0 + std::chrono::microseconds(i);
                            auto p = set.try_acquire(key, now);
                            set.record(key, p, sluice::call_outcome::success, 1ms, now);
                        })});
    }

    std::printf("| operation | ns/op | x minstd draw | x steady_clock::now() |\n");
    std::printf("|---|---:|---:|---:|\n");
    for (const row& r : rows) {
        std::printf("| %s | %.1f | %.1f | %.2f |\n", r.name.c_str(), r.ns, r.ns / draw_ns,
                    r.ns / now_ns);
    }
    return 0;
}
