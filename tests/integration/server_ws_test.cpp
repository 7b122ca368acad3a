// The WebSocket protocol of PROTOCOL.md section 3 (except recovery, in
// server_recovery_test.cpp), driven through a real socket against an
// in-process server.
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace sluice::test;
using sluice::server_options;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Sends `request` and returns the next message (any type).
json_msg reply_to(ws_client& ws, std::string_view request) {
    REQUIRE(ws.send_json(request));
    auto m = ws.next_message();
    REQUIRE(m);
    return *m;
}

/// Sends `request` and checks the reply is `error` with `code` and the id
/// `id_json` echoed ("" when the request had none).
void expect_error(ws_client& ws, std::string_view request, std::string_view code,
                  std::string_view id_json = {}) {
    INFO("request: " << request);
    auto m = reply_to(ws, request);
    INFO("reply: " << m.text());
    CHECK(m.type() == "error");
    CHECK(m.str("code") == code);
    CHECK((m.get("message") && m.get("message")->IsString()));
    if (id_json.empty()) {
        CHECK_FALSE(m.has("id"));
    } else {
        CHECK(m.json_of("id") == id_json);
    }
}

}  // namespace

TEST_CASE("welcome frame carries the session and the ping settings", "[ws]") {
    server_options o = quick_options();
    o.ping_interval = 1234ms;
    o.pong_timeout = 567ms;
    test_server s(o);
    ws_client a;
    // Permessage-deflate is offered, and not negotiated.
    REQUIRE(a.open(s.port(), "/ws",
                   "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
    ws_client b;
    REQUIRE(b.open(s.port()));

    const auto& w = a.welcome;
    CHECK(w.type() == "welcome");
    CHECK(w.u64("version") == 1);
    REQUIRE(w.get("session"));
    CHECK(w.get("session")->IsString());
    CHECK_FALSE(w.str("session").empty());
    CHECK(w.str("session") != b.welcome.str("session"));
    CHECK(std::llabs(w.i64("server_time") - now_ms()) < 60'000);
    CHECK(w.u64("ping_interval_ms") == 1234);
    CHECK(w.u64("pong_timeout_ms") == 567);
    CHECK(a.handshake_response.status == 101);
    CHECK_FALSE(a.handshake_response.has_header("Sec-WebSocket-Extensions"));
}

TEST_CASE("the upgrade request is checked", "[ws]") {
    test_server s(quick_options());
    auto upgrade = [&](const std::string& headers) {
        return http_fetch(s.port(), http_request_text("GET", "/ws", headers));
    };
    const std::string base = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    auto no_key = upgrade(base + "Sec-WebSocket-Version: 13\r\n");
    CHECK(no_key.status == 400);
    auto bad_key = upgrade(base + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n");
    CHECK(bad_key.status == 400);
    auto old_version = upgrade(base + "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " +
                               std::string(ws_sample_key) + "\r\n");
    CHECK(old_version.status == 426);
    CHECK(old_version.header("Sec-WebSocket-Version").value_or("") == "13");
    // Header names and the upgrade token in any case, Connection with a list.
    ws_client ws;
    CHECK(ws.handshake(s.port(), "/ws?x=1", {}));
    http_client c;
    REQUIRE(c.connect(s.port()));
    REQUIRE(c.send(http_request_text(
        "GET", "/ws",
        "upgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: " +
            std::string(ws_sample_key) + "\r\nsec-websocket-version: 13\r\n")));
    auto r = c.read_head();
    REQUIRE(r);
    CHECK(r->status == 101);
    CHECK(r->header("Sec-WebSocket-Accept").value_or("") == ws_sample_accept);
    CHECK(iequals(r->header("Upgrade").value_or(""), "websocket"));
}

TEST_CASE("server frames are unmasked text frames of one JSON object", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.handshake(s.port()));
    auto f = ws.read_frame();
    REQUIRE(f);
    CHECK(f->opcode == ws_op::text);
    CHECK(f->fin);
    CHECK_FALSE(f->masked);
    CHECK(f->rsv == 0);
    CHECK(json_msg(f->payload).type() == "welcome");
}

TEST_CASE("ping replies pong with ts and echoes the id with its JSON type", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));

    auto p1 = ws.call(R"({"type":"ping","id":7})", "pong");
    CHECK(p1.json_of("id") == "7");
    CHECK(std::llabs(p1.i64("ts") - now_ms()) < 60'000);

    auto p2 = ws.call(R"({"type":"ping","id":"abc"})", "pong");
    CHECK(p2.json_of("id") == "\"abc\"");

    auto p3 = ws.call(R"({"type":"ping"})", "pong");
    CHECK_FALSE(p3.has("id"));
    CHECK(p3.get("ts"));

    auto p4 = ws.call(R"({"type":"ping","id":1.5})", "pong");
    CHECK(p4.json_of("id") == "1.5");

    auto p5 = ws.call(R"({"type":"ping","id":-3})", "pong");
    CHECK(p5.json_of("id") == "-3");

    auto p6 = ws.call(R"({"type":"ping","id":18446744073709551615})", "pong");
    CHECK(p6.json_of("id") == "18446744073709551615");

    auto p7 = ws.call("{\"type\":\"ping\",\"id\":\"\xc3\xa9\\\"\\n\"}", "pong");
    CHECK(p7.str("id") == "\xc3\xa9\"\n");

    auto p8 = ws.call(R"({"type":"ping","id":""})", "pong");
    CHECK(p8.json_of("id") == "\"\"");

    // An id that is neither a number nor a string is a mistyped field.
    for (const char* bad : {R"({"type":"ping","id":{"a":1}})", R"({"type":"ping","id":[1]})",
                            R"({"type":"ping","id":true})"}) {
        INFO(bad);
        auto e = ws.call(bad, "error");
        CHECK(e.str("code") == "bad_request");
    }
}

TEST_CASE("bad_request for malformed messages, with id echo, connection stays open", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));

    expect_error(ws, "not json", "bad_request");
    expect_error(ws, "[1,2]", "bad_request");
    expect_error(ws, "\"ping\"", "bad_request");
    expect_error(ws, R"({"id":1})", "bad_request", "1");
    expect_error(ws, R"({"type":5,"id":2})", "bad_request", "2");
    expect_error(ws, R"({"type":"dance","id":"x"})", "bad_request", "\"x\"");
    expect_error(ws, R"({"type":"dance"})", "bad_request");
    // subscribe
    expect_error(ws, R"({"type":"subscribe","id":3})", "bad_request", "3");
    expect_error(ws, R"({"type":"subscribe","id":4,"topic":42})", "bad_request", "4");
    expect_error(ws, R"({"type":"subscribe","id":5,"topic":["a"]})", "bad_request", "5");
    // unsubscribe
    expect_error(ws, R"({"type":"unsubscribe","id":6})", "bad_request", "6");
    expect_error(ws, R"({"type":"unsubscribe","id":7,"topic":null})", "bad_request", "7");
    // publish
    expect_error(ws, R"({"type":"publish","id":8,"data":1})", "bad_request", "8");
    expect_error(ws, R"({"type":"publish","id":9,"topic":1,"data":1})", "bad_request", "9");
    expect_error(ws, R"({"type":"publish","id":10,"topic":"a"})", "bad_request", "10");
    expect_error(ws, R"({"type":"publish","id":11,"topic":"a","data":1,"event":5})", "bad_request",
                 "11");
    expect_error(ws, R"({"type":"publish","id":12,"topic":"a","data":1,"event":"has space"})",
                 "bad_request", "12");
    expect_error(ws, R"({"type":"publish","id":13,"topic":"a","data":1,"event":"a\nb"})",
                 "bad_request", "13");
    expect_error(ws,
                 R"({"type":"publish","id":14,"topic":"a","data":1,"event":")" +
                     std::string(65, 'e') + "\"}",
                 "bad_request", "14");
    expect_error(ws, R"({"type":"publish","id":16,"topic":"a","data":1,"idempotency_key":""})",
                 "bad_request", "16");
    expect_error(ws,
                 R"({"type":"publish","id":17,"topic":"a","data":1,"idempotency_key":")" +
                     std::string(65, 'k') + "\"}",
                 "bad_request", "17");
    expect_error(ws, R"({"type":"publish","id":18,"topic":"a","data":1,"idempotency_key":5})",
                 "bad_request", "18");
    // refresh
    expect_error(ws, R"({"type":"refresh","id":19})", "bad_request", "19");
    expect_error(ws, R"({"type":"refresh","id":20,"token":5})", "bad_request", "20");

    // Still open and answering.
    auto pong = ws.call(R"({"type":"ping","id":"after"})", "pong");
    CHECK(pong.str("id") == "after");
}

