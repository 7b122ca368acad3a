// History and recovery over WebSocket (PROTOCOL.md section 3.2), including the
// race between a publisher and clients subscribing with and without `since`.
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace sluice::test;
using sluice::hub_options;
using sluice::server_options;

namespace {

std::string since(std::uint64_t offset, const std::string& epoch) {
    return R"(,"since":{"offset":)" + std::to_string(offset) + R"(,"epoch":)" + json_quote(epoch) +
           "}";
}

/// Publishes `n` events to `topic` (data = their index from 1); returns the
/// epoch.
std::string publish_n(test_server& s, const std::string& topic, int n) {
    std::string epoch;
    for (int i = 1; i <= n; ++i) {
        auto [ec, pos] = s.publish(topic, R"({"i":)" + std::to_string(i) + "}");
        REQUIRE_FALSE(ec);
        epoch = pos.epoch;
    }
    return epoch;
}

std::vector<std::uint64_t> offsets_of(const std::vector<json_msg>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) {
        if (e.type() == "event") out.push_back(e.u64("offset"));
    }
    return out;
}

}  // namespace

TEST_CASE("recovery: matching epoch replays exactly the missed events, then live", "[recovery]") {
    test_server s(quick_options());
    auto epoch = publish_n(s, "rc:1", 5);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto sub = ws.call(R"({"type":"subscribe","id":1,"topic":"rc:1")" + since(2, epoch) + "}",
                       "subscribed");
    CHECK(sub.json_of("id") == "1");
    CHECK(sub.boolean("recovered") == true);
    CHECK(sub.str("epoch") == epoch);
    CHECK(sub.u64("offset") == 5);
    REQUIRE_FALSE(s.publish("rc:1", R"({"i":6})").first);
    auto events = ws.sync();
    CHECK(offsets_of(events) == std::vector<std::uint64_t>{3, 4, 5, 6});
    for (const auto& e : events) {
        CHECK(e.str("sub") == "rc:1");
        CHECK(e.str("epoch") == epoch);
        CHECK(e.json_of("data") == R"({"i":)" + std::to_string(e.u64("offset")) + "}");
    }
    CHECK(s.metric("sluice_recoveries_total{result=\"recovered\"}") == 1);
}

TEST_CASE("recovery: since equal to the top recovers with nothing to replay", "[recovery]") {
    SECTION("with history") {
        test_server s(quick_options());
        auto epoch = publish_n(s, "rc:2", 4);
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        auto sub = ws.subscribe("rc:2", since(4, epoch));
        CHECK(sub.boolean("recovered") == true);
        CHECK(sub.u64("offset") == 4);
        CHECK(ws.sync().empty());
        REQUIRE_FALSE(s.publish("rc:2", "5").first);
        CHECK(offsets_of(ws.sync()) == std::vector<std::uint64_t>{5});
    }
    SECTION("a topic never published to: offset 0 and the announced epoch") {
        test_server s(quick_options());
        ws_client first;
        REQUIRE(first.open(s.port()));
        auto plain = first.subscribe("rc:fresh");
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        auto sub = ws.subscribe("rc:fresh", since(0, plain.str("epoch")));
        CHECK(sub.boolean("recovered") == true);
        CHECK(sub.u64("offset") == 0);
    }
    SECTION("with history_size 0 (positions only)") {
        hub_options h;
        h.history_size = 0;
        test_server s(quick_options(), h);
        auto epoch = publish_n(s, "rc:3", 3);
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        CHECK(ws.subscribe("rc:3", since(3, epoch)).boolean("recovered") == true);
        CHECK(ws.subscribe("rc:4", since(0, epoch)).boolean("recovered") == false);
        ws_client other;
        REQUIRE(other.open(s.port()));
        auto no = other.subscribe("rc:3", since(2, epoch));
        CHECK(no.boolean("recovered") == false);
        CHECK(no.u64("offset") == 3);
        CHECK(ws.sync().empty());
        CHECK(other.sync().empty());
    }
}

