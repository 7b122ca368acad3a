// sluice::sse_client against the in-process hub and server (PROTOCOL.md 4,
// 6): events of exact topics and patterns, resumption with Last-Event-ID
// across server restarts, `recovered == false`, the `retry:` hint, topic
// changes and fatal refusals.
#include <sluice/sse_client.hpp>

#include "client_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
using namespace std::chrono_literals;
using sluice::client_state_kind;

namespace {

std::string sse_url(std::uint16_t port) {
    return "http://127.0.0.1:" + std::to_string(port) + "/events";
}

sluice::server_options sse_server_options() {
    sluice::server_options o = quick_options();
    o.sse_retry_min = 100ms;
    o.sse_retry_max = 100ms;
    return o;
}

}  // namespace

TEST_CASE("sse_client: events, restart with Last-Event-ID, no gap, no duplicate", "[client][sse]") {
    restartable_server server({}, nullptr, sse_server_options());
    client_loop loop;
    recorder rec, pattern;
    sluice::sse_client client(loop.executor(), sse_url(server.port()),
                              quick_client(sluice::sse_client_options{}));
    client.on_state(rec.states());
    sluice::subscribe_options o;
    o.on_status = rec.statuses();
    client.subscribe("ss:1", o, rec.events());
    sluice::subscribe_options po;
    po.on_status = pattern.statuses();
    client.subscribe("pp:*", po, pattern.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    REQUIRE(pattern.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    CHECK(rec.count_state(client_state_kind::connecting) == 1);  // both topics in one stream
    for (int i = 1; i <= 5; ++i) server.publish("ss:1", R"({"i":)" + std::to_string(i) + "}");
    server.publish("pp:x", "true");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 5; }));
    REQUIRE(pattern.wait_for([](recorder& r) { return r.events_.size() == 1; }));
    auto first = rec.events_copy()[0];
    CHECK(first.sub == "ss:1");
    CHECK(first.data == R"({"i":1})");
    CHECK(pattern.events_copy()[0].topic == "pp:x");
    CHECK_FALSE(client.last_event_id().empty());

    server.stop();  // ends the stream
    for (int i = 6; i <= 10; ++i) server.publish("ss:1", std::to_string(i));
    server.start();
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.events_.size() == 10 && r.statuses_.size() == 2; }));
    server.publish("ss:1", "11");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 11; }));
    std::vector<std::uint64_t> want;
    for (std::uint64_t i = 1; i <= 11; ++i) want.push_back(i);
    CHECK(offsets(rec.events_copy(), "ss:1") == want);
    auto st = rec.statuses_copy()[1];
    CHECK(st.resumed);
    CHECK(st.recovered);
    REQUIRE(pattern.wait_for([](recorder& r) { return r.statuses_.size() == 2; }));
    CHECK_FALSE(pattern.statuses_copy()[1].recovered);  // patterns resume live only

    // The server's retry: hint (100 ms) is the first delay, with equal jitter.
    bool saw = false;
    for (auto& s : rec.states_copy()) {
        if (s.kind != client_state_kind::reconnecting) continue;
        saw = true;
        CHECK(s.attempt == 1);
        CHECK(s.delay >= 50ms);
        CHECK(s.delay <= 100ms);
        break;
    }
    CHECK(saw);
}

TEST_CASE("sse_client: recovered == false when the history was trimmed", "[client][sse]") {
    sluice::hub_options h;
    h.history_size = 2;
    restartable_server server(h, nullptr, sse_server_options());
    client_loop loop;
    recorder rec;
    sluice::sse_client client(loop.executor(), sse_url(server.port()),
                              quick_client(sluice::sse_client_options{}));
    sluice::subscribe_options o;
    o.on_status = rec.statuses();
    client.subscribe("st:1", o, rec.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    server.publish("st:1", "1");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 1; }));
    server.stop();
    for (int i = 2; i <= 9; ++i) server.publish("st:1", std::to_string(i));
    server.start();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 2; }));
    CHECK_FALSE(rec.statuses_copy()[1].recovered);
    CHECK(rec.statuses_copy()[1].offset == 9);
    server.publish("st:1", "10");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 2; }));
    CHECK(offsets(rec.events_copy(), "st:1") == std::vector<std::uint64_t>{1, 10});
}

