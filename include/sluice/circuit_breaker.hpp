// sluice/circuit_breaker.hpp: a circuit breaker, and a keyed set of them, as pure
// state machines.
//
// Defines `sluice::circuit_state`, `sluice::call_outcome`, `sluice::trip_mode`,
// `sluice::circuit_breaker_options`, `sluice::circuit_breaker_counters`,
// `sluice::basic_circuit_breaker<Clock, URBG>` (alias `circuit_breaker`) and
// `sluice::basic_keyed_circuit_breaker<Key, Clock, URBG, Hash, KeyEqual>` (alias
// `keyed_circuit_breaker<Key>`).
//
// Guarantees: the breaker is closed, open or half-open. Closed, it grants every
// call and trips to open on N consecutive failures, or on a failure rate at or
// over a threshold within a count-based or time-based sliding window once that
// window holds a minimum number of calls; calls slower than an optional
// threshold count as failures. Open, it refuses every call with the time left
// until it may retry. Once the open duration (fixed, or growing with a backoff on
// repeated trips) has passed, it turns half-open and grants at most K trial
// calls: K successes close it, any failure reopens it. Results of calls granted
// before the last transition are not counted. No threads, no timers, no locks,
// no exceptions after construction; time comes in as `now` arguments.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <list>
#include <optional>
#include <random>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sluice/backoff.hpp>
#include <sluice/detail/throw.hpp>

namespace sluice {

/// The state of a circuit breaker. Thread-safety: a plain enumeration.
enum class circuit_state {
    closed,     ///< calls flow; outcomes are counted
    open,       ///< calls are refused until the open duration has passed
    half_open,  ///< at most K trial calls flow; their outcomes decide
};

/// `"closed"`, `"open"` or `"half_open"` (for logs and metric labels).
constexpr std::string_view to_string(circuit_state s) noexcept {
    switch (s) {
    case circuit_state::closed: return "closed";
    case circuit_state::open: return "open";
    case circuit_state::half_open: return "half_open";
    }
    return "closed";
}

/// What a call granted by a breaker came to.
enum class call_outcome {
    success,  ///< worked (still a failure if slower than `slow_call_threshold`)
    failure,  ///< failed in a way that says the upstream is unhealthy
    ignored,  ///< not made, cancelled, or failed for a reason that says nothing about the
              ///< upstream (a client's bad request): frees the permit, counts nowhere
};

/// When a closed breaker trips.
enum class trip_mode {
    consecutive_failures,  ///< `consecutive_failures` failures in a row
    count_window,          ///< failure rate over the last `window_size` calls
    time_window,           ///< failure rate over the calls of the last `window_duration`
};

/// The settings of a circuit breaker. A plain struct; every field has a default
/// and only the fields of the chosen `mode` are read.
///
/// Example: `sluice::circuit_breaker_options o; o.mode = sluice::trip_mode::count_window;`
struct circuit_breaker_options {
    /// How a closed breaker decides to trip. Default `consecutive_failures`.
    trip_mode mode = trip_mode::consecutive_failures;
    /// `consecutive_failures` mode: trip after this many failures in a row (>= 1). Default 5.
    std::size_t consecutive_failures = 5;
    /// Window modes: trip when failures * 100 >= threshold * calls, in percent,
    /// in (0, 100]. Default 50.
    double failure_rate_threshold = 50.0;
    /// Window modes: no trip while the window holds fewer calls (>= 1). Default 20.
    std::size_t minimum_calls = 20;
    /// `count_window` mode: the window is the last this many calls
    /// (>= `minimum_calls`). Default 100.
    std::size_t window_size = 100;
    /// `time_window` mode: the window spans this long (> 0). Default 10 s.
    std::chrono::nanoseconds window_duration = std::chrono::seconds(10);
    /// `time_window` mode: the window is kept as this many buckets of
    /// window_duration / window_buckets each (>= 1, width >= 1 ns); a call leaves
    /// the window between window_duration - width and window_duration after it
    /// was recorded. Default 10.
    std::size_t window_buckets = 10;
    /// Calls whose reported duration is over this count as failures, whatever
    /// their outcome. Empty (the default) disables slow-call detection.
    std::optional<std::chrono::nanoseconds> slow_call_threshold{};
    /// How long the breaker stays open after a trip (>= 0), when `open_backoff` is
    /// empty. Default 5 s.
    std::chrono::nanoseconds open_duration = std::chrono::seconds(5);
    /// When set, the open duration grows on repeated trips: the n-th trip since
    /// the breaker last closed stays open for the n-th delay of this backoff
    /// (jitter included; `max_attempts` is ignored). Closing resets it. Default empty.
    std::optional<backoff_options> open_backoff{};
    /// Half-open: how many trial calls are granted, and how many must succeed to
    /// close (>= 1). Default 1.
    std::size_t half_open_trials = 1;
    /// Half-open with every trial slot taken: the `retry_after` of a refusal
    /// (>= 0), since when the trials end is not known. Default 1 s.
    std::chrono::nanoseconds trial_retry_after = std::chrono::seconds(1);
};

/// Cumulative counts of one breaker since construction, for metrics. `reset()`
/// does not clear them.
struct circuit_breaker_counters {
    std::uint64_t permitted = 0;    ///< permits granted (half-open trials included)
    std::uint64_t refused = 0;      ///< permits refused (open, or trial slots taken)
    std::uint64_t successes = 0;    ///< counted successes (not slow)
    std::uint64_t failures = 0;     ///< counted failures (slow successes included)
    std::uint64_t slow_calls = 0;   ///< counted calls over `slow_call_threshold`
    std::uint64_t ignored = 0;      ///< records with `call_outcome::ignored`
    std::uint64_t stale = 0;        ///< records of permits granted before the last transition
    std::uint64_t opened = 0;       ///< transitions to open (trips)
    std::uint64_t half_opened = 0;  ///< transitions open -> half-open
    std::uint64_t closed = 0;       ///< transitions to closed (half-open successes, `reset()`)

