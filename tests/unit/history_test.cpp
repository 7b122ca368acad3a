#include <sluice/history.hpp>

#include "manual_clock.hpp"

#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sluice::recovery;
using sluice::stream_position;
using sluice::test::manual_clock;
using test_history = sluice::basic_history<manual_clock>;

constexpr std::int64_t ts = 1700000000000;

// Epochs 0000000000000001, 0000000000000002, … in creation order.
sluice::history_options counting_options() {
    sluice::history_options o;
    o.epoch_source = [n = std::uint64_t{0}]() mutable { return ++n; };
    return o;
}

std::string epoch_n(std::uint64_t n) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(n));
    return buf;
}

const rapidjson::Document& payload() {
    static const rapidjson::Document d = [] {
        rapidjson::Document doc;
        doc.Parse(R"({"n":1})");
        return doc;
    }();
    return d;
}

sluice::publication_ptr publish(test_history& h, std::string_view topic,
                                const rapidjson::Value& data = payload()) {
    auto p = h.append(topic, data, "", ts);
    REQUIRE(p != nullptr);
    return p;
}

std::vector<std::uint64_t> offsets(const recovery& r) {
    std::vector<std::uint64_t> out;
    for (const auto& e : r.events) out.push_back(e->offset());
    return out;
}

using offs = std::vector<std::uint64_t>;

}  // namespace

TEST_CASE("offsets are 1, 2, 3 within the topic's epoch", "[history]") {
    manual_clock::reset();
    test_history h(counting_options());
    auto p1 = publish(h, "a");
    auto p2 = publish(h, "a");
    auto q1 = publish(h, "b");
    auto p3 = publish(h, "a");
    CHECK(p1->offset() == 1);
    CHECK(p2->offset() == 2);
    CHECK(p3->offset() == 3);
    CHECK(q1->offset() == 1);
    CHECK(p1->epoch() == epoch_n(1));
    CHECK(p3->epoch() == epoch_n(1));
    CHECK(q1->epoch() == epoch_n(2));
    CHECK(p3->topic() == "a");
    CHECK(h.position("a") == stream_position{3, epoch_n(1)});
    CHECK(h.position("b") == stream_position{1, epoch_n(2)});
    CHECK(h.counters().events_appended == 4);
}

TEST_CASE("a topic never published to has offset 0 and the epoch of its first publish",
          "[history]") {
    manual_clock::reset();
    test_history h(counting_options());
    const auto before = h.position("fresh");
    CHECK(before == stream_position{0, epoch_n(1)});
    CHECK(h.position("fresh") == before);  // asking again does not draw a new epoch
    auto p = publish(h, "fresh");
    CHECK(p->offset() == 1);
    CHECK(p->epoch() == before.epoch);
    // First live event = subscribed.offset + 1.
    CHECK(p->offset() == before.offset + 1);
    CHECK(h.counters().topics == 1);
}

TEST_CASE("recovery at every boundary", "[history]") {
    manual_clock::reset();
    test_history h(counting_options());
    for (int i = 0; i < 5; ++i) publish(h, "t");
    const std::string e = epoch_n(1);

    SECTION("from offset 0 with the right epoch: everything") {
        auto r = h.recover("t", {0, e}, 100);
        CHECK(r.recovered);
        CHECK(offsets(r) == offs{1, 2, 3, 4, 5});
        CHECK(r.position == stream_position{5, e});
    }
    SECTION("the exact tail") {
        auto r = h.recover("t", {3, e}, 100);
        CHECK(r.recovered);
        CHECK(offsets(r) == offs{4, 5});
    }
    SECTION("since == top: recovered with zero events") {
        auto r = h.recover("t", {5, e}, 100);
        CHECK(r.recovered);
        CHECK(r.events.empty());
        CHECK(r.position == stream_position{5, e});
    }
    SECTION("since == top with limit 0") {
        auto r = h.recover("t", {5, e}, 0);
        CHECK(r.recovered);
        CHECK(r.events.empty());
    }
    SECTION("since above the top") {
        auto r = h.recover("t", {6, e}, 100);
        CHECK_FALSE(r.recovered);
        CHECK(r.events.empty());
        CHECK(r.position == stream_position{5, e});
    }
    SECTION("a different epoch") {
        auto r = h.recover("t", {3, epoch_n(99)}, 100);
        CHECK_FALSE(r.recovered);
        CHECK(r.events.empty());
        CHECK(r.position == stream_position{5, e});
    }
    SECTION("a missing epoch") {
        CHECK_FALSE(h.recover("t", {5, ""}, 100).recovered);
        CHECK_FALSE(h.recover("t", {0, ""}, 100).recovered);
    }
    SECTION("more missed than the limit: not recovered, never partial") {
        auto r = h.recover("t", {0, e}, 4);
        CHECK_FALSE(r.recovered);
        CHECK(r.events.empty());
        CHECK(r.position.offset == 5);
    }
    SECTION("exactly the limit: recovered") {
        auto r = h.recover("t", {0, e}, 5);
        CHECK(r.recovered);
        CHECK(offsets(r) == offs{1, 2, 3, 4, 5});
        CHECK(offsets(h.recover("t", {3, e}, 2)) == offs{4, 5});
        CHECK_FALSE(h.recover("t", {3, e}, 1).recovered);
    }
    SECTION("the default limit is options().replay_limit") {
        sluice::history_options o = counting_options();
        o.replay_limit = 2;
        test_history small(o);
        for (int i = 0; i < 3; ++i) publish(small, "t");
        CHECK_FALSE(small.recover("t", {0, epoch_n(1)}).recovered);
        CHECK(offsets(small.recover("t", {1, epoch_n(1)})) == offs{2, 3});
    }
    SECTION("recovered events are the very publications appended (shared, not copied)") {
        auto again = publish(h, "t");
        auto r = h.recover("t", {5, e}, 10);
        REQUIRE(r.events.size() == 1);
        CHECK(r.events[0] == again);
        CHECK(r.events[0]->ws_event_tail().data() == again->ws_event_tail().data());
    }
}

