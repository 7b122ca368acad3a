#include "sluice/sliding_window_limiter.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "manual_clock.hpp"

namespace {

using sluice::acquire_status;
using sluice::sliding_window_options;
using clk = sluice::test::manual_clock;
using log_limiter = sluice::basic_sliding_log_limiter<clk>;
using counter_limiter = sluice::basic_sliding_counter_limiter<clk>;
using namespace std::chrono_literals;

std::int64_t ticks(clk::time_point t) { return t.time_since_epoch().count(); }

// Raw generator output only (no std::uniform_*_distribution), so a seed gives
// the same sequence with every standard library.
struct draw {
    std::mt19937_64 gen;
    explicit draw(std::uint64_t seed) : gen(seed) {}
    std::uint64_t below(std::uint64_t bound) { return gen() % bound; }
};

// The next clock step: mostly small steps that keep the window full, and now
// and then steps landing exactly on window boundaries or far beyond them.
std::int64_t next_step(draw& d, std::int64_t window, std::uint32_t limit) {
    const std::int64_t per_permit = std::max<std::int64_t>(1, window / limit);
    switch (d.below(16)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return window;
    case 3: return window - 1;
    case 4: return window / 2;
    case 5: return static_cast<std::int64_t>(d.below(4 * static_cast<std::uint64_t>(window)));
    case 6:
        if (d.below(8) == 0)
            return (std::int64_t{1} << 32) + static_cast<std::int64_t>(d.below(3)) - 1;
        return per_permit;
    default:
        return static_cast<std::int64_t>(d.below(2 * static_cast<std::uint64_t>(per_permit) + 1));
    }
}

std::uint32_t next_n(draw& d, std::uint32_t limit) {
    if (d.below(5) != 0) return 1;
    return static_cast<std::uint32_t>(d.below(std::uint64_t{limit} + 2));  // 0 .. limit + 1
}

// The brute-force sliding log: the ticks of every counted permit.
struct log_model {
    std::int64_t window;
    std::uint32_t limit;
    std::vector<std::int64_t> counted;

    std::vector<std::int64_t> in_window(std::int64_t now) const {
        std::vector<std::int64_t> in;
        for (std::int64_t t : counted)
            if (now - t < window) in.push_back(t);
        return in;
    }
};

void check_log_against_model(std::uint32_t limit, std::chrono::nanoseconds window,
                             std::uint64_t seed, int steps) {
    clk::reset();
    log_limiter lim({limit, window});
    log_model model{window.count(), limit, {}};
    draw d(seed);
    int allowed = 0, refused = 0;
    for (int step = 0; step < steps; ++step) {
        clk::advance(clk::duration(next_step(d, model.window, limit)));
        const std::int64_t now = ticks(clk::now());
        const std::uint32_t n = next_n(d, limit);
        const auto in = model.in_window(now);
        const auto r = lim.try_acquire(n, clk::now());
        INFO("seed " << seed << " step " << step << " n " << n << " counted " << in.size());
        if (n > limit) {
            REQUIRE(r.status == acquire_status::exceeds_limit);
            REQUIRE(r.retry_after == std::chrono::nanoseconds::max());
        } else if (in.size() + n <= limit) {
            REQUIRE(r.status == acquire_status::allowed);
            REQUIRE(r.retry_after == 0ns);
            model.counted.insert(model.counted.end(), n, now);
            ++allowed;
        } else {
            REQUIRE(r.status == acquire_status::refused);
            const std::size_t must_leave = in.size() + n - limit;
            REQUIRE(r.retry_after.count() == in[must_leave - 1] + model.window - now);
            ++refused;
        }
        REQUIRE(lim.count(clk::now()) == model.in_window(now).size());
        REQUIRE(lim.idle(clk::now()) == model.in_window(now).empty());
        // Keep the model small; it only ever looks one window back.
        if (model.counted.size() > 4 * std::size_t{limit} + 64)
            model.counted = model.in_window(now);
    }
    // The scenario exercised both outcomes.
    CHECK(allowed > steps / 20);
    CHECK(refused > steps / 20);
}

// The definition of the sliding-window counter over the brute-force permit
// list, with exact integer arithmetic (windows below 2^32 ticks).
struct counter_model {
    std::int64_t window;
    std::uint32_t limit;
    std::vector<std::int64_t> counted;

