// sluice/backoff.hpp: exponential backoff with jitter, as a pure state machine.
//
// Defines `sluice::jitter_mode`, `sluice::backoff_options` (with the `grpc()` and
// `browser()` presets) and `sluice::basic_backoff<Clock, URBG>` with its alias
// `sluice::backoff`.
//
// Guarantees: every delay lies in [0, max_delay] and within the documented bounds
// of its jitter mode; after `max_attempts` delays `next()` reports exhaustion
// until `reset()`; the delays are computed with integer arithmetic from the
// generator's raw output (never std::uniform_*_distribution), so one generator
// seed gives the same delays with every compiler and standard library. No
// threads, no timers, no allocation, no exceptions after construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>

#include <sluice/detail/throw.hpp>

namespace sluice {

/// How `basic_backoff` randomizes each delay. `d` is the capped exponential delay
/// `min(max_delay, initial_delay * multiplier^attempt)`; all draws are uniform
/// over the closed interval and the result never exceeds `max_delay`.
///
/// Thread-safety: a plain enumeration.
enum class jitter_mode {
    none,          ///< exactly `d`
    full,          ///< uniform in [0, d] (AWS "full jitter"); mean d/2
    equal,         ///< d/2 + uniform in [0, d/2] (AWS "equal jitter"); mean 3d/4
    decorrelated,  ///< min(max_delay, uniform in [initial_delay, 3 * previous delay]) (AWS
                   ///< "decorrelated jitter"); `multiplier` is not used
    proportional,  ///< uniform in [d * (1 - f), d * (1 + f)], f = `jitter_fraction` (gRPC);
                   ///< clamped to `max_delay`; mean d while d * (1 + f) <= max_delay
};

/// The settings of a `basic_backoff`. A plain struct; the defaults are the
/// `browser()` preset (1 s, x2, at most 30 s, full jitter, no attempt limit).
///
/// Example: `sluice::backoff_options o; o.initial_delay = 100ms; o.max_attempts = 5;`
struct backoff_options {
    /// The first un-jittered delay (attempt 0). Must be > 0. Default 1 s.
    std::chrono::nanoseconds initial_delay = std::chrono::seconds(1);
    /// Growth factor per attempt. Must be finite and >= 1. Default 2.
    double multiplier = 2.0;
    /// Upper bound of every delay, jitter included. Must be >= initial_delay. Default 30 s.
    std::chrono::nanoseconds max_delay = std::chrono::seconds(30);
    /// How many delays `next()` hands out before reporting exhaustion; empty means
    /// unlimited (the default). 0 means exhausted at once.
    std::optional<std::size_t> max_attempts{};
    /// The jitter applied to each delay. Default `jitter_mode::full`.
    jitter_mode jitter = jitter_mode::full;
    /// The relative spread f of `jitter_mode::proportional`, in [0, 1]. Default 0.2.
    double jitter_fraction = 0.2;

    /// gRPC's connection backoff (doc/connection-backoff.md): 1 s, x1.6, +/-20 %,
    /// at most 120 s, unlimited attempts. Unlike gRPC's reference pseudo-code the
    /// jittered delay is clamped to 120 s and the first delay is jittered too.
    static backoff_options grpc() noexcept {
        backoff_options o;
        o.initial_delay = std::chrono::seconds(1);
        o.multiplier = 1.6;
        o.max_delay = std::chrono::seconds(120);
        o.jitter = jitter_mode::proportional;
        o.jitter_fraction = 0.2;
        return o;
    }