TEST_CASE("an empty event name is bad_request", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    expect_error(ws, R"({"type":"publish","id":15,"topic":"a","data":1,"event":""})", "bad_request",
                 "15");
}

TEST_CASE("limits of names: an event of 64 segment characters and ':' is accepted", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    std::string name = "analysis:start" + std::string(50, 'x');
    REQUIRE(name.size() == 64);
    auto p = ws.publish("names:a", "1", R"(,"event":")" + name + "\"");
    CHECK(p.u64("offset") == 1);
    auto key = std::string(64, 'k');
    auto p2 = ws.publish("names:a", "1", R"(,"idempotency_key":")" + key + "\"");
    CHECK(p2.u64("offset") == 2);
    auto p3 = ws.publish("names:a", "1", R"(,"event":"A-z_0.9@=+:x")");
    CHECK(p3.u64("offset") == 3);
}

TEST_CASE("invalid_topic for bad topics and patterns", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    const std::vector<std::string> bad = {"",
                                          "a::b",
                                          ":a",
                                          "a:",
                                          "a b",
                                          "a/b",
                                          "a:#:b",
                                          "a*:b",
                                          "é",
                                          "a\tb",
                                          "#b",
                                          "a:**",
                                          std::string(201, 'x')};
    int id = 0;
    for (const auto& t : bad) {
        ++id;
        expect_error(ws,
                     R"({"type":"subscribe","id":)" + std::to_string(id) + R"(,"topic":)" +
                         json_quote(t) + "}",
                     "invalid_topic", std::to_string(id));
        expect_error(ws,
                     R"({"type":"publish","id":)" + std::to_string(id) + R"(,"topic":)" +
                         json_quote(t) + R"(,"data":1})",
                     "invalid_topic", std::to_string(id));
    }
    // A publish names one topic: no wildcards.
    expect_error(ws, R"({"type":"publish","id":"w1","topic":"a:*","data":1})", "invalid_topic",
                 "\"w1\"");
    expect_error(ws, R"({"type":"publish","id":"w2","topic":"a:#","data":1})", "invalid_topic",
                 "\"w2\"");
    expect_error(ws, R"({"type":"unsubscribe","id":"u","topic":"a::b"})", "invalid_topic", "\"u\"");
    // 200 bytes and the whole alphabet are fine.
    std::string longest(200, 'y');
    CHECK(ws.subscribe(longest).str("topic") == longest);
    CHECK(ws.subscribe("AZaz09_.-@=+:x").str("topic") == "AZaz09_.-@=+:x");
}

