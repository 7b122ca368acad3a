#include <sluice/circuit_breaker.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "manual_clock.hpp"
#include "scripted_rng.hpp"

using namespace std::chrono_literals;
using sluice::call_outcome;
using sluice::circuit_breaker_options;
using sluice::circuit_state;
using sluice::trip_mode;
using clk = sluice::test::manual_clock;

namespace {

using breaker = sluice::basic_circuit_breaker<clk>;
using transitions = std::vector<std::pair<circuit_state, circuit_state>>;

// One granted call with the given outcome; returns the state after.
template <class Breaker>
circuit_state call(Breaker& b, call_outcome outcome, std::chrono::nanoseconds elapsed = 0ns) {
    auto p = b.try_acquire();
    REQUIRE(p);
    return b.record(p, outcome, elapsed);
}

template <class Breaker>
circuit_state fail(Breaker& b) {
    return call(b, call_outcome::failure);
}

template <class Breaker>
circuit_state succeed(Breaker& b) {
    return call(b, call_outcome::success);
}

circuit_breaker_options consecutive(std::size_t n) {
    circuit_breaker_options o;
    o.mode = trip_mode::consecutive_failures;
    o.consecutive_failures = n;
    o.open_duration = 5s;
    return o;
}

}  // namespace

TEST_CASE("circuit_breaker: documentation snippet", "[circuit_breaker]") {
    // snippet: circuit_breaker (docs/resilience.md and circuit_breaker.hpp show these lines)
    sluice::circuit_breaker breaker;
    if (auto permit = breaker.try_acquire()) {
        bool ok = true;  // ... make the call ...
        breaker.record(permit, ok ? sluice::call_outcome::success : sluice::call_outcome::failure,
                       std::chrono::milliseconds(12));
    } else {
        auto wait = permit.retry_after();  // come back later
        (void)wait;
    }
    // end snippet
    CHECK(breaker.state() == circuit_state::closed);
    CHECK(breaker.counters().successes == 1);
}

TEST_CASE("circuit_breaker: invalid options are rejected at construction", "[circuit_breaker]") {
    auto make = [](circuit_breaker_options o) { breaker b(o); };
    CHECK_NOTHROW(make({}));
    auto o = consecutive(0);
    CHECK_THROWS_AS(make(o), std::invalid_argument);

    o = {};
    o.mode = trip_mode::count_window;
    o.window_size = 10;
    o.minimum_calls = 11;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.minimum_calls = 0;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.minimum_calls = 10;
    CHECK_NOTHROW(make(o));
    o.failure_rate_threshold = 0.0;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.failure_rate_threshold = 100.5;
    CHECK_THROWS_AS(make(o), std::invalid_argument);

    o = {};
    o.mode = trip_mode::time_window;
    o.window_buckets = 0;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o.window_buckets = 10;
    o.window_duration = 5ns;  // buckets under 1 ns
    CHECK_THROWS_AS(make(o), std::invalid_argument);

    o = {};
    o.half_open_trials = 0;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.open_duration = -1s;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.slow_call_threshold = -1ms;
    CHECK_THROWS_AS(make(o), std::invalid_argument);
    o = {};
    o.open_backoff = sluice::backoff_options{};
    o.open_backoff->multiplier = 0.1;
    CHECK_THROWS_AS(make(o), std::invalid_argument);

    CHECK_THROWS_AS((sluice::basic_keyed_circuit_breaker<int, clk>({}, 0)), std::invalid_argument);
}

TEST_CASE("circuit_breaker: closed -> open after N consecutive failures", "[circuit_breaker]") {
    clk::reset();
    breaker b(consecutive(3));
    CHECK(b.state() == circuit_state::closed);
    CHECK(fail(b) == circuit_state::closed);
    CHECK(fail(b) == circuit_state::closed);
    CHECK(succeed(b) == circuit_state::closed);  // a success breaks the run
    CHECK(fail(b) == circuit_state::closed);
    CHECK(fail(b) == circuit_state::closed);
    CHECK(fail(b) == circuit_state::open);
    CHECK(b.open_until() == clk::now() + 5s);

    auto refused = b.try_acquire();
    CHECK_FALSE(refused);
    CHECK_FALSE(refused.granted());
    CHECK(refused.retry_after() == 5s);
    clk::advance(2s);
    CHECK(b.try_acquire().retry_after() == 3s);
}