    /// Adds `o` field by field (to aggregate breakers).
    circuit_breaker_counters& operator+=(const circuit_breaker_counters& o) noexcept {
        permitted += o.permitted;
        refused += o.refused;
        successes += o.successes;
        failures += o.failures;
        slow_calls += o.slow_calls;
        ignored += o.ignored;
        stale += o.stale;
        opened += o.opened;
        half_opened += o.half_opened;
        closed += o.closed;
        return *this;
    }
};

template <class Key, class Clock, class URBG, class Hash, class KeyEqual>
class basic_keyed_circuit_breaker;

namespace detail {

inline void validate(const circuit_breaker_options& o) {
    switch (o.mode) {
    case trip_mode::consecutive_failures:
        if (o.consecutive_failures == 0)
            throw_invalid_argument("circuit_breaker_options: consecutive_failures must be >= 1");
        break;
    case trip_mode::count_window:
    case trip_mode::time_window:
        if (!(o.failure_rate_threshold > 0.0 && o.failure_rate_threshold <= 100.0))
            throw_invalid_argument(
                "circuit_breaker_options: failure_rate_threshold must be in (0, 100]");
        if (o.minimum_calls == 0)
            throw_invalid_argument("circuit_breaker_options: minimum_calls must be >= 1");
        if (o.mode == trip_mode::count_window && o.window_size < o.minimum_calls)
            throw_invalid_argument("circuit_breaker_options: window_size must be >= minimum_calls");
        if (o.mode == trip_mode::time_window &&
            (o.window_buckets == 0 || o.window_duration.count() <= 0 ||
             static_cast<std::uint64_t>(o.window_duration.count()) < o.window_buckets))
            throw_invalid_argument(
                "circuit_breaker_options: window_duration must be > 0 and hold window_buckets "
                "buckets of >= 1 ns");
        break;
    default: throw_invalid_argument("circuit_breaker_options: unknown trip mode");
    }
    if (o.slow_call_threshold && o.slow_call_threshold->count() < 0)
        throw_invalid_argument("circuit_breaker_options: slow_call_threshold must be >= 0");
    if (o.open_duration.count() < 0)
        throw_invalid_argument("circuit_breaker_options: open_duration must be >= 0");
    if (o.half_open_trials == 0)
        throw_invalid_argument("circuit_breaker_options: half_open_trials must be >= 1");
    if (o.trial_retry_after.count() < 0)
        throw_invalid_argument("circuit_breaker_options: trial_retry_after must be >= 0");
}

/// SplitMix64's finalizer: turns a counter or a raw draw into a well-mixed seed.
constexpr std::uint64_t mix_seed(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

}  // namespace detail

/// A circuit breaker: ask `try_acquire()` before calling an upstream; if granted,
/// make the call and report it with `record(permit, outcome, duration)`; if
/// refused, `permit.retry_after()` says how long until asking again may succeed.
///
/// Every granted permit must be recorded once (with `call_outcome::ignored` if
/// the call was not made): an unrecorded half-open trial keeps its slot taken.
/// A permit granted before the breaker's last transition (or `reset()`) is
/// stale: recording it changes nothing but the `stale` counter, so a slow call
/// started while closed cannot close or reopen a half-open breaker.
///
/// The open -> half-open transition happens lazily, in the first
/// `try_acquire()` or `refresh()` at or after the end of the open duration.
///
/// `Clock` gives the time (inject a manual clock in tests); `URBG` is used only
/// by the jitter of `open_backoff` (default `std::minstd_rand`, seeded from
/// std::random_device when no generator is given and that jitter needs one).
///
/// Thread-safety: none. Use one breaker from one thread, or post every call to
/// one strand (`asio::post(strand, [&]{ auto p = breaker.try_acquire(); ... })`);
/// the state-change handler runs inside `try_acquire()`, `refresh()`, `record()`
/// or `reset()`, on that strand.
/// Complexity: O(1) per call, except O(window_buckets) per `record()` in
/// `time_window` mode; no allocation after construction.
///
/// Example (from tests/unit/circuit_breaker_test.cpp):
/// ```
/// sluice::circuit_breaker breaker;
/// if (auto permit = breaker.try_acquire()) {
///     bool ok = true;  // ... make the call ...
///     breaker.record(permit, ok ? sluice::call_outcome::success : sluice::call_outcome::failure,
///                    std::chrono::milliseconds(12));
/// } else {
///     auto wait = permit.retry_after();  // come back later
///     (void)wait;
/// }
/// ```
template <class Clock = std::chrono::steady_clock, class URBG = std::minstd_rand>
class basic_circuit_breaker {
public:
    using clock_type = Clock;                         ///< the clock type
    using duration = typename Clock::duration;        ///< the clock's duration
    using time_point = typename Clock::time_point;    ///< the clock's time point
    using generator_type = URBG;                      ///< the `open_backoff` jitter's generator
    using backoff_type = basic_backoff<Clock, URBG>;  ///< the `open_backoff` schedule
    /// Called after each state change with the old and the new state. It may read
    /// the breaker and call its members; it must not destroy it.
    using state_handler = std::function<void(circuit_state from, circuit_state to)>;

