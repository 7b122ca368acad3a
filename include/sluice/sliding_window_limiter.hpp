// sluice/sliding_window_limiter.hpp: sliding-window rate limiters as pure state
// machines.
//
// Defines `sluice::sliding_window_options`, `sluice::acquire_result`, two limiters
// with the same interface:
//   - `basic_sliding_log_limiter<Clock>` (alias `sliding_log_limiter`): exact; it
//     keeps the time of every counted permit in a ring of `limit` entries;
//   - `basic_sliding_counter_limiter<Clock>` (alias `sliding_counter_limiter`):
//     approximate; two fixed-window counters weighted, O(1) memory;
// and `basic_keyed_limiter<Limiter, Key, Hash, KeyEqual>` (alias `keyed_limiter`):
// one limiter per key (client IP, connection, topic) with a bounded key count.
//
// Guarantees: a refused request is never counted; `retry_after` is the exact
// earliest time at which the same request would be allowed if nothing else is
// counted meanwhile; memory is fixed at construction (limiters) or bounded by
// `max_keys` (keyed limiter); nothing throws after construction, bad options are
// reported with `detail::throw_invalid_argument`. No threads, no locks, no timers:
// time comes in as `now` arguments that default to `Clock::now()`.
//
// Thread-safety: none of these types is thread-safe. Call each object from one
// thread or one strand (a per-connection limiter from that connection's strand; a
// keyed limiter shared by all connections from one strand, or behind the host's
// own mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <sluice/detail/limiter_ring.hpp>
#include <sluice/detail/throw.hpp>
#include <sluice/error.hpp>

namespace sluice {

/// The settings of a sliding-window limiter: at most `limit` permits in any
/// window of length `window`. A plain struct; the defaults are PROTOCOL.md 3.3's
/// per-connection inbound limit, 100 per 1 s.
///
/// A permit counted at time `t` is in the window at `now` while `now - t < window`:
/// it leaves exactly at `t + window`.
///
/// Example: `sluice::sliding_window_options o{50, std::chrono::seconds(10)};`
struct sliding_window_options {
    /// Permits per window. Must be >= 1 (and at most `max_log_limit` for the exact
    /// limiter, whose memory grows with it). Default 100.
    std::uint32_t limit = 100;
    /// The window length. Must be > 0; rounded up to the clock's tick, and at most
    /// 2^61 ticks. Default 1 s.
    std::chrono::nanoseconds window = std::chrono::seconds(1);
};

/// The largest `limit` the exact limiter accepts: its ring then takes 64 MiB
/// (compact) or 128 MiB. The approximate limiter takes any `uint32_t`.
inline constexpr std::uint32_t max_log_limit = std::uint32_t{1} << 24;

/// What `try_acquire` decided.
enum class acquire_status : std::uint8_t {
    allowed,        ///< the permits were counted in the window
    refused,        ///< over the limit now; nothing was counted; see `retry_after`
    exceeds_limit,  ///< more permits than `limit` at once: can never be allowed
};

/// The result of `try_acquire`: allowed, or refused with the time to wait.
///
/// `retry_after` is zero when allowed; when refused it is the exact time after
/// which the same request would be allowed if nothing else were counted meanwhile
/// (rounded up to whole nanoseconds); `nanoseconds::max()` for `exceeds_limit`.
/// Round it up again when converting for the wire (`std::chrono::ceil` to
/// milliseconds for `retry_after_ms`, to seconds for HTTP `Retry-After`), so that a
/// client who waits the advertised time is never early.
///
/// Example: `if (auto r = lim.try_acquire(); !r) reply_429(r.retry_after);`
struct acquire_result {
    acquire_status status = acquire_status::allowed;  ///< the verdict
    std::chrono::nanoseconds retry_after{0};          ///< the wait before retrying (see above)

