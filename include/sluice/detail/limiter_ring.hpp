// Internals of sluice/sliding_window_limiter.hpp: the fixed-capacity ring of
// clock ticks behind the exact sliding-log limiter, and the tick arithmetic the
// limiters share. No user includes this.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace sluice::detail {

/// A clock's time point as a signed 64-bit tick count.
template <class TimePoint>
constexpr std::int64_t limiter_ticks(TimePoint t) noexcept {
    return static_cast<std::int64_t>(t.time_since_epoch().count());
}

/// A tick count of `Duration` as nanoseconds, rounded up so that a caller who
/// waits that long is never early.
template <class Duration>
constexpr std::chrono::nanoseconds limiter_to_ns(std::int64_t ticks) noexcept {
    return std::chrono::ceil<std::chrono::nanoseconds>(
        Duration(static_cast<typename Duration::rep>(ticks)));
}

// A FIFO of at most `capacity` tick counts, allocated once.
//
// Entries are pushed in non-decreasing time order and read back only as ages
// (`now - tick`), so in compact mode only the low 32 bits of each tick are kept
// and an age is their wrapping difference: 4 bytes an entry instead of 8, and
// exact as long as every age asked for is below 2^32 ticks. The limiter
// guarantees that by choosing compact mode only for windows of at most 2^31
// ticks and by clearing the ring whenever its newest entry is a window old.
// Wide mode keeps the full 64 bits as two words.
class limiter_tick_ring {
public:
    limiter_tick_ring(std::uint32_t capacity, bool compact)
        : words_(compact ? std::size_t{capacity} : std::size_t{2} * capacity),
          capacity_(capacity),
          compact_(compact) {}

    std::uint32_t size() const noexcept { return size_; }
    std::uint32_t capacity() const noexcept { return capacity_; }
    bool compact() const noexcept { return compact_; }
    std::size_t memory_bytes() const noexcept { return words_.capacity() * sizeof(std::uint32_t); }

    void clear() noexcept {
        head_ = 0;
        size_ = 0;
    }

    void pop_front() noexcept {
        if (++head_ == capacity_) head_ = 0;
        --size_;
    }

    // Appends `n` copies of `tick`; the caller guarantees size() + n <= capacity().
    void push_back(std::int64_t tick, std::uint32_t n) noexcept {
        std::size_t slot = index(size_);
        const auto bits = static_cast<std::uint64_t>(tick);
        for (std::uint32_t i = 0; i < n; ++i) {
            if (compact_) {
                words_[slot] = static_cast<std::uint32_t>(bits);
            } else {
                words_[2 * slot] = static_cast<std::uint32_t>(bits);
                words_[2 * slot + 1] = static_cast<std::uint32_t>(bits >> 32);
            }
            if (++slot == capacity_) slot = 0;
        }
        size_ += n;
    }

    // The age at `now` of the i-th oldest entry (i < size()), in ticks.
    std::int64_t age(std::uint32_t i, std::int64_t now) const noexcept {
        const std::size_t slot = index(i);
        if (compact_) {
            const auto now_low = static_cast<std::uint32_t>(static_cast<std::uint64_t>(now));
            return static_cast<std::int64_t>(static_cast<std::uint32_t>(now_low - words_[slot]));
        }
        const std::uint64_t bits =
            std::uint64_t{words_[2 * slot]} | (std::uint64_t{words_[2 * slot + 1]} << 32);
        return now - static_cast<std::int64_t>(bits);
    }

private:
    std::size_t index(std::uint32_t i) const noexcept {
        std::size_t j = std::size_t{head_} + i;
        if (j >= capacity_) j -= capacity_;
        return j;
    }

    std::vector<std::uint32_t> words_;
    std::uint32_t capacity_;
    std::uint32_t head_ = 0;
    std::uint32_t size_ = 0;
    bool compact_;
};

}  // namespace sluice::detail