    std::int64_t start(std::int64_t now) const { return now - now % window; }
    std::uint64_t in_range(std::int64_t from, std::int64_t to) const {  // [from, to)
        std::uint64_t c = 0;
        for (std::int64_t t : counted)
            if (t >= from && t < to) ++c;
        return c;
    }
    bool allows(std::int64_t now, std::uint32_t n) const {
        const std::int64_t s = start(now), e = now - s;
        const std::uint64_t curr = in_range(s, s + window), prev = in_range(s - window, s);
        if (n > limit || curr + n > limit) return false;
        return prev * static_cast<std::uint64_t>(window - e) <=
               (limit - curr - n) * static_cast<std::uint64_t>(window);
    }
};

void check_counter_against_model(std::uint32_t limit, std::chrono::nanoseconds window,
                                 std::uint64_t seed, int steps) {
    clk::reset();
    counter_limiter lim({limit, window});
    counter_model model{window.count(), limit, {}};
    draw d(seed);
    int allowed = 0, refused = 0, over = 0;
    for (int step = 0; step < steps; ++step) {
        clk::advance(clk::duration(next_step(d, model.window, limit)));
        const std::int64_t now = ticks(clk::now());
        const std::uint32_t n = next_n(d, limit);
        const counter_limiter before = lim;
        const auto r = lim.try_acquire(n, clk::now());
        INFO("seed " << seed << " step " << step << " n " << n);
        if (n > limit) {
            REQUIRE(r.status == acquire_status::exceeds_limit);
            continue;
        }
        REQUIRE(r.allowed() == model.allows(now, n));
        if (r.allowed()) {
            ++allowed;
            model.counted.insert(model.counted.end(), n, now);
            // The documented bound, for the window ending at this permit.
            const std::int64_t s = model.start(now), e = now - s;
            const std::uint64_t prev = model.in_range(s - model.window, s);
            const std::uint64_t sliding = model.in_range(now - model.window + 1, now + 1);
            const std::uint64_t bound = limit + prev * static_cast<std::uint64_t>(e) /
                                                    static_cast<std::uint64_t>(model.window);
            REQUIRE(sliding <= bound);
            REQUIRE(sliding <= 2 * std::uint64_t{limit} - 1);
            REQUIRE(model.in_range(s, s + model.window) <= limit);
            if (sliding > limit) ++over;
        } else {
            ++refused;
            REQUIRE(r.status == acquire_status::refused);
            REQUIRE(r.retry_after > 0ns);
            // retry_after is exact: refused one tick earlier, allowed then.
            counter_limiter early = before, on_time = before;
            REQUIRE_FALSE(early.try_acquire(n, clk::now() + r.retry_after - 1ns));
            REQUIRE(on_time.try_acquire(n, clk::now() + r.retry_after));
        }
        if (model.counted.size() > 8 * std::size_t{limit} + 64) {
            const std::int64_t keep_from = model.start(now) - model.window;
            model.counted.erase(std::remove_if(model.counted.begin(), model.counted.end(),
                                               [&](std::int64_t t) { return t < keep_from; }),
                                model.counted.end());
        }
    }
    CHECK(allowed > steps / 20);
    CHECK(refused > steps / 20);
    if (limit > 1) CHECK(over > 0);  // the approximation did overshoot: the bound matters
}

}  // namespace

TEST_CASE("exact limiter matches the brute-force sliding log", "[limiter][property]") {
    struct scenario {
        std::uint32_t limit;
        std::chrono::nanoseconds window;
    };
    const scenario scenarios[] = {
        {1, 10ns},
        {2, 7ns},
        {3, 100ns},
        {10, 1us},
        {100, 1s},
        {7, 10s},                                              // 10 s: wide (8-byte) entries
        {5, std::chrono::nanoseconds(std::int64_t{1} << 31)},  // the largest compact window
        {5, std::chrono::nanoseconds((std::int64_t{1} << 31) + 1)},
    };
    std::uint64_t seed = 1;
    for (const auto& s : scenarios) {
        for (int run = 0; run < 3; ++run) check_log_against_model(s.limit, s.window, seed++, 3000);
    }
}

