// Server-Sent Events, PROTOCOL.md section 4: the stream head, `retry:`, the
// `subscribed` blocks, events, heartbeats, resume tokens and errors.
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace sluice::test;
using sluice::server_options;

namespace {

/// Opens a stream and reads the `retry:` block and one `subscribed` block per
/// topic; returns the subscribed data by topic.
struct opened_stream {
    long long retry = -1;
    std::vector<sse_block> subscribed;
    std::map<std::string, json_msg> by_topic;
};

opened_stream read_preamble(sse_client& c, std::size_t topics) {
    opened_stream s;
    auto first = c.next();
    REQUIRE(first);
    REQUIRE(first->retry);
    CHECK_FALSE(first->has_data);
    s.retry = *first->retry;
    for (std::size_t i = 0; i < topics; ++i) {
        auto b = c.next_non_comment();
        REQUIRE(b);
        INFO(b->raw);
        CHECK(b->event == "subscribed");
        CHECK(b->id);
        json_msg data(b->data);
        CHECK(data.type() == "subscribed");
        s.by_topic[data.str("topic")] = data;
        s.subscribed.push_back(*b);
    }
    return s;
}

/// Reads event blocks until `n` arrived (heartbeats skipped).
std::vector<sse_block> read_events(sse_client& c, std::size_t n) {
    std::vector<sse_block> out;
    while (out.size() < n) {
        auto b = c.next_non_comment();
        if (!b) break;
        if (b->is_id_only()) continue;
        out.push_back(*b);
    }
    return out;
}

std::string events_target(std::vector<std::string> topics, std::string extra = {}) {
    std::string t = "/events?";
    for (std::size_t i = 0; i < topics.size(); ++i) {
        if (i) t += '&';
        t += "topic=" + url_encode(topics[i]);
    }
    return t + extra;
}

}  // namespace

TEST_CASE("SSE: the stream head and retry", "[sse]") {
    server_options o = quick_options();
    SECTION("default range 1000-5000") {
        test_server s(o);
        sse_client c;
        REQUIRE(c.open(s.port(), "/events?topic=a:1"));
        CHECK(c.response.status == 200);
        CHECK(c.response.header("Content-Type").value_or("") == "text/event-stream");
        CHECK(c.response.header("Cache-Control").value_or("") == "no-cache");
        CHECK(c.response.header("X-Accel-Buffering").value_or("") == "no");
        CHECK(c.response.header("Access-Control-Allow-Origin").value_or("") == "*");
        CHECK_FALSE(c.response.has_header("Content-Length"));
        auto s1 = read_preamble(c, 1);
        CHECK(s1.retry >= 1000);
        CHECK(s1.retry <= 5000);
    }
    SECTION("a configured range: every connection within it, not all the same") {
        o.sse_retry_min = 300ms;
        o.sse_retry_max = 400ms;
        test_server s(o);
        std::set<long long> seen;
        for (int i = 0; i < 12; ++i) {
            sse_client c;
            REQUIRE(c.open(s.port(), "/events?topic=a:1"));
            auto p = read_preamble(c, 1);
            CHECK(p.retry >= 300);
            CHECK(p.retry <= 400);
            seen.insert(p.retry);
        }
        CHECK(seen.size() > 1);
    }
    SECTION("an empty range gives exactly that value") {
        o.sse_retry_min = 777ms;
        o.sse_retry_max = 777ms;
        test_server s(o);
        sse_client c;
        REQUIRE(c.open(s.port(), "/events?topic=a:1"));
        CHECK(read_preamble(c, 1).retry == 777);
    }
}

TEST_CASE("SSE: one subscribed block per topic, in query order, repeats once", "[sse]") {
    test_server s(quick_options());
    for (int i = 0; i < 2; ++i) REQUIRE_FALSE(s.publish("sub:b", "1").first);
    sse_client c;
    REQUIRE(c.open(s.port(), events_target({"sub:a", "sub:b", "sub:*", "sub:a", "sub:#"})));
    auto p = read_preamble(c, 4);
    REQUIRE(p.subscribed.size() == 4);
    std::vector<std::string> order;
    for (const auto& b : p.subscribed) order.push_back(json_msg(b.data).str("topic"));
    CHECK(order == std::vector<std::string>{"sub:a", "sub:b", "sub:*", "sub:#"});
    const auto& a = p.by_topic["sub:a"];
    CHECK(a.u64("offset") == 0);
    CHECK(a.str("epoch").size() >= 8);
    CHECK_FALSE(a.has("recovered"));
    CHECK_FALSE(a.has("id"));
    const auto& b = p.by_topic["sub:b"];
    CHECK(b.u64("offset") == 2);
    const auto& pattern = p.by_topic["sub:*"];
    CHECK_FALSE(pattern.has("epoch"));
    CHECK_FALSE(pattern.has("offset"));
    CHECK_FALSE(pattern.has("recovered"));
    // Every subscribed block has an id, and nothing else came.
    for (const auto& blk : p.subscribed) CHECK((blk.id && !blk.id->empty()));
    CHECK_FALSE(c.next(200ms));
}