    /// The answer of `try_acquire()`: granted (true in a boolean context) or
    /// refused with a `retry_after()`. A small value; pass it back to `record()`.
    class permit {
    public:
        /// A refused permit with no retry hint.
        permit() = default;
        /// True when the call may be made.
        explicit operator bool() const noexcept { return granted_; }
        /// True when the call may be made.
        bool granted() const noexcept { return granted_; }
        /// When refused: how long until `try_acquire()` may grant again (the rest of
        /// the open duration, or `trial_retry_after` when the trial slots are
        /// taken). Zero when granted.
        duration retry_after() const noexcept { return retry_after_; }
        /// True for a half-open trial call.
        bool is_trial() const noexcept { return trial_; }

    private:
        friend class basic_circuit_breaker;
        std::uint64_t generation_ = 0;
        duration retry_after_{};
        bool granted_ = false;
        bool trial_ = false;
    };

    /// A closed breaker. Throws `std::invalid_argument` (aborts under
    /// -fno-exceptions) on invalid options.
    explicit basic_circuit_breaker(circuit_breaker_options options = {})
        : basic_circuit_breaker(options, detail::make_seeded_generator<URBG>(
                                             options.open_backoff &&
                                             options.open_backoff->jitter != jitter_mode::none)) {}

    /// A closed breaker whose `open_backoff` jitter draws from `generator`.
    basic_circuit_breaker(circuit_breaker_options options, URBG generator)
        : options_(std::move(options)) {
        detail::validate(options_);
        if (options_.open_backoff) {
            backoff_options b = *options_.open_backoff;
            b.max_attempts.reset();
            open_backoff_.emplace(b, std::move(generator));
        }
        if (options_.mode == trip_mode::count_window) {
            outcomes_.assign((options_.window_size + 63) / 64, 0);
        } else if (options_.mode == trip_mode::time_window) {
            buckets_.assign(options_.window_buckets, bucket{});
            bucket_width_ = options_.window_duration.count() /
                            static_cast<std::int64_t>(options_.window_buckets);
        }
        clear_window();
    }