TEST_CASE("circuit_breaker: closed -> open by failure rate over a count window",
          "[circuit_breaker]") {
    clk::reset();
    circuit_breaker_options o;
    o.mode = trip_mode::count_window;
    o.window_size = 4;
    o.minimum_calls = 4;
    o.failure_rate_threshold = 75.0;
    breaker b(o);
    // F F S S: 50 %.
    fail(b);
    fail(b);
    succeed(b);
    CHECK(succeed(b) == circuit_state::closed);
    // The oldest outcomes slide out: F S S F, then S S F F (50 %), then S F F F (75 %).
    CHECK(fail(b) == circuit_state::closed);
    CHECK(fail(b) == circuit_state::closed);
    // Counted since the start this would be 5 / 7 = 71 % < 75 %: only a sliding
    // window trips here.
    CHECK(fail(b) == circuit_state::open);
}

TEST_CASE("circuit_breaker: no trip while the window holds fewer than minimum_calls",
          "[circuit_breaker]") {
    clk::reset();
    circuit_breaker_options o;
    o.mode = trip_mode::count_window;
    o.window_size = 100;
    o.minimum_calls = 10;
    o.failure_rate_threshold = 50.0;
    breaker b(o);
    for (int i = 0; i < 9; ++i) CHECK(fail(b) == circuit_state::closed);  // 100 % of 9
    // The 10th call reaches minimum_calls: 9 / 10 failed, even though it succeeded.
    CHECK(succeed(b) == circuit_state::open);

    o.mode = trip_mode::time_window;
    o.window_duration = 10s;
    o.window_buckets = 10;
    breaker t(o);
    for (int i = 0; i < 9; ++i) CHECK(fail(t) == circuit_state::closed);
    CHECK(fail(t) == circuit_state::open);
}

TEST_CASE("circuit_breaker: closed -> open by failure rate over a time window",
          "[circuit_breaker]") {
    clk::reset();  // whole seconds: 1 s buckets start on the clock's second boundaries
    circuit_breaker_options o;
    o.mode = trip_mode::time_window;
    o.window_duration = 10s;
    o.window_buckets = 10;
    o.minimum_calls = 4;
    o.failure_rate_threshold = 50.0;
    breaker b(o);

    SECTION("calls older than the window no longer count") {
        clk::advance(500ms);
        fail(b);
        fail(b);
        CHECK(succeed(b) == circuit_state::closed);  // 3 calls < minimum
        clk::advance(9400ms);                        // t = 9.9 s: still in the window
        clk::advance(200ms);                         // t = 10.1 s: the first bucket left
        CHECK(succeed(b) == circuit_state::closed);  // 1 call in the window
        CHECK(fail(b) == circuit_state::closed);     // with the old calls: 3 F / 5
        CHECK(succeed(b) == circuit_state::closed);
        CHECK(fail(b) == circuit_state::open);  // 2 F / 4 = 50 %
    }
    SECTION("a call counts until its bucket leaves the window") {
        clk::advance(500ms);
        fail(b);
        fail(b);
        fail(b);
        clk::advance(9400ms);                   // t = 9.9 s
        CHECK(fail(b) == circuit_state::open);  // 4 F / 4, all within the window
    }
    SECTION("the boundary: at 10 s the first second's bucket is gone") {
        clk::advance(500ms);
        fail(b);
        fail(b);
        fail(b);
        clk::advance(9500ms);                     // t = 10.0 s
        CHECK(fail(b) == circuit_state::closed);  // 1 call in the window
    }
    SECTION("an expired bucket not yet reused does not count") {
        clk::advance(500ms);
        fail(b);
        fail(b);
        fail(b);
        clk::advance(11s);                        // t = 11.5 s: another bucket than t = 0.5 s
        CHECK(fail(b) == circuit_state::closed);  // 1 call in the window
        clk::advance(30s);                        // long idle
        fail(b);
        fail(b);
        CHECK(fail(b) == circuit_state::closed);  // 3 calls < minimum
    }
    SECTION("calls spread over buckets add up") {
        for (int i = 0; i < 4; ++i) {
            CHECK(fail(b) == (i < 3 ? circuit_state::closed : circuit_state::open));
            clk::advance(2s);
        }
    }
}