TEST_CASE("SSE: event blocks carry id, the event name or message, and the WS event JSON", "[sse]") {
    test_server s(quick_options());
    sse_client c;
    REQUIRE(c.open(s.port(), events_target({"ev:1", "ev:*"})));
    read_preamble(c, 2);
    auto [ec1, pos1] = s.publish("ev:1", R"({"text":"line1\nline2","n":1})");
    REQUIRE_FALSE(ec1);
    sluice::publish_options named;
    named.event = "analysis:start";
    auto [ec2, pos2] = s.publish("ev:2", R"([1,2,3])", named);
    REQUIRE_FALSE(ec2);

    auto events = read_events(c, 3);
    REQUIRE(events.size() == 3);
    std::multiset<std::string> subs;
    for (int i = 0; i < 2; ++i) {
        const auto& e = events[static_cast<std::size_t>(i)];
        INFO(e.raw);
        CHECK(e.event == "message");
        CHECK(e.id);
        CHECK(e.raw.find("\ndata: ") != std::string::npos);
        CHECK(std::count(e.raw.begin(), e.raw.end(), '\n') == 3);  // three lines: id, event, data
        json_msg d(e.data);
        CHECK(d.type() == "event");
        CHECK(d.str("topic") == "ev:1");
        CHECK(d.u64("offset") == 1);
        CHECK(d.str("epoch") == pos1.epoch);
        CHECK(d.get("ts"));
        CHECK(d.json_of("data") == R"({"text":"line1\nline2","n":1})");
        subs.insert(d.str("sub"));
    }
    CHECK(subs == std::multiset<std::string>{"ev:1", "ev:*"});
    const auto& named_event = events[2];
    CHECK(named_event.event == "analysis:start");
    json_msg d(named_event.data);
    CHECK(d.str("sub") == "ev:*");
    CHECK(d.str("topic") == "ev:2");
    CHECK(d.str("event") == "analysis:start");
    CHECK(d.json_of("data") == "[1,2,3]");
    // Ids move with the positions of the exact topics only: the pattern's
    // event on ev:2 carries the id of the exact event on ev:1.
    std::size_t exact = json_msg(events[0].data).str("sub") == "ev:1" ? 0 : 1;
    CHECK(*events[exact].id == *events[2].id);
}

TEST_CASE("SSE: heartbeats are comments, or id-only blocks when all events were filtered",
          "[sse]") {
    server_options o = quick_options();
    o.sse_heartbeat = 200ms;
    test_server s(o);
    sse_client c;
    REQUIRE(c.open(s.port(), events_target({"hb:1"}, "&filter=" + url_encode(R"({"keep":true})"))));
    auto p = read_preamble(c, 1);
    auto start_id = *p.subscribed[0].id;

    auto hb = c.next(2000ms);
    REQUIRE(hb);
    CHECK(hb->is_comment_only());
    CHECK(hb->comments == std::vector<std::string>{"ping"});

    // Filtered events move the position without sending anything.
    REQUIRE_FALSE(s.publish("hb:1", R"({"keep":false})").first);
    REQUIRE_FALSE(s.publish("hb:1", R"({"keep":false})").first);
    std::optional<sse_block> id_only;
    for (int i = 0; i < 5 && !id_only; ++i) {
        auto b = c.next(2000ms);
        REQUIRE(b);
        INFO(b->raw);
        CHECK_FALSE(b->has_data);
        if (b->is_id_only()) id_only = b;
    }
    REQUIRE(id_only);
    CHECK(*id_only->id != start_id);
    // Then plain comments again.
    auto next = c.next(2000ms);
    REQUIRE(next);
    CHECK(next->is_comment_only());
    // A passing event is sent normally.
    REQUIRE_FALSE(s.publish("hb:1", R"({"keep":true,"n":3})").first);
    auto ev = read_events(c, 1);
    REQUIRE(ev.size() == 1);
    CHECK(json_msg(ev[0].data).u64("offset") == 3);

    // Resuming from the id-only block's token skips the filtered events
    // (recovered, nothing to replay before the live one).
    sse_client r;
    REQUIRE(r.open(s.port(), events_target({"hb:1"}, "&filter=" + url_encode(R"({"keep":true})")),
                   "Last-Event-ID: " + *id_only->id + "\r\n"));
    auto rp = read_preamble(r, 1);
    CHECK(rp.by_topic["hb:1"].boolean("recovered") == true);
    auto replayed = read_events(r, 1);
    REQUIRE(replayed.size() == 1);
    CHECK(json_msg(replayed[0].data).u64("offset") == 3);
}