TEST_CASE("recovery: not recovered answers the current position and sends only live events",
          "[recovery]") {
    hub_options h;
    h.history_size = 3;
    h.replay_limit = 4;
    test_server s(quick_options(), h);
    auto epoch = publish_n(s, "nr:1", 10);
    struct case_t {
        std::string name, since_json;
        bool recovered;
    };
    const std::vector<case_t> cases = {
        {"since above the top", since(11, epoch), false},
        {"far above the top", since(1000000, epoch), false},
        {"another epoch", since(8, "not-the-epoch"), false},
        {"an empty epoch", since(8, ""), false},
        {"no epoch", R"(,"since":{"offset":8})", false},
        {"history trimmed (only 8..10 kept)", since(2, epoch), false},
        {"history trimmed at the edge", since(6, epoch), false},
        {"all missed events kept", since(7, epoch), true},
        {"from the start, trimmed", since(0, epoch), false},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        auto sub = ws.subscribe("nr:1", c.since_json);
        CHECK(sub.boolean("recovered") == c.recovered);
        CHECK(sub.str("epoch") == epoch);
        CHECK(sub.u64("offset") == 10);
        auto replayed = offsets_of(ws.sync());
        if (c.recovered) {
            CHECK(replayed == std::vector<std::uint64_t>{8, 9, 10});
        } else {
            CHECK(replayed.empty());  // nothing is ever replayed partially
        }
    }
    CHECK(s.metric("sluice_recoveries_total{result=\"not_recovered\"}") == 8);
    CHECK(s.metric("sluice_recoveries_total{result=\"recovered\"}") == 1);
}

TEST_CASE("recovery: more missed events than the replay limit is not recovered", "[recovery]") {
    hub_options h;
    h.replay_limit = 3;
    test_server s(quick_options(), h);
    auto epoch = publish_n(s, "rl:1", 10);
    ws_client a;
    REQUIRE(a.open(s.port()));
    auto too_many = a.subscribe("rl:1", since(6, epoch));  // 4 missed
    CHECK(too_many.boolean("recovered") == false);
    CHECK(a.sync().empty());
    ws_client b;
    REQUIRE(b.open(s.port()));
    auto just = b.subscribe("rl:1", since(7, epoch));  // 3 missed
    CHECK(just.boolean("recovered") == true);
    CHECK(offsets_of(b.sync()) == std::vector<std::uint64_t>{8, 9, 10});
}

TEST_CASE("recovery: events older than history_ttl are gone", "[recovery]") {
    hub_options h;
    h.history_ttl = 200ms;
    test_server s(quick_options(), h);
    auto epoch = publish_n(s, "ttl:1", 3);
    std::this_thread::sleep_for(1300ms);  // past the TTL and one history sweep
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto sub = ws.subscribe("ttl:1", since(1, epoch));
    CHECK(sub.boolean("recovered") == false);
    // The position is kept much longer than the events.
    CHECK(sub.str("epoch") == epoch);
    CHECK(sub.u64("offset") == 3);
    ws_client top;
    REQUIRE(top.open(s.port()));
    CHECK(top.subscribe("ttl:1", since(3, epoch)).boolean("recovered") == true);
}

TEST_CASE("recovery: a filter applies to the replay", "[recovery][filter]") {
    test_server s(quick_options());
    auto epoch = publish_n(s, "rf:1", 6);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto sub = ws.subscribe("rf:1", since(1, epoch) + R"(,"filter":{"i":{"in":[2,5,6]}})");
    CHECK(sub.boolean("recovered") == true);
    REQUIRE_FALSE(s.publish("rf:1", R"({"i":7})").first);
    REQUIRE_FALSE(s.publish("rf:1", R"({"i":2})").first);
    CHECK(offsets_of(ws.sync()) == std::vector<std::uint64_t>{2, 5, 6, 8});
}