TEST_CASE("a never-published topic recovers from offset 0 with its epoch", "[history]") {
    manual_clock::reset();
    test_history h(counting_options());
    auto pos = h.position("quiet");
    auto r = h.recover("quiet", pos, 10);
    CHECK(r.recovered);
    CHECK(r.events.empty());
    CHECK_FALSE(h.recover("never-seen", {0, ""}, 10).recovered);
    CHECK_FALSE(h.recover("never-seen-2", {0, epoch_n(1)}, 10).recovered);
}

TEST_CASE("events trimmed by count are not recovered", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.max_events_per_topic = 3;
    test_history h(o);
    for (int i = 0; i < 5; ++i) publish(h, "t");
    const std::string e = epoch_n(1);
    CHECK(h.counters().events == 3);
    CHECK(h.counters().events_evicted_by_count == 2);
    CHECK_FALSE(h.recover("t", {0, e}, 100).recovered);
    CHECK_FALSE(h.recover("t", {1, e}, 100).recovered);  // offset 2 is gone
    CHECK(offsets(h.recover("t", {2, e}, 100)) == offs{3, 4, 5});
    CHECK(offsets(h.recover("t", {4, e}, 100)) == offs{5});
}

TEST_CASE("events older than the TTL are not recovered", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.event_ttl = 10s;
    test_history h(o);
    const std::string e = epoch_n(1);
    publish(h, "t");  // at 0 s
    manual_clock::advance(6s);
    publish(h, "t");                  // at 6 s
    manual_clock::advance(4s - 1ms);  // 9.999 s: both kept
    CHECK(offsets(h.recover("t", {0, e}, 100)) == offs{1, 2});
    manual_clock::advance(1ms);  // 10 s: offset 1 expires (kept while age < TTL)
    CHECK_FALSE(h.recover("t", {0, e}, 100).recovered);
    CHECK(offsets(h.recover("t", {1, e}, 100)) == offs{2});
    CHECK(h.counters().events_evicted_by_ttl == 1);
    manual_clock::advance(6s);  // 16 s: offset 2 expires too
    CHECK_FALSE(h.recover("t", {1, e}, 100).recovered);
    CHECK(h.counters().events == 0);
    CHECK(h.counters().bytes == 0);
}

TEST_CASE("a quiet topic keeps its position after its events expire", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.event_ttl = 10s;
    o.metadata_ttl = 1h;
    test_history h(o);
    publish(h, "quiet");
    publish(h, "quiet");
    const std::string e = epoch_n(1);
    manual_clock::advance(30min);
    auto r = h.recover("quiet", {2, e}, 100);
    CHECK(r.recovered);  // since == top: nothing missed
    CHECK(r.events.empty());
    CHECK_FALSE(h.recover("quiet", {1, e}, 100).recovered);
    CHECK(h.position("quiet") == stream_position{2, e});
    CHECK(h.counters().topics == 1);
    CHECK(h.counters().events == 0);
    // The next publish continues the sequence in the same epoch.
    auto p = publish(h, "quiet");
    CHECK(p->offset() == 3);
    CHECK(p->epoch() == e);
}