TEST_CASE("exact limiter picks the compact ring for windows up to 2^31 ticks", "[limiter]") {
    CHECK(log_limiter({100, 1s}).compact());
    CHECK(log_limiter({100, 1s}).memory_bytes() == 400);
    CHECK(log_limiter({5, std::chrono::nanoseconds(std::int64_t{1} << 31)}).compact());
    CHECK_FALSE(log_limiter({5, std::chrono::nanoseconds((std::int64_t{1} << 31) + 1)}).compact());
    CHECK(log_limiter({50, 10s}).memory_bytes() == 400);
    CHECK(log_limiter({100000, 1s}).memory_bytes() == 400000);
    CHECK(sizeof(log_limiter) <= 56);
    CHECK(counter_limiter({100, 1s}).memory_bytes() == 0);
    CHECK(sizeof(counter_limiter) <= 32);
}

TEST_CASE("exact limiter: the window boundary and limit 1", "[limiter]") {
    clk::reset();
    log_limiter lim({1, 10s});
    const auto t0 = clk::now();
    REQUIRE(lim.try_acquire(1, t0));
    auto r = lim.try_acquire(1, t0 + 10s - 1ns);
    REQUIRE(r.status == acquire_status::refused);
    CHECK(r.retry_after == 1ns);
    CHECK(r.error() == sluice::errc::rate_limited);
    r = lim.try_acquire(1, t0);
    CHECK(r.retry_after == 10s);
    // A permit counted at t leaves exactly at t + window.
    CHECK(lim.count(t0 + 10s) == 0);
    CHECK(lim.idle(t0 + 10s));
    r = lim.try_acquire(1, t0 + 10s);
    REQUIRE(r);
    CHECK(r.error() == std::error_code{});
}

TEST_CASE("exact limiter: refused requests are not counted", "[limiter]") {
    clk::reset();
    log_limiter lim({3, 1s});
    const auto t0 = clk::now();
    REQUIRE(lim.try_acquire(1, t0));
    REQUIRE(lim.try_acquire(1, t0 + 100ms));
    REQUIRE(lim.try_acquire(1, t0 + 200ms));
    // Hammer it while full: none of these may extend the window.
    for (int i = 0; i < 1000; ++i) {
        const auto r = lim.try_acquire(1, t0 + 300ms + std::chrono::microseconds(i));
        REQUIRE_FALSE(r);
        REQUIRE(r.retry_after == t0 + 1s - (t0 + 300ms + std::chrono::microseconds(i)));
    }
    CHECK(lim.count(t0 + 999ms) == 3);
    // The oldest leaves at t0 + 1 s, and exactly one slot opens.
    REQUIRE(lim.try_acquire(1, t0 + 1s));
    const auto r = lim.try_acquire(1, t0 + 1s);
    REQUIRE_FALSE(r);
    CHECK(r.retry_after == 100ms);
}

TEST_CASE("exact limiter: n > 1 waits until enough permits leave", "[limiter]") {
    clk::reset();
    log_limiter lim({5, 1s});
    const auto t0 = clk::now();
    for (int i = 0; i < 5; ++i) REQUIRE(lim.try_acquire(1, t0 + i * 100ms));
    auto r = lim.try_acquire(3, t0 + 500ms);
    REQUIRE(r.status == acquire_status::refused);
    CHECK(r.retry_after == 700ms);  // the third oldest (t0 + 200 ms) leaves at t0 + 1.2 s
    REQUIRE_FALSE(lim.try_acquire(3, t0 + 1200ms - 1ns));
    REQUIRE(lim.try_acquire(3, t0 + 1200ms));
    CHECK(lim.count(t0 + 1200ms) == 5);
    r = lim.try_acquire(5, t0 + 1200ms);
    CHECK(r.retry_after == 1s);  // all five, the newest counted at t0 + 1.2 s
}

TEST_CASE("limiters: n > limit is refused forever, n == 0 is free", "[limiter]") {
    clk::reset();
    log_limiter exact({4, 1s});
    counter_limiter approx({4, 1s});
    for (int i = 0; i < 3; ++i) {
        const auto a = exact.try_acquire(5, clk::now());
        const auto b = approx.try_acquire(5, clk::now());
        CHECK(a.status == acquire_status::exceeds_limit);
        CHECK(b.status == acquire_status::exceeds_limit);
        CHECK(a.retry_after == std::chrono::nanoseconds::max());
        CHECK(b.retry_after == std::chrono::nanoseconds::max());
        CHECK(a.error() == sluice::errc::rate_limited);
        clk::advance(1h);
    }
    CHECK(exact.idle(clk::now()));
    CHECK(approx.idle(clk::now()));
    CHECK(exact.try_acquire(0, clk::now()));
    CHECK(approx.try_acquire(0, clk::now()));
    CHECK(exact.idle(clk::now()));
    CHECK(approx.idle(clk::now()));
    CHECK(exact.try_acquire(4, clk::now()));
    CHECK(approx.try_acquire(4, clk::now()));
    CHECK(exact.try_acquire(0, clk::now()));
    CHECK_FALSE(exact.try_acquire(1, clk::now()));
    CHECK_FALSE(approx.try_acquire(1, clk::now()));
}

