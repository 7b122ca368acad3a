#include <sluice/backoff.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "manual_clock.hpp"
#include "scripted_rng.hpp"

using namespace std::chrono_literals;
using sluice::backoff_options;
using sluice::jitter_mode;
using ns = std::chrono::nanoseconds;

namespace {

template <class URBG>
using test_backoff = sluice::basic_backoff<sluice::test::manual_clock, URBG>;

constexpr std::uint64_t raw_max = std::numeric_limits<std::uint64_t>::max();

backoff_options small_options(jitter_mode mode) {
    backoff_options o;
    o.initial_delay = 100ns;
    o.multiplier = 2.0;
    o.max_delay = 1000ns;
    o.jitter = mode;
    o.jitter_fraction = 0.2;
    return o;
}

// The un-jittered delay of `attempt` for options `o` (the documented formula).
std::int64_t base_delay(const backoff_options& o, std::size_t attempt) {
    double d = static_cast<double>(o.initial_delay.count());
    const auto cap = static_cast<double>(o.max_delay.count());
    for (std::size_t i = 0; i < attempt; ++i) d = std::min(cap, std::floor(d * o.multiplier));
    return static_cast<std::int64_t>(std::min(cap, d));
}

struct bounds {
    std::int64_t lo;
    std::int64_t hi;
    double mean;
};

// The documented bounds and mean of a non-decorrelated mode at `attempt`.
bounds expected_bounds(const backoff_options& o, std::size_t attempt) {
    const std::int64_t d = base_delay(o, attempt);
    const std::int64_t cap = o.max_delay.count();
    switch (o.jitter) {
    case jitter_mode::none: return {d, d, static_cast<double>(d)};
    case jitter_mode::full: return {0, d, d / 2.0};
    case jitter_mode::equal: return {d / 2, d, 0.75 * static_cast<double>(d)};
    case jitter_mode::proportional: {
        const auto spread = static_cast<std::int64_t>(static_cast<double>(d) * o.jitter_fraction);
        const std::int64_t lo = d - spread;
        const std::int64_t hi = std::min(cap, d + spread);
        // Mean of min(cap, U[lo, d + spread]).
        const double a = static_cast<double>(lo);
        const double b = static_cast<double>(d + spread);
        const double c = static_cast<double>(cap);
        double mean = (a + b) / 2;
        if (b > c) mean = ((c - a) * (a + c) / 2 + (b - c) * c) / (b - a);
        return {lo, hi, mean};
    }
    case jitter_mode::decorrelated: break;
    }
    return {0, cap, 0};
}

// E[min(cap, U[a, b])].
double capped_uniform_mean(double a, double b, double cap) {
    if (b <= cap) return (a + b) / 2;
    if (a >= cap) return cap;
    return ((cap - a) * (a + cap) / 2 + (b - cap) * cap) / (b - a);
}

// A generator with a narrow, non-zero-based range, to check the raw minimum and
// maximum map to the bounds whatever the generator's min().
struct tiny_rng {
    using result_type = std::uint32_t;
    static constexpr result_type min() { return 1; }
    static constexpr result_type max() { return 10; }
    std::vector<result_type> values;
    std::size_t next = 0;
    result_type operator()() { return values[next++ % values.size()]; }
};

// A clock whose duration is milliseconds.
struct ms_clock {
    using rep = std::int64_t;
    using period = std::milli;
    using duration = std::chrono::milliseconds;
    using time_point = std::chrono::time_point<ms_clock>;
    static time_point now() noexcept { return time_point{}; }
};

}  // namespace

TEST_CASE("backoff: documentation snippet", "[backoff]") {
    // snippet: backoff (docs/resilience.md and backoff.hpp show these lines)
    sluice::backoff b(sluice::backoff_options::grpc(), std::minstd_rand(42));
    if (auto delay = b.next()) {
        // wait *delay (0.8 s to 1.2 s here), then retry
    }
    b.reset();  // after a success
    // end snippet
    REQUIRE(b.attempts() == 0);
    auto first = b.next();
    REQUIRE(first);
    CHECK(*first >= 800ms);
    CHECK(*first <= 1200ms);
}

TEST_CASE("backoff: presets", "[backoff]") {
    const auto g = backoff_options::grpc();
    CHECK(g.initial_delay == 1s);
    CHECK(g.multiplier == 1.6);
    CHECK(g.max_delay == 120s);
    CHECK(g.jitter == jitter_mode::proportional);
    CHECK(g.jitter_fraction == 0.2);
    CHECK_FALSE(g.max_attempts.has_value());

    const auto b = backoff_options::browser();
    CHECK(b.initial_delay == 1s);
    CHECK(b.multiplier == 2.0);
    CHECK(b.max_delay == 30s);
    CHECK(b.jitter == jitter_mode::full);
    CHECK_FALSE(b.max_attempts.has_value());

    const backoff_options d;
    CHECK(d.initial_delay == b.initial_delay);
    CHECK(d.max_delay == b.max_delay);
    CHECK(d.jitter == b.jitter);
}