    /// The browser-friendly reconnection defaults: 1 s, x2, at most 30 s, full
    /// jitter, unlimited attempts. Same as a default-constructed `backoff_options`.
    static backoff_options browser() noexcept { return backoff_options{}; }
};

namespace detail {

/// floor(a * b / d) for a <= d, d > 0, in portable 64-bit arithmetic (a 128-bit
/// product, then shift-subtract division). The reference for `mul_div`.
constexpr std::uint64_t mul_div_portable(std::uint64_t a, std::uint64_t b,
                                         std::uint64_t d) noexcept {
    const std::uint64_t mask = 0xffffffffu;
    const std::uint64_t p0 = (a & mask) * (b & mask);
    const std::uint64_t p1 = (a & mask) * (b >> 32);
    const std::uint64_t p2 = (a >> 32) * (b & mask);
    const std::uint64_t p3 = (a >> 32) * (b >> 32);
    const std::uint64_t mid = (p0 >> 32) + (p1 & mask) + (p2 & mask);
    const std::uint64_t lo = (p0 & mask) | (mid << 32);
    const std::uint64_t hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
    // a <= d implies hi < d, so the quotient fits in 64 bits.
    std::uint64_t q = 0;
    std::uint64_t r = hi;
    for (int i = 63; i >= 0; --i) {
        const bool carry = (r >> 63) != 0;
        r = (r << 1) | ((lo >> i) & 1u);
        q <<= 1;
        if (carry || r >= d) {
            r -= d;
            q |= 1u;
        }
    }
    return q;
}

/// floor(a * b / d) for a <= d, d > 0; the same value as `mul_div_portable`,
/// faster where the compiler has 128-bit integers.
constexpr std::uint64_t mul_div(std::uint64_t a, std::uint64_t b, std::uint64_t d) noexcept {
#if defined(__SIZEOF_INT128__)
    __extension__ using u128 = unsigned __int128;
    return static_cast<std::uint64_t>(static_cast<u128>(a) * b / d);
#else
    return mul_div_portable(a, b, d);
#endif
}

/// A value in [lo, hi] (both reachable) from one raw draw of `gen`: the raw
/// minimum maps to `lo`, the raw maximum to `hi`, linearly in between.
template <class URBG>
std::uint64_t uniform_between(URBG& gen, std::uint64_t lo, std::uint64_t hi) {
    static_assert(std::is_unsigned<typename URBG::result_type>::value,
                  "URBG::result_type must be an unsigned integer type");
    const auto raw_min = static_cast<std::uint64_t>((URBG::min)());
    const std::uint64_t range = static_cast<std::uint64_t>((URBG::max)()) - raw_min;
    const std::uint64_t u = static_cast<std::uint64_t>(gen()) - raw_min;
    if (hi <= lo || range == 0) return lo;
    return lo + mul_div(u < range ? u : range, hi - lo, range);
}

/// A generator seeded from std::random_device when it can take a seed, else
/// default-constructed. `random` false skips the device (no jitter needed).
template <class URBG>
URBG make_seeded_generator(bool random) {
    if constexpr (std::is_constructible<URBG, typename URBG::result_type>::value) {
        if (!random) return URBG(static_cast<typename URBG::result_type>(1));
        std::random_device device;
        const std::uint64_t seed =
            (static_cast<std::uint64_t>(device()) << 32) ^ static_cast<std::uint64_t>(device());
        return URBG(static_cast<typename URBG::result_type>(seed));
    } else {
        (void)random;
        return URBG();
    }
}

/// Throws (or aborts without exceptions) unless `o` is a valid configuration.
inline void validate(const backoff_options& o) {
    if (o.initial_delay <= std::chrono::nanoseconds::zero())
        throw_invalid_argument("backoff_options: initial_delay must be > 0");
    if (o.max_delay < o.initial_delay)
        throw_invalid_argument("backoff_options: max_delay must be >= initial_delay");
    if (!(o.multiplier >= 1.0) || o.multiplier > std::numeric_limits<double>::max())
        throw_invalid_argument("backoff_options: multiplier must be finite and >= 1");
    if (!(o.jitter_fraction >= 0.0 && o.jitter_fraction <= 1.0))
        throw_invalid_argument("backoff_options: jitter_fraction must be in [0, 1]");
    switch (o.jitter) {
    case jitter_mode::none:
    case jitter_mode::full:
    case jitter_mode::equal:
    case jitter_mode::decorrelated:
    case jitter_mode::proportional: break;
    default: throw_invalid_argument("backoff_options: unknown jitter mode");
    }
}

}  // namespace detail

/// Exponential backoff with jitter: each `next()` gives the delay to wait before
/// the next attempt, or an empty optional once `max_attempts` delays were given;
/// `reset()` after a success starts over.
///
/// Delays are computed in whole nanoseconds and truncated to `Clock::duration`.
/// The un-jittered delay of attempt n is min(max_delay, initial_delay *
/// multiplier^n) (computed step by step in IEEE double, then floored).
///
/// `Clock` only supplies the duration type (so the delays fit the timers that
/// use that clock). `URBG` is any uniform random bit generator with an unsigned
/// `result_type`; the default `std::minstd_rand` is small (8 bytes), fast and
/// specified exactly by the standard. The constructor without a generator seeds
/// it from `std::random_device` (not when `jitter_mode::none` needs no chance);
/// pass a seeded generator for reproducible delays.
///
/// Thread-safety: none; use one object from one thread or strand (it is a small
/// value: give each connection its own).
/// Complexity: `next()` and `reset()` are O(1), one generator call per `next()`
/// (none with `jitter_mode::none`), no allocation.
///
/// Example (from tests/unit/backoff_test.cpp):
/// ```
/// sluice::backoff b(sluice::backoff_options::grpc(), std::minstd_rand(42));
/// if (auto delay = b.next()) {
///     // wait *delay (0.8 s to 1.2 s here), then retry
/// }
/// b.reset();  // after a success
/// ```
template <class Clock = std::chrono::steady_clock, class URBG = std::minstd_rand>
class basic_backoff {
public:
    using clock_type = Clock;                   ///< the clock type
    using duration = typename Clock::duration;  ///< the clock's duration
    using generator_type = URBG;                ///< the jitter's random generator