TEST_CASE("subscribe, unsubscribe: replies and their fields", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));

    SECTION("an exact topic never published to: offset 0 and the epoch of its first publish") {
        auto sub = ws.call(R"({"type":"subscribe","id":1,"topic":"fresh:1"})", "subscribed");
        CHECK(sub.json_of("id") == "1");
        CHECK(sub.str("topic") == "fresh:1");
        CHECK(sub.u64("offset") == 0);
        CHECK(sub.str("epoch").size() >= 8);
        CHECK_FALSE(sub.has("recovered"));
        auto [ec, pos] = s.publish("fresh:1", "{}");
        REQUIRE_FALSE(ec);
        CHECK(pos.offset == 1);
        CHECK(pos.epoch == sub.str("epoch"));
        auto ev = ws.expect("event");
        CHECK(ev.u64("offset") == 1);
        CHECK(ev.str("epoch") == sub.str("epoch"));
    }
    SECTION("an exact topic with history: its current top") {
        for (int i = 0; i < 3; ++i) REQUIRE_FALSE(s.publish("busy:1", "{}").first);
        auto sub = ws.call(R"({"type":"subscribe","id":"s","topic":"busy:1"})", "subscribed");
        CHECK(sub.json_of("id") == "\"s\"");
        CHECK(sub.u64("offset") == 3);
        auto [ec, pos] = s.publish("busy:1", "{}");
        CHECK(sub.str("epoch") == pos.epoch);
        // Gap-free: the first live event is offset top + 1.
        CHECK(ws.expect("event").u64("offset") == 4);
    }
    SECTION("a pattern: no epoch, no offset") {
        auto sub = ws.call(R"({"type":"subscribe","topic":"p:*"})", "subscribed");
        CHECK_FALSE(sub.has("id"));
        CHECK(sub.str("topic") == "p:*");
        CHECK_FALSE(sub.has("epoch"));
        CHECK_FALSE(sub.has("offset"));
        CHECK_FALSE(sub.has("recovered"));
    }
    SECTION("already_subscribed, unsubscribed, not_subscribed") {
        ws.subscribe("dup:1");
        ws.subscribe("dup:*");
        expect_error(ws, R"({"type":"subscribe","id":1,"topic":"dup:1"})", "already_subscribed",
                     "1");
        expect_error(ws, R"({"type":"subscribe","id":2,"topic":"dup:*"})", "already_subscribed",
                     "2");
        auto u = ws.call(R"({"type":"unsubscribe","id":3,"topic":"dup:*"})", "unsubscribed");
        CHECK(u.json_of("id") == "3");
        CHECK(u.str("topic") == "dup:*");
        expect_error(ws, R"({"type":"unsubscribe","id":4,"topic":"dup:*"})", "not_subscribed", "4");
        expect_error(ws, R"({"type":"unsubscribe","id":5,"topic":"never:1"})", "not_subscribed",
                     "5");
        auto u2 = ws.call(R"({"type":"unsubscribe","topic":"dup:1"})", "unsubscribed");
        CHECK_FALSE(u2.has("id"));
        // After unsubscribing, no more events.
        REQUIRE_FALSE(s.publish("dup:1", "{}").first);
        auto before = ws.sync();
        CHECK(before.empty());
        // And the topic can be subscribed again.
        ws.subscribe("dup:1");
    }
}