TEST_CASE("limiters: invalid options are rejected at construction", "[limiter]") {
    CHECK_THROWS_AS(log_limiter({0, 1s}), std::invalid_argument);
    CHECK_THROWS_AS(log_limiter({1, 0s}), std::invalid_argument);
    CHECK_THROWS_AS(log_limiter({1, -1s}), std::invalid_argument);
    CHECK_THROWS_AS(log_limiter({sluice::max_log_limit + 1, 1s}), std::invalid_argument);
    CHECK_THROWS_AS(counter_limiter({0, 1s}), std::invalid_argument);
    CHECK_THROWS_AS(counter_limiter({1, 0ns}), std::invalid_argument);
    CHECK_THROWS_AS(counter_limiter({1, std::chrono::nanoseconds::max()}), std::invalid_argument);
    CHECK_NOTHROW(counter_limiter({std::numeric_limits<std::uint32_t>::max(), 1s}));
    sluice::keyed_limiter_options k;
    k.max_keys = 0;
    CHECK_THROWS_AS((sluice::basic_keyed_limiter<log_limiter, int>(k)), std::invalid_argument);
    k.max_keys = 1;
    k.per_key.limit = 0;
    CHECK_THROWS_AS((sluice::basic_keyed_limiter<log_limiter, int>(k)), std::invalid_argument);
}

TEST_CASE("limiters: defaults follow PROTOCOL.md 3.3", "[limiter]") {
    const sliding_window_options per_connection;
    CHECK(per_connection.limit == 100);
    CHECK(per_connection.window == 1s);
    const sluice::keyed_limiter_options per_ip;
    CHECK(per_ip.per_key.limit == 50);
    CHECK(per_ip.per_key.window == 10s);
    const sluice::sliding_log_limiter real_clock;
    CHECK(real_clock.limit() == 100);
    CHECK(real_clock.window() == 1s);
}

namespace {
// A clock coarser than the options' nanoseconds.
struct millisecond_clock {
    using rep = std::int64_t;
    using period = std::milli;
    using duration = std::chrono::milliseconds;
    using time_point = std::chrono::time_point<millisecond_clock>;
    [[maybe_unused]] static constexpr bool is_steady = true;
    static time_point now() noexcept { return time_point(duration(1000)); }
};
}  // namespace

TEST_CASE("limiters: the window is rounded up to the clock's tick", "[limiter]") {
    sluice::basic_sliding_log_limiter<millisecond_clock> exact({1, 1500us});
    CHECK(exact.window() == 2ms);
    const auto t0 = millisecond_clock::now();
    REQUIRE(exact.try_acquire(1, t0));
    const auto r = exact.try_acquire(1, t0 + 1ms);
    CHECK(r.retry_after == 1ms);
    CHECK(exact.try_acquire(1, t0 + 2ms));
    sluice::basic_sliding_counter_limiter<millisecond_clock> approx({1, 1500us});
    CHECK(approx.window() == 2ms);
}

TEST_CASE("exact limiter: time going backwards is clamped", "[limiter]") {
    clk::reset();
    log_limiter lim({2, 1s});
    const auto t0 = clk::now();
    REQUIRE(lim.try_acquire(1, t0));
    REQUIRE(lim.try_acquire(1, t0 - 5s));  // counted as at t0
    const auto r = lim.try_acquire(1, t0 - 10s);
    REQUIRE_FALSE(r);
    CHECK(r.retry_after == 1s);
    CHECK(lim.try_acquire(1, t0 + 1s));
}

