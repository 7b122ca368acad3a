// history_bench: cost of the event envelope, the per-topic history and the
// idempotency cache.
//
// Prints a Markdown table: ns per `append` (a 100-byte payload into a full
// 1000-event ring), per `recover` of 10 and 100 events, per idempotency
// lookup, each next to a baseline measured in the same run, and the heap
// bytes held per retained event (counted by a replaced global operator new)
// against the size of the event's envelope and payload (target: under 2x).
#include <sluice/history.hpp>
#include <sluice/idempotency.hpp>
#include <sluice/publication.hpp>

#include "bench.hpp"

#include <malloc.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace {

// Heap accounting: glibc's chunk size is the usable size plus an 8-byte
// header, which is what each allocation really costs.
std::atomic<std::int64_t> g_live_bytes{0};
std::atomic<std::int64_t> g_live_blocks{0};

void* counted_alloc(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) throw std::bad_alloc();
    g_live_bytes += static_cast<std::int64_t>(malloc_usable_size(p) + 8);
    ++g_live_blocks;
    return p;
}
void counted_free(void* p) noexcept {
    if (p == nullptr) return;
    g_live_bytes -= static_cast<std::int64_t>(malloc_usable_size(p) + 8);
    --g_live_blocks;
    std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }

namespace {

// A compact JSON object of exactly `size` bytes.
std::string payload_of(std::size_t size) {
    std::string head = R"({"sym":"AAPL","price":101.25,"volume":12345,"note":")";
    std::string s = head + std::string(size - head.size() - 2, 'x') + "\"}";
    return s;
}

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void row(const char* what, double ns, const char* baseline, double base_ns) {
    std::printf("| %s | %.0f | %s | %.0f | %.2f |\n", what, ns, baseline, base_ns, ns / base_ns);
}

}  // namespace