TEST_CASE("a topic whose metadata expired gets a new epoch", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.event_ttl = 10s;
    o.metadata_ttl = 1h;
    test_history h(o);
    publish(h, "t");
    publish(h, "t");
    const stream_position old{2, epoch_n(1)};
    manual_clock::advance(1h - 1ms);
    CHECK(h.recover("t", old, 100).recovered);
    // Reading the position does not extend a published topic's metadata.
    manual_clock::advance(1ms);
    auto r = h.recover("t", old, 100);
    CHECK_FALSE(r.recovered);
    CHECK(r.position == stream_position{0, epoch_n(2)});
    CHECK(h.counters().topics_evicted_by_ttl == 1);
    auto p = publish(h, "t");
    CHECK(p->offset() == 1);
    CHECK(p->epoch() == epoch_n(2));
}

TEST_CASE("a never-published topic's metadata lives metadata_ttl after its last use", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.event_ttl = 10s;
    o.metadata_ttl = 1h;
    test_history h(o);
    const auto pos = h.position("waiting");
    manual_clock::advance(50min);
    CHECK(h.position("waiting") == pos);  // refreshed
    manual_clock::advance(50min);
    CHECK(h.position("waiting") == pos);
    manual_clock::advance(1h);
    CHECK(h.position("waiting") == stream_position{0, epoch_n(2)});
}

TEST_CASE("max_topics evicts never-published topics first, then the least recently published",
          "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.max_topics = 3;
    test_history h(o);
    publish(h, "a");  // epoch 1
    manual_clock::advance(1s);
    publish(h, "b");  // epoch 2
    manual_clock::advance(1s);
    h.position("idle");  // epoch 3, never published
    manual_clock::advance(1s);
    publish(h, "a");  // a is now the most recently published
    h.position("c");  // epoch 4: evicts "idle"
    CHECK(h.counters().topics == 3);
    CHECK(h.counters().topics_evicted_by_max_topics == 1);
    CHECK(h.position("a") == stream_position{2, epoch_n(1)});
    CHECK(h.position("b") == stream_position{1, epoch_n(2)});

    publish(h, "c");  // c published: now a, b, c all published
    h.position("d");  // evicts b, the least recently published
    CHECK(h.counters().topics_evicted_by_max_topics == 2);
    CHECK(h.counters().events_evicted_with_topic == 1);
    CHECK(h.counters().topics == 3);
    CHECK(h.position("a").epoch == epoch_n(1));
    CHECK(h.position("c").epoch == epoch_n(4));
    // b comes back with a new epoch, so an old `since` is not recovered.
    auto r = h.recover("b", {1, epoch_n(2)}, 100);  // this evicts another topic to make room
    CHECK_FALSE(r.recovered);
    CHECK(r.position.offset == 0);
    CHECK(r.position.epoch != epoch_n(2));
    CHECK(h.counters().topics == 3);
}

TEST_CASE("the byte budget is never exceeded and evicts least recently published topics first",
          "[history]") {
    manual_clock::reset();
    // Measure what one event is charged.
    std::size_t per_event = 0;
    {
        test_history probe(counting_options());
        publish(probe, "abc");  // same sizes as "old" and "new" below
        per_event = probe.counters().bytes;
    }
    REQUIRE(per_event > 0);
    auto o = counting_options();
    o.max_bytes = per_event * 4;  // room for four events of this size
    test_history h(o);
    publish(h, "old");
    publish(h, "old");
    publish(h, "new");
    publish(h, "new");
    CHECK(h.counters().events == 4);
    CHECK(h.counters().bytes == per_event * 4);
    publish(h, "new");  // over budget: the least recently published topic pays
    CHECK(h.counters().bytes <= o.max_bytes);
    CHECK(h.counters().events_evicted_by_bytes == 1);
    CHECK_FALSE(h.recover("old", {0, epoch_n(1)}, 100).recovered);
    CHECK(offsets(h.recover("old", {1, epoch_n(1)}, 100)) == offs{2});
    CHECK(offsets(h.recover("new", {0, epoch_n(2)}, 100)) == offs{1, 2, 3});
    publish(h, "new");
    publish(h, "new");  // "old" is empty now; "new" trims its own front
    CHECK(h.counters().bytes <= o.max_bytes);
    CHECK(h.recover("old", {2, epoch_n(1)}, 100).recovered);  // since == top still recovers
    CHECK_FALSE(h.recover("new", {0, epoch_n(2)}, 100).recovered);
    CHECK(offsets(h.recover("new", {1, epoch_n(2)}, 100)) == offs{2, 3, 4, 5});
}