    /// Asks to make one call at `now`. Closed: granted. Open: refused with the time
    /// left (turning half-open first if the open duration is over). Half-open:
    /// granted as a trial while fewer than `half_open_trials` trials are out,
    /// else refused with `trial_retry_after`. O(1).
    permit try_acquire(time_point now = Clock::now()) {
        refresh(now);
        permit p;
        switch (state_) {
        case circuit_state::closed: break;
        case circuit_state::open:
            ++counters_.refused;
            p.retry_after_ = open_until_ - now;
            return p;
        case circuit_state::half_open:
            if (trials_out_ + trial_successes_ >= options_.half_open_trials) {
                ++counters_.refused;
                p.retry_after_ = std::chrono::duration_cast<duration>(options_.trial_retry_after);
                return p;
            }
            ++trials_out_;
            p.trial_ = true;
            break;
        }
        ++counters_.permitted;
        p.granted_ = true;
        p.generation_ = generation_;
        return p;
    }

    /// Reports the outcome of a granted call that took `elapsed` (compared with
    /// `slow_call_threshold`), at `now` (placed in the time window). A refused or
    /// stale permit changes nothing but the counters. Returns the state after.
    /// O(1), O(window_buckets) in `time_window` mode.
    circuit_state record(const permit& p, call_outcome outcome, duration elapsed = duration::zero(),
                         time_point now = Clock::now()) {
        if (!p.granted_) return state_;
        if (p.generation_ != generation_) {
            ++counters_.stale;
            return state_;
        }
        if (outcome == call_outcome::ignored) {
            ++counters_.ignored;
            if (state_ == circuit_state::half_open && trials_out_ > 0) --trials_out_;
            return state_;
        }
        const bool slow = options_.slow_call_threshold && elapsed > *options_.slow_call_threshold;
        if (slow) ++counters_.slow_calls;
        const bool failed = outcome == call_outcome::failure || slow;
        if (failed) {
            ++counters_.failures;
        } else {
            ++counters_.successes;
        }
        if (state_ == circuit_state::half_open) {
            if (trials_out_ > 0) --trials_out_;
            if (failed) {
                transition(circuit_state::open, now);
            } else if (++trial_successes_ >= options_.half_open_trials) {
                transition(circuit_state::closed, now);
            }
        } else if (state_ == circuit_state::closed && closed_outcome(failed, now)) {
            transition(circuit_state::open, now);
        }
        return state_;
    }

    /// The state as of the last call (without applying the passage of time).
    circuit_state state() const noexcept { return state_; }

    /// Applies the open -> half-open transition due at `now`, if any, and
    /// returns the state.
    circuit_state refresh(time_point now = Clock::now()) {
        if (state_ == circuit_state::open && now >= open_until_)
            transition(circuit_state::half_open, now);
        return state_;
    }

    /// When open: the time at which it turns half-open.
    time_point open_until() const noexcept { return open_until_; }

    /// Trips since the breaker last closed (0 while closed): how far the
    /// `open_backoff` has grown.
    std::size_t consecutive_trips() const noexcept { return consecutive_trips_; }