    /// True when the permits were counted.
    constexpr bool allowed() const noexcept { return status == acquire_status::allowed; }
    /// Same as `allowed()`.
    constexpr explicit operator bool() const noexcept { return allowed(); }
    /// No error when allowed, else `errc::rate_limited`.
    std::error_code error() const noexcept {
        return allowed() ? std::error_code{} : make_error_code(errc::rate_limited);
    }
};

namespace detail {

inline constexpr std::int64_t limiter_max_window_ticks = std::int64_t{1} << 61;

inline constexpr acquire_result limiter_exceeds() noexcept {
    return {acquire_status::exceeds_limit, std::chrono::nanoseconds::max()};
}

template <class Clock>
std::int64_t limiter_window_ticks(const sliding_window_options& options) {
    using duration = typename Clock::duration;
    static_assert(std::is_integral_v<typename duration::rep> && sizeof(typename duration::rep) <= 8,
                  "the limiters need a clock with an integral tick count of at most 64 bits");
    if (options.limit == 0) throw_invalid_argument("sliding_window_options: limit must be >= 1");
    if (options.window <= std::chrono::nanoseconds::zero())
        throw_invalid_argument("sliding_window_options: window must be > 0");
    const auto window = std::chrono::ceil<duration>(options.window);
    if (window.count() <= 0 || static_cast<std::int64_t>(window.count()) > limiter_max_window_ticks)
        throw_invalid_argument("sliding_window_options: window out of range for the clock");
    return static_cast<std::int64_t>(window.count());
}

}  // namespace detail

/// The exact sliding-log limiter: allows a request of `n` permits iff the
/// permits counted in the window ending at `now` plus `n` are at most `limit`.
///
/// It keeps the time of each counted permit in a ring of `limit` entries
/// allocated once at construction; refused requests are not recorded, so the
/// ring never overflows. Compact representation: when the window is at most 2^31
/// clock ticks (2.1 s with nanosecond clocks such as `steady_clock`, so the
/// per-connection 1 s window qualifies) each entry takes 4 bytes instead of 8;
/// see `memory_bytes()`. 100 permits per 1 s therefore cost a 400-byte ring plus
/// the object (about 56 bytes).
///
/// Complexity: `try_acquire(n)` is O(1) amortized plus O(n) when allowed (each
/// permit is written once and expires once); a refusal is O(1). Compare the naive
/// vector filter, O(limit) on every call.
///
/// `now` must not go backwards; an earlier `now` is treated as the time of the
/// newest counted permit.
///
/// Thread-safety: not thread-safe; call from one strand. Copyable (deep copy).
///
/// Example:
/// ```
/// sluice::sliding_log_limiter per_connection;  // 100 per 1 s
/// if (auto r = per_connection.try_acquire(); !r) send_rate_limited(r.retry_after);
/// ```
template <class Clock = std::chrono::steady_clock>
class basic_sliding_log_limiter {
public:
    using clock_type = Clock;                       ///< the clock type
    using duration = typename Clock::duration;      ///< the clock's duration
    using time_point = typename Clock::time_point;  ///< the clock's time point

    /// Validates `options` (limit in [1, `max_log_limit`], window > 0) with
    /// `detail::throw_invalid_argument` and allocates the ring.
    explicit basic_sliding_log_limiter(const sliding_window_options& options = {})
        : window_(detail::limiter_window_ticks<Clock>(options)),
          ring_(checked_limit(options.limit), window_ <= (std::int64_t{1} << 31)) {}

    /// Counts `n` permits at `now` if that keeps the window at or under the limit.
    ///
    /// `n == 0` is allowed and counts nothing. `n > limit()` gives
    /// `exceeds_limit`. When refused, `retry_after` is the time until enough
    /// counted permits leave the window: for `n == 1` until the oldest leaves.
    acquire_result try_acquire(std::uint32_t n = 1, time_point now = Clock::now()) noexcept {
        if (n == 0) return {};
        if (n > ring_.capacity()) return detail::limiter_exceeds();
        const std::int64_t t = expire(detail::limiter_ticks(now));
        const std::uint32_t counted = ring_.size();
        if (counted <= ring_.capacity() - n) {
            ring_.push_back(t, n);
            newest_ = t;
            return {};
        }
        // The (counted + n - limit)-th oldest permit must leave first.
        const std::uint32_t oldest_to_leave = counted - (ring_.capacity() - n) - 1;
        const std::int64_t wait = window_ - ring_.age(oldest_to_leave, t);
        return {acquire_status::refused, detail::limiter_to_ns<duration>(wait)};
    }