TEST_CASE("circuit_breaker: slow calls count as failures", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(3);
    o.slow_call_threshold = 100ms;
    breaker b(o);
    CHECK(call(b, call_outcome::success, 150ms) == circuit_state::closed);
    CHECK(call(b, call_outcome::success, 100ms) == circuit_state::closed);  // not over: resets
    CHECK(call(b, call_outcome::success, 101ms) == circuit_state::closed);
    CHECK(call(b, call_outcome::failure, 5ms) == circuit_state::closed);
    CHECK(call(b, call_outcome::success, 2s) == circuit_state::open);
    CHECK(b.counters().slow_calls == 3);
    CHECK(b.counters().failures == 4);
    CHECK(b.counters().successes == 1);

    // Over a count window too.
    circuit_breaker_options w;
    w.mode = trip_mode::count_window;
    w.window_size = 4;
    w.minimum_calls = 4;
    w.failure_rate_threshold = 50;
    w.slow_call_threshold = 1s;
    breaker c(w);
    call(c, call_outcome::success, 10ms);
    call(c, call_outcome::success, 10ms);
    call(c, call_outcome::success, 3s);
    CHECK(call(c, call_outcome::success, 3s) == circuit_state::open);
}

TEST_CASE("circuit_breaker: open -> half-open once the open duration has passed",
          "[circuit_breaker]") {
    clk::reset();
    breaker b(consecutive(1));
    fail(b);
    REQUIRE(b.state() == circuit_state::open);
    clk::advance(5s - 1ns);
    CHECK(b.refresh() == circuit_state::open);
    auto p = b.try_acquire();
    CHECK_FALSE(p);
    CHECK(p.retry_after() == 1ns);
    clk::advance(1ns);
    CHECK(b.state() == circuit_state::open);  // lazily: nothing happened yet
    CHECK(b.refresh() == circuit_state::half_open);
    auto trial = b.try_acquire();
    CHECK(trial);
    CHECK(trial.is_trial());
    CHECK(trial.retry_after() == 0ns);

    // try_acquire() alone also makes the transition.
    breaker c(consecutive(1));
    fail(c);
    clk::advance(6s);
    auto q = c.try_acquire();
    CHECK(q);
    CHECK(q.is_trial());
    CHECK(c.state() == circuit_state::half_open);
}

TEST_CASE("circuit_breaker: half-open -> closed after K successful trials", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(1);
    o.half_open_trials = 3;
    o.trial_retry_after = 250ms;
    breaker b(o);
    fail(b);
    clk::advance(5s);
    auto t1 = b.try_acquire();
    auto t2 = b.try_acquire();
    auto t3 = b.try_acquire();
    REQUIRE((t1 && t2 && t3));
    auto refused = b.try_acquire();  // every trial slot taken
    CHECK_FALSE(refused);
    CHECK(refused.retry_after() == 250ms);
    CHECK(b.record(t1, call_outcome::success) == circuit_state::half_open);
    CHECK_FALSE(b.try_acquire());  // a success does not free a slot
    CHECK(b.record(t2, call_outcome::success) == circuit_state::half_open);
    CHECK(b.record(t3, call_outcome::success) == circuit_state::closed);
    CHECK(b.try_acquire());
    CHECK_FALSE(b.try_acquire().is_trial());
}

TEST_CASE("circuit_breaker: half-open -> open on any failed trial", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(1);
    o.half_open_trials = 3;
    breaker b(o);
    fail(b);
    clk::advance(5s);
    auto t1 = b.try_acquire();
    auto t2 = b.try_acquire();
    auto t3 = b.try_acquire();
    CHECK(b.record(t1, call_outcome::success) == circuit_state::half_open);
    CHECK(b.record(t2, call_outcome::failure) == circuit_state::open);
    CHECK(b.open_until() == clk::now() + 5s);
    // The last trial's result belongs to the half-open period that ended.
    CHECK(b.record(t3, call_outcome::success) == circuit_state::open);
    CHECK(b.counters().stale == 1);

    // A slow trial is a failed trial.
    auto s = consecutive(1);
    s.slow_call_threshold = 1s;
    breaker c(s);
    fail(c);
    clk::advance(5s);
    auto t = c.try_acquire();
    CHECK(c.record(t, call_outcome::success, 2s) == circuit_state::open);
}