TEST_CASE("backoff: invalid options are rejected at construction", "[backoff]") {
    auto make = [](backoff_options o) { sluice::backoff b(o, std::minstd_rand(1)); };
    backoff_options o;
    o.initial_delay = 0ns;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.max_delay = 500ms;  // below initial_delay
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.multiplier = 0.5;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.multiplier = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.multiplier = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.jitter_fraction = 1.5;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.jitter_fraction = -0.1;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    CHECK_NOTHROW(make(o));
    CHECK_NOTHROW(make(backoff_options::grpc()));
}

TEST_CASE("backoff: no jitter grows exponentially up to the cap", "[backoff]") {
    test_backoff<std::minstd_rand> b(small_options(jitter_mode::none), std::minstd_rand(1));
    std::vector<std::int64_t> got;
    for (int i = 0; i < 7; ++i) got.push_back(b.next()->count());
    CHECK(got == std::vector<std::int64_t>{100, 200, 400, 800, 1000, 1000, 1000});
    CHECK(b.attempts() == 7);

    // gRPC's multiplier, without jitter: 1, 1.6, 2.56, 4.096 s...
    auto o = backoff_options::grpc();
    o.jitter = jitter_mode::none;
    test_backoff<std::minstd_rand> g(o, std::minstd_rand(1));
    CHECK(*g.next() == 1s);
    CHECK(*g.next() == 1600ms);
    CHECK(*g.next() == 2560ms);
    CHECK(*g.next() == 4096ms);
}

TEST_CASE("backoff: max_attempts gives exhausted, reset restarts", "[backoff]") {
    auto o = small_options(jitter_mode::none);
    o.max_attempts = 3;
    test_backoff<std::minstd_rand> b(o, std::minstd_rand(1));
    CHECK_FALSE(b.exhausted());
    CHECK(*b.next() == 100ns);
    CHECK(*b.next() == 200ns);
    CHECK(*b.next() == 400ns);
    CHECK(b.exhausted());
    CHECK_FALSE(b.next().has_value());
    CHECK_FALSE(b.next().has_value());  // stays exhausted
    CHECK(b.attempts() == 3);

    b.reset();
    CHECK_FALSE(b.exhausted());
    CHECK(b.attempts() == 0);
    CHECK(*b.next() == 100ns);  // from the start again

    o.max_attempts = 0;
    test_backoff<std::minstd_rand> none(o, std::minstd_rand(1));
    CHECK(none.exhausted());
    CHECK_FALSE(none.next().has_value());
}

TEST_CASE("backoff: reset restarts every jitter mode from initial_delay", "[backoff]") {
    for (auto mode : {jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated,
                      jitter_mode::proportional}) {
        CAPTURE(static_cast<int>(mode));
        auto o = small_options(mode);
        // Raw maximum every time: each delay is its mode's upper bound.
        test_backoff<sluice::test::scripted_rng> b(o, sluice::test::scripted_rng({raw_max}));
        std::vector<std::int64_t> first;
        for (int i = 0; i < 5; ++i) first.push_back(b.next()->count());
        b.reset();
        std::vector<std::int64_t> again;
        for (int i = 0; i < 5; ++i) again.push_back(b.next()->count());
        CHECK(first == again);
        CHECK(first.front() < first.back());
    }
}