TEST_CASE("SSE: resume with Last-Event-ID, lastEventId or last_event_id", "[sse][recovery]") {
    test_server s(quick_options());
    std::string token;
    std::string epoch;
    {
        sse_client c;
        REQUIRE(c.open(s.port(), events_target({"r:1", "r:2", "r:*"})));
        read_preamble(c, 3);
        REQUIRE_FALSE(s.publish("r:1", "1").first);
        REQUIRE_FALSE(s.publish("r:2", "2").first);
        auto ev = read_events(c, 4);  // r:1 twice (exact and pattern), r:2 twice
        REQUIRE(ev.size() == 4);
        token = *ev.back().id;
        for (const auto& e : ev) {
            if (json_msg(e.data).str("topic") == "r:1") epoch = json_msg(e.data).str("epoch");
        }
    }
    // Missed while away: r:1 offsets 2, 3; r:2 offset 2.
    REQUIRE_FALSE(s.publish("r:1", "10").first);
    REQUIRE_FALSE(s.publish("r:2", "20").first);
    REQUIRE_FALSE(s.publish("r:1", "11").first);

    auto check_resumed = [&](sse_client& c) {
        auto p = read_preamble(c, 3);
        CHECK(p.by_topic["r:1"].boolean("recovered") == true);
        CHECK(p.by_topic["r:2"].boolean("recovered") == true);
        CHECK_FALSE(p.by_topic["r:*"].has("recovered"));
        CHECK(p.by_topic["r:1"].u64("offset") == 3);
        CHECK(p.by_topic["r:1"].str("epoch") == epoch);
        // Exactly the missed events of the exact topics (patterns are live only).
        auto ev = read_events(c, 3);
        REQUIRE(ev.size() == 3);
        std::vector<std::pair<std::string, std::uint64_t>> got;
        for (const auto& e : ev) {
            json_msg d(e.data);
            CHECK(d.str("sub") == d.str("topic"));
            got.emplace_back(d.str("topic"), d.u64("offset"));
        }
        std::sort(got.begin(), got.end());
        CHECK(got == std::vector<std::pair<std::string, std::uint64_t>>{
                         {"r:1", 2}, {"r:1", 3}, {"r:2", 2}});
        // Then live ones.
        REQUIRE_FALSE(s.publish("r:2", "21").first);
        auto live = read_events(c, 2);
        REQUIRE(live.size() == 2);
        CHECK(json_msg(live[0].data).u64("offset") == 3);
        CHECK(json_msg(live[1].data).u64("offset") == 3);
        return *live.back().id;
    };
    SECTION("the Last-Event-ID header") {
        sse_client c;
        REQUIRE(c.open(s.port(), events_target({"r:1", "r:2", "r:*"}),
                       "Last-Event-ID: " + token + "\r\n"));
        check_resumed(c);
    }
    SECTION("the lastEventId query parameter") {
        sse_client c;
        REQUIRE(c.open(s.port(),
                       events_target({"r:1", "r:2", "r:*"}, "&lastEventId=" + url_encode(token))));
        check_resumed(c);
    }
    SECTION("the last_event_id query parameter") {
        sse_client c;
        REQUIRE(c.open(
            s.port(), events_target({"r:1", "r:2", "r:*"}, "&last_event_id=" + url_encode(token))));
        check_resumed(c);
    }
    SECTION("the header wins over the query") {
        sse_client c;
        REQUIRE(c.open(s.port(), events_target({"r:1", "r:2", "r:*"}, "&lastEventId=garbage"),
                       "Last-Event-ID: " + token + "\r\n"));
        check_resumed(c);
        sse_client d;
        REQUIRE(d.open(s.port(),
                       events_target({"r:1", "r:2", "r:*"}, "&lastEventId=" + url_encode(token)),
                       "Last-Event-ID: garbage\r\n"));
        auto p = read_preamble(d, 3);
        CHECK(p.by_topic["r:1"].boolean("recovered") == false);
        CHECK(p.by_topic["r:2"].boolean("recovered") == false);
    }
    SECTION("a token that cannot be read: recovered false for every exact topic, no error") {
        for (const std::string& bad :
             std::vector<std::string>{"garbage", "", "x:1:2", std::string(5000, 'a'), "%00%ff"}) {
            INFO(bad);
            sse_client c;
            REQUIRE(c.open(
                s.port(), events_target({"r:1", "r:2", "r:*"}, "&lastEventId=" + url_encode(bad))));
            auto p = read_preamble(c, 3);
            if (!bad.empty()) {
                CHECK(p.by_topic["r:1"].boolean("recovered") == false);
                CHECK(p.by_topic["r:2"].boolean("recovered") == false);
            }
            CHECK(p.by_topic["r:1"].u64("offset") == 3);
            CHECK(p.by_topic["r:2"].u64("offset") == 2);
            CHECK_FALSE(p.by_topic["r:*"].has("recovered"));
            // Live only.
            CHECK_FALSE(c.next_non_comment(150ms));
        }
    }
}

