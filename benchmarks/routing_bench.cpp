// Routing benchmark: router::match against a linear scan, as subscriptions grow
// tenfold; memory per subscription; filter evaluation per event.
//
// Usage: routing_bench [--quick]
// Prints Markdown tables. Speed claims are ratios measured in the same run.
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "bench.hpp"
#include "sluice/filter.hpp"
#include "sluice/router.hpp"
#include "sluice/topic.hpp"

namespace {

std::size_t heap_in_use() { return mallinfo2().uordblks; }

// Thread CPU time per call of `body(i)`, best of `rounds`: on a shared,
// oversubscribed machine this leaves out the time the thread was not running
// (the wall-clock figures of bench::measure include it).
template <class Body>
double cpu_ns_per_op(const sluice::bench::settings& s, std::size_t iterations, Body&& body) {
    auto now = [] {
        timespec t{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
    };
    double best = 1e300;
    for (int round = 0; round < s.rounds; ++round) {
        double start = now();
        for (std::size_t i = 0; i < iterations; ++i) body(i);
        best = std::min(best, (now() - start) / static_cast<double>(iterations));
    }
    return best;
}

// `exact` exact subscriptions "stock:<i>" held by 10,000 connections (100 each
// at 1M), `patterns` patterns "feed<j>:*:price" plus one "stock:*" that every
// queried topic also matches: each match visits 2 subscriptions.
struct scale {
    std::size_t exact = 0;
    std::size_t patterns = 0;
    std::vector<std::string> all;  // every subscription string (the linear baseline)
    std::vector<std::string> queries;
    sluice::router router;
    double subscribe_ns = 0;
    double bytes_per_sub = 0;
    double match_ns = 1e300;      // 4096 random topics: cache and TLB misses
    double match_hot_ns = 1e300;  // 64 topics: the algorithm alone
    double cpu_hot_ns = 0;        // the same two, in thread CPU time
    double cpu_random_ns = 0;
    double linear_ns = 1e300;

    scale(std::size_t exact_count, std::size_t pattern_count)
        : exact(exact_count), patterns(pattern_count) {
        // Built before measuring the heap so that only the router's memory is
        // counted.
        all.reserve(exact + patterns);
        for (std::size_t i = 0; i < exact; ++i) all.push_back("stock:" + std::to_string(i));
        for (std::size_t j = 0; j + 1 < patterns; ++j) {
            all.push_back("feed" + std::to_string(j) + ":*:price");
        }
        all.push_back("stock:*");
        std::mt19937_64 rng(42);
        for (int q = 0; q < 4096; ++q) queries.push_back("stock:" + std::to_string(rng() % exact));

        const std::uint64_t connections = 10000;
        std::size_t heap_before = heap_in_use();
        auto start = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (router.subscribe(i % connections, all[i])) std::abort();
        }
        auto built = std::chrono::steady_clock::now();
        std::size_t heap_after = heap_in_use();
        subscribe_ns = std::chrono::duration<double, std::nano>(built - start).count() /
                       static_cast<double>(all.size());
        bytes_per_sub =
            static_cast<double>(heap_after - heap_before) / static_cast<double>(all.size());
    }

    std::size_t visits() {
        return router.match(queries[0], [](const auto&) {});
    }

    void measure_match(const sluice::bench::settings& s) {
        double ns = sluice::bench::measure(s, [&](std::size_t i) {
            std::size_t n = router.match(queries[i & 4095], [](const auto& sub) {
                sluice::bench::do_not_optimize(sub.subscriber());
            });
            sluice::bench::do_not_optimize(n);
        });
        match_ns = std::min(match_ns, ns);
        ns = sluice::bench::measure(s, [&](std::size_t i) {
            std::size_t n = router.match(queries[i & 63], [](const auto& sub) {
                sluice::bench::do_not_optimize(sub.subscriber());
            });
            sluice::bench::do_not_optimize(n);
        });
        match_hot_ns = std::min(match_hot_ns, ns);
    }

    void measure_cpu(const sluice::bench::settings& s) {
        std::size_t iterations = s.quick ? 2000 : 200000;
        for (std::size_t mask : {std::size_t{63}, std::size_t{4095}}) {
            double ns = cpu_ns_per_op(s, iterations, [&](std::size_t i) {
                std::size_t n = router.match(queries[i & mask], [](const auto& sub) {
                    sluice::bench::do_not_optimize(sub.subscriber());
                });
                sluice::bench::do_not_optimize(n);
            });
            (mask == 63 ? cpu_hot_ns : cpu_random_ns) = ns;
        }
    }

    void measure_linear(const sluice::bench::settings& s) {
        double ns = sluice::bench::measure(s, [&](std::size_t i) {
            std::size_t n = 0;
            const std::string& t = queries[i & 4095];
            for (const auto& sub : all) n += sluice::pattern_matches(sub, t) ? 1 : 0;
            sluice::bench::do_not_optimize(n);
        });
        linear_ns = std::min(linear_ns, ns);
    }
};

void bench_filter(const sluice::bench::settings& s) {
    const char* event =
        R"({"id":12345,"amount":250.5,"currency":"EUR","source":{"name":"bank","country":"DE"},"memo":"rent"})";
    auto f = sluice::parse_filter(
        R"({"amount": {"gte": 100}, "currency": {"in": ["EUR", "USD"]}, "source.country": "DE"})");
    if (!f) std::abort();
    rapidjson::Document data;
    data.Parse(event);
    bool ok = f.compiled.matches(data);
    if (!ok) std::abort();
    double eval_ns = sluice::bench::measure(
        s, [&](std::size_t) { sluice::bench::do_not_optimize(f.compiled.matches(data)); });
    double parse_ns = sluice::bench::measure(s, [&](std::size_t) {
        rapidjson::Document d;
        d.Parse(event);
        sluice::bench::do_not_optimize(d.IsObject());
    });
    double compile_ns = sluice::bench::measure(s, [&](std::size_t) {
        auto r = sluice::compile_filter(
            rapidjson::Value(rapidjson::kObjectType));  // {} : the cheapest compile
        sluice::bench::do_not_optimize(r.error);
    });
    std::printf("\n### Filter evaluation (3 conditions, %zu-byte event)\n\n", std::strlen(event));
    std::printf("| operation | ns/op |\n|---|---:|\n");
    std::printf("| `filter::matches` (parsed data, 3 conditions) | %.1f |\n", eval_ns);
    std::printf("| parse the event JSON once (RapidJSON `Document::Parse`), for scale | %.1f |\n",
                parse_ns);
    std::printf("| `compile_filter({})` | %.1f |\n", compile_ns);
}

}  // namespace

