// A uniform random bit generator that returns a scripted sequence, cycling.
//
// Lets a test pin the exact raw values a jittered computation sees (minimum,
// maximum, midpoint). Not thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace sluice::test {

class scripted_rng {
public:
    using result_type = std::uint64_t;
    explicit scripted_rng(std::vector<result_type> values) : values_(std::move(values)) {}
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
    result_type operator()() {
        result_type v = values_[next_ % values_.size()];
        ++next_;
        return v;
    }
    std::size_t calls() const { return next_; }

private:
    std::vector<result_type> values_;
    std::size_t next_ = 0;
};

}  // namespace sluice::test