TEST_CASE("recovery: since on a pattern is recovery_unsupported; bad since is bad_request",
          "[recovery]") {
    test_server s(quick_options());
    auto epoch = publish_n(s, "rs:1", 2);
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    for (const char* pattern : {"rs:*", "rs:#", "*:1"}) {
        INFO(pattern);
        auto e = ws.call(R"({"type":"subscribe","id":"p","topic":")" + std::string(pattern) + "\"" +
                             since(1, epoch) + "}",
                         "error");
        CHECK(e.str("code") == "recovery_unsupported");
        CHECK(e.str("id") == "p");
    }
    int id = 0;
    for (const char* bad :
         {R"("x")", "5", "[]", "null", "true", "{}", R"({"offset":-1})", R"({"offset":"3"})",
          R"({"offset":1.5})", R"({"offset":null})", R"({"epoch":"x"})", R"({"offset":1e3})"}) {
        INFO(bad);
        auto e = ws.call(R"({"type":"subscribe","id":)" + std::to_string(++id) +
                             R"(,"topic":"rs:1","since":)" + bad + "}",
                         "error");
        CHECK(e.str("code") == "bad_request");
        CHECK(e.json_of("id") == std::to_string(id));
    }
    // None of them subscribed.
    CHECK(ws.subscribe("rs:1", since(2, epoch)).boolean("recovered") == true);
    CHECK(ws.subscribe("rs:*").str("topic") == "rs:*");
}