TEST_CASE("sse_client: a new topic reopens the stream and keeps the others' position",
          "[client][sse]") {
    restartable_server server({}, nullptr, sse_server_options());
    client_loop loop;
    recorder a, b;
    sluice::sse_client client(loop.executor(), sse_url(server.port()),
                              quick_client(sluice::sse_client_options{}));
    sluice::subscribe_options oa;
    oa.on_status = a.statuses();
    client.subscribe("ta:1", oa, a.events());
    client.connect();
    REQUIRE(a.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    server.publish("ta:1", "1");
    REQUIRE(a.wait_for([](recorder& r) { return r.events_.size() == 1; }));
    sluice::subscribe_options ob;
    ob.on_status = b.statuses();
    auto hb = client.subscribe("tb:1", ob, b.events());
    REQUIRE(b.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    CHECK(b.statuses_copy()[0].recovered);  // new: nothing to miss
    CHECK_FALSE(b.statuses_copy()[0].resumed);
    REQUIRE(a.wait_for([](recorder& r) { return r.statuses_.size() == 2; }));
    CHECK(a.statuses_copy()[1].recovered);
    server.publish("ta:1", "2");
    server.publish("tb:1", "1");
    REQUIRE(a.wait_for([](recorder& r) { return r.events_.size() == 2; }));
    REQUIRE(b.wait_for([](recorder& r) { return r.events_.size() == 1; }));
    CHECK(offsets(a.events_copy(), "ta:1") == std::vector<std::uint64_t>{1, 2});
    hb.unsubscribe();
    REQUIRE(a.wait_for([](recorder& r) { return r.statuses_.size() == 3; }));
    server.publish("tb:1", "2");
    server.publish("ta:1", "3");
    REQUIRE(a.wait_for([](recorder& r) { return r.events_.size() == 3; }));
    CHECK(b.events_copy().size() == 1);
    // A per-subscription filter is refused: SSE has one filter per stream.
    recorder c;
    sluice::subscribe_options oc;
    oc.filter_json = R"({"a":1})";
    oc.on_status = c.statuses();
    client.subscribe("tc:1", oc, c.events());
    REQUIRE(c.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    CHECK(c.statuses_copy()[0].error == sluice::errc::invalid_filter);
}

TEST_CASE("sse_client: 401 and 400 invalid_topic are fatal", "[client][sse]") {
    client_loop loop;
    SECTION("401") {
        restartable_server server(
            {}, std::make_shared<sluice::jwt_policy>("a-secret-of-at-least-32-bytes-long!!"));
        recorder rec;
        auto o = quick_client(sluice::sse_client_options{});
        o.token = "bad";
        sluice::sse_client client(loop.executor(), sse_url(server.port()), o);
        client.on_state(rec.states());
        client.subscribe("x:1", rec.events());
        client.connect();
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
        CHECK(rec.states_copy().back().error == sluice::errc::unauthorized);
        CHECK(rec.states_copy().back().http_status == 401);
    }
    SECTION("400 invalid_topic") {
        restartable_server server;
        recorder rec;
        sluice::sse_client client(loop.executor(), sse_url(server.port()),
                                  quick_client(sluice::sse_client_options{}));
        client.on_state(rec.states());
        client.subscribe("bad topic", rec.events());
        client.connect();
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
        CHECK(rec.states_copy().back().error == sluice::errc::invalid_topic);
        CHECK(rec.states_copy().back().http_status == 400);
    }
}

TEST_CASE("sse_client: a silent stream is dead after heartbeat_timeout", "[client][sse]") {
    sluice::server_options so = sse_server_options();
    so.sse_heartbeat = 10s;  // the server stays silent
    restartable_server server({}, nullptr, so);
    client_loop loop;
    recorder rec;
    auto o = quick_client(sluice::sse_client_options{});
    o.heartbeat_timeout = 200ms;
    sluice::sse_client client(loop.executor(), sse_url(server.port()), o);
    client.on_state(rec.states());
    client.subscribe("hb:1", rec.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) {
        for (auto& s : r.states_)
            if (s.kind == client_state_kind::reconnecting &&
                s.error == sluice::client_errc::heartbeat_timeout)
                return true;
        return false;
    }));
}

TEST_CASE("sse_client: https with the CA file", "[client][sse][tls]") {
    restartable_server server({}, nullptr, sse_server_options());
    self_signed_cert cert;
    tls_forwarder tls(cert, server.port());
    client_loop loop;
    recorder rec;
    auto o = quick_client(sluice::sse_client_options{});
    o.tls.ca_file = cert.ca_file();
    sluice::sse_client client(loop.executor(), "https://127.0.0.1:" + std::to_string(tls.port()),
                              o);
    sluice::subscribe_options so;
    so.on_status = rec.statuses();
    client.subscribe("tls:2", so, rec.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    server.publish("tls:2", "42");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 1; }));
    CHECK(rec.events_copy()[0].data == "42");
}