int main(int argc, char** argv) {
    auto s = sluice::bench::parse_args(argc, argv);
    std::size_t small_exact = s.quick ? 1000 : 100000;
    std::size_t small_patterns = s.quick ? 100 : 1000;
    std::size_t large_exact = s.quick ? 10000 : 1000000;
    std::size_t large_patterns = s.quick ? 1000 : 10000;

    std::printf("## Routing (`router::match`)%s\n\n", s.quick ? " (quick mode: small sizes)" : "");
    scale small(small_exact, small_patterns);
    scale large(large_exact, large_patterns);
    // Interleaved, best of each: a shared machine's noise then hits both sizes
    // alike, and the growth ratio stays meaningful.
    sluice::bench::settings one = s;
    one.rounds = 1;
    for (int round = 0; round < s.rounds; ++round) {
        small.measure_match(one);
        large.measure_match(one);
    }
    for (int round = 0; round < (s.quick ? 1 : 2); ++round) {
        small.measure_linear(one);
        large.measure_linear(one);
    }
    small.measure_cpu(s);
    large.measure_cpu(s);

    std::printf(
        "| exact subs | patterns | visits/match | `match` ns, 64 hot topics | `match` ns, 4096 "
        "random topics | linear scan ns | scan / match (random) | subscribe ns | heap bytes/sub "
        "|\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (scale* r : {&small, &large}) {
        std::printf("| %zu | %zu | %zu | %.1f | %.1f | %.0f | %.0fx | %.0f | %.0f |\n", r->exact,
                    r->patterns, r->visits(), r->match_hot_ns, r->match_ns, r->linear_ns,
                    r->linear_ns / r->match_ns, r->subscribe_ns, r->bytes_per_sub);
    }
    std::printf(
        "\nGrowth 10x in subscriptions: `match` %.2fx (hot) and %.2fx (random), linear scan "
        "%.2fx.\n",
        large.match_hot_ns / small.match_hot_ns, large.match_ns / small.match_ns,
        large.linear_ns / small.linear_ns);
    std::printf("\nThread CPU time (excludes time the thread was descheduled):\n\n");
    std::printf(
        "| exact subs | patterns | `match` CPU ns, 64 hot topics | `match` CPU ns, 4096 "
        "random topics |\n|---:|---:|---:|---:|\n");
    for (scale* r : {&small, &large}) {
        std::printf("| %zu | %zu | %.1f | %.1f |\n", r->exact, r->patterns, r->cpu_hot_ns,
                    r->cpu_random_ns);
    }
    std::printf("\nGrowth 10x in subscriptions (CPU time): `match` %.2fx (hot), %.2fx (random).\n",
                large.cpu_hot_ns / small.cpu_hot_ns, large.cpu_random_ns / small.cpu_random_ns);

    bench_filter(s);
    return 0;
}
