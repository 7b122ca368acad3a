// A minimal benchmark harness shared by benchmarks/*_bench.cpp.
//
// measure() runs a body in growing batches until a time budget is spent and
// reports nanoseconds per operation (the best of several rounds, which is the
// least noisy figure on a shared machine). `--quick` shrinks the budget so CI
// can run every benchmark as a smoke test.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace sluice::bench {

struct settings {
    bool quick = false;
    std::chrono::milliseconds round_budget{200};
    int rounds = 5;
};

inline settings parse_args(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            s.quick = true;
            s.round_budget = std::chrono::milliseconds(5);
            s.rounds = 1;
        }
    }
    return s;
}

/// Keeps the optimizer from discarding a computed value.
template <class T>
inline void do_not_optimize(const T& value) {
    asm volatile("" : : "r,m"(value) : "memory");
}

/// Nanoseconds per call of `body(i)` (the best round). `body` receives a
/// running counter it may use to vary its input.
template <class Body>
double measure(const settings& s, Body&& body) {
    using clock = std::chrono::steady_clock;
    double best = 1e300;
    std::size_t counter = 0;
    for (int round = 0; round < s.rounds; ++round) {
        std::size_t batch = 16;
        std::size_t ops = 0;
        auto start = clock::now();
        auto elapsed = clock::duration::zero();
        while (elapsed < s.round_budget) {
            for (std::size_t i = 0; i < batch; ++i) body(counter++);
            ops += batch;
            batch = std::min<std::size_t>(batch * 2, 1 << 20);
            elapsed = clock::now() - start;
        }
        double ns =
            std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(ops);
        best = std::min(best, ns);
    }
    return best;
}

}  // namespace sluice::bench
