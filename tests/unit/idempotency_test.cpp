#include <sluice/idempotency.hpp>

#include <sluice/history.hpp>

#include "manual_clock.hpp"

#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;
using sluice::stream_position;
using sluice::test::manual_clock;
using cache_type = sluice::basic_idempotency_cache<manual_clock>;

const stream_position first{7, "0123456789abcdef"};

}  // namespace

TEST_CASE("a remembered key is found on the same topic only", "[idempotency]") {
    manual_clock::reset();
    cache_type cache;
    CHECK(cache.find("orders", "k1") == nullptr);
    cache.remember("orders", "k1", first);
    const stream_position* hit = cache.find("orders", "k1");
    REQUIRE(hit != nullptr);
    CHECK(*hit == first);
    CHECK(cache.find("orders", "k2") == nullptr);
    CHECK(cache.find("other", "k1") == nullptr);
    CHECK(cache.size() == 1);
}

TEST_CASE("topic and key cannot be confused by concatenation", "[idempotency]") {
    manual_clock::reset();
    cache_type cache;
    cache.remember("ab", "c", first);
    CHECK(cache.find("a", "bc") == nullptr);
    CHECK(cache.find("abc", "") == nullptr);
    CHECK(cache.find("ab", "c") != nullptr);
    const std::string binary_key("\0\x01\xff", 3);
    cache.remember("ab", binary_key, {8, "e"});
    REQUIRE(cache.find("ab", binary_key) != nullptr);
    CHECK(cache.find("ab", binary_key)->offset == 8);
}

TEST_CASE("entries expire after the TTL (300 s by default)", "[idempotency]") {
    manual_clock::reset();
    cache_type cache;
    cache.remember("t", "k", first);
    manual_clock::advance(300s - 1ms);
    CHECK(cache.find("t", "k") != nullptr);
    manual_clock::advance(1ms);
    CHECK(cache.find("t", "k") == nullptr);
    CHECK(cache.size() == 0);
}

TEST_CASE("a custom TTL and expire()", "[idempotency]") {
    manual_clock::reset();
    cache_type cache(100, 10s);
    for (int i = 0; i < 40; ++i) {
        if (i == 30) manual_clock::advance(5s);
        cache.remember("t", "k" + std::to_string(i), {static_cast<std::uint64_t>(i + 1), "e"});
    }
    manual_clock::advance(5s);  // 10 s: k0 … k29 have expired, k30 … k39 have not
    CHECK(cache.size() == 40);
    CHECK(cache.find("t", "k5") == nullptr);  // drops k0 … k7 on its way
    CHECK(cache.size() == 32);
    CHECK(cache.find("t", "k31")->offset == 32);  // drops k8 … k15
    CHECK(cache.size() == 24);
    CHECK(cache.expire() == 14);  // k16 … k29
    CHECK(cache.size() == 10);
    CHECK(cache.expire() == 0);
    CHECK(cache.find("t", "k39")->offset == 40);
}

TEST_CASE("the cache is bounded, oldest first", "[idempotency]") {
    manual_clock::reset();
    cache_type cache(3);
    for (int i = 1; i <= 4; ++i) {
        cache.remember("t", std::to_string(i), {static_cast<std::uint64_t>(i), "e"});
        manual_clock::advance(1ms);
    }
    CHECK(cache.size() == 3);
    CHECK(cache.find("t", "1") == nullptr);
    CHECK(cache.find("t", "2")->offset == 2);
    CHECK(cache.find("t", "4")->offset == 4);
}

TEST_CASE("remembering a key again replaces its entry", "[idempotency]") {
    manual_clock::reset();
    cache_type cache(2);
    cache.remember("t", "a", {1, "e"});
    cache.remember("t", "b", {2, "e"});
    cache.remember("t", "a", {3, "e"});  // now the newest
    CHECK(cache.size() == 2);
    cache.remember("t", "c", {4, "e"});  // evicts b, the oldest
    CHECK(cache.find("t", "b") == nullptr);
    CHECK(cache.find("t", "a")->offset == 3);
    CHECK(cache.find("t", "c")->offset == 4);
}

TEST_CASE("max_entries 0 disables the cache", "[idempotency]") {
    manual_clock::reset();
    cache_type cache(0);
    cache.remember("t", "k", first);
    CHECK(cache.size() == 0);
    CHECK(cache.find("t", "k") == nullptr);
}

TEST_CASE("find and remember do bounded work on expired entries", "[idempotency]") {
    manual_clock::reset();
    cache_type cache(100000, 1s);
    for (int i = 0; i < 1000; ++i) cache.remember("t", std::to_string(i), first);
    manual_clock::advance(2s);
    CHECK(cache.find("t", "nothing") == nullptr);
    CHECK(cache.size() == 1000 - 8);  // a few per call, not all at once
    CHECK(cache.expire() == 1000 - 8);
    CHECK(cache.size() == 0);
}

// The idempotency snippet of docs/history.md is this test, verbatim between
// the markers.
TEST_CASE("docs: a retried publish is answered from the cache", "[idempotency]") {
    manual_clock::reset();
    // --- docs/history.md idempotency snippet begin
    // snippet: idempotency
    sluice::basic_history<manual_clock> hist;             // sluice::history in a server
    sluice::basic_idempotency_cache<manual_clock> cache;  // 100 000 entries, 300 s
    rapidjson::Document data;
    data.Parse(R"({"amount": 5})");
    // On the hub's strand, for a publish that carries an idempotency_key:
    auto publish = [&](std::string_view topic, std::string_view key) {
        if (const sluice::stream_position* first = cache.find(topic, key)) {
            return *first;  // repeat the first `published` answer
        }
        sluice::publication_ptr pub = hist.append(topic, data, "", 1700000000000);
        // (pub is null only for an invalid topic, event name or data)
        cache.remember(topic, key, pub->position());
        return pub->position();
    };
    sluice::stream_position a = publish("orders", "k-1");
    sluice::stream_position b = publish("orders", "k-1");  // a retry: not published again
    // end snippet
    // --- docs/history.md idempotency snippet end
    CHECK(a == b);
    CHECK(a.offset == 1);
    CHECK(hist.position("orders").offset == 1);
    manual_clock::advance(std::chrono::seconds(300));
    CHECK(publish("orders", "k-1").offset == 2);  // after 300 s it is a new publish
}