    /// The permits counted in the window ending at `now`. O(log limit); does not
    /// change the state.
    std::uint32_t count(time_point now = Clock::now()) const noexcept {
        const std::int64_t t = std::max(detail::limiter_ticks(now), newest_);
        if (ring_.size() == 0 || t - newest_ >= window_) return 0;
        std::uint32_t lo = 0, hi = ring_.size();  // the first entry still in the window
        while (lo < hi) {
            const std::uint32_t mid = lo + (hi - lo) / 2;
            if (ring_.age(mid, t) >= window_)
                lo = mid + 1;
            else
                hi = mid;
        }
        return ring_.size() - lo;
    }

    /// True when nothing is counted at `now`: the limiter is then equivalent to a
    /// freshly constructed one. O(1).
    bool idle(time_point now = Clock::now()) const noexcept {
        return ring_.size() == 0 || detail::limiter_ticks(now) - newest_ >= window_;
    }

    /// Forgets every counted permit; keeps the ring (no allocation).
    void reset() noexcept { ring_.clear(); }

    /// The permits allowed per window.
    std::uint32_t limit() const noexcept { return ring_.capacity(); }
    /// The window length, in the clock's ticks.
    duration window() const noexcept {
        return duration(static_cast<typename duration::rep>(window_));
    }
    /// Bytes this limiter holds on the heap: 4 * limit (compact) or 8 * limit.
    std::size_t memory_bytes() const noexcept { return ring_.memory_bytes(); }
    /// True when entries take 4 bytes (window of at most 2^31 ticks).
    bool compact() const noexcept { return ring_.compact(); }

private:
    static std::uint32_t checked_limit(std::uint32_t limit) {
        if (limit > max_log_limit)
            detail::throw_invalid_argument("sliding_window_options: limit above max_log_limit");
        return limit;
    }

    // Drops the permits that left the window by `t`; returns `t`, clamped so
    // that time never runs backwards.
    std::int64_t expire(std::int64_t t) noexcept {
        if (ring_.size() == 0) return t;
        if (t < newest_) t = newest_;
        if (t - newest_ >= window_) {
            ring_.clear();  // also keeps compact ages below 2^32 ticks
            return t;
        }
        while (ring_.age(0, t) >= window_) ring_.pop_front();  // the newest one stays
        return t;
    }

    std::int64_t window_;
    std::int64_t newest_ = 0;  // the tick of the newest counted permit
    detail::limiter_tick_ring ring_;
};

/// The approximate sliding-window counter: counts permits in fixed windows
/// `[k * window, (k + 1) * window)` of the clock's epoch and estimates the
/// sliding window at `now = k * window + e` as
/// `previous * (window - e) / window + current`, assuming the previous window's
/// permits were spread evenly. Allows `n` permits iff `estimate + n <= limit`.
/// 32 bytes of state, no heap memory, O(1) per call.
///
/// Bound: when a permit is counted at `t`, the true number of permits in the
/// sliding window `(t - window, t]` is at most `limit + floor(previous * e /
/// window)` (windows under 2^32 ticks), and always at most `2 * limit - 1`; each
/// fixed window holds at most `limit`.
/// With evenly spread traffic the estimate is close to the true count. It can
/// also refuse a little early (when the previous window's permits came early in
/// it). Use the exact `basic_sliding_log_limiter` where the limit is a contract.
///
/// Arithmetic is integer and exact for windows under 2^32 ticks (4.29 s with
/// nanosecond clocks); longer windows measure `e` in steps of
/// `window / 2^32` or finer.
///
/// `now` must not go backwards; an earlier `now` in a past fixed window is
/// treated as the start of the current one (the most restrictive moment).
///
/// Thread-safety: not thread-safe; call from one strand. Trivially copyable.
///
/// Example:
/// ```
/// sluice::sliding_counter_limiter topic_publishes({1000, std::chrono::seconds(1)});
/// if (!topic_publishes.try_acquire()) return sluice::errc::rate_limited;
/// ```
template <class Clock = std::chrono::steady_clock>
class basic_sliding_counter_limiter {
public:
    using clock_type = Clock;                       ///< the clock type
    using duration = typename Clock::duration;      ///< the clock's duration
    using time_point = typename Clock::time_point;  ///< the clock's time point

