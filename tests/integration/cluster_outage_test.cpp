// Hubs of a cluster when Redis goes away (PROTOCOL.md section 9): clients
// stay connected, publishes get `unavailable` / 503, /health reports
// degraded; when Redis is back the hubs rejoin, fill their subscribers' gaps
// from the Redis streams, and a Redis that lost everything starts new epochs.
#include "cluster_fixture.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
using sluice::errc;

namespace {

json_msg health(std::uint16_t port) {
    auto r = http_get(port, "/health");
    REQUIRE(r.status == 200);
    return json_msg(r.body);
}

int publish_status(std::uint16_t port, std::string_view topic) {
    return http_fetch(port,
                      publish_request_text(R"({"topic":")" + std::string(topic) + R"(","data":0})"))
        .status;
}

}  // namespace

TEST_CASE("Redis killed and restarted empty: hubs degrade, keep clients, rejoin with a new epoch",
          "[cluster][outage]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    ws_client sub;
    REQUIRE(sub.open(a.port()));
    const std::string old_epoch = sub.subscribe("live:1").str("epoch");
    sse_client stream;
    REQUIRE(stream.open(b.port(), "/events?topic=live:1"));
    REQUIRE(stream.next());              // retry:
    REQUIRE(stream.next_non_comment());  // subscribed
    b.publish("live:1", "1");
    CHECK(sub.expect("event").u64("offset") == 1);

    redis.kill();
    REQUIRE(a.wait_down());
    REQUIRE(b.wait_down());
    auto h = health(a.port());
    CHECK(h.str("status") == "degraded");
    CHECK(h.str("backplane") == "down");
    CHECK(h.get("connections") != nullptr);
    CHECK(a.metric("sluice_backplane_up") == 0);

    // Publishes are refused everywhere, in every form.
    auto refused = sub.call(R"({"type":"publish","id":9,"topic":"live:1","data":2})", "error");
    CHECK(refused.str("code") == "unavailable");
    CHECK(refused.u64("id") == 9);
    CHECK(publish_status(b.port(), "live:1") == 503);
    CHECK(a.publish("live:1", "2").first == errc::unavailable);
    // Clients stay connected and served.
    CHECK(event_offsets(sub.sync()).empty());
    CHECK(sub.subscribe("live:*").str("topic") == "live:*");  // patterns need no position

    redis.restart();
    REQUIRE(a.wait_up(std::chrono::seconds(10)));
    REQUIRE(b.wait_up(std::chrono::seconds(10)));
    CHECK(health(b.port()).str("status") == "ok");
    CHECK(b.metric("sluice_backplane_up") == 1);

    // Redis lost the topic: what follows is a new epoch, from offset 1.
    auto [ec, pos] = b.publish("live:1", R"("after")");
    REQUIRE_FALSE(ec);
    CHECK(pos.offset == 1);
    CHECK(pos.epoch != old_epoch);
    auto e = sub.expect("event");
    CHECK(e.u64("offset") == 1);
    CHECK(e.str("epoch") == pos.epoch);
    CHECK(e.json_of("data") == R"("after")");
    // The SSE stream on b saw event 1 of the old epoch, then event 1 of the new.
    std::vector<std::string> epochs;
    while (epochs.size() < 2) {
        auto block = stream.next_non_comment();
        REQUIRE(block);
        if (block->event != "message") continue;
        CHECK(json_msg(block->data).u64("offset") == 1);
        epochs.push_back(json_msg(block->data).str("epoch"));
    }
    CHECK(epochs == std::vector<std::string>{old_epoch, pos.epoch});
    // A client resuming with the old epoch is not recovered.
    ws_client late;
    REQUIRE(late.open(b.port()));
    auto s = late.subscribe("live:1", R"(,"since":{"offset":1,"epoch":")" + old_epoch + "\"}");
    CHECK(s.boolean("recovered") == false);
    CHECK(s.str("epoch") == pos.epoch);
    CHECK(s.u64("offset") == 1);
}