TEST_CASE("bytes never exceed max_bytes after any append", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.max_bytes = 20000;
    o.max_events_per_topic = 50;
    test_history h(o);
    std::uint64_t state = 12345;
    std::vector<rapidjson::Document> docs(8);
    for (std::size_t i = 0; i < docs.size(); ++i) {
        std::string s = "\"" + std::string(i * i * 40, 'x') + "\"";
        docs[i].Parse(s.c_str());
    }
    std::size_t max_seen = 0;
    for (int i = 0; i < 3000; ++i) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        const std::string topic = "t" + std::to_string((state >> 33) % 17);
        publish(h, topic, docs[(state >> 40) % docs.size()]);
        max_seen = std::max(max_seen, h.counters().bytes);
        REQUIRE(h.counters().bytes <= o.max_bytes);
    }
    CHECK(max_seen > o.max_bytes / 2);  // the budget was actually exercised
    CHECK(h.counters().events_evicted_by_bytes > 0);
    // Whatever is kept is recoverable as a contiguous tail; nothing partial.
    for (int t = 0; t < 17; ++t) {
        const std::string topic = "t" + std::to_string(t);
        const auto pos = h.position(topic);
        for (std::uint64_t back = 0; back <= pos.offset; ++back) {
            auto r = h.recover(topic, {pos.offset - back, pos.epoch}, 1000);
            if (!r.recovered) {
                CHECK(r.events.empty());
                continue;
            }
            REQUIRE(r.events.size() == back);
            for (std::uint64_t k = 0; k < back; ++k) {
                CHECK(r.events[k]->offset() == pos.offset - back + 1 + k);
            }
        }
    }
}

TEST_CASE("an event larger than the whole budget is not kept, and older ones of its topic go",
          "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.max_bytes = 2000;
    test_history h(o);
    publish(h, "other");
    publish(h, "t");
    rapidjson::Document big;
    big.Parse(("\"" + std::string(5000, 'x') + "\"").c_str());
    auto p = publish(h, "t", big);
    CHECK(p->offset() == 2);  // still published
    CHECK(h.counters().events_evicted_by_bytes == 2);
    CHECK(h.counters().events == 1);  // "other" untouched
    CHECK_FALSE(h.recover("t", {1, epoch_n(2)}, 100).recovered);
    CHECK(h.recover("t", {2, epoch_n(2)}, 100).recovered);
    CHECK(offsets(h.recover("other", {0, epoch_n(1)}, 100)) == offs{1});
}

TEST_CASE("--history 0 keeps positions and no events", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.max_events_per_topic = 0;
    test_history h(o);
    auto p1 = publish(h, "t");
    auto p2 = publish(h, "t");
    CHECK(p2->offset() == 2);
    CHECK(h.counters().events == 0);
    CHECK(h.counters().bytes == 0);
    auto same = h.recover("t", {2, epoch_n(1)}, 100);
    CHECK(same.recovered);  // since == top
    CHECK(same.events.empty());
    CHECK_FALSE(h.recover("t", {1, epoch_n(1)}, 100).recovered);
    CHECK_FALSE(h.recover("t", {0, epoch_n(1)}, 100).recovered);
    CHECK(p1.use_count() == 1);  // the history holds no reference
}

TEST_CASE("expire() sweeps with bounded work", "[history]") {
    manual_clock::reset();
    auto o = counting_options();
    o.event_ttl = 10s;
    o.metadata_ttl = 1h;
    test_history h(o);
    for (int t = 0; t < 4; ++t) {
        for (int i = 0; i < 3; ++i) publish(h, "t" + std::to_string(t));
    }
    CHECK(h.counters().events == 12);
    manual_clock::advance(5s);
    CHECK(h.expire(manual_clock::now(), 100) == 0);
    manual_clock::advance(5s);
    CHECK(h.expire(manual_clock::now(), 5) == 5);
    CHECK(h.counters().events == 7);
    CHECK(h.expire(manual_clock::now(), 100) == 7);
    CHECK(h.counters().events == 0);
    CHECK(h.counters().bytes == 0);
    CHECK(h.counters().events_evicted_by_ttl == 12);
    CHECK(h.counters().topics == 4);
    manual_clock::advance(1h);
    CHECK(h.expire(manual_clock::now(), 2) == 2);
    CHECK(h.counters().topics == 2);
    CHECK(h.expire(manual_clock::now(), 100) == 2);
    CHECK(h.counters().topics == 0);
    CHECK(h.counters().topics_evicted_by_ttl == 4);
}

