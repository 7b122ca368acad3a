// sluice/detail/history_ring.hpp: the per-topic ring of retained events.
//
// A growable circular buffer that holds the contiguous tail of a topic's
// stream: element i (from the front) has offset `top - size() + 1 + i`, so
// locating any offset is O(1). Events leave only from the front, which keeps
// the retained range contiguous (recovery is never partial). Storage grows by
// doubling up to the per-topic cap and shrinks when mostly empty, so a topic
// that went quiet does not pin a large array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace sluice::detail {

template <class Entry>
class history_ring {
public:
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t capacity() const noexcept { return capacity_; }

    Entry& operator[](std::size_t i) noexcept { return data_[(head_ + i) & (capacity_ - 1)]; }
    const Entry& operator[](std::size_t i) const noexcept {
        return data_[(head_ + i) & (capacity_ - 1)];
    }
    Entry& front() noexcept { return data_[head_]; }
    Entry& back() noexcept { return (*this)[size_ - 1]; }

    // Appends; the caller has made room (size() < the per-topic cap).
    void push_back(Entry e) {
        if (size_ == capacity_) reallocate(capacity_ == 0 ? 4 : capacity_ * 2);
        data_[(head_ + size_) & (capacity_ - 1)] = std::move(e);
        ++size_;
    }

    void pop_front() {
        data_[head_] = Entry{};
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
        if (size_ == 0) {
            clear();
        } else if (capacity_ > 8 && size_ <= capacity_ / 4) {
            reallocate(capacity_ / 2);
        }
    }

    void clear() noexcept {
        data_.reset();
        capacity_ = 0;
        head_ = 0;
        size_ = 0;
    }

private:
    void reallocate(std::size_t capacity) {
        std::unique_ptr<Entry[]> fresh(new Entry[capacity]);
        for (std::size_t i = 0; i < size_; ++i) fresh[i] = std::move((*this)[i]);
        data_ = std::move(fresh);
        capacity_ = static_cast<std::uint32_t>(capacity);
        head_ = 0;
    }

    std::unique_ptr<Entry[]> data_;
    std::uint32_t capacity_ = 0;  // a power of two, or 0
    std::uint32_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace sluice::detail
