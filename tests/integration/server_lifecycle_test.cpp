// Slow consumers (PROTOCOL.md section 3.3) and the graceful stop of a server
// (section 8): close 1013 or a dropped connection, the metrics that count it,
// and close 1001 / ended SSE streams on stop().
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
using sluice::server_options;

namespace {

constexpr int small_receive_buffer = 4096;

/// Publishes `n` events of about `size` bytes to `topic`, each waited for.
void publish_many(test_server& s, const std::string& topic, int n, std::size_t size) {
    std::string pad(size, 'x');
    for (int i = 0; i < n; ++i) {
        auto [ec, pos] =
            s.publish(topic, R"({"i":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}");
        REQUIRE_FALSE(ec);
    }
}

}  // namespace

TEST_CASE("a WebSocket client that stops reading is closed 1013 or dropped; metrics count it",
          "[slow]") {
    server_options o = quick_options();
    o.max_queue_bytes = 64 * 1024;
    o.send_timeout = 60s;
    o.client_rate = 1'000'000;
    test_server s(o);

    ws_client slow;
    REQUIRE(slow.open(s.port(), "/ws", {}, small_receive_buffer));
    slow.subscribe("slow:1");
    ws_client healthy;
    REQUIRE(healthy.open(s.port()));
    healthy.subscribe("slow:1");

    // About 8 MB: far more than the socket buffers and the queue limit.
    std::atomic<std::uint64_t> healthy_next{1};
    std::thread reader([&] {
        std::uint64_t expected = 1;
        while (expected <= 4000) {
            auto m = healthy.next_message();
            if (!m || m->u64("offset") != expected) break;
            ++expected;
        }
        healthy_next = expected;
    });
    publish_many(s, "slow:1", 4000, 2000);
    reader.join();
    CHECK(healthy_next == 4001);  // every event, in order

    CHECK(eventually([&] { return s.metric("sluice_slow_consumer_disconnects_total") == 1; }));
    CHECK(s.metric("sluice_messages_dropped_total{reason=\"slow_consumer\"}") > 0);
    // Now read what arrived: some events, then close 1013 or the end of TCP.
    auto r = slow.wait_close(10s, false);
    CHECK(r.tcp_closed);
    if (r.close_frame) CHECK(r.code == 1013);
    CHECK_FALSE(r.timed_out);
    CHECK(eventually([&] { return s.metric("sluice_connections{transport=\"ws\"}") == 1; }));
    CHECK(eventually([&] { return s.metric("sluice_send_queue_bytes") == 0; }));
    // The healthy one is still served.
    CHECK(healthy.call(R"({"type":"ping","id":1})", "pong").json_of("id") == "1");
}

TEST_CASE("a client whose oldest queued frame is older than send_timeout is a slow consumer",
          "[slow]") {
    server_options o = quick_options();
    o.max_queue_bytes = 64u << 20;
    o.send_timeout = 300ms;
    o.client_rate = 1'000'000;
    test_server s(o);
    ws_client slow;
    REQUIRE(slow.open(s.port(), "/ws", {}, small_receive_buffer));
    slow.subscribe("age:1");
    // Fill the socket buffers, then keep a trickle going past the timeout.
    publish_many(s, "age:1", 3000, 2000);
    auto until = steady::now() + 1500ms;
    while (steady::now() < until && s.metric("sluice_slow_consumer_disconnects_total") == 0) {
        publish_many(s, "age:1", 1, 100);
        std::this_thread::sleep_for(20ms);
    }
    CHECK(eventually([&] { return s.metric("sluice_slow_consumer_disconnects_total") == 1; }));
    auto r = slow.wait_close(10s, false);
    CHECK(r.tcp_closed);
    if (r.close_frame) CHECK(r.code == 1013);
}

