// Internals of sluice/router.hpp: a linear-probing hash set of pointers to
// objects that carry their own hash (`std::size_t hash` member), and the
// string-carrying objects the router stores in it.
//
// Why not std::unordered_map: lookups must take a std::string_view without
// building a std::string (C++17 has no heterogeneous lookup), and one 8-byte
// slot per element is much smaller than a node-based map for the million
// exact subscriptions the router is sized for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string_view>
#include <utility>

namespace sluice::detail {

// splitmix64's finalizer: spreads any input over all bits, so that the low
// bits used as the slot index are good even for pointer-derived keys.
constexpr std::uint64_t router_mix(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

inline std::size_t router_hash(std::string_view s, std::uint64_t seed = 0) noexcept {
    // FNV-1a: deterministic across standard libraries, fast on short keys.
    std::uint64_t h = 0xcbf29ce484222325ULL ^ router_mix(seed);
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return static_cast<std::size_t>(router_mix(h));
}

template <class T>
class router_table {
public:
    router_table() noexcept = default;
    router_table(const router_table&) = delete;
    router_table& operator=(const router_table&) = delete;
    router_table(router_table&& other) noexcept
        : slots_(std::move(other.slots_)),
          mask_(std::exchange(other.mask_, 0)),
          size_(std::exchange(other.size_, 0)) {}
    router_table& operator=(router_table&& other) noexcept {
        router_table(std::move(other)).swap(*this);
        return *this;
    }

    void swap(router_table& other) noexcept {
        slots_.swap(other.slots_);
        std::swap(mask_, other.mask_);
        std::swap(size_, other.size_);
    }

    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return mask_ == 0 ? 0 : mask_ + 1; }

    template <class Eq>
    T* find(std::size_t hash, Eq&& eq) const noexcept {
        if (size_ == 0) return nullptr;
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            T* p = slots_[i];
            if (p == nullptr) return nullptr;
            if (p->hash == hash && eq(*p)) return p;
        }
    }

    // Makes room for one more element (may allocate); call before insert().
    void reserve_one() {
        if ((size_ + 1) * 4 > capacity() * 3) grow(capacity() == 0 ? 16 : capacity() * 2);
    }

    void reserve(std::size_t n) {
        std::size_t cap = 16;
        while (n * 4 > cap * 3) cap *= 2;
        if (cap > capacity()) grow(cap);
    }

    void insert(T* p) noexcept {
        std::size_t i = p->hash & mask_;
        while (slots_[i] != nullptr) i = (i + 1) & mask_;
        slots_[i] = p;
        ++size_;
    }

    // Removes `p`, which must be present (backward-shift deletion: no
    // tombstones, so lookups never slow down with churn).
    void erase(const T* p) noexcept {
        std::size_t i = p->hash & mask_;
        while (slots_[i] != p) i = (i + 1) & mask_;
        for (std::size_t j = (i + 1) & mask_; slots_[j] != nullptr; j = (j + 1) & mask_) {
            std::size_t ideal = slots_[j]->hash & mask_;
            if (((j - ideal) & mask_) >= ((j - i) & mask_)) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i] = nullptr;
        --size_;
    }

    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < capacity(); ++i) {
            if (slots_[i] != nullptr) f(slots_[i]);
        }
    }

    void clear() noexcept {
        slots_.reset();
        mask_ = 0;
        size_ = 0;
    }

private:
    void grow(std::size_t cap) {
        std::unique_ptr<T*[]> fresh(new T*[cap]());
        std::unique_ptr<T*[]> old = std::move(slots_);
        std::size_t old_cap = capacity();
        slots_ = std::move(fresh);
        mask_ = cap - 1;
        size_ = 0;
        for (std::size_t i = 0; i < old_cap; ++i) {
            if (old[i] != nullptr) insert(old[i]);
        }
    }

    std::unique_ptr<T*[]> slots_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

// Allocates a T followed by `text` in one block, so a short key costs no
// second allocation. T must be trivially destructible and expose
// `std::uint8_t len`; `router_text(p)` reads the key back.
template <class T>
T* router_make_with_text(std::string_view text) {
    void* raw = ::operator new(sizeof(T) + text.size());
    T* p = ::new (raw) T{};
    p->len = static_cast<std::uint8_t>(text.size());
    char* dst = reinterpret_cast<char*>(p + 1);
    for (std::size_t i = 0; i < text.size(); ++i) dst[i] = text[i];
    return p;
}

template <class T>
std::string_view router_text(const T* p) noexcept {
    return std::string_view(reinterpret_cast<const char*>(p + 1), p->len);
}

template <class T>
void router_free_with_text(T* p) noexcept {
    p->~T();
    ::operator delete(static_cast<void*>(p));
}

}  // namespace sluice::detail