TEST_CASE("exact limiter: a compact ring survives long idle gaps", "[limiter]") {
    // Idle gaps around multiples of 2^32 ticks would alias 32-bit offsets if the
    // ring were not cleared once its newest entry is a window old.
    clk::reset();
    log_limiter lim({3, 1s});
    REQUIRE(lim.compact());
    const std::int64_t wrap = std::int64_t{1} << 32;
    for (std::int64_t gap : {wrap, wrap - 1, wrap + 1, 2 * wrap, wrap - 500'000'000}) {
        for (int i = 0; i < 3; ++i) REQUIRE(lim.try_acquire(1, clk::now()));
        REQUIRE_FALSE(lim.try_acquire(1, clk::now()));
        clk::advance(clk::duration(gap));
        CHECK(lim.count(clk::now()) == 0);
        CHECK(lim.try_acquire(3, clk::now()));
        clk::advance(2s);
    }
}

TEST_CASE("exact limiter: a limit of 100,000 stays exact", "[limiter]") {
    clk::reset();
    log_limiter lim({100000, 1s});
    const auto t0 = clk::now();
    for (int i = 0; i < 100000; ++i) REQUIRE(lim.try_acquire(1, t0 + i * 10us));
    const auto r = lim.try_acquire(1, t0 + 1s - 1ns);
    REQUIRE_FALSE(r);
    CHECK(r.retry_after == 1ns);
    // At t0 + 1.05 s - 1 ns the permits of t0 + 50 ms .. t0 + 999.99 ms remain.
    const auto later = t0 + 1s + 50ms - 1ns;
    CHECK(lim.count(later) == 95000);
    CHECK_FALSE(lim.try_acquire(5001, later));
    CHECK(lim.try_acquire(5000, later));
    CHECK_FALSE(lim.try_acquire(1, later));
}

TEST_CASE("exact limiter: copies are independent", "[limiter]") {
    clk::reset();
    log_limiter a({2, 1s});
    REQUIRE(a.try_acquire(1, clk::now()));
    log_limiter b = a;
    REQUIRE(b.try_acquire(1, clk::now()));
    CHECK(a.count(clk::now()) == 1);
    CHECK(b.count(clk::now()) == 2);
    b.reset();
    CHECK(b.idle(clk::now()));
    CHECK(b.try_acquire(2, clk::now()));
}

TEST_CASE("approximate limiter matches its definition and stays within its bound",
          "[limiter][property]") {
    struct scenario {
        std::uint32_t limit;
        std::chrono::nanoseconds window;
    };
    const scenario scenarios[] = {{1, 10ns}, {2, 7ns}, {3, 100ns}, {10, 1us},
                                  {100, 1s}, {50, 4s}, {9, 1000ns}};
    std::uint64_t seed = 1000;
    for (const auto& s : scenarios) {
        for (int run = 0; run < 2; ++run)
            check_counter_against_model(s.limit, s.window, seed++, 2500);
    }
}

TEST_CASE("approximate limiter: the overshoot can reach 2 * limit - 1 and no more", "[limiter]") {
    // The worst case: the previous window fills at its very end, then the current
    // window is drained by steady traffic.
    clk::reset();
    const std::uint32_t limit = 10;
    const auto window = 1000ns;
    counter_limiter lim({limit, window});
    const std::int64_t now = ticks(clk::now());
    const auto start = clk::time_point(clk::duration(now - now % window.count()));
    const auto prev_end = start + window - 1ns;
    REQUIRE(lim.try_acquire(limit, prev_end));
    std::vector<clk::time_point> allowed(limit, prev_end);
    for (auto t = start + window; t < start + 2 * window; t += 1ns) {
        if (lim.try_acquire(1, t)) allowed.push_back(t);
    }
    std::size_t worst = 0;
    for (auto end : allowed) {
        const auto in = std::count_if(allowed.begin(), allowed.end(), [&](clk::time_point t) {
            return t <= end && end - t < window;
        });
        worst = std::max(worst, static_cast<std::size_t>(in));
    }
    CHECK(worst == 2 * limit - 1);
}

TEST_CASE("approximate limiter: retry_after is exact for long windows too", "[limiter]") {
    // 10 s is over 2^32 ns: the offset is measured in coarser steps.
    clk::reset();
    counter_limiter lim({50, 10s});
    draw d(77);
    int refused = 0;
    for (int step = 0; step < 3000; ++step) {
        clk::advance(clk::duration(static_cast<std::int64_t>(d.below(400'000'000))));
        const auto n = static_cast<std::uint32_t>(1 + d.below(3));
        const counter_limiter before = lim;
        const auto r = lim.try_acquire(n, clk::now());
        if (r) continue;
        ++refused;
        counter_limiter early = before, on_time = before;
        REQUIRE_FALSE(early.try_acquire(n, clk::now() + r.retry_after - 1ns));
        REQUIRE(on_time.try_acquire(n, clk::now() + r.retry_after));
    }
    CHECK(refused > 100);
}