    /// Back to closed with an empty window and a reset `open_backoff`; permits
    /// granted before become stale. Calls the handler if the state changes.
    void reset(time_point now = Clock::now()) {
        if (state_ != circuit_state::closed) {
            transition(circuit_state::closed, now);
        } else {
            ++generation_;
            clear_window();
        }
    }

    /// Sets the handler called after each state change (an empty one removes it).
    void on_state_change(state_handler handler) { handler_ = std::move(handler); }

    /// Cumulative counts since construction.
    const circuit_breaker_counters& counters() const noexcept { return counters_; }

    /// The options this breaker was built with.
    const circuit_breaker_options& options() const noexcept { return options_; }

private:
    template <class, class, class, class, class>
    friend class basic_keyed_circuit_breaker;

    struct bucket {
        std::int64_t epoch = std::numeric_limits<std::int64_t>::min();
        std::uint64_t calls = 0;
        std::uint64_t failures = 0;
    };

    bool rate_trips(std::uint64_t calls, std::uint64_t failures) const noexcept {
        return calls >= options_.minimum_calls &&
               static_cast<double>(failures) * 100.0 >=
                   options_.failure_rate_threshold * static_cast<double>(calls);
    }

    // Counts one outcome while closed; true when the breaker must trip.
    bool closed_outcome(bool failed, time_point now) {
        switch (options_.mode) {
        case trip_mode::consecutive_failures:
            consecutive_failures_ = failed ? consecutive_failures_ + 1 : 0;
            return consecutive_failures_ >= options_.consecutive_failures;
        case trip_mode::count_window: {
            std::uint64_t& word = outcomes_[next_slot_ / 64];
            const std::uint64_t bit = std::uint64_t{1} << (next_slot_ % 64);
            if (window_calls_ == options_.window_size) {
                if (word & bit) --window_failures_;
            } else {
                ++window_calls_;
            }
            if (failed) {
                word |= bit;
                ++window_failures_;
            } else {
                word &= ~bit;
            }
            if (++next_slot_ == options_.window_size) next_slot_ = 0;
            return rate_trips(window_calls_, window_failures_);
        }
        case trip_mode::time_window: {
            const auto t =
                std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch())
                    .count();
            std::int64_t epoch = t / bucket_width_;
            if (t % bucket_width_ < 0) --epoch;
            const auto n = static_cast<std::int64_t>(buckets_.size());
            bucket& b = buckets_[static_cast<std::size_t>(((epoch % n) + n) % n)];
            if (b.epoch != epoch) b = bucket{epoch, 0, 0};
            ++b.calls;
            if (failed) ++b.failures;
            std::uint64_t calls = 0;
            std::uint64_t failures = 0;
            for (const bucket& x : buckets_) {
                if (x.epoch <= epoch && x.epoch > epoch - n) {
                    calls += x.calls;
                    failures += x.failures;
                }
            }
            return rate_trips(calls, failures);
        }
        }
        return false;
    }

    void clear_window() noexcept {
        consecutive_failures_ = 0;
        window_calls_ = 0;
        window_failures_ = 0;
        next_slot_ = 0;
        for (auto& w : outcomes_) w = 0;
        for (auto& b : buckets_) b = bucket{};
    }

    void transition(circuit_state to, time_point now) {
        const circuit_state from = state_;
        state_ = to;
        ++generation_;
        trials_out_ = 0;
        trial_successes_ = 0;
        switch (to) {
        case circuit_state::open: {
            ++counters_.opened;
            ++consecutive_trips_;
            const std::chrono::nanoseconds d =
                open_backoff_ ? std::chrono::nanoseconds(*open_backoff_->next())
                              : options_.open_duration;
            open_until_ = now + std::chrono::duration_cast<duration>(d);
            break;
        }
        case circuit_state::half_open: ++counters_.half_opened; break;
        case circuit_state::closed:
            ++counters_.closed;
            consecutive_trips_ = 0;
            if (open_backoff_) open_backoff_->reset();
            break;
        }
        clear_window();
        if (handler_) handler_(from, to);
    }