TEST_CASE("replies come in the order of the requests", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    std::string burst;
    std::vector<std::pair<int, std::string>> expected;
    for (int i = 0; i < 30; ++i) {
        std::string request;
        switch (i % 6) {
        case 0:
            request = R"({"type":"subscribe","topic":"order:)" + std::to_string(i) + "\"";
            expected.emplace_back(i, "subscribed");
            break;
        case 1:
            request = R"({"type":"publish","topic":"orderpub:x","data":)" + std::to_string(i);
            expected.emplace_back(i, "published");
            break;
        case 2:
            request = R"({"type":"ping")";
            expected.emplace_back(i, "pong");
            break;
        case 3:
            request = R"({"type":"unsubscribe","topic":"order:)" + std::to_string(i - 3) + "\"";
            expected.emplace_back(i, "unsubscribed");
            break;
        case 4:
            request = R"({"type":"nonsense")";
            expected.emplace_back(i, "error");
            break;
        case 5:
            request = R"({"type":"subscribe","topic":"order:*")";
            expected.emplace_back(i, i == 5 ? "subscribed" : "error");
            break;
        }
        request += ",\"id\":" + std::to_string(i) + "}";
        REQUIRE(ws.send_json(request));
    }
    std::uint64_t last_offset = 0;
    for (const auto& [id, type] : expected) {
        auto m = ws.next_message();
        REQUIRE(m);
        INFO(m->text());
        CHECK(m->type() == type);
        CHECK(m->json_of("id") == std::to_string(id));
        if (type == "published") {
            // One connection's publishes are applied in the order sent.
            CHECK(m->u64("offset") == last_offset + 1);
            last_offset = m->u64("offset");
        }
    }
}

TEST_CASE("too_many_subscriptions past max_subscriptions", "[ws]") {
    server_options o = quick_options();
    o.max_subscriptions = 3;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    ws.subscribe("m:1");
    ws.subscribe("m:*");
    ws.subscribe("m:3");
    expect_error(ws, R"({"type":"subscribe","id":9,"topic":"m:4"})", "too_many_subscriptions", "9");
    expect_error(ws, R"({"type":"subscribe","id":10,"topic":"x:#"})", "too_many_subscriptions",
                 "10");
    ws.call(R"({"type":"unsubscribe","topic":"m:*"})", "unsubscribed");
    ws.subscribe("m:4");
    // Another connection has its own budget.
    ws_client other;
    REQUIRE(other.open(s.port()));
    other.subscribe("m:1");
}