    /// Validates `options` (limit >= 1, window > 0) with
    /// `detail::throw_invalid_argument`.
    explicit basic_sliding_counter_limiter(const sliding_window_options& options = {})
        : window_(detail::limiter_window_ticks<Clock>(options)), limit_(options.limit) {
        while ((static_cast<std::uint64_t>(window_) >> shift_) > 0xFFFFFFFFu) ++shift_;
    }

    /// Counts `n` permits at `now` if the estimate stays at or under the limit.
    ///
    /// `n == 0` is allowed and counts nothing; `n > limit()` gives
    /// `exceeds_limit`. When refused, `retry_after` is exact for this algorithm:
    /// the same request is refused until then and allowed from then on, if
    /// nothing else is counted meanwhile.
    acquire_result try_acquire(std::uint32_t n = 1, time_point now = Clock::now()) noexcept {
        if (n == 0) return {};
        if (n > limit_) return detail::limiter_exceeds();
        const std::int64_t e = roll(detail::limiter_ticks(now));
        const std::uint64_t scaled = scaled_window();
        const std::uint64_t prev = previous_, curr = current_, limit = limit_;
        if (curr + n <= limit) {
            const std::uint64_t room = limit - curr - n;
            const std::uint64_t weight = scaled - scaled_offset(e);
            if (prev * weight <= room * scaled) {
                current_ += n;
                return {};
            }
            // Wait until the previous window's weight is low enough.
            const std::uint64_t target = scaled - room * scaled / prev;
            return refused(offset_of(target) - e);
        }
        // Not before the next window, where `current` becomes the previous one.
        const std::uint64_t room = limit - n;
        std::int64_t into_next = 0;
        if (curr > room) into_next = offset_of(scaled - room * scaled / curr);
        return refused(window_ - e + into_next);
    }

    /// True when nothing counted is left at `now` (the estimate is zero): the
    /// limiter is then equivalent to a freshly constructed one. O(1).
    bool idle(time_point now = Clock::now()) const noexcept {
        if (index_ == no_index) return true;
        const std::int64_t k = window_index(detail::limiter_ticks(now));
        if (k <= index_) return previous_ == 0 && current_ == 0;
        return k - index_ >= 2 || current_ == 0;
    }

    /// Forgets every counted permit.
    void reset() noexcept {
        index_ = no_index;
        previous_ = 0;
        current_ = 0;
    }

    /// The permits allowed per window.
    std::uint32_t limit() const noexcept { return limit_; }
    /// The window length, in the clock's ticks.
    duration window() const noexcept {
        return duration(static_cast<typename duration::rep>(window_));
    }
    /// Bytes this limiter holds on the heap: always 0.
    std::size_t memory_bytes() const noexcept { return 0; }

private:
    static constexpr std::int64_t no_index = std::numeric_limits<std::int64_t>::min();

    std::int64_t window_index(std::int64_t t) const noexcept {
        std::int64_t e = t % window_;
        if (e < 0) e += window_;
        return (t - e) / window_;
    }

