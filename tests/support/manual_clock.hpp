// A std::chrono clock that moves only when a test says so.
//
// `manual_clock::now()` returns a process-wide time point that starts at an
// arbitrary non-zero value; `advance()` and `set()` move it. Tests use it as the
// Clock template argument of sluice's pure state machines. Not thread-safe:
// drive it from the test's thread only.
#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::test {

struct manual_clock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<manual_clock>;
    static constexpr bool is_steady = true;

    static time_point now() noexcept { return current; }
    static void advance(duration d) noexcept { current += d; }
    static void set(time_point t) noexcept { current = t; }
    /// Back to the start value; call at the top of every test case.
    static void reset() noexcept { current = time_point{std::chrono::hours(1000)}; }

private:
    static inline time_point current{std::chrono::hours(1000)};
};

}  // namespace sluice::test
