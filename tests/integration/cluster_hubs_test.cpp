// Several hubs joined by one real Redis (PROTOCOL.md section 9): cross-hub
// delivery with identical offsets and epochs, resume on another hub
// (WebSocket `since`, SSE Last-Event-ID), ordering with publishers on every
// hub, idempotency across hubs.
#include "cluster_fixture.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace sluice::test;
using sluice::errc;

namespace {

std::string sse_target(std::string_view topic) { return "/events?topic=" + url_encode(topic); }

json_msg sse_json(const sse_block& b) { return json_msg(b.data); }

/// Opens a stream and reads its `retry:` block.
bool open_stream(sse_client& c, std::uint16_t port, std::string_view topic,
                 std::string_view extra_headers = {}) {
    if (!c.open(port, sse_target(topic), extra_headers)) return false;
    auto first = c.next();
    return first && first->retry;
}

}  // namespace

TEST_CASE("a publish on one hub reaches the subscribers of every hub with one offset sequence",
          "[cluster]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    ws_client on_a, on_b;
    REQUIRE(on_a.open(a.port()));
    REQUIRE(on_b.open(b.port()));
    auto sub_a = on_a.subscribe("prices:AAPL");
    auto sub_b = on_b.subscribe("prices:AAPL");
    CHECK(sub_a.u64("offset") == 0);
    CHECK(sub_b.u64("offset") == 0);
    CHECK(sub_a.str("epoch") == sub_b.str("epoch"));
    CHECK(sub_a.str("epoch").size() >= 8);

    // WebSocket publish on a, HTTP publish on b, host publish on a.
    auto published = on_a.publish("prices:AAPL", R"({"bid":1})");
    CHECK(published.u64("offset") == 1);
    CHECK(published.str("epoch") == sub_a.str("epoch"));
    auto http = http_fetch(b.port(), publish_request_text(R"({"topic":"prices:AAPL","data":2})"));
    REQUIRE(http.status == 200);
    CHECK(json_msg(http.body).u64("offset") == 2);
    auto [ec, pos] = a.publish("prices:AAPL", "3");
    REQUIRE_FALSE(ec);
    CHECK(pos.offset == 3);
    CHECK(pos.epoch == sub_a.str("epoch"));

    for (auto* client : {&on_a, &on_b}) {
        for (std::uint64_t offset = 1; offset <= 3; ++offset) {
            auto e = client->expect("event");
            CHECK(e.u64("offset") == offset);
            CHECK(e.str("epoch") == sub_a.str("epoch"));
            CHECK(e.str("topic") == "prices:AAPL");
            CHECK(e.json_of("data") == (offset == 1 ? R"({"bid":1})" : std::to_string(offset)));
        }
    }
    // Patterns match across hubs too.
    on_b.subscribe("prices:*");
    a.publish("prices:MSFT", R"({"x":true})");
    auto e = on_b.expect("event");
    CHECK(e.str("sub") == "prices:*");
    CHECK(e.str("topic") == "prices:MSFT");
    CHECK(e.u64("offset") == 1);

    auto health = http_get(b.port(), "/health");
    REQUIRE(health.status == 200);
    CHECK(json_msg(health.body).str("status") == "ok");
    CHECK(json_msg(health.body).str("backplane") == "up");
    CHECK(b.metric("sluice_backplane_up") == 1);
}

TEST_CASE("a quiet hub answers a plain subscribe with the cluster's position", "[cluster]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    for (int i = 0; i < 5; ++i) REQUIRE_FALSE(a.publish("t:q", std::to_string(i)).first);
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(b.wait_up());
    ws_client c;
    REQUIRE(c.open(b.port()));
    auto s = c.subscribe("t:q");
    CHECK(s.u64("offset") == 5);
    // Gap-free: the first live event is offset + 1.
    a.publish("t:q", "5");
    CHECK(c.expect("event").u64("offset") == 6);
}