TEST_CASE("circuit_breaker: trial slots, refusal and release", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(1);
    o.half_open_trials = 2;
    o.trial_retry_after = 40ms;
    breaker b(o);
    fail(b);
    clk::advance(5s);
    auto t1 = b.try_acquire();
    auto t2 = b.try_acquire();
    REQUIRE((t1 && t2));
    auto r = b.try_acquire();
    CHECK_FALSE(r);
    CHECK(r.retry_after() == 40ms);
    CHECK(b.counters().refused == 1);
    // A trial that was not made gives its slot back.
    CHECK(b.record(t2, call_outcome::ignored) == circuit_state::half_open);
    auto t3 = b.try_acquire();
    CHECK(t3);
    CHECK(b.record(t1, call_outcome::success) == circuit_state::half_open);
    CHECK(b.record(t3, call_outcome::success) == circuit_state::closed);
    CHECK(b.counters().ignored == 1);
}

TEST_CASE("circuit_breaker: the open duration grows with the backoff and resets on close",
          "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(1);
    sluice::backoff_options grow;
    grow.initial_delay = 1s;
    grow.multiplier = 2.0;
    grow.max_delay = 8s;
    grow.jitter = sluice::jitter_mode::none;
    grow.max_attempts = 2;  // ignored by the breaker
    o.open_backoff = grow;
    breaker b(o);

    std::vector<std::chrono::nanoseconds> durations;
    fail(b);
    for (int trip = 0; trip < 5; ++trip) {
        REQUIRE(b.state() == circuit_state::open);
        CHECK(b.consecutive_trips() == static_cast<std::size_t>(trip + 1));
        durations.push_back(b.open_until() - clk::now());
        clk::set(b.open_until());
        auto t = b.try_acquire();
        REQUIRE(t.is_trial());
        b.record(t, call_outcome::failure);  // reopen
    }
    CHECK(durations == std::vector<std::chrono::nanoseconds>{1s, 2s, 4s, 8s, 8s});

    clk::set(b.open_until());
    CHECK(succeed(b) == circuit_state::closed);
    CHECK(b.consecutive_trips() == 0);
    fail(b);
    CHECK(b.open_until() - clk::now() == 1s);  // from the start again
}

TEST_CASE("circuit_breaker: a jittered open duration uses the generator", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(1);
    sluice::backoff_options grow;
    grow.initial_delay = 1s;
    grow.max_delay = 10s;
    grow.jitter = sluice::jitter_mode::full;
    o.open_backoff = grow;
    constexpr auto top = std::numeric_limits<std::uint64_t>::max();
    sluice::basic_circuit_breaker<clk, sluice::test::scripted_rng> b(
        o, sluice::test::scripted_rng({top, 0}));
    fail(b);
    CHECK(b.open_until() - clk::now() == 1s);  // raw max: the whole of U[0, 1 s]
    clk::set(b.open_until());
    b.record(b.try_acquire(), call_outcome::failure);
    CHECK(b.open_until() == clk::now());  // raw 0: U[0, 2 s] at its bottom
    CHECK(b.refresh() == circuit_state::half_open);
}

TEST_CASE("circuit_breaker: the handler sees every transition in order", "[circuit_breaker]") {
    clk::reset();
    breaker b(consecutive(2));
    transitions seen;
    b.on_state_change([&](circuit_state from, circuit_state to) {
        seen.emplace_back(from, to);
        CHECK(b.state() == to);  // the breaker is already in the new state
    });
    fail(b);
    fail(b);  // closed -> open
    clk::advance(5s);
    auto t = b.try_acquire();            // open -> half-open
    b.record(t, call_outcome::failure);  // half-open -> open
    clk::advance(5s);
    b.refresh();  // open -> half-open
    succeed(b);   // half-open -> closed
    fail(b);
    fail(b);    // closed -> open
    b.reset();  // open -> closed
    b.reset();  // already closed: no call
    CHECK(seen == transitions{{circuit_state::closed, circuit_state::open},
                              {circuit_state::open, circuit_state::half_open},
                              {circuit_state::half_open, circuit_state::open},
                              {circuit_state::open, circuit_state::half_open},
                              {circuit_state::half_open, circuit_state::closed},
                              {circuit_state::closed, circuit_state::open},
                              {circuit_state::open, circuit_state::closed}});
    CHECK(sluice::to_string(circuit_state::half_open) == "half_open");
    CHECK(sluice::to_string(circuit_state::open) == "open");
    CHECK(sluice::to_string(circuit_state::closed) == "closed");
}