TEST_CASE("a hub cut off from Redis fills its subscribers' gap when it returns",
          "[cluster][outage][gap]") {
    redis_server redis;
    auto acl = redis.command({"ACL", "SETUSER", "hub_a", "on", ">secret", "~*", "&*", "+@all"});
    REQUIRE_FALSE(acl.is_error());
    auto options_a = test_redis_options(redis.port());
    options_a.username = "hub_a";
    options_a.password = "secret";
    cluster_node a(options_a);
    cluster_node b(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    ws_client sub;
    REQUIRE(sub.open(a.port()));
    sub.subscribe("gap:1");
    sub.subscribe("gap:*");
    b.publish("gap:1", "1");
    CHECK(event_offsets({sub.expect("event"), sub.expect("event")}) ==
          std::vector<std::uint64_t>{1, 1});

    // Hub a loses Redis (and cannot come back); b carries on.
    REQUIRE_FALSE(redis.command({"ACL", "SETUSER", "hub_a", "off"}).is_error());
    REQUIRE_FALSE(redis.command({"CLIENT", "KILL", "USER", "hub_a"}).is_error());
    REQUIRE(a.wait_down());
    CHECK(health(a.port()).str("status") == "degraded");
    CHECK(health(b.port()).str("status") == "ok");
    CHECK(a.publish("gap:1", "0").first == errc::unavailable);
    for (int i = 2; i <= 4; ++i) REQUIRE_FALSE(b.publish("gap:1", std::to_string(i)).first);
    CHECK(event_offsets(sub.sync()).empty());

    REQUIRE_FALSE(redis.command({"ACL", "SETUSER", "hub_a", "on"}).is_error());
    REQUIRE(a.wait_up(std::chrono::seconds(10)));
    // The missed events arrive, in order, once per subscription, without
    // the client doing anything.
    std::vector<json_msg> got;
    for (int i = 0; i < 6; ++i) got.push_back(sub.expect("event"));
    std::vector<std::uint64_t> exact, pattern;
    for (const auto& m : got)
        (m.str("sub") == "gap:1" ? exact : pattern).push_back(m.u64("offset"));
    CHECK(exact == std::vector<std::uint64_t>{2, 3, 4});
    CHECK(pattern == std::vector<std::uint64_t>{2, 3, 4});
    a.publish("gap:1", "5");
    CHECK(event_offsets(sub.sync()) == std::vector<std::uint64_t>{5, 5});
}

TEST_CASE("a Redis that stops answering is detected by the probes, not by TCP",
          "[cluster][outage][probe]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    ws_client sub;
    REQUIRE(sub.open(a.port()));
    sub.subscribe("frozen:1");
    a.publish("frozen:1", "1");
    CHECK(sub.expect("event").u64("offset") == 1);

    redis.freeze();
    REQUIRE(a.wait_down(std::chrono::seconds(3)));
    CHECK(health(a.port()).str("backplane") == "down");
    CHECK(a.publish("frozen:1", "0").first == errc::unavailable);
    redis.thaw();
    REQUIRE(a.wait_up(std::chrono::seconds(10)));
    auto [ec, pos] = a.publish("frozen:1", "2");
    REQUIRE_FALSE(ec);
    CHECK(pos.offset == 2);
    CHECK(sub.expect("event").u64("offset") == 2);
    CHECK(event_offsets(sub.sync()).empty());
}

TEST_CASE("a hub that never reached Redis serves degraded and joins when Redis appears",
          "[cluster][outage]") {
    auto options = test_redis_options(1);  // nothing listens on port 1
    {
        cluster_node lonely(options);
        CHECK_FALSE(lonely.wait_up(std::chrono::milliseconds(500)));
        CHECK(health(lonely.port()).str("status") == "degraded");
        ws_client c;
        REQUIRE(c.open(lonely.port()));
        // A topic this hub never saw has no position without Redis.
        REQUIRE(c.send_json(R"({"type":"subscribe","id":"s","topic":"t:1"})"));
        auto refused = c.expect("error");
        CHECK(refused.str("code") == "unavailable");
        CHECK(refused.str("id") == "s");
        CHECK(c.subscribe("t:*").str("topic") == "t:*");  // patterns are live only
    }
    redis_server redis;
    cluster_node late(test_redis_options(redis.port()));
    CHECK(late.wait_up());
}

TEST_CASE("Redis refusing writes (out of memory): publishes get unavailable, then work again",
          "[cluster][outage]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()));
    REQUIRE(a.wait_up());
    REQUIRE_FALSE(a.publish("oom:1", "1").first);
    REQUIRE_FALSE(redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}).is_error());
    REQUIRE_FALSE(redis.command({"CONFIG", "SET", "maxmemory", "1"}).is_error());
    CHECK(a.publish("oom:1", "2").first == errc::unavailable);
    CHECK(publish_status(a.port(), "oom:1") == 503);
    CHECK(a.hub().backplane_up());  // Redis answers: only writes are refused
    REQUIRE_FALSE(redis.command({"CONFIG", "SET", "maxmemory", "0"}).is_error());
    auto [ec, pos] = a.publish("oom:1", "3");
    REQUIRE_FALSE(ec);
    CHECK(pos.offset == 2);  // the refused publishes took no offset
}