TEST_CASE("an event goes once to every matching subscription, with its sub", "[ws]") {
    test_server s(quick_options());
    ws_client sub;
    REQUIRE(sub.open(s.port()));
    sub.subscribe("country:42");
    sub.subscribe("country:*");
    sub.subscribe("country:#");
    sub.subscribe("*:entity:7");
    ws_client pub;
    REQUIRE(pub.open(s.port()));

    auto p = pub.publish("country:42", R"({"gdp":1.5,"name":"x"})", R"(,"event":"stats:new")");
    auto events = sub.sync();
    REQUIRE(events.size() == 3);
    std::multiset<std::string> subs;
    for (const auto& e : events) {
        INFO(e.text());
        CHECK(e.type() == "event");
        CHECK(e.str("topic") == "country:42");
        CHECK(e.u64("offset") == p.u64("offset"));
        CHECK(e.str("epoch") == p.str("epoch"));
        CHECK(std::llabs(e.i64("ts") - now_ms()) < 60'000);
        CHECK(e.json_of("data") == R"({"gdp":1.5,"name":"x"})");
        CHECK(e.str("event") == "stats:new");
        subs.insert(e.str("sub"));
    }
    CHECK(subs == std::multiset<std::string>{"country:42", "country:*", "country:#"});

    pub.publish("country", "1");
    events = sub.sync();
    REQUIRE(events.size() == 1);
    CHECK(events[0].str("sub") == "country:#");
    CHECK_FALSE(events[0].has("event"));

    pub.publish("country:42:gdp", "[1,2]");
    events = sub.sync();
    REQUIRE(events.size() == 1);
    CHECK(events[0].str("sub") == "country:#");
    CHECK(events[0].json_of("data") == "[1,2]");

    pub.publish("transactions.new:entity:7", R"("s")");
    events = sub.sync();
    REQUIRE(events.size() == 1);
    CHECK(events[0].str("sub") == "*:entity:7");
    CHECK(events[0].str("topic") == "transactions.new:entity:7");
    CHECK(events[0].json_of("data") == "\"s\"");

    pub.publish("other:42", "null");
    CHECK(sub.sync().empty());
}

TEST_CASE("a publisher subscribed to the topic gets its own event", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    ws.subscribe("self:1");
    REQUIRE(ws.send_json(R"({"type":"publish","id":"p","topic":"self:1","data":{"a":1}})"));
    auto first = ws.next_message();
    auto second = ws.next_message();
    REQUIRE(first);
    REQUIRE(second);
    std::set<std::string> types{first->type(), second->type()};
    CHECK(types == std::set<std::string>{"event", "published"});
    const auto& ev = first->type() == "event" ? *first : *second;
    const auto& ack = first->type() == "event" ? *second : *first;
    CHECK(ack.str("id") == "p");
    CHECK(ack.str("topic") == "self:1");
    CHECK(ev.u64("offset") == ack.u64("offset"));
    CHECK(ev.str("epoch") == ack.str("epoch"));
    CHECK(ev.json_of("data") == R"({"a":1})");
}

TEST_CASE("idempotency_key: a repeat answers the first publish and is not published again",
          "[ws]") {
    test_server s(quick_options());
    ws_client sub;
    REQUIRE(sub.open(s.port()));
    sub.subscribe("idem:1");
    sub.subscribe("idem:2");
    ws_client pub;
    REQUIRE(pub.open(s.port()));

    auto first = pub.publish("idem:1", R"({"n":1})", R"(,"idempotency_key":"k-1","id":1)");
    auto repeat = pub.publish("idem:1", R"({"n":2})", R"(,"idempotency_key":"k-1","id":2)");
    CHECK(repeat.json_of("id") == "2");
    CHECK(repeat.u64("offset") == first.u64("offset"));
    CHECK(repeat.str("epoch") == first.str("epoch"));
    CHECK(repeat.str("topic") == "idem:1");

    // Another key, and the same key on another topic, are new publishes.
    auto other_key = pub.publish("idem:1", R"({"n":3})", R"(,"idempotency_key":"k-2")");
    CHECK(other_key.u64("offset") == first.u64("offset") + 1);
    auto other_topic = pub.publish("idem:2", R"({"n":4})", R"(,"idempotency_key":"k-1")");
    CHECK(other_topic.u64("offset") == 1);

    // A repeat over HTTP (same hub) answers the same position too.
    auto http = http_fetch(
        s.port(), publish_request_text(R"({"topic":"idem:1","data":5,"idempotency_key":"k-1"})"));
    CHECK(http.status == 200);
    json_msg body(http.body);
    CHECK(body.u64("offset") == first.u64("offset"));

    auto events = sub.sync();
    REQUIRE(events.size() == 3);
    CHECK(events[0].json_of("data") == R"({"n":1})");
    CHECK(events[1].json_of("data") == R"({"n":3})");
    CHECK(events[2].json_of("data") == R"({"n":4})");
    CHECK(s.metric("sluice_messages_published_total") == 3);
}

TEST_CASE("filters: every operator family", "[ws][filter]") {
    test_server s(quick_options());
    // The data set: index i is published at offset i.
    const std::vector<std::string> data = {
        R"({"amount":5,"source":{"name":"bank"},"tags":["a","b"],"kind":"x","n":null})",  // 1
        R"({"amount":"5","kind":"y"})",                                                   // 2
        R"({"amount":10,"source":{"name":"card"},"tags":["c",7],"kind":"x"})",            // 3
        R"({"amount":1.5,"kind":"z","note":"hello world"})",                              // 4
        R"({"kind":"w","source":"flat"})",                                                // 5
        R"(5)",                                                                           // 6
    };
    struct filter_case {
        std::string filter;
        std::vector<std::uint64_t> offsets;
    };
    const std::vector<filter_case> cases = {
        {R"({"amount":5})", {1}},
        {R"({"amount":"5"})", {2}},
        {R"({"amount":{"eq":5}})", {1}},
        {R"({"amount":{"ne":5}})", {2, 3, 4, 5, 6}},
        {R"({"amount":{"gt":5}})", {3}},
        {R"({"amount":{"gte":5}})", {1, 3}},
        {R"({"amount":{"lt":5}})", {4}},
        {R"({"amount":{"lte":5}})", {1, 4}},
        {R"({"amount":{"gt":"4"}})", {2}},
        {R"({"kind":{"gt":"x"}})", {2, 4}},
        {R"({"kind":{"lte":"w"}})", {5}},
        {R"({"kind":{"in":["x","z"]}})", {1, 3, 4}},
        {R"({"kind":{"nin":["x","z"]}})", {2, 5, 6}},
        {R"({"amount":{"in":[5,"5"]}})", {1, 2}},
        {R"({"source.name":"card"})", {3}},
        {R"({"source.name":{"exists":true}})", {1, 3}},
        {R"({"n":{"exists":true}})", {1}},
        {R"({"n":null})", {1}},
        {R"({"amount":{"exists":false}})", {5, 6}},
        {R"({"note":{"contains":"lo wo"}})", {4}},
        {R"({"tags":{"contains":"c"}})", {3}},
        {R"({"tags":{"contains":7}})", {3}},
        {R"({"tags":{"contains":"b"}})", {1}},
        {R"({"kind":{"contains":"x"}})", {1, 3}},
        {R"({"kind":"x","amount":{"gte":6}})", {3}},
        {R"({"amount":{"gt":1,"lt":6}})", {1, 4}},
        {R"({"tags.0":"a"})", {}},
        {R"({"amount":true})", {}},
        {R"({})", {1, 2, 3, 4, 5, 6}},
    };
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        INFO("filter " << c.filter);
        std::string topic = "filter:" + std::to_string(i);
        ws.subscribe(topic, R"(,"filter":)" + c.filter);
        for (const auto& d : data) REQUIRE_FALSE(s.publish(topic, d).first);
        std::vector<std::uint64_t> got;
        for (const auto& e : ws.sync()) {
            CHECK(e.type() == "event");
            CHECK(e.str("sub") == topic);
            got.push_back(e.u64("offset"));
            // The data arrives as published.
            CHECK(e.json_of("data") ==
                  json_msg::to_json(json_msg(data[e.u64("offset") - 1]).root()));
        }
        CHECK(got == c.offsets);
    }
    // A filter on a pattern applies to every topic it matches.
    ws.subscribe("fp:*", R"(,"filter":{"kind":"x"})");
    REQUIRE_FALSE(s.publish("fp:a", data[0]).first);
    REQUIRE_FALSE(s.publish("fp:b", data[1]).first);
    REQUIRE_FALSE(s.publish("fp:c", data[2]).first);
    auto got = ws.sync();
    REQUIRE(got.size() == 2);
    CHECK(got[0].str("topic") == "fp:a");
    CHECK(got[1].str("topic") == "fp:c");
}