TEST_CASE("recovery: the race between a publisher and subscribing clients", "[recovery][race]") {
    server_options o = quick_options();
    o.client_rate = 1'000'000;
    o.max_queue_bytes = 64u << 20;
    hub_options h;
    h.history_size = 100000;
    h.replay_limit = 100000;
    test_server s(o, h);
    const std::string topic = "race:1";
    auto [ec0, first] = s.publish(topic, R"({"n":1})");
    REQUIRE_FALSE(ec0);
    const std::string epoch = first.epoch;
    constexpr int clients = 8;
    // The publisher runs until every client has subscribed, then publishes
    // `tail` more and announces the last offset: whatever the speed of the
    // machine, every subscribe happens while events are being published.
    constexpr std::uint64_t tail = 300;
    std::atomic<std::uint64_t> top{1};
    std::atomic<std::uint64_t> last{0};
    std::atomic<int> subscribed{0};
    std::atomic<int> publish_errors{0};

    std::thread publisher([&] {
        std::uint64_t next = 2;
        std::uint64_t stop_at = 0;
        while (stop_at == 0 || next <= stop_at) {
            // Host publishes in flights of 16, each flight waited for.
            std::vector<std::future<void>> flight;
            for (int k = 0; k < 16 && (stop_at == 0 || next <= stop_at); ++k, ++next) {
                auto p = std::make_shared<std::promise<void>>();
                flight.push_back(p->get_future());
                s.hub().async_publish(
                    topic, R"({"n":)" + std::to_string(next) + "}", {},
                    [&, p](std::error_code ec, sluice::stream_position pos) {
                        if (ec) ++publish_errors;
                        auto cur = top.load();
                        while (pos.offset > cur && !top.compare_exchange_weak(cur, pos.offset)) {
                        }
                        p->set_value();
                    });
            }
            for (auto& f : flight) {
                if (f.wait_for(default_timeout) != std::future_status::ready) {
                    ++publish_errors;
                    last = next - 1;
                    return;
                }
            }
            if (stop_at == 0 && subscribed.load() == clients) stop_at = next + tail;
        }
        last = next - 1;
    });

    struct client_result {
        std::string mode;
        bool ok = false;
        std::string failure;
        std::uint64_t start = 0;
        std::uint64_t received = 0;
    };
    std::vector<client_result> results(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            auto& r = results[static_cast<std::size_t>(i)];
            try {
                ws_client ws;
                bool opened = ws.open(s.port());
                // Stagger the subscribes over the publishing.
                std::this_thread::sleep_for(std::chrono::milliseconds(5 * i));
                auto seen = top.load();
                std::string extra;
                std::uint64_t since_offset = 0;
                switch (i % 4) {
                case 0: r.mode = "plain"; break;
                case 1:
                    r.mode = "since recent";
                    since_offset = seen > 5 ? seen - 5 : 0;
                    break;
                case 2:
                    r.mode = "since old";
                    since_offset = seen / 2;
                    break;
                case 3:
                    r.mode = "since top-ish";
                    since_offset = seen;
                    break;
                }
                if (i % 4 != 0) extra = since(since_offset, epoch);
                if (!opened) {
                    ++subscribed;
                    throw std::runtime_error("open failed");
                }
                auto sub = ws.subscribe(topic, extra);
                ++subscribed;
                if (extra.empty()) {
                    r.start = sub.u64("offset") + 1;
                } else {
                    if (sub.boolean("recovered") != true) {
                        throw std::runtime_error("not recovered: " + sub.text());
                    }
                    r.start = since_offset + 1;
                }
                std::uint64_t expected = r.start;
                auto progress = steady::now();
                for (;;) {
                    auto end = last.load();
                    if (end != 0 && expected > end) break;
                    auto m = ws.next_message(50ms);
                    if (!m) {
                        if (ws.close_received || steady::now() - progress > default_timeout) {
                            throw std::runtime_error("no event after offset " +
                                                     std::to_string(expected - 1));
                        }
                        continue;
                    }
                    progress = steady::now();
                    if (m->type() != "event") throw std::runtime_error("unexpected " + m->text());
                    auto off = m->u64("offset");
                    if (off != expected) {
                        throw std::runtime_error("expected offset " + std::to_string(expected) +
                                                 ", got " + std::to_string(off));
                    }
                    if (m->json_of("data") != R"({"n":)" + std::to_string(off) + "}") {
                        throw std::runtime_error("wrong data at " + std::to_string(off));
                    }
                    ++expected;
                    ++r.received;
                }
                // Nothing after the last one: no duplicate.
                if (!ws.sync().empty()) throw std::runtime_error("more events after the last");
                r.ok = true;
            } catch (const std::exception& e) {
                r.failure = e.what();
            }
        });
    }
    for (auto& t : threads) t.join();
    publisher.join();
    CHECK(publish_errors == 0);
    const auto end = last.load();
    for (const auto& r : results) {
        INFO(r.mode << ": start " << r.start << ", received " << r.received << ", " << r.failure);
        CHECK(r.ok);
        CHECK(r.received == end - r.start + 1);
        CHECK(r.received >= tail);  // subscribed while the publisher ran
    }
}

TEST_CASE("recovery: a replay is not slow consumption", "[recovery][slow]") {
    server_options o = quick_options();
    o.max_queue_bytes = 8 * 1024;
    o.client_rate = 1'000'000;
    test_server s(o);
    std::string pad(200, 'p');
    std::string epoch;
    for (int i = 1; i <= 400; ++i) {
        auto [ec, pos] =
            s.publish("rp:1", R"({"i":)" + std::to_string(i) + R"(,"pad":")" + pad + "\"}");
        REQUIRE_FALSE(ec);
        epoch = pos.epoch;
    }
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto sub = ws.subscribe("rp:1", since(0, epoch));
    CHECK(sub.boolean("recovered") == true);
    std::uint64_t expected = 1;
    while (expected <= 400) {
        auto m = ws.next_message();
        REQUIRE(m);
        REQUIRE(m->u64("offset") == expected);
        ++expected;
    }
    CHECK_FALSE(ws.close_received);
    CHECK(s.metric("sluice_slow_consumer_disconnects_total") == 0);
    CHECK(ws.call(R"({"type":"ping","id":1})", "pong").json_of("id") == "1");
}