    // Moves the counters to the fixed window holding `t`; returns the offset of
    // `t` into it.
    std::int64_t roll(std::int64_t t) noexcept {
        std::int64_t e = t % window_;
        if (e < 0) e += window_;
        const std::int64_t k = (t - e) / window_;
        if (index_ == no_index) {
            index_ = k;
        } else if (k < index_) {
            return 0;  // time went backwards: the start of the current window
        } else if (k != index_) {
            previous_ = (k - index_ == 1) ? current_ : 0;
            current_ = 0;
            index_ = k;
        }
        return e;
    }

    std::uint64_t scaled_window() const noexcept {
        return static_cast<std::uint64_t>(window_) >> shift_;
    }
    // The offset in scaled units, below `scaled_window()` so that the previous
    // window always weighs at least one unit while it lasts.
    std::uint64_t scaled_offset(std::int64_t e) const noexcept {
        return std::min(static_cast<std::uint64_t>(e) >> shift_, scaled_window() - 1);
    }
    // The first offset (in ticks) whose scaled offset is `target`; the end of
    // the window when no offset inside it is.
    std::int64_t offset_of(std::uint64_t target) const noexcept {
        return target < scaled_window() ? static_cast<std::int64_t>(target << shift_) : window_;
    }
    static acquire_result refused(std::int64_t wait) noexcept {
        return {acquire_status::refused, detail::limiter_to_ns<duration>(wait)};
    }

    std::int64_t window_;
    std::int64_t index_ = no_index;  // the fixed window `current_` counts
    std::uint32_t limit_;
    std::uint32_t previous_ = 0;
    std::uint32_t current_ = 0;
    std::uint32_t shift_ = 0;  // window_ >> shift_ fits in 32 bits
};

/// The exact limiter on `std::chrono::steady_clock`.
using sliding_log_limiter = basic_sliding_log_limiter<>;
/// The approximate limiter on `std::chrono::steady_clock`.
using sliding_counter_limiter = basic_sliding_counter_limiter<>;

/// The settings of a `basic_keyed_limiter`. The defaults are PROTOCOL.md 3.3's
/// new connections per client IP: 50 per 10 s, for at most 10,000 keys.
///
/// Example: `sluice::keyed_limiter_options o; o.max_keys = 100000;`
struct keyed_limiter_options {
    /// The limit each key gets. Default 50 per 10 s.
    sliding_window_options per_key{50, std::chrono::seconds(10)};
    /// The most keys held at once. Must be >= 1. Default 10,000. The hash table
    /// is sized for it at construction.
    std::size_t max_keys = 10000;
};

/// Counters of a `basic_keyed_limiter`, for metrics.
struct keyed_limiter_stats {
    /// Keys added (a first counted request, or one after eviction).
    std::uint64_t keys_created = 0;
    /// Keys dropped while idle: lossless, an idle key equals a new one.
    std::uint64_t evicted_idle = 0;
    /// Keys dropped to make room while still counting permits: such a key starts
    /// over if it comes back. If this grows, `max_keys` is too small for the
    /// traffic (or the traffic is a flood of distinct keys).
    std::uint64_t evicted_active = 0;