TEST_CASE("SSE: a token from another hub generation is not recovered", "[sse][recovery]") {
    std::string token;
    {
        test_server s(quick_options());
        sse_client c;
        REQUIRE(c.open(s.port(), "/events?topic=g:1"));
        read_preamble(c, 1);
        REQUIRE_FALSE(s.publish("g:1", "1").first);
        auto ev = read_events(c, 1);
        REQUIRE(ev.size() == 1);
        token = *ev[0].id;
    }
    test_server s2(quick_options());
    REQUIRE_FALSE(s2.publish("g:1", "1").first);
    sse_client c;
    REQUIRE(c.open(s2.port(), "/events?topic=g:1", "Last-Event-ID: " + token + "\r\n"));
    auto p = read_preamble(c, 1);
    CHECK(p.by_topic["g:1"].boolean("recovered") == false);
    CHECK(p.by_topic["g:1"].u64("offset") == 1);
}

TEST_CASE("SSE: the resume token stays within 4 KiB for 64 long topics", "[sse][recovery]") {
    test_server s(quick_options());
    std::vector<std::string> topics;
    for (int i = 0; i < 64; ++i) {
        auto prefix = "long:" + std::to_string(i) + ":";
        topics.push_back(prefix + std::string(200 - prefix.size(), 'x'));
    }
    sse_client c;
    REQUIRE(c.open(s.port(), events_target(topics)));
    auto p = read_preamble(c, 64);
    for (const auto& b : p.subscribed) CHECK(b.id->size() <= 4096);
    REQUIRE_FALSE(s.publish(topics[5], "5").first);
    auto ev = read_events(c, 1);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id->size() <= 4096);
    auto token = *ev[0].id;
    c.close();
    REQUIRE_FALSE(s.publish(topics[63], "63").first);
    REQUIRE_FALSE(s.publish(topics[5], "6").first);
    sse_client r;
    REQUIRE(r.open(s.port(), events_target(topics), "Last-Event-ID: " + token + "\r\n"));
    auto rp = read_preamble(r, 64);
    for (const auto& t : topics) CHECK(rp.by_topic[t].boolean("recovered") == true);
    auto missed = read_events(r, 2);
    REQUIRE(missed.size() == 2);
    std::set<std::string> data{json_msg(missed[0].data).json_of("data"),
                               json_msg(missed[1].data).json_of("data")};
    CHECK(data == std::set<std::string>{"63", "6"});
}