TEST_CASE("filters: invalid_filter with id echo", "[ws][filter]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    std::string seventeen = "{";
    std::string sixteen = "{";
    for (int i = 0; i < 17; ++i) {
        if (i) seventeen += ',';
        seventeen += "\"f" + std::to_string(i) + "\":" + std::to_string(i);
        if (i < 16) {
            if (i) sixteen += ',';
            sixteen += "\"f" + std::to_string(i) + "\":" + std::to_string(i);
        }
    }
    seventeen += '}';
    sixteen += '}';
    const std::vector<std::string> bad = {
        R"("x")",
        R"([1])",
        R"(5)",
        R"(null)",
        R"({"a":{}})",
        R"({"a":{"foo":1}})",
        R"({"a":{"in":5}})",
        R"({"a":{"in":[{"x":1}]}})",
        R"({"a":{"nin":"x"}})",
        R"({"a":{"gt":true}})",
        R"({"a":{"lt":[1]}})",
        R"({"a":{"exists":"yes"}})",
        R"({"a":{"eq":[1]}})",
        R"({"a":{"eq":{"b":1}}})",
        R"({"a":[1]})",
        R"({"a":{"gt":1,"lt":2,"ne":0,"in":[1],"nin":[2],"exists":true,"gte":1,"lte":2,"eq":1,)"
        R"("contains":1,"b":1}})",
        R"({"a":{"gt":1,"lt":2,"ne":0,"in":[1],"nin":[2],"exists":true,"gte":1,"lte":2,"eq":1,)"
        R"("contains":1},"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1})",
        seventeen,
    };
    int id = 0;
    for (const auto& f : bad) {
        ++id;
        expect_error(ws,
                     R"({"type":"subscribe","id":)" + std::to_string(id) +
                         R"(,"topic":"bad:f","filter":)" + f + "}",
                     "invalid_filter", std::to_string(id));
    }
    // Sixteen conditions are fine.
    ws.subscribe("ok:16", R"(,"filter":)" + sixteen);
    // The failed subscribes did not subscribe.
    ws.subscribe("bad:f");
}