TEST_CASE("invalid input to append consumes no offset", "[history]") {
    manual_clock::reset();
    test_history h(counting_options());
    std::error_code ec;
    CHECK(h.append("bad topic", payload(), "", ts, ec) == nullptr);
    CHECK(ec == sluice::errc::invalid_topic);
    CHECK(h.append("t", payload(), "bad name", ts, ec) == nullptr);
    CHECK(ec == sluice::errc::bad_request);
    rapidjson::Value nan;
    nan.SetDouble(std::numeric_limits<double>::quiet_NaN());
    CHECK(h.append("t", nan, "", ts, ec) == nullptr);
    CHECK(ec == sluice::errc::bad_request);
    auto p = h.append("t", payload(), "n", ts, ec);
    REQUIRE(p != nullptr);
    CHECK_FALSE(ec);
    CHECK(p->offset() == 1);
    CHECK(p->event_name() == "n");
    CHECK(h.counters().events_appended == 1);
    CHECK(h.position("bad topic") == stream_position{});
    CHECK_FALSE(h.recover("", {0, ""}, 10).recovered);
}

TEST_CASE("fresh histories never reuse epochs", "[history]") {
    manual_clock::reset();
    std::set<std::string> seen;
    for (int k = 0; k < 4; ++k) {
        test_history h;  // the OS's secure source
        for (int i = 0; i < 2500; ++i) {
            auto e = h.position("topic:" + std::to_string(i)).epoch;
            REQUIRE(e.size() == 16);
            for (char c : e) REQUIRE(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
            seen.insert(e);
        }
    }
    CHECK(seen.size() == 10000);
}

TEST_CASE("bad options are refused at construction", "[history]") {
    auto build = [](sluice::history_options o) { test_history h(std::move(o)); };
    sluice::history_options zero_topics;
    zero_topics.max_topics = 0;
    CHECK_THROWS_AS(build(zero_topics), std::invalid_argument);
    sluice::history_options short_meta;
    short_meta.metadata_ttl = 1s;
    short_meta.event_ttl = 2s;
    CHECK_THROWS_AS(build(short_meta), std::invalid_argument);
    sluice::history_options huge;
    huge.max_events_per_topic = (std::size_t{1} << 30) + 1;
    CHECK_THROWS_AS(build(huge), std::invalid_argument);
    CHECK_NOTHROW(build(sluice::history_options{}));
}

TEST_CASE("a moved history keeps working", "[history]") {
    manual_clock::reset();
    test_history a(counting_options());
    publish(a, "t");
    test_history b(std::move(a));
    CHECK(publish(b, "t")->offset() == 2);
    CHECK(offsets(b.recover("t", {0, epoch_n(1)}, 10)) == offs{1, 2});
    a = std::move(b);
    CHECK(publish(a, "t")->offset() == 3);
    CHECK(a.counters().events == 3);
}

// The snippet of docs/history.md ("Replay, then live") is this test, verbatim
// between the markers.
TEST_CASE("docs: replay then live", "[history]") {
    manual_clock::reset();
    // --- docs/history.md snippet begin
    // snippet: history
    sluice::basic_history<manual_clock> hist;  // sluice::history in a server
    rapidjson::Document data;
    data.Parse(R"({"price": 101.5})");
    hist.append("prices:AAPL", data, "quote", 1700000000000);
    const sluice::stream_position seen = hist.position("prices:AAPL");  // {1, epoch}
    hist.append("prices:AAPL", data, "quote", 1700000000001);
    hist.append("prices:AAPL", data, "quote", 1700000000002);

    // The client comes back with `since = seen`. On the hub's strand, in one
    // handler: recover, register the subscription, reply, queue the replay.
    sluice::recovery r = hist.recover("prices:AAPL", seen);              // limit: replay_limit
    const std::string sub = sluice::detail::json_string("prices:AAPL");  // once per subscription
    std::vector<std::string> sent;
    for (const sluice::publication_ptr& e : r.events) {
        sent.push_back(e->ws_message(sub));  // a filtered subscription re-parses e->data()
    }
    // Later publishes are live events; the first one follows r.position.
    sluice::publication_ptr live = hist.append("prices:AAPL", data, "quote", 1700000000003);
    // end snippet
    // --- docs/history.md snippet end
    CHECK(r.recovered);
    CHECK(offsets(r) == offs{2, 3});
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].find(R"("offset":2,)") != std::string::npos);
    CHECK(live->offset() == r.position.offset + 1);  // no gap, no duplicate
    CHECK(live->offset() == 4);
}