TEST_CASE("a WebSocket client resumes on another hub with since", "[cluster][recovery]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    std::string epoch;
    {
        ws_client first;
        REQUIRE(first.open(a.port()));
        epoch = first.subscribe("orders:7").str("epoch");
        for (int i = 1; i <= 3; ++i) a.publish("orders:7", std::to_string(i));
        for (std::uint64_t i = 1; i <= 3; ++i) CHECK(first.expect("event").u64("offset") == i);
    }
    // Missed while away, published on both hubs.
    b.publish("orders:7", "4");
    a.publish("orders:7", "5");
    b.publish("orders:7", "6");

    ws_client second;
    REQUIRE(second.open(b.port()));
    auto s = second.subscribe("orders:7", R"(,"since":{"offset":3,"epoch":")" + epoch + "\"}");
    CHECK(s.boolean("recovered") == true);
    CHECK(s.u64("offset") == 6);
    CHECK(s.str("epoch") == epoch);
    for (std::uint64_t i = 4; i <= 6; ++i) {
        auto e = second.expect("event");
        CHECK(e.u64("offset") == i);
        CHECK(e.json_of("data") == std::to_string(i));
    }
    a.publish("orders:7", "7");
    CHECK(second.expect("event").u64("offset") == 7);
    // Nothing twice.
    CHECK(event_offsets(second.sync()).empty());

    // A wrong epoch, or an offset above the top: not recovered, live only.
    ws_client third;
    REQUIRE(third.open(a.port()));
    auto wrong = third.subscribe("orders:7", R"(,"since":{"offset":3,"epoch":"0123456789abcdef"})");
    CHECK(wrong.boolean("recovered") == false);
    CHECK(wrong.u64("offset") == 7);
    auto above = third.subscribe("orders:8", R"(,"since":{"offset":3,"epoch":")" + epoch + "\"}");
    CHECK(above.boolean("recovered") == false);
    CHECK(event_offsets(third.sync()).empty());
}

TEST_CASE("recovery beyond the stream kept in Redis is not recovered", "[cluster][recovery]") {
    redis_server redis;
    sluice::hub_options small;
    small.history_size = 3;
    cluster_node a(test_redis_options(redis.port()), small);
    REQUIRE(a.wait_up());
    std::string epoch;
    for (int i = 1; i <= 6; ++i) epoch = a.publish("t:small", std::to_string(i)).second.epoch;
    ws_client c;
    REQUIRE(c.open(a.port()));
    auto lost = c.subscribe("t:small", R"(,"since":{"offset":2,"epoch":")" + epoch + "\"}");
    CHECK(lost.boolean("recovered") == false);
    CHECK(lost.u64("offset") == 6);
    CHECK(event_offsets(c.sync()).empty());
    ws_client d;
    REQUIRE(d.open(a.port()));
    auto kept = d.subscribe("t:small", R"(,"since":{"offset":3,"epoch":")" + epoch + "\"}");
    CHECK(kept.boolean("recovered") == true);
    CHECK(event_offsets(d.sync()) == std::vector<std::uint64_t>{4, 5, 6});
}

TEST_CASE("an SSE client resumes on another hub with Last-Event-ID", "[cluster][sse]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    std::string token;
    {
        sse_client first;
        REQUIRE(open_stream(first, a.port(), "feed:1"));
        auto subscribed = first.next_non_comment();
        REQUIRE(subscribed);
        CHECK(subscribed->event == "subscribed");
        a.publish("feed:1", "1");
        b.publish("feed:1", "2");
        for (std::uint64_t i = 1; i <= 2; ++i) {
            auto e = first.next_non_comment();
            REQUIRE(e);
            CHECK(sse_json(*e).u64("offset") == i);
            REQUIRE(e->id);
            token = *e->id;
        }
    }
    b.publish("feed:1", "3");
    a.publish("feed:1", "4");

    sse_client second;
    REQUIRE(open_stream(second, b.port(), "feed:1", "Last-Event-ID: " + token + "\r\n"));
    auto subscribed = second.next_non_comment();
    REQUIRE(subscribed);
    CHECK(subscribed->event == "subscribed");
    CHECK(sse_json(*subscribed).boolean("recovered") == true);
    CHECK(sse_json(*subscribed).u64("offset") == 4);
    for (std::uint64_t i = 3; i <= 4; ++i) {
        auto e = second.next_non_comment();
        REQUIRE(e);
        CHECK(sse_json(*e).u64("offset") == i);
    }
    a.publish("feed:1", "5");
    auto live = second.next_non_comment();
    REQUIRE(live);
    CHECK(sse_json(*live).u64("offset") == 5);
}