    /// A backoff with a generator seeded from std::random_device. Throws
    /// `std::invalid_argument` (aborts under -fno-exceptions) on invalid options.
    explicit basic_backoff(backoff_options options = {})
        : basic_backoff(options,
                        detail::make_seeded_generator<URBG>(options.jitter != jitter_mode::none)) {}

    /// A backoff drawing from `generator` (seed it for reproducible delays).
    basic_backoff(backoff_options options, URBG generator)
        : options_(options), generator_(std::move(generator)) {
        detail::validate(options_);
        initial_ = static_cast<std::uint64_t>(options_.initial_delay.count());
        max_ = static_cast<std::uint64_t>(options_.max_delay.count());
        reset();
    }

    /// The delay before the next attempt, or an empty optional when
    /// `max_attempts` delays have been handed out since the last `reset()`.
    /// Never more than `max_delay`; counts one attempt when it returns a delay.
    std::optional<duration> next() {
        if (options_.max_attempts && attempts_ >= *options_.max_attempts) return std::nullopt;
        const std::uint64_t d = base_;
        std::uint64_t delay = d;
        switch (options_.jitter) {
        case jitter_mode::none: break;
        case jitter_mode::full: delay = detail::uniform_between(generator_, 0, d); break;
        case jitter_mode::equal:
            delay = d / 2 + detail::uniform_between(generator_, 0, d - d / 2);
            break;
        case jitter_mode::decorrelated: {
            const std::uint64_t limit = std::numeric_limits<std::uint64_t>::max() / 3;
            const std::uint64_t upper =
                previous_ > limit ? std::numeric_limits<std::uint64_t>::max() : previous_ * 3;
            delay = detail::uniform_between(generator_, initial_, upper);
            if (delay > max_) delay = max_;
            previous_ = delay;
            break;
        }
        case jitter_mode::proportional: {
            const auto spread =
                static_cast<std::uint64_t>(static_cast<double>(d) * options_.jitter_fraction);
            delay = detail::uniform_between(generator_, d - (spread < d ? spread : d), d + spread);
            if (delay > max_) delay = max_;
            break;
        }
        }
        const double grown = static_cast<double>(base_) * options_.multiplier;
        base_ = grown >= static_cast<double>(max_) ? max_ : static_cast<std::uint64_t>(grown);
        ++attempts_;
        return std::chrono::duration_cast<duration>(
            std::chrono::nanoseconds(static_cast<std::int64_t>(delay)));
    }

    /// Starts over from `initial_delay` and zero attempts (call after a success).
    /// Does not touch the generator.
    void reset() noexcept {
        attempts_ = 0;
        base_ = initial_;
        previous_ = initial_;
    }

    /// How many delays `next()` has handed out since the last `reset()`.
    std::size_t attempts() const noexcept { return attempts_; }

    /// True when the next `next()` will report exhaustion.
    bool exhausted() const noexcept {
        return options_.max_attempts && attempts_ >= *options_.max_attempts;
    }

    /// The options this backoff was built with.
    const backoff_options& options() const noexcept { return options_; }

    /// The generator (to reseed it, or to share its state in tests).
    URBG& generator() noexcept { return generator_; }

private:
    backoff_options options_;
    URBG generator_;
    std::uint64_t initial_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t base_ = 0;      // un-jittered delay of the next attempt
    std::uint64_t previous_ = 0;  // last delay handed out (decorrelated jitter)
    std::size_t attempts_ = 0;
};

/// The common case: steady_clock durations, `std::minstd_rand` seeded from
/// std::random_device unless a generator is given.
using backoff = basic_backoff<>;

}  // namespace sluice