TEST_CASE("backoff: raw minimum and maximum map exactly to each mode's bounds", "[backoff]") {
    using sluice::test::scripted_rng;
    SECTION("full") {
        test_backoff<scripted_rng> b(small_options(jitter_mode::full),
                                     scripted_rng({0, raw_max, 0, raw_max}));
        CHECK(b.next()->count() == 0);    // attempt 0, d = 100
        CHECK(b.next()->count() == 200);  // attempt 1, d = 200
        CHECK(b.next()->count() == 0);
        CHECK(b.next()->count() == 800);
    }
    SECTION("equal") {
        test_backoff<scripted_rng> b(small_options(jitter_mode::equal),
                                     scripted_rng({0, raw_max, raw_max / 2}));
        CHECK(b.next()->count() == 50);   // d/2
        CHECK(b.next()->count() == 200);  // d
        CHECK(b.next()->count() == 299);  // d = 400: 200 + floor(200 * (2^63 - 1) / (2^64 - 1))
    }
    SECTION("proportional") {
        test_backoff<scripted_rng> b(small_options(jitter_mode::proportional),
                                     scripted_rng({0, raw_max, 0, raw_max, raw_max, 0}));
        CHECK(b.next()->count() == 80);    // 100 * 0.8
        CHECK(b.next()->count() == 240);   // 200 * 1.2
        CHECK(b.next()->count() == 320);   // 400 * 0.8
        CHECK(b.next()->count() == 960);   // 800 * 1.2
        CHECK(b.next()->count() == 1000);  // 1000 * 1.2, clamped to max_delay
        CHECK(b.next()->count() == 800);   // 1000 * 0.8
    }
    SECTION("decorrelated") {
        test_backoff<scripted_rng> b(small_options(jitter_mode::decorrelated),
                                     scripted_rng({raw_max, raw_max, 0, raw_max, raw_max}));
        CHECK(b.next()->count() == 300);  // U[100, 3 * 100], top
        CHECK(b.next()->count() == 900);  // U[100, 3 * 300], top
        CHECK(b.next()->count() == 100);  // bottom is always initial_delay
        CHECK(b.next()->count() == 300);  // grows again from 100
        CHECK(b.next()->count() == 900);
        b.reset();
        b.generator() = scripted_rng({raw_max});
        for (int i = 0; i < 4; ++i) b.next();
        CHECK(b.next()->count() == 1000);  // min(max_delay, 3 * 1000)
    }
    SECTION("none draws nothing") {
        test_backoff<scripted_rng> b(small_options(jitter_mode::none), scripted_rng({raw_max}));
        CHECK(b.next()->count() == 100);
        CHECK(b.generator().calls() == 0);
    }
    SECTION("a generator whose range does not start at zero") {
        tiny_rng r{{1, 10, 1, 10}};
        sluice::basic_backoff<sluice::test::manual_clock, tiny_rng> b(
            small_options(jitter_mode::full), r);
        CHECK(b.next()->count() == 0);
        CHECK(b.next()->count() == 200);
        CHECK(b.next()->count() == 0);
        CHECK(b.next()->count() == 800);
    }
}

TEST_CASE("backoff: every jitter mode stays within its bounds with the expected mean",
          "[backoff][property]") {
    constexpr int sequences = 10000;
    constexpr std::size_t attempts = 8;
    for (auto mode :
         {jitter_mode::none, jitter_mode::full, jitter_mode::equal, jitter_mode::proportional}) {
        CAPTURE(static_cast<int>(mode));
        backoff_options o;
        o.initial_delay = 1ms;
        o.multiplier = 2.0;
        o.max_delay = 100ms;  // reached at attempt 7, so the capped case is covered too
        o.jitter = mode;
        o.jitter_fraction = 0.2;
        test_backoff<std::mt19937_64> b(o, std::mt19937_64(20240501));
        std::vector<double> sum(attempts, 0.0);
        for (int s = 0; s < sequences; ++s) {
            b.reset();
            for (std::size_t a = 0; a < attempts; ++a) {
                const auto delay = b.next()->count();
                const bounds e = expected_bounds(o, a);
                REQUIRE(delay >= e.lo);
                REQUIRE(delay <= e.hi);
                REQUIRE(delay <= o.max_delay.count());
                sum[a] += static_cast<double>(delay);
            }
        }
        for (std::size_t a = 0; a < attempts; ++a) {
            CAPTURE(a);
            const bounds e = expected_bounds(o, a);
            const double mean = sum[a] / sequences;
            CHECK(mean == Approx(e.mean).epsilon(0.015));
        }
    }
}

TEST_CASE("backoff: decorrelated jitter stays within its bounds with the expected mean",
          "[backoff][property]") {
    backoff_options o;
    o.initial_delay = 1ms;
    o.max_delay = 50ms;
    o.jitter = jitter_mode::decorrelated;
    test_backoff<std::mt19937_64> b(o, std::mt19937_64(7));
    const double base = 1e6;
    const double cap = 50e6;
    double first_sum = 0;
    double deviation = 0;  // sum of (delay - its conditional expectation)
    std::size_t draws = 0;
    constexpr int sequences = 10000;
    for (int s = 0; s < sequences; ++s) {
        b.reset();
        double previous = base;
        for (int a = 0; a < 10; ++a) {
            const auto delay = static_cast<double>(b.next()->count());
            REQUIRE(delay >= base);
            REQUIRE(delay <= std::min(cap, 3 * previous));
            if (a == 0) first_sum += delay;
            deviation += delay - capped_uniform_mean(base, 3 * previous, cap);
            ++draws;
            previous = delay;
        }
    }
    CHECK(first_sum / sequences == Approx(2 * base).epsilon(0.01));  // U[base, 3 base]
    CHECK(std::abs(deviation / static_cast<double>(draws)) < 0.005 * cap);
}