    circuit_breaker_options options_;
    std::optional<backoff_type> open_backoff_;
    state_handler handler_;
    circuit_breaker_counters counters_;
    std::vector<std::uint64_t> outcomes_;  // count window: one bit per call, 1 = failure
    std::vector<bucket> buckets_;          // time window
    std::int64_t bucket_width_ = 1;        // ns
    time_point open_until_{};
    std::uint64_t generation_ = 0;
    std::size_t consecutive_failures_ = 0;
    std::size_t window_calls_ = 0;
    std::size_t window_failures_ = 0;
    std::size_t next_slot_ = 0;
    std::size_t trials_out_ = 0;
    std::size_t trial_successes_ = 0;
    std::size_t consecutive_trips_ = 0;
    circuit_state state_ = circuit_state::closed;
};

/// The common case: steady_clock, `std::minstd_rand`.
using circuit_breaker = basic_circuit_breaker<>;

/// One circuit breaker per key (an upstream host, a shard, a topic prefix),
/// created on first use, with at most `max_keys` kept: creating one more evicts
/// the least recently used (by `try_acquire()` or `record()`) breaker, whatever
/// its state; an evicted key starts again closed.
///
/// Each breaker gets its own generator for `open_backoff` jitter: a fresh
/// `URBG` seeded from a draw of the set's generator (mixed by SplitMix64) when
/// `URBG` takes a seed, else a copy of the set's generator.
///
/// Memory: O(max_keys) breakers, each about sizeof(breaker_type) + two copies of
/// the key + the window (window_size / 8 bytes, or 24 bytes per bucket).
/// Thread-safety: none; as `basic_circuit_breaker` (one thread or one strand).
/// Complexity: O(1) average per call (one hash lookup), plus the breaker's cost.
///
/// Example (from tests/unit/circuit_breaker_test.cpp):
/// ```
/// sluice::keyed_circuit_breaker<std::string> breakers(sluice::circuit_breaker_options{}, 256);
/// auto permit = breakers.try_acquire("redis-a");
/// if (permit) breakers.record("redis-a", permit, sluice::call_outcome::success);
/// ```
template <class Key, class Clock = std::chrono::steady_clock, class URBG = std::minstd_rand,
          class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
class basic_keyed_circuit_breaker {
public:
    using key_type = Key;                                     ///< the key type
    using breaker_type = basic_circuit_breaker<Clock, URBG>;  ///< one key's breaker
    using permit = typename breaker_type::permit;             ///< what `try_acquire` returns
    using duration = typename Clock::duration;                ///< the clock's duration
    using time_point = typename Clock::time_point;            ///< the clock's time point
    /// Called after a breaker changes state, with its key.
    using state_handler = std::function<void(const Key& key, circuit_state from, circuit_state to)>;

    /// Breakers built from `options`, at most `max_keys` (>= 1) of them; the set's
    /// generator is seeded from std::random_device when jitter needs it.
    explicit basic_keyed_circuit_breaker(circuit_breaker_options options = {},
                                         std::size_t max_keys = 1024)
        : basic_keyed_circuit_breaker(
              options, max_keys,
              detail::make_seeded_generator<URBG>(
                  options.open_backoff && options.open_backoff->jitter != jitter_mode::none)) {}

    /// As above, with the set's generator given (seed it for reproducible jitter).
    basic_keyed_circuit_breaker(circuit_breaker_options options, std::size_t max_keys,
                                URBG generator)
        : options_(std::move(options)), max_keys_(max_keys), generator_(std::move(generator)) {
        detail::validate(options_);
        if (max_keys_ == 0) throw_invalid_argument_max_keys();
    }

    /// `try_acquire()` on the breaker of `key`, creating it (closed) if needed.
    permit try_acquire(const Key& key, time_point now = Clock::now()) {
        entry& e = touch_or_create(key);
        const circuit_state before = e.breaker.state();
        permit p = e.breaker.try_acquire(now);
        notify(e, before);
        return p;
    }