    /// All evictions.
    std::uint64_t evicted() const noexcept { return evicted_idle + evicted_active; }
};

/// One limiter per key (client IP, connection id, topic) with at most
/// `max_keys` keys, so a flood of distinct keys cannot exhaust memory.
///
/// Keys are kept in a hash map plus an intrusive list ordered by the time of
/// their last counted request. A new key that finds the table full takes the
/// place of the key at the list's tail, which is the best victim: if any key is
/// idle (its window is empty, so dropping it loses nothing) the tail is; if none
/// is, the tail is the key whose window empties first (least recently counted).
/// Each call also drops the tail if it is idle, so the table drains when traffic
/// falls; `evict_idle()` drains it all at once. A refused request does not count
/// and does not refresh its key. A key is created only when a request is allowed:
/// refused ones (`n > limit`) leave no trace.
///
/// Complexity: O(1) average per call (one hash lookup, at most one eviction),
/// plus the limiter's own cost. Memory: at most `max_keys` entries, each the key,
/// the limiter and two pointers in a hash node (the exact limiter adds its ring:
/// 50 per 10 s on `steady_clock` is 400 bytes), plus a bucket array sized once
/// for `max_keys`. Evicting to make room reuses the victim's node: once full, the
/// table allocates nothing.
///
/// `Limiter` is `basic_sliding_log_limiter<C>` or `basic_sliding_counter_limiter<C>`,
/// or any type with their constructor from `sliding_window_options` and their
/// `try_acquire(n, now)`, `idle(now)` and `reset()`.
///
/// Thread-safety: not thread-safe; call from one strand. Movable, not copyable.
///
/// Example:
/// ```
/// sluice::keyed_limiter<std::string> per_ip;  // 50 new connections per 10 s per IP
/// if (auto r = per_ip.try_acquire(remote_ip); !r) reply_429(r.retry_after);
/// ```
template <class Limiter, class Key, class Hash = std::hash<Key>,
          class KeyEqual = std::equal_to<Key>>
class basic_keyed_limiter {
public:
    using limiter_type = Limiter;                     ///< one key's limiter
    using key_type = Key;                             ///< the key type
    using clock_type = typename Limiter::clock_type;  ///< the limiters' clock type
    using time_point = typename Limiter::time_point;  ///< the clock's time point

    /// Validates `options` (per-key limit and window as for `Limiter`, max_keys
    /// >= 1) with `detail::throw_invalid_argument` and sizes the hash table.
    explicit basic_keyed_limiter(const keyed_limiter_options& options = {})
        : per_key_(options.per_key), max_keys_(options.max_keys) {
        static_cast<void>(Limiter(per_key_));  // validates the per-key options
        if (max_keys_ == 0)
            detail::throw_invalid_argument("keyed_limiter_options: max_keys must be >= 1");
        map_.reserve(max_keys_);
    }

    basic_keyed_limiter(const basic_keyed_limiter&) = delete;
    basic_keyed_limiter& operator=(const basic_keyed_limiter&) = delete;
    /// Takes the other's keys; the other is left empty.
    basic_keyed_limiter(basic_keyed_limiter&& other)
        : per_key_(other.per_key_),
          max_keys_(other.max_keys_),
          map_(std::move(other.map_)),
          head_(std::exchange(other.head_, nullptr)),
          tail_(std::exchange(other.tail_, nullptr)),
          stats_(other.stats_) {
        other.map_.clear();
    }
    /// Takes the other's keys; the other is left empty.
    basic_keyed_limiter& operator=(basic_keyed_limiter&& other) {
        if (this != &other) {
            per_key_ = other.per_key_;
            max_keys_ = other.max_keys_;
            map_ = std::move(other.map_);
            other.map_.clear();
            head_ = std::exchange(other.head_, nullptr);
            tail_ = std::exchange(other.tail_, nullptr);
            stats_ = other.stats_;
        }
        return *this;
    }

    /// Counts `n` permits for `key` at `now` with that key's limiter, creating
    /// it (and evicting another key if the table is full) on the first allowed
    /// request. Same results as `Limiter::try_acquire`.
    acquire_result try_acquire(const Key& key, std::uint32_t n = 1,
                               time_point now = clock_type::now()) {
        acquire_result result;
        auto it = map_.find(key);
        if (it != map_.end()) {
            node* p = &*it;
            result = p->second.limiter.try_acquire(n, now);
            if (result.allowed() && n != 0) move_to_front(p);
        } else {
            if (n == 0) return {};
            if (n > per_key_.limit) return detail::limiter_exceeds();
            node* p = create(key, now);
            result = p->second.limiter.try_acquire(n, now);
            link_front(p);
        }
        if (tail_ != nullptr && tail_ != head_ && tail_->second.limiter.idle(now)) {
            erase_node(tail_);
            ++stats_.evicted_idle;
        }
        return result;
    }