TEST_CASE("backoff: never exceeds max_delay, even with a huge multiplier", "[backoff][property]") {
    for (auto mode : {jitter_mode::none, jitter_mode::full, jitter_mode::equal,
                      jitter_mode::decorrelated, jitter_mode::proportional}) {
        CAPTURE(static_cast<int>(mode));
        backoff_options o;
        o.initial_delay = 1ms;
        o.multiplier = 1e12;
        o.max_delay = 24h;
        o.jitter = mode;
        o.jitter_fraction = 1.0;
        sluice::basic_backoff<std::chrono::steady_clock, std::mt19937_64> b(o, std::mt19937_64(3));
        for (int i = 0; i < 1000; ++i) {
            const auto d = b.next();
            REQUIRE(d.has_value());
            REQUIRE(*d >= std::chrono::steady_clock::duration::zero());
            REQUIRE(*d <= o.max_delay);
        }
    }
}

TEST_CASE("backoff: the same seed gives the same sequence", "[backoff][property]") {
    for (auto mode : {jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated,
                      jitter_mode::proportional}) {
        CAPTURE(static_cast<int>(mode));
        auto o = backoff_options::browser();
        o.jitter = mode;
        sluice::backoff a(o, std::minstd_rand(99));
        sluice::backoff b(o, std::minstd_rand(99));
        sluice::backoff c(o, std::minstd_rand(100));
        bool differs = false;
        for (int i = 0; i < 50; ++i) {
            const auto da = a.next();
            REQUIRE(da == b.next());
            differs = differs || da != c.next();
        }
        CHECK(differs);
    }
}

TEST_CASE("backoff: a seed gives these exact delays on every platform", "[backoff]") {
    // std::minstd_rand and std::mt19937_64 are specified exactly by the standard and
    // the jitter uses integer arithmetic only, so these values hold everywhere.
    sluice::basic_backoff<sluice::test::manual_clock, std::minstd_rand> browser(
        backoff_options::browser(), std::minstd_rand(42));
    std::vector<std::int64_t> got;
    for (int i = 0; i < 4; ++i) got.push_back(browser.next()->count());
    CHECK(got == std::vector<std::int64_t>{944072, 1142725728, 1027237692, 3581389096});

    sluice::basic_backoff<sluice::test::manual_clock, std::mt19937_64> grpc(backoff_options::grpc(),
                                                                            std::mt19937_64(42));
    got.clear();
    for (int i = 0; i < 4; ++i) got.push_back(grpc.next()->count());
    CHECK(got == std::vector<std::int64_t>{1102062213, 1688980092, 2818196685, 3500069164});
}

TEST_CASE("backoff: delays are truncated to the clock's duration", "[backoff]") {
    backoff_options o;
    o.initial_delay = 1500us;
    o.max_delay = 10ms;
    o.jitter = jitter_mode::none;
    sluice::basic_backoff<ms_clock, std::minstd_rand> b(o, std::minstd_rand(1));
    static_assert(std::is_same<decltype(b)::duration, std::chrono::milliseconds>::value, "");
    CHECK(*b.next() == 1ms);  // 1.5 ms
    CHECK(*b.next() == 3ms);  // 3 ms
}

TEST_CASE("backoff: the default generator is seeded and stays within bounds", "[backoff]") {
    sluice::backoff b;  // browser preset, std::random_device seed
    for (int i = 0; i < 20; ++i) {
        const auto d = b.next();
        REQUIRE(d);
        CHECK(*d >= 0s);
        CHECK(*d <= 30s);
    }
}

TEST_CASE("backoff: mul_div agrees with its portable reference", "[backoff]") {
    using sluice::detail::mul_div;
    using sluice::detail::mul_div_portable;
    CHECK(mul_div_portable(0, raw_max, raw_max) == 0);
    CHECK(mul_div_portable(raw_max, raw_max, raw_max) == raw_max);
    CHECK(mul_div_portable(raw_max / 2, 1000, raw_max) == 499);
    CHECK(mul_div_portable(3, 7, 4) == 5);
    static_assert(mul_div_portable(5, 10, 10) == 5, "usable in constant expressions");
    std::mt19937_64 g(11);
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t d = g() | 1u;
        const std::uint64_t a = g() % d;
        const std::uint64_t b = (i % 3 == 0) ? g() >> (g() % 64) : g();
        REQUIRE(mul_div(a, b, d) == mul_div_portable(a, b, d));
        REQUIRE(mul_div(d, b, d) == b);
    }
}