TEST_CASE("three hubs publishing concurrently to one topic: one strictly increasing sequence",
          "[cluster][order]") {
    redis_server redis;
    std::vector<std::unique_ptr<cluster_node>> hubs;
    for (int i = 0; i < 3; ++i) {
        hubs.push_back(std::make_unique<cluster_node>(test_redis_options(redis.port())));
    }
    for (auto& h : hubs) REQUIRE(h->wait_up());
    std::vector<std::unique_ptr<ws_client>> clients;
    for (auto& h : hubs) {
        clients.push_back(std::make_unique<ws_client>());
        REQUIRE(clients.back()->open(h->port()));
        clients.back()->subscribe("race:1");
    }

    constexpr int per_hub = 40;
    std::vector<std::vector<std::uint64_t>> assigned(hubs.size());
    std::vector<std::thread> publishers;
    for (std::size_t h = 0; h < hubs.size(); ++h) {
        publishers.emplace_back([&, h] {
            // A WebSocket publisher per hub: its publishes apply in order.
            ws_client pub;
            if (!pub.open(hubs[h]->port())) return;
            for (int i = 0; i < per_hub; ++i) {
                auto r = pub.publish("race:1", R"({"hub":)" + std::to_string(h) + R"(,"i":)" +
                                                   std::to_string(i) + "}");
                assigned[h].push_back(r.u64("offset"));
            }
        });
    }
    for (auto& t : publishers) t.join();

    std::set<std::uint64_t> all;
    for (const auto& offsets : assigned) {
        REQUIRE(offsets.size() == per_hub);
        CHECK(std::is_sorted(offsets.begin(), offsets.end()));
        all.insert(offsets.begin(), offsets.end());
    }
    const std::size_t total = per_hub * hubs.size();
    CHECK(all.size() == total);  // no offset given twice
    CHECK(*all.rbegin() == total);

    for (auto& c : clients) {
        std::vector<std::uint64_t> seen;
        std::vector<int> last_i(hubs.size(), -1);
        while (seen.size() < total) {
            auto e = c->next_message();
            REQUIRE(e);
            REQUIRE(e->type() == "event");
            seen.push_back(e->u64("offset"));
            json_msg data(e->json_of("data"));
            auto hub = static_cast<std::size_t>(data.i64("hub"));
            auto i = static_cast<int>(data.i64("i"));
            CHECK(i == last_i[hub] + 1);  // each publisher's order is kept
            last_i[hub] = i;
        }
        for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == i + 1);
        CHECK(event_offsets(c->sync()).empty());
    }
}

TEST_CASE("an idempotency key holds across hubs", "[cluster]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());
    ws_client c;
    REQUIRE(c.open(b.port()));
    c.subscribe("pay:1");
    sluice::publish_options o;
    o.idempotency_key = "k-1";
    auto first = a.publish("pay:1", "1", o);
    auto again = b.publish("pay:1", "1", o);
    REQUIRE_FALSE(first.first);
    REQUIRE_FALSE(again.first);
    CHECK(first.second == again.second);
    CHECK(c.expect("event").u64("offset") == 1);
    CHECK(event_offsets(c.sync()).empty());
}

TEST_CASE("a connection's publishes are pipelined to Redis and answered in request order",
          "[cluster]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    ws_client c;
    REQUIRE(c.open(a.port()));
    // 40 publishes, then a subscribe and a bad message, all sent before any
    // answer: the publishes are in flight together, the rest waits for them.
    constexpr int publishes = 40;
    for (int i = 1; i <= publishes; ++i) {
        REQUIRE(c.send_json(R"({"type":"publish","id":)" + std::to_string(i) +
                            R"(,"topic":"pipe:1","data":)" + std::to_string(i) + "}"));
    }
    REQUIRE(c.send_json(R"({"type":"subscribe","id":41,"topic":"pipe:1"})"));
    REQUIRE(c.send_json(R"({"type":"nonsense","id":42})"));
    for (int i = 1; i <= publishes; ++i) {
        auto m = c.expect("published");
        CHECK(m.i64("id") == i);
        CHECK(m.u64("offset") == static_cast<std::uint64_t>(i));
    }
    auto subscribed = c.expect("subscribed");
    CHECK(subscribed.i64("id") == 41);
    CHECK(subscribed.u64("offset") == publishes);
    auto error = c.expect("error");
    CHECK(error.i64("id") == 42);
}

TEST_CASE("a clustered hub checks its Redis options at construction", "[cluster]") {
    CHECK(sluice::hub::redis_supported());
    asio::io_context io;
    auto policy = std::make_shared<sluice::anonymous_policy>(true);
    auto bad = test_redis_options(6379);
    bad.probe_timeout = bad.probe_interval;
    CHECK_THROWS_AS(sluice::hub(io.get_executor(), policy, {}, bad), std::invalid_argument);
    bad = test_redis_options(6379);
    bad.port = 0;
    CHECK_THROWS_AS(sluice::hub(io.get_executor(), policy, {}, bad), std::invalid_argument);
    bad = test_redis_options(6379);
    bad.reconnect_max_delay = bad.reconnect_initial_delay / 2;
    CHECK_THROWS_AS(sluice::hub(io.get_executor(), policy, {}, bad), std::invalid_argument);
    // A valid one constructs without touching the network until the loop runs.
    sluice::hub ok(io.get_executor(), policy, {}, test_redis_options(6379));
    CHECK_FALSE(ok.backplane_up());
    CHECK(json_msg(ok.health_json()).str("backplane") == "down");
}