TEST_CASE("circuit_breaker: counters", "[circuit_breaker]") {
    clk::reset();
    auto o = consecutive(2);
    o.slow_call_threshold = 1s;
    breaker b(o);
    succeed(b);
    call(b, call_outcome::success, 2s);  // slow
    auto ignored = b.try_acquire();
    b.record(ignored, call_outcome::ignored);
    fail(b);  // second failure in a row: open
    b.try_acquire();
    b.try_acquire();
    clk::advance(5s);
    auto t = b.try_acquire();
    b.try_acquire();  // trial slot taken
    b.record(t, call_outcome::success);
    const auto& c = b.counters();
    CHECK(c.permitted == 5);
    CHECK(c.refused == 3);
    CHECK(c.successes == 2);
    CHECK(c.failures == 2);
    CHECK(c.slow_calls == 1);
    CHECK(c.ignored == 1);
    CHECK(c.stale == 0);
    CHECK(c.opened == 1);
    CHECK(c.half_opened == 1);
    CHECK(c.closed == 1);
}

TEST_CASE("circuit_breaker: stale and refused permits change nothing", "[circuit_breaker]") {
    clk::reset();
    breaker b(consecutive(2));
    auto early = b.try_acquire();
    fail(b);
    fail(b);
    REQUIRE(b.state() == circuit_state::open);
    CHECK(b.record(early, call_outcome::failure) == circuit_state::open);
    CHECK(b.counters().stale == 1);
    clk::advance(5s);
    b.refresh();
    // A call started while closed cannot decide the half-open trial.
    CHECK(b.record(early, call_outcome::success) == circuit_state::half_open);
    CHECK(b.counters().stale == 2);

    sluice::basic_circuit_breaker<clk>::permit refused;
    CHECK(b.record(refused, call_outcome::failure) == circuit_state::half_open);
    CHECK(b.counters().failures == 2);

    // reset() makes earlier permits stale, even when closed.
    breaker c(consecutive(2));
    auto before = c.try_acquire();
    fail(c);
    c.reset();
    c.record(before, call_outcome::failure);
    CHECK(fail(c) == circuit_state::closed);  // the reset cleared the run of failures
}

TEST_CASE("keyed_circuit_breaker: one breaker per key", "[circuit_breaker][keyed]") {
    clk::reset();
    sluice::basic_keyed_circuit_breaker<std::string, clk> set(consecutive(2), 8);
    std::vector<std::pair<std::string, circuit_state>> seen;
    set.on_state_change([&](const std::string& key, circuit_state, circuit_state to) {
        seen.emplace_back(key, to);
    });
    auto fail_key = [&](const std::string& key) {
        auto p = set.try_acquire(key);
        REQUIRE(p);
        return set.record(key, p, call_outcome::failure);
    };
    fail_key("a");
    CHECK(fail_key("a") == circuit_state::open);
    CHECK(fail_key("b") == circuit_state::closed);
    CHECK(set.state("a") == circuit_state::open);
    CHECK(set.state("b") == circuit_state::closed);
    CHECK_FALSE(set.state("c").has_value());
    CHECK(set.size() == 2);
    auto refused = set.try_acquire("a");
    CHECK_FALSE(refused);
    CHECK(refused.retry_after() == 5s);
    clk::advance(5s);
    auto trial = set.try_acquire("a");
    CHECK(trial.is_trial());
    set.record("a", trial, call_outcome::success);
    using entry = std::pair<std::string, circuit_state>;
    CHECK(seen == std::vector<entry>{{"a", circuit_state::open},
                                     {"a", circuit_state::half_open},
                                     {"a", circuit_state::closed}});
    const auto c = set.counters();
    CHECK(c.failures == 3);
    CHECK(c.successes == 1);
    CHECK(c.refused == 1);
    CHECK(c.opened == 1);

    // snippet: keyed_circuit_breaker (docs/resilience.md and circuit_breaker.hpp show these lines)
    sluice::keyed_circuit_breaker<std::string> breakers(sluice::circuit_breaker_options{}, 256);
    auto permit = breakers.try_acquire("redis-a");
    if (permit) breakers.record("redis-a", permit, sluice::call_outcome::success);
    // end snippet
    CHECK(breakers.size() == 1);
    CHECK(breakers.find("redis-a")->counters().successes == 1);
}

