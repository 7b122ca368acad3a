// sluice/detail/history_epoch.hpp: where topic epochs come from.
//
// An epoch must never repeat across hub restarts, so its bits come from the
// operating system's cryptographically secure generator (getrandom on Linux),
// never from a seeded PRNG.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#include <cerrno>
#define SLUICE_DETAIL_HAVE_GETRANDOM 1
#endif
#endif

namespace sluice::detail {

// Fills `out` from getrandom(); false when the system call is unavailable.
inline bool os_random_bytes(unsigned char* out, std::size_t n) noexcept {
#if defined(SLUICE_DETAIL_HAVE_GETRANDOM)
    while (n > 0) {
        const auto got = ::getrandom(out, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        out += got;
        n -= static_cast<std::size_t>(got);
    }
    return true;
#else
    (void)out;
    (void)n;
    return false;
#endif
}

/// 64 random bits per call from the OS generator, fetched 32 values at a
/// time to keep system calls off the topic-creation path; std::random_device
/// when getrandom() is not available.
class secure_random_source {
public:
    std::uint64_t operator()() {
        if (next_ == count) refill();
        return values_[next_++];
    }

private:
    static constexpr std::size_t count = 32;

    void refill() {
        if (!os_random_bytes(reinterpret_cast<unsigned char*>(values_), sizeof values_)) {
            std::random_device device;
            for (auto& v : values_) {
                v = (static_cast<std::uint64_t>(device()) << 32) ^ device();
            }
        }
        next_ = 0;
    }

    std::uint64_t values_[count] = {};
    std::size_t next_ = count;
};

/// Length of an epoch string: 16 lowercase hex digits.
inline constexpr std::size_t epoch_size = 16;

/// Writes `bits` as 16 lowercase hex digits to `out`.
inline void format_epoch(std::uint64_t bits, char* out) noexcept {
    static constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = epoch_size; i-- > 0;) {
        out[i] = hex[bits & 0xF];
        bits >>= 4;
    }
}

}  // namespace sluice::detail