int main(int argc, char** argv) {
    const auto settings = sluice::bench::parse_args(argc, argv);
    const std::string payload = payload_of(100);
    rapidjson::Document data;
    data.Parse(payload.c_str());
    const std::int64_t ts = now_ms();

    std::printf("## history_bench%s\n\n", settings.quick ? " (--quick)" : "");
    std::printf("| operation | ns/op | baseline | baseline ns/op | ratio |\n");
    std::printf("|---|---:|---|---:|---:|\n");

    // --- append: 100-byte payload, 10 topics whose rings are full (1000 each).
    double serialize_ns = sluice::bench::measure(settings, [&](std::size_t) {
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        data.Accept(w);
        sluice::bench::do_not_optimize(sb.GetSize());
    });
    double create_ns = sluice::bench::measure(settings, [&](std::size_t i) {
        auto r = sluice::publication::create("prices:AAPL", i + 1, "0123456789abcdef", ts, data);
        sluice::bench::do_not_optimize(r.publication.get());
    });
    const std::vector<std::string> topics = [] {
        std::vector<std::string> t;
        for (int i = 0; i < 10; ++i) t.push_back("prices:SYM" + std::to_string(i));
        return t;
    }();
    {
        sluice::history h;
        for (std::size_t i = 0; i < 10 * 1000; ++i) h.append(topics[i % 10], data, "", ts);
        double append_ns = sluice::bench::measure(settings, [&](std::size_t i) {
            auto p = h.append(topics[i % 10], data, "", ts);
            sluice::bench::do_not_optimize(p.get());
        });
        row("`history::append` (100-byte data, ring full)", append_ns,
            "RapidJSON `Writer` of the same data", serialize_ns);
        row("`history::append` (100-byte data, ring full)", append_ns,
            "`publication::create` alone", create_ns);
    }

    // --- recover 10 and 100 events out of 1000 kept.
    {
        sluice::history h;
        for (int i = 0; i < 1000; ++i) h.append("prices:AAPL", data, "", ts);
        const auto top = h.position("prices:AAPL");
        std::vector<sluice::publication_ptr> source;
        for (const auto& e : h.recover("prices:AAPL", {0, top.epoch}, 1000).events) {
            source.push_back(e);
        }
        for (std::size_t n : {std::size_t{10}, std::size_t{100}}) {
            const sluice::stream_position since{top.offset - n, top.epoch};
            double recover_ns = sluice::bench::measure(settings, [&](std::size_t) {
                auto r = h.recover("prices:AAPL", since, 1000);
                sluice::bench::do_not_optimize(r.events.data());
            });
            double copy_ns = sluice::bench::measure(settings, [&](std::size_t) {
                std::vector<sluice::publication_ptr> v(source.end() - static_cast<long>(n),
                                                       source.end());
                sluice::bench::do_not_optimize(v.data());
            });
            const std::string what = "`history::recover` of " + std::to_string(n) + " events";
            const std::string base = "copying " + std::to_string(n) + " `publication_ptr`s";
            row(what.c_str(), recover_ns, base.c_str(), copy_ns);
        }
        double position_ns = sluice::bench::measure(settings, [&](std::size_t) {
            auto p = h.position("prices:AAPL");
            sluice::bench::do_not_optimize(p.offset);
        });
        double string_ns = sluice::bench::measure(settings, [&](std::size_t) {
            std::string s(top.epoch);
            sluice::bench::do_not_optimize(s.data());
        });
        row("`history::position`", position_ns, "copying the 16-byte epoch string", string_ns);
    }

    // --- idempotency: a hit among 100 000 keys.
    {
        sluice::idempotency_cache cache;
        std::vector<std::string> keys;
        for (int i = 0; i < 100000; ++i) keys.push_back("key-" + std::to_string(i));
        for (const auto& k : keys) cache.remember("orders", k, {1, "0123456789abcdef"});
        double find_ns = sluice::bench::measure(settings, [&](std::size_t i) {
            auto p = cache.find("orders", keys[(i * 7919) % keys.size()]);
            sluice::bench::do_not_optimize(p);
        });
        std::vector<std::string> plain(keys.begin(), keys.end());
        std::sort(plain.begin(), plain.end());
        double search_ns = sluice::bench::measure(settings, [&](std::size_t i) {
            auto it = std::lower_bound(plain.begin(), plain.end(), keys[(i * 7919) % keys.size()]);
            sluice::bench::do_not_optimize(it);
        });
        row("`idempotency_cache::find` (hit, 100 000 keys)", find_ns,
            "binary search of a sorted vector", search_ns);
    }

    // --- memory per retained event.
    {
        const std::size_t topic_count = settings.quick ? 10 : 100;
        const std::size_t per_topic = 1000;
        std::vector<std::string> names;
        for (std::size_t i = 0; i < topic_count; ++i)
            names.push_back("prices:SYM" + std::to_string(i));
        const std::int64_t before = g_live_bytes.load();
        const std::int64_t blocks_before = g_live_blocks.load();
        auto h = std::make_unique<sluice::history>();
        std::size_t tail_bytes = 0;
        for (std::size_t k = 0; k < per_topic; ++k) {
            for (const auto& n : names) {
                auto p = h->append(n, data, "", ts);
                if (k + 1 == per_topic && &n == &names.front())
                    tail_bytes = p->ws_event_tail().size();
            }
        }
        const std::int64_t held = g_live_bytes.load() - before;
        const std::int64_t blocks = g_live_blocks.load() - blocks_before;
        const double events = static_cast<double>(topic_count * per_topic);
        const double per_event = static_cast<double>(held) / events;
        std::printf("\n| memory (%zu topics x %zu events, 100-byte data) | value |\n", topic_count,
                    per_topic);
        std::printf("|---|---:|\n");
        std::printf("| payload + envelope (`ws_event_tail().size()`) | %zu bytes |\n", tail_bytes);
        std::printf("| heap held per retained event (all of the history) | %.1f bytes |\n",
                    per_event);
        std::printf("| allocations per retained event | %.2f |\n",
                    static_cast<double>(blocks) / events);
        std::printf("| ratio (target < 2) | %.2f |\n", per_event / static_cast<double>(tail_bytes));
        std::printf("| charged to `max_bytes` per event | %.1f bytes |\n",
                    static_cast<double>(h->counters().bytes) / events);
    }

    // --- memory per topic (metadata only) and per idempotency entry.
    {
        const std::size_t count = settings.quick ? 10000 : 100000;
        std::vector<std::string> names;
        for (std::size_t i = 0; i < count; ++i) names.push_back("topic:" + std::to_string(i));
        std::int64_t before = g_live_bytes.load();
        auto h = std::make_unique<sluice::history>();
        for (const auto& n : names) h->position(n);
        const double per_topic =
            static_cast<double>(g_live_bytes.load() - before) / static_cast<double>(count);
        before = g_live_bytes.load();
        auto cache = std::make_unique<sluice::idempotency_cache>();
        for (const auto& n : names) cache->remember("orders", n, {1, "0123456789abcdef"});
        const double per_key =
            static_cast<double>(g_live_bytes.load() - before) / static_cast<double>(count);
        std::printf(
            "| heap per topic with metadata only (%zu topics, names of ~11 bytes) | %.1f "
            "bytes |\n",
            count, per_topic);
        std::printf("| heap per idempotency entry (%zu keys of ~10 bytes) | %.1f bytes |\n", count,
                    per_key);
    }
    return 0;
}