    /// `record()` on the breaker of `key`. Returns its state after; for a key no
    /// longer tracked (evicted or erased) nothing is recorded and `closed` is
    /// returned, the state a new breaker would start in.
    circuit_state record(const Key& key, const permit& p, call_outcome outcome,
                         duration elapsed = duration::zero(), time_point now = Clock::now()) {
        auto it = index_.find(key);
        if (it == index_.end()) return circuit_state::closed;
        lru_.splice(lru_.begin(), lru_, it->second);
        entry& e = *it->second;
        const circuit_state before = e.breaker.state();
        const circuit_state after = e.breaker.record(p, outcome, elapsed, now);
        notify(e, before);
        return after;
    }

    /// The state of the breaker of `key`, or empty when the key is not tracked.
    std::optional<circuit_state> state(const Key& key) const {
        const breaker_type* b = find(key);
        if (!b) return std::nullopt;
        return b->state();
    }

    /// The breaker of `key`, or nullptr (does not count as a use).
    const breaker_type* find(const Key& key) const {
        auto it = index_.find(key);
        return it == index_.end() ? nullptr : &it->second->breaker;
    }

    /// Forgets the breaker of `key`; true if there was one.
    bool erase(const Key& key) {
        auto it = index_.find(key);
        if (it == index_.end()) return false;
        retire(it->second);
        index_.erase(it);
        return true;
    }

    /// Forgets every breaker.
    void clear() {
        for (auto it = lru_.begin(); it != lru_.end();) retire(it++);
        index_.clear();
    }

    /// How many breakers are kept (<= max_keys()).
    std::size_t size() const noexcept { return index_.size(); }
    /// The bound given at construction.
    std::size_t max_keys() const noexcept { return max_keys_; }
    /// How many breakers were evicted to make room.
    std::uint64_t evictions() const noexcept { return evictions_; }

    /// The counters of every breaker, kept and forgotten, added up. O(size()).
    circuit_breaker_counters counters() const {
        circuit_breaker_counters sum = retired_;
        for (const entry& e : lru_) sum += e.breaker.counters();
        return sum;
    }

    /// Sets the handler called after any breaker changes state.
    void on_state_change(state_handler handler) { handler_ = std::move(handler); }

private:
    struct entry {
        Key key;
        breaker_type breaker;
    };
    using list_type = std::list<entry>;

    [[noreturn]] static void throw_invalid_argument_max_keys() {
        detail::throw_invalid_argument("keyed_circuit_breaker: max_keys must be >= 1");
    }

    URBG next_generator() {
        if constexpr (std::is_constructible<URBG, typename URBG::result_type>::value) {
            const auto raw = static_cast<std::uint64_t>(generator_());
            return URBG(static_cast<typename URBG::result_type>(detail::mix_seed(raw ^ created_)));
        } else {
            return generator_;
        }
    }

    entry& touch_or_create(const Key& key) {
        auto it = index_.find(key);
        if (it != index_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second);
            return *it->second;
        }
        if (index_.size() >= max_keys_) {
            auto victim = std::prev(lru_.end());
            index_.erase(victim->key);
            retire(victim);
            ++evictions_;
        }
        lru_.push_front(entry{key, breaker_type(options_, next_generator())});
        // Distinct generations per breaker, so a permit of an evicted breaker is
        // stale for its successor.
        lru_.front().breaker.generation_ = ++created_ << 32;
        index_.emplace(key, lru_.begin());
        return lru_.front();
    }

    void retire(typename list_type::iterator it) {
        retired_ += it->breaker.counters();
        lru_.erase(it);
    }

    void notify(const entry& e, circuit_state before) {
        const circuit_state after = e.breaker.state();
        if (after != before && handler_) handler_(e.key, before, after);
    }

    circuit_breaker_options options_;
    std::size_t max_keys_;
    URBG generator_;
    list_type lru_;  // most recently used first
    std::unordered_map<Key, typename list_type::iterator, Hash, KeyEqual> index_;
    state_handler handler_;
    circuit_breaker_counters retired_;
    std::uint64_t created_ = 0;
    std::uint64_t evictions_ = 0;
};

/// The common case: steady_clock, `std::minstd_rand`, std::hash.
template <class Key>
using keyed_circuit_breaker = basic_keyed_circuit_breaker<Key>;

}  // namespace sluice