TEST_CASE("keyed_circuit_breaker: bounded memory, least recently used evicted",
          "[circuit_breaker][keyed]") {
    clk::reset();
    sluice::basic_keyed_circuit_breaker<int, clk> set(consecutive(1), 3);
    CHECK(set.max_keys() == 3);
    for (int k = 0; k < 1000; ++k) {
        auto p = set.try_acquire(k);
        set.record(k, p, call_outcome::success);
        REQUIRE(set.size() <= 3);
    }
    CHECK(set.size() == 3);
    CHECK(set.evictions() == 997);
    CHECK(set.counters().successes == 1000);  // evicted breakers' counts are kept
    CHECK(set.state(997).has_value());
    CHECK_FALSE(set.state(996).has_value());

    // Touching 997 makes 998 the least recently used.
    set.try_acquire(997);
    set.try_acquire(1000);
    CHECK(set.state(997).has_value());
    CHECK_FALSE(set.state(998).has_value());
    CHECK(set.state(999).has_value());
    CHECK(set.state(1000).has_value());

    // find() is not a use.
    CHECK(set.find(997) != nullptr);
    set.try_acquire(999);
    set.try_acquire(1000);
    set.try_acquire(1001);
    CHECK_FALSE(set.state(997).has_value());
}

TEST_CASE("keyed_circuit_breaker: an evicted key starts again closed", "[circuit_breaker][keyed]") {
    clk::reset();
    sluice::basic_keyed_circuit_breaker<int, clk> set(consecutive(1), 2);
    auto old_permit = set.try_acquire(1);
    auto p = set.try_acquire(1);
    CHECK(set.record(1, p, call_outcome::failure) == circuit_state::open);
    set.try_acquire(2);
    set.try_acquire(3);  // evicts 1, open as it was
    CHECK_FALSE(set.state(1).has_value());
    CHECK(set.evictions() == 1);
    // A record for a key no longer tracked is dropped.
    CHECK(set.record(1, old_permit, call_outcome::failure) == circuit_state::closed);
    CHECK_FALSE(set.state(1).has_value());
    // Back again: closed, and the old breaker's permit is stale for the new one.
    CHECK(set.try_acquire(1));
    CHECK(set.record(1, old_permit, call_outcome::failure) == circuit_state::closed);
    CHECK(set.find(1)->counters().stale == 1);

    CHECK(set.erase(1));
    CHECK_FALSE(set.erase(1));
    CHECK(set.size() == 1);
    set.clear();
    CHECK(set.size() == 0);
    CHECK(set.counters().failures == 1);
}

TEST_CASE("keyed_circuit_breaker: each key's open jitter is drawn independently",
          "[circuit_breaker][keyed]") {
    clk::reset();
    auto o = consecutive(1);
    sluice::backoff_options grow;
    grow.initial_delay = 1s;
    grow.max_delay = 10s;
    grow.jitter = sluice::jitter_mode::full;
    o.open_backoff = grow;
    sluice::basic_keyed_circuit_breaker<int, clk, std::minstd_rand> set(o, 16, std::minstd_rand(5));
    std::vector<clk::time_point> until;
    for (int k = 0; k < 8; ++k) {
        auto p = set.try_acquire(k);
        set.record(k, p, call_outcome::failure);
        until.push_back(set.find(k)->open_until());
        CHECK(until.back() >= clk::now());
        CHECK(until.back() <= clk::now() + 1s);
    }
    std::sort(until.begin(), until.end());
    CHECK(std::unique(until.begin(), until.end()) == until.end());

    // The same seed gives the same open durations.
    sluice::basic_keyed_circuit_breaker<int, clk, std::minstd_rand> again(o, 16,
                                                                          std::minstd_rand(5));
    std::vector<clk::time_point> until_again;
    for (int k = 0; k < 8; ++k) {
        auto p = again.try_acquire(k);
        again.record(k, p, call_outcome::failure);
        until_again.push_back(again.find(k)->open_until());
    }
    std::sort(until_again.begin(), until_again.end());
    CHECK(until == until_again);
}