TEST_CASE("an SSE client that stops reading: the stream just ends", "[slow][sse]") {
    server_options o = quick_options();
    o.max_queue_bytes = 64 * 1024;
    test_server s(o);
    sse_client slow;
    REQUIRE(slow.open(s.port(), "/events?topic=slow:2", {}, small_receive_buffer));
    REQUIRE(slow.next());  // retry
    publish_many(s, "slow:2", 4000, 2000);
    CHECK(eventually([&] { return s.metric("sluice_slow_consumer_disconnects_total") == 1; }));
    CHECK(s.metric("sluice_messages_dropped_total{reason=\"slow_consumer\"}") > 0);
    CHECK(slow.wait_closed(10s));
    CHECK(eventually([&] { return s.metric("sluice_connections{transport=\"sse\"}") == 0; }));
}

TEST_CASE("pongs are not held back by a full queue", "[slow][ping]") {
    server_options o = quick_options();
    o.client_rate = 1'000'000;
    test_server s(o);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    ws.subscribe("pp:1");
    publish_many(s, "pp:1", 300, 1000);
    // The pong arrives, ahead of or among the queued events.
    REQUIRE(ws.send_ping("now"));
    for (;;) {
        auto f = ws.read_frame();
        REQUIRE(f);
        if (f->opcode == ws_op::pong) {
            CHECK(f->payload == "now");
            break;
        }
        REQUIRE(f->opcode == ws_op::text);
    }
}

TEST_CASE("stop(): WebSockets get 1001, SSE streams end, the callback fires", "[stop]") {
    test_server s(quick_options());
    ws_client a, b;
    REQUIRE(a.open(s.port()));
    REQUIRE(b.open(s.port()));
    a.subscribe("stop:1");
    sse_client sse;
    REQUIRE(sse.open(s.port(), "/events?topic=stop:1"));
    REQUIRE(sse.next());
    http_client idle;
    REQUIRE(idle.connect(s.port()));
    REQUIRE(eventually([&] { return s.server().connection_count() == 3; }));
    CHECK(s.hub().connection_count() == 3);

    s.stop_async();
    auto ra = a.wait_close();
    auto rb = b.wait_close();
    CHECK(ra.close_frame);
    CHECK(ra.code == 1001);
    CHECK(rb.code == 1001);
    CHECK(ra.tcp_closed);
    // The SSE stream ends (after what was queued).
    while (sse.next(default_timeout)) {
    }
    CHECK(sse.ended);
    CHECK(idle.wait_closed());
    CHECK(eventually([&] { return s.stopped(); }));
    CHECK(s.server().connection_count() == 0);
    CHECK(s.metric("sluice_close_total{code=\"1001\"}") == 2);
    // No new connections.
    http_client late;
    bool refused =
        !late.connect(s.port()) || late.request(http_request_text("GET", "/health")).status == 0;
    CHECK(refused);
}

// BUG (reported): server::stop() called after a previous stop() finished
// queues its callback but never calls it.
TEST_CASE("stop(): a second stop() calls its callback too", "[stop]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    REQUIRE(s.stop(3000ms));
    CHECK(s.stop(2000ms));
}

TEST_CASE("stop(): with drain, the 1001 closes are spread over the drain time", "[stop]") {
    server_options o = quick_options();
    o.drain = 600ms;
    test_server s(o);
    std::vector<std::unique_ptr<ws_client>> clients;
    for (int i = 0; i < 4; ++i) {
        clients.push_back(std::make_unique<ws_client>());
        REQUIRE(clients.back()->open(s.port()));
    }
    auto start = steady::now();
    s.stop_async();
    std::vector<std::chrono::milliseconds> at;
    for (auto& c : clients) {
        auto r = c->wait_close(3000ms);
        CHECK(r.code == 1001);
        at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start));
    }
    auto latest = *std::max_element(at.begin(), at.end());
    CHECK(latest >= 450ms);
    CHECK(latest < 2000ms);
    CHECK(eventually([&] { return s.stopped(); }));
}

TEST_CASE("stop(): with no connections the callback fires at once", "[stop]") {
    test_server s(quick_options());
    CHECK(s.stop(2000ms));
    CHECK(s.server().connection_count() == 0);
}