TEST_CASE("SSE: a filter applies to every topic of the stream, and again on resume", "[sse]") {
    test_server s(quick_options());
    auto filter = "&filter=" + url_encode(R"({"n":{"gte":2}})");
    std::string token;
    {
        sse_client c;
        REQUIRE(c.open(s.port(), events_target({"fl:a", "fl:b"}, filter)));
        token = *read_preamble(c, 2).subscribed.back().id;
    }
    for (int n : {1, 2, 3}) {
        REQUIRE_FALSE(s.publish("fl:a", R"({"n":)" + std::to_string(n) + "}").first);
        REQUIRE_FALSE(s.publish("fl:b", R"({"n":)" + std::to_string(n) + "}").first);
    }
    sse_client c;
    REQUIRE(c.open(s.port(), events_target({"fl:a", "fl:b"}, filter),
                   "Last-Event-ID: " + token + "\r\n"));
    auto p = read_preamble(c, 2);
    CHECK(p.by_topic["fl:a"].boolean("recovered") == true);
    auto ev = read_events(c, 4);
    REQUIRE(ev.size() == 4);
    for (const auto& e : ev) CHECK(json_msg(e.data).u64("offset") >= 2);
    REQUIRE_FALSE(s.publish("fl:a", R"({"n":0})").first);
    REQUIRE_FALSE(s.publish("fl:b", R"({"n":9})").first);
    auto live = read_events(c, 1);
    REQUIRE(live.size() == 1);
    CHECK(json_msg(live[0].data).str("topic") == "fl:b");
}

TEST_CASE("SSE: errors answer 400 with a JSON body", "[sse]") {
    test_server s(quick_options());
    auto expect = [&](const std::string& target, int status, const std::string& code) {
        INFO(target);
        sse_client c;
        CHECK_FALSE(c.open(s.port(), target));
        CHECK(c.response.status == status);
        CHECK(c.response.header("Content-Type").value_or("").find("application/json") == 0);
        json_msg body(c.response.body);
        CHECK(body.str("code") == code);
        CHECK_FALSE(body.str("message").empty());
        CHECK(c.response.header("Access-Control-Allow-Origin").value_or("") == "*");
    };
    expect("/events", 400, "bad_request");
    expect("/events?foo=1", 400, "bad_request");
    expect("/events?topic=", 400, "invalid_topic");
    expect("/events?topic=a::b", 400, "invalid_topic");
    expect("/events?topic=ok:1&topic=a%20b", 400, "invalid_topic");
    expect("/events?topic=a:%23:b", 400, "invalid_topic");
    expect("/events?topic=a&filter=" + url_encode("[1]"), 400, "invalid_filter");
    expect("/events?topic=a&filter=" + url_encode(R"({"a":{"zz":1}})"), 400, "invalid_filter");
    expect("/events?topic=a&filter=notjson", 400, "invalid_filter");

    std::vector<std::string> topics;
    for (int i = 0; i < 65; ++i) topics.push_back("many:" + std::to_string(i));
    expect(events_target(topics), 400, "too_many_subscriptions");
    // 64 are fine, and repeats count once.
    topics.pop_back();
    topics.push_back("many:0");
    topics.push_back("many:1");
    sse_client c;
    REQUIRE(c.open(s.port(), events_target(topics)));
    read_preamble(c, 64);
}

TEST_CASE("SSE: topics are URL-decoded", "[sse]") {
    test_server s(quick_options());
    sse_client c;
    REQUIRE(c.open(s.port(), "/events?topic=x%2By%3Az&topic=%2A%3Aq"));
    auto p = read_preamble(c, 2);
    CHECK(p.by_topic.count("x+y:z") == 1);
    CHECK(p.by_topic.count("*:q") == 1);
    REQUIRE_FALSE(s.publish("x+y:z", "1").first);
    auto ev = read_events(c, 1);
    REQUIRE(ev.size() == 1);
    CHECK(json_msg(ev[0].data).str("topic") == "x+y:z");
}

TEST_CASE("SSE: a pattern stream, and the stream ends when the client goes", "[sse]") {
    test_server s(quick_options());
    {
        sse_client c;
        REQUIRE(c.open(s.port(), "/events?topic=" + url_encode("pat:#")));
        read_preamble(c, 1);
        CHECK(eventually([&] { return s.metric("sluice_connections{transport=\"sse\"}") == 1; }));
        REQUIRE_FALSE(s.publish("pat", "0").first);
        REQUIRE_FALSE(s.publish("pat:a:b", "1").first);
        auto ev = read_events(c, 2);
        REQUIRE(ev.size() == 2);
        CHECK(json_msg(ev[0].data).str("topic") == "pat");
        CHECK(json_msg(ev[1].data).str("topic") == "pat:a:b");
        CHECK(json_msg(ev[1].data).str("sub") == "pat:#");
    }
    CHECK(eventually([&] { return s.metric("sluice_connections{transport=\"sse\"}") == 0; }));
    // A publish after the client left delivers nothing and breaks nothing.
    REQUIRE_FALSE(s.publish("pat:x", "2").first);
    CHECK(http_get(s.port(), "/health").status == 200);
}