TEST_CASE("a binary message closes with 1003", "[ws][limits]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    REQUIRE(ws.send_binary("\x01\x02"));
    // No close frame in answer: the server ends the TCP connection after its
    // close timeout (500 ms here) anyway.
    auto r = ws.wait_close(default_timeout, false);
    CHECK(r.close_frame);
    CHECK(r.code == 1003);
    CHECK(r.tcp_closed);
    CHECK(eventually([&] { return s.metric("sluice_close_total{code=\"1003\"}") == 1; }));
}

TEST_CASE("invalid UTF-8 closes with 1007", "[ws][limits]") {
    test_server s(quick_options());
    SECTION("in one frame") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        REQUIRE(ws.send_json("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}"));
        auto r = ws.wait_close();
        CHECK(r.close_frame);
        CHECK(r.code == 1007);
    }
    SECTION("split across fragments, the code point cut in two") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        // "é" is C3 A9; the fragments cut it (valid), then an overlong byte.
        REQUIRE(ws.send_frame(ws_op::text, "{\"type\":\"ping\",\"id\":\"\xc3", false));
        REQUIRE(ws.send_frame(ws_op::continuation, "\xa9\"}", true));
        auto pong = ws.expect("pong");
        CHECK(pong.str("id") == "\xc3\xa9");
        REQUIRE(ws.send_frame(ws_op::text, "{\"id\":\"\xc0\xaf", false));
        REQUIRE(ws.send_frame(ws_op::continuation, "\"}", true));
        auto r = ws.wait_close();
        CHECK(r.code == 1007);
    }
    SECTION("a UTF-16 surrogate encoded in UTF-8") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        REQUIRE(ws.send_json("{\"x\":\"\xed\xa0\x80\"}"));
        CHECK(ws.wait_close().code == 1007);
    }
}

TEST_CASE("a message over max_message_bytes closes with 1009", "[ws][limits]") {
    server_options o = quick_options();
    o.max_message_bytes = 1024;
    test_server s(o);
    SECTION("exactly the limit is accepted") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        std::string m = R"({"type":"ping","id":"big","pad":")";
        m += std::string(1024 - m.size() - 2, 'p') + "\"}";
        REQUIRE(m.size() == 1024);
        CHECK(ws.call(m, "pong").str("id") == "big");
    }
    SECTION("one frame over the limit") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        std::string m = R"({"type":"ping","pad":")" + std::string(1100, 'p') + "\"}";
        ws.send_json(m);
        auto r = ws.wait_close();
        CHECK(r.close_frame);
        CHECK(r.code == 1009);
    }
    SECTION("fragments each under the limit, reassembled over it") {
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        std::string m = R"({"type":"ping","pad":")" + std::string(1500, 'p') + "\"}";
        ws.send_fragmented(m, 4);
        auto r = ws.wait_close();
        CHECK(r.close_frame);
        CHECK(r.code == 1009);
    }
}

TEST_CASE("fragmented messages are reassembled; pings between fragments are answered", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    REQUIRE(ws.send_fragmented(R"({"type":"ping","id":"frag"})", 5, true));
    auto pong = ws.expect("pong");
    CHECK(pong.str("id") == "frag");
    CHECK(ws.pongs_received == 4);  // one per ping between fragments
}

TEST_CASE("a client ping frame gets a pong frame with its payload", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    REQUIRE(ws.send_ping("hello"));
    auto f = ws.read_frame();
    REQUIRE(f);
    CHECK(f->opcode == ws_op::pong);
    CHECK(f->payload == "hello");
}

TEST_CASE("protocol violations close the connection", "[ws][limits]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    SECTION("an unmasked client frame") {
        REQUIRE(ws.send_frame(ws_op::text, R"({"type":"ping"})", true, false));
    }
    SECTION("a reserved bit without an extension") {
        REQUIRE(ws.send_frame(ws_op::text, R"({"type":"ping"})", true, true, 4));
    }
    SECTION("a continuation without a message") {
        REQUIRE(ws.send_frame(ws_op::continuation, "x", true));
    }
    SECTION("a fragmented ping") { REQUIRE(ws.send_frame(ws_op::ping, "x", false)); }
    auto r = ws.wait_close();
    CHECK((r.close_frame || r.tcp_closed));
    if (r.close_frame) CHECK(r.code == 1002);
}

TEST_CASE("a client close is echoed and the connection ends", "[ws]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    REQUIRE(eventually([&] { return s.metric("sluice_connections{transport=\"ws\"}") == 1; }));
    REQUIRE(ws.send_close(1000, "bye"));
    auto r = ws.wait_close(default_timeout, false);
    CHECK(r.close_frame);
    CHECK(r.code == 1000);
    CHECK(r.tcp_closed);
    CHECK(eventually([&] { return s.metric("sluice_connections{transport=\"ws\"}") == 0; }));
}