    /// Drops every idle key; returns how many. O(number dropped).
    std::size_t evict_idle(time_point now = clock_type::now()) {
        std::size_t dropped = 0;
        while (tail_ != nullptr && tail_->second.limiter.idle(now)) {
            erase_node(tail_);
            ++dropped;
        }
        stats_.evicted_idle += dropped;
        return dropped;
    }

    /// Forgets `key` (say, when its connection closes); true if it was held. Not
    /// counted as an eviction.
    bool erase(const Key& key) {
        auto it = map_.find(key);
        if (it == map_.end()) return false;
        erase_node(&*it);
        return true;
    }

    /// The limiter of `key`, or null when the key is not held. The pointer stays
    /// valid until that key is erased or evicted.
    const Limiter* find(const Key& key) const {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second.limiter;
    }

    /// Drops every key; keeps the statistics.
    void clear() noexcept {
        map_.clear();
        head_ = tail_ = nullptr;
    }

    /// The keys held now; never above `max_keys()`.
    std::size_t size() const noexcept { return map_.size(); }
    /// True when no key is held.
    bool empty() const noexcept { return map_.empty(); }
    /// The bound on `size()`.
    std::size_t max_keys() const noexcept { return max_keys_; }
    /// The hash table's bucket count: fixed at construction, since the table
    /// never holds more than the `max_keys` it was sized for.
    std::size_t bucket_count() const noexcept { return map_.bucket_count(); }
    /// The counters since construction.
    const keyed_limiter_stats& stats() const noexcept { return stats_; }
    /// The per-key settings.
    const sliding_window_options& per_key() const noexcept { return per_key_; }

private:
    struct entry;
    using node = std::pair<const Key, entry>;
    struct entry {
        Limiter limiter;
        node* newer = nullptr;
        node* older = nullptr;
    };
    using map_type = std::unordered_map<Key, entry, Hash, KeyEqual>;

    node* create(const Key& key, time_point now) {
        ++stats_.keys_created;
        if (map_.size() < max_keys_) return &*map_.emplace(key, entry{Limiter(per_key_)}).first;
        // Full: the tail is the best victim (see the class comment); reuse its node.
        node* victim = tail_;
        if (victim->second.limiter.idle(now))
            ++stats_.evicted_idle;
        else
            ++stats_.evicted_active;
        unlink(victim);
        auto handle = map_.extract(victim->first);
        handle.key() = key;
        handle.mapped().limiter.reset();
        return &*map_.insert(std::move(handle)).position;
    }

    void erase_node(node* p) {
        unlink(p);
        map_.erase(p->first);
    }

    void link_front(node* p) noexcept {
        p->second.newer = nullptr;
        p->second.older = head_;
        if (head_ != nullptr) head_->second.newer = p;
        head_ = p;
        if (tail_ == nullptr) tail_ = p;
    }

    void unlink(node* p) noexcept {
        if (p->second.newer != nullptr)
            p->second.newer->second.older = p->second.older;
        else
            head_ = p->second.older;
        if (p->second.older != nullptr)
            p->second.older->second.newer = p->second.newer;
        else
            tail_ = p->second.newer;
        p->second.newer = p->second.older = nullptr;
    }

    void move_to_front(node* p) noexcept {
        if (p == head_) return;
        unlink(p);
        link_front(p);
    }

    sliding_window_options per_key_;
    std::size_t max_keys_;
    map_type map_;
    node* head_ = nullptr;  // most recently counted
    node* tail_ = nullptr;  // least recently counted
    keyed_limiter_stats stats_;
};

/// A keyed exact limiter on `std::chrono::steady_clock`, e.g.
/// `keyed_limiter<std::string>` per client IP.
template <class Key, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<Key>>
using keyed_limiter = basic_keyed_limiter<sliding_log_limiter, Key, Hash, KeyEqual>;

}  // namespace sluice