TEST_CASE("approximate limiter: idle and reset", "[limiter]") {
    clk::reset();
    counter_limiter lim({2, 1s});
    const std::int64_t now = ticks(clk::now());
    const auto start = clk::time_point(clk::duration(now - now % 1'000'000'000));
    CHECK(lim.idle(start));
    REQUIRE(lim.try_acquire(1, start + 500ms));
    CHECK_FALSE(lim.idle(start + 500ms));
    CHECK_FALSE(lim.idle(start + 1s));  // still weighs in the next window
    CHECK_FALSE(lim.idle(start + 2s - 1ns));
    CHECK(lim.idle(start + 2s));
    lim.reset();
    CHECK(lim.idle(start + 500ms));
    CHECK(lim.try_acquire(2, start + 500ms));
}

// ---------------------------------------------------------------- keyed

namespace {
using keyed_log = sluice::basic_keyed_limiter<log_limiter, std::uint64_t>;

sluice::keyed_limiter_options keyed_options(std::uint32_t limit, std::chrono::nanoseconds window,
                                            std::size_t max_keys) {
    sluice::keyed_limiter_options o;
    o.per_key = {limit, window};
    o.max_keys = max_keys;
    return o;
}
}  // namespace

TEST_CASE("keyed limiter: behaves as one limiter per key while keys fit",
          "[keyed_limiter][property]") {
    clk::reset();
    keyed_log keyed(keyed_options(3, 1ms, 64));
    std::map<std::uint64_t, log_limiter> model;
    draw d(5);
    for (int step = 0; step < 20000; ++step) {
        const std::uint64_t step_ns = d.below(8) == 0 ? d.below(2'000'000) : d.below(20'000);
        clk::advance(clk::duration(static_cast<std::int64_t>(step_ns)));
        const std::uint64_t key = d.below(40);
        const auto n = static_cast<std::uint32_t>(d.below(5));
        auto it = model.try_emplace(key, sliding_window_options{3, 1ms}).first;
        const auto expected = it->second.try_acquire(n, clk::now());
        const auto got = keyed.try_acquire(key, n, clk::now());
        REQUIRE(got.status == expected.status);
        REQUIRE(got.retry_after == expected.retry_after);
        REQUIRE(keyed.size() <= 40);
    }
    CHECK(keyed.stats().evicted_active == 0);
    CHECK(keyed.stats().evicted_idle > 0);  // idle keys drained as the clock moved
}

TEST_CASE("keyed limiter: a million distinct keys stay within max_keys", "[keyed_limiter]") {
    clk::reset();
    keyed_log keyed(keyed_options(2, 1s, 1000));
    const std::size_t buckets = keyed.bucket_count();
    REQUIRE(buckets >= 1000);
    const std::uint64_t keys = 1'000'000;
    for (std::uint64_t k = 0; k < keys; ++k) {
        clk::advance(1us);  // every key stays active for the whole run of 1000
        REQUIRE(keyed.try_acquire(k, 1, clk::now()));
        REQUIRE(keyed.size() <= keyed.max_keys());
    }
    CHECK(keyed.size() == 1000);
    CHECK(keyed.bucket_count() == buckets);
    CHECK(keyed.stats().keys_created == keys);
    CHECK(keyed.stats().evicted_active == keys - 1000);
    CHECK(keyed.stats().evicted_idle == 0);
    CHECK(keyed.stats().evicted() == keys - 1000);
    // The most recent keys are the ones kept, with their state.
    REQUIRE(keyed.find(keys - 1) != nullptr);
    CHECK(keyed.find(keys - 1)->count(clk::now()) == 1);
    CHECK(keyed.find(keys - 1001) == nullptr);
    // Once the window has passed everything is idle and drains.
    clk::advance(1s);
    CHECK(keyed.evict_idle(clk::now()) == 1000);
    CHECK(keyed.empty());
    CHECK(keyed.stats().evicted_idle == 1000);
}

TEST_CASE("keyed limiter: string keys under a flood of distinct IPs", "[keyed_limiter]") {
    clk::reset();
    sluice::basic_keyed_limiter<log_limiter, std::string> per_ip(keyed_options(50, 10s, 512));
    const std::string victim = "192.0.2.1";
    REQUIRE(per_ip.try_acquire(victim, 1, clk::now()));
    for (std::uint32_t i = 0; i < 100000; ++i) {
        const std::string ip = "10." + std::to_string(i >> 16) + "." +
                               std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255);
        REQUIRE(per_ip.try_acquire(ip, 1, clk::now()));
        REQUIRE(per_ip.size() <= 512);
        clk::advance(1us);
    }
    CHECK(per_ip.size() == 512);
    CHECK(per_ip.stats().evicted_active == 100001 - 512);
    // The flood pushed the victim out: it starts over (the documented price).
    CHECK(per_ip.find(victim) == nullptr);
}

TEST_CASE("keyed limiter: idle keys are evicted before active ones", "[keyed_limiter]") {
    clk::reset();
    keyed_log keyed(keyed_options(1, 10s, 2));
    const auto t0 = clk::now();
    const std::uint64_t a = 1, b = 2, c = 3;
    REQUIRE(keyed.try_acquire(a, 1, t0));
    REQUIRE(keyed.try_acquire(b, 1, t0 + 5s));
    // A is used again (refused) after B: plain LRU would now evict B.
    REQUIRE_FALSE(keyed.try_acquire(a, 1, t0 + 9s));
    // At t0 + 11 s A's window is empty, B's is not.
    REQUIRE(keyed.try_acquire(c, 1, t0 + 11s));
    CHECK(keyed.find(a) == nullptr);
    REQUIRE(keyed.find(b) != nullptr);
    CHECK(keyed.find(c) != nullptr);
    CHECK(keyed.stats().evicted_idle == 1);
    CHECK(keyed.stats().evicted_active == 0);
    // B kept its state: still refused until t0 + 15 s.
    const auto r = keyed.try_acquire(b, 1, t0 + 11s);
    REQUIRE_FALSE(r);
    CHECK(r.retry_after == 4s);
}

TEST_CASE("keyed limiter: with no idle key the least recently counted goes", "[keyed_limiter]") {
    clk::reset();
    keyed_log keyed(keyed_options(2, 10s, 3));
    const auto t0 = clk::now();
    REQUIRE(keyed.try_acquire(1, 1, t0));
    REQUIRE(keyed.try_acquire(2, 1, t0 + 1s));
    REQUIRE(keyed.try_acquire(3, 1, t0 + 2s));
    REQUIRE(keyed.try_acquire(1, 1, t0 + 3s));  // key 1 counted again: key 2 is now the oldest
    REQUIRE(keyed.try_acquire(4, 1, t0 + 4s));
    CHECK(keyed.find(2) == nullptr);
    CHECK(keyed.find(1) != nullptr);
    CHECK(keyed.find(3) != nullptr);
    CHECK(keyed.stats().evicted_active == 1);
    // An evicted key comes back fresh.
    const auto r = keyed.try_acquire(2, 2, t0 + 5s);
    CHECK(r);
    CHECK(keyed.stats().keys_created == 5);
}

TEST_CASE("keyed limiter: the table drains as keys go idle", "[keyed_limiter]") {
    clk::reset();
    keyed_log keyed(keyed_options(5, 1s, 100));
    for (std::uint64_t k = 0; k < 50; ++k) REQUIRE(keyed.try_acquire(k, 1, clk::now()));
    CHECK(keyed.size() == 50);
    clk::advance(1s);
    // Each call drops at most one idle key besides the one it uses.
    REQUIRE(keyed.try_acquire(1000, 1, clk::now()));
    CHECK(keyed.size() == 50);
    REQUIRE(keyed.try_acquire(1000, 1, clk::now()));
    CHECK(keyed.size() == 49);
    CHECK(keyed.evict_idle(clk::now()) == 48);
    CHECK(keyed.size() == 1);
    CHECK(keyed.find(1000) != nullptr);
    CHECK(keyed.stats().evicted_idle == 50);
}

TEST_CASE("keyed limiter: refusals leave no trace and erase forgets", "[keyed_limiter]") {
    clk::reset();
    keyed_log keyed(keyed_options(3, 1s, 10));
    auto r = keyed.try_acquire(7, 4, clk::now());
    CHECK(r.status == acquire_status::exceeds_limit);
    CHECK(keyed.try_acquire(8, 0, clk::now()));
    CHECK(keyed.empty());
    CHECK(keyed.stats().keys_created == 0);
    REQUIRE(keyed.try_acquire(7, 3, clk::now()));
    CHECK_FALSE(keyed.try_acquire(7, 1, clk::now()));
    CHECK(keyed.erase(7));
    CHECK_FALSE(keyed.erase(7));
    CHECK(keyed.try_acquire(7, 3, clk::now()));
    CHECK(keyed.stats().evicted() == 0);
}

TEST_CASE("keyed limiter: works with the approximate limiter and moves", "[keyed_limiter]") {
    clk::reset();
    sluice::basic_keyed_limiter<counter_limiter, std::string> keyed(keyed_options(2, 1s, 2));
    REQUIRE(keyed.try_acquire("a", 2, clk::now()));
    CHECK_FALSE(keyed.try_acquire("a", 1, clk::now()));
    REQUIRE(keyed.try_acquire("b", 1, clk::now()));
    REQUIRE(keyed.try_acquire("c", 1, clk::now()));
    CHECK(keyed.size() == 2);
    CHECK(keyed.find("a") == nullptr);
    auto moved = std::move(keyed);
    CHECK(moved.size() == 2);
    CHECK(keyed.empty());  // NOLINT(bugprone-use-after-move): documented state
    CHECK_FALSE(moved.try_acquire("b", 2, clk::now()));
    REQUIRE(keyed.try_acquire("z", 1, clk::now()));  // the moved-from one still works
    CHECK(keyed.size() == 1);
    moved = std::move(keyed);
    CHECK(moved.size() == 1);
    CHECK(moved.find("z") != nullptr);
    moved.clear();
    CHECK(moved.empty());
    CHECK(moved.try_acquire("q", 1, clk::now()));
}

// ---------------------------------------------------------------- docs recipe

namespace {
// The recipe of docs/resilience.md, "Sliding-window limiter", verbatim:
// PROTOCOL.md 3.3's inbound limit for one connection (100 per 1 s; a refused
// message does not count; the 10th refusal within 1 s gets its error, then
// close 4429).
// snippet: inbound_policy
class inbound_policy {
public:
    enum class verdict { handle, reject, reject_then_close };

    verdict on_message(std::chrono::steady_clock::time_point now,
                       std::chrono::milliseconds& retry_after_ms) {
        const auto r = messages_.try_acquire(1, now);
        if (r) return verdict::handle;
        retry_after_ms = std::chrono::ceil<std::chrono::milliseconds>(r.retry_after);
        return refusals_.try_acquire(1, now) ? verdict::reject : verdict::reject_then_close;
    }

private:
    sluice::sliding_log_limiter messages_{{100, std::chrono::seconds(1)}};
    sluice::sliding_log_limiter refusals_{{9, std::chrono::seconds(1)}};
};
// end snippet
}  // namespace

TEST_CASE("limiter recipe: PROTOCOL.md 3.3 inbound messages per connection", "[limiter]") {
    using verdict = inbound_policy::verdict;
    const std::chrono::steady_clock::time_point t0{1000h};  // explicit times, no real clock
    inbound_policy policy;
    std::chrono::milliseconds retry{0};
    for (int i = 0; i < 100; ++i)
        REQUIRE(policy.on_message(t0 + i * 1ms, retry) == verdict::handle);
    for (int i = 0; i < 9; ++i) {
        REQUIRE(policy.on_message(t0 + 100ms + i * 1ms, retry) == verdict::reject);
        CHECK(retry == 900ms - i * 1ms);  // until the message of t0 leaves
    }
    CHECK(policy.on_message(t0 + 200ms, retry) == verdict::reject_then_close);

    // Refusals more than a second apart never close the connection.
    inbound_policy patient;
    for (int second = 0; second < 30; ++second) {
        const auto start = t0 + second * 1s;
        for (int i = 0; i < 100; ++i)
            REQUIRE(patient.on_message(start + i * 1ms, retry) == verdict::handle);
        for (int i = 0; i < 3; ++i)
            REQUIRE(patient.on_message(start + 500ms, retry) == verdict::reject);
    }
}