TEST_CASE("server pings arrive every ping_interval; a client that answers stays", "[ws][ping]") {
    server_options o = quick_options();
    o.ping_interval = 150ms;
    o.pong_timeout = 150ms;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    // Read for ~1 s: at least 3 pings, no close.
    auto m = ws.wait_for([](const json_msg&) { return true; }, 1000ms);
    CHECK_FALSE(m);
    CHECK_FALSE(ws.close_received);
    CHECK(ws.pings_received >= 3);
    CHECK(ws.call(R"({"type":"ping","id":1})", "pong").json_of("id") == "1");
}

TEST_CASE("a client that does not answer pings is closed with 4001", "[ws][ping]") {
    server_options o = quick_options();
    o.ping_interval = 200ms;
    o.pong_timeout = 200ms;
    test_server s(o);
    ws_client ws;
    ws.auto_pong = false;
    REQUIRE(ws.open(s.port()));
    auto start = steady::now();
    auto r = ws.wait_close(3000ms);
    CHECK(r.close_frame);
    CHECK(r.code == 4001);
    CHECK(ws.pings_received >= 1);
    // Not before the first ping's deadline.
    CHECK(steady::now() - start >= 350ms);
    CHECK(eventually([&] { return s.metric("sluice_close_total{code=\"4001\"}") == 1; }));
}

TEST_CASE("rate limit: rate_limited with retry_after_ms, then close 4429 on the 10th refusal",
          "[ws][rate]") {
    server_options o = quick_options();
    o.client_rate = 20;
    o.client_rate_window = 3000ms;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    for (int i = 0; i < 35; ++i) {
        REQUIRE(ws.send_json(R"({"type":"ping","id":)" + std::to_string(i) + "}"));
    }
    std::vector<json_msg> replies;
    while (auto m = ws.next_message()) replies.push_back(*m);
    REQUIRE(ws.close_received);
    CHECK(ws.close_received->close_code() == 4429);
    // The allowed ones first (the upgrade request may or may not have used one
    // slot: see the strict test below), then exactly 10 refusals, then close.
    std::size_t pongs = 0;
    while (pongs < replies.size() && replies[pongs].type() == "pong") ++pongs;
    CHECK(pongs >= 19);
    CHECK(pongs <= 20);
    REQUIRE(replies.size() == pongs + 10);
    for (std::size_t i = 0; i < replies.size(); ++i) {
        const auto& m = replies[i];
        INFO(m.text());
        CHECK(m.json_of("id") == std::to_string(i));
        if (i < pongs) continue;
        CHECK(m.type() == "error");
        CHECK(m.str("code") == "rate_limited");
        auto retry = m.i64("retry_after_ms");
        CHECK(retry > 0);
        CHECK(retry <= 3000);
    }
    CHECK(ws.wait_close().tcp_closed);
    CHECK(s.metric("sluice_rate_limited_total") >= 10);
    CHECK(eventually([&] { return s.metric("sluice_close_total{code=\"4429\"}") == 1; }));
}

// BUG (reported): the upgrade request itself takes one slot of the
// connection's window, so only client_rate - 1 messages are allowed in the
// first window after the upgrade.
TEST_CASE("rate limit: client_rate WebSocket messages are allowed right after the upgrade",
          "[ws][rate]") {
    server_options o = quick_options();
    o.client_rate = 5;
    o.client_rate_window = 3000ms;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    for (int i = 0; i < 5; ++i) {
        CHECK(ws.call(R"({"type":"ping","id":)" + std::to_string(i) + "}", "pong").json_of("id") ==
              std::to_string(i));
    }
    auto m = reply_to(ws, R"({"type":"ping","id":5})");
    CHECK(m.str("code") == "rate_limited");
}

TEST_CASE("rate limit: refused messages do not count in the window", "[ws][rate]") {
    server_options o = quick_options();
    o.client_rate = 5;
    o.client_rate_window = 1000ms;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto t0 = steady::now();
    // Fill the window.
    int allowed = 0;
    for (;;) {
        auto m = reply_to(ws, R"({"type":"ping"})");
        if (m.type() != "pong") {
            CHECK(m.str("code") == "rate_limited");
            break;
        }
        ++allowed;
        REQUIRE(allowed <= 5);
    }
    CHECK(allowed >= 4);
    // Half a window later: refused, and these refusals must not count.
    std::this_thread::sleep_until(t0 + 500ms);
    for (int i = 0; i < 5; ++i) {
        CHECK(reply_to(ws, R"({"type":"ping"})").str("code") == "rate_limited");
    }
    REQUIRE(steady::now() < t0 + 1000ms);
    // Once the allowed ones left the window, a message is allowed although
    // the refused ones are younger than the window.
    std::this_thread::sleep_until(t0 + 1150ms);
    CHECK(ws.call(R"({"type":"ping","id":"later"})", "pong").str("id") == "later");
}
