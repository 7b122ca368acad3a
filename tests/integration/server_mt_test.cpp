// The server with its io_context on 4 threads: concurrent publishers (host,
// WebSocket and HTTP) and subscribers (WebSocket and SSE), connection churn,
// recovery races, and stop() under traffic. Meant to run under
// ThreadSanitizer too: every assertion is made on the test's thread.
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>

using namespace sluice::test;
using sluice::hub_options;
using sluice::server_options;

namespace {

constexpr std::size_t io_threads = 4;

server_options mt_options() {
    server_options o = quick_options();
    o.client_rate = 1'000'000;
    o.max_queue_bytes = 64u << 20;
    o.handshake_rate = 100'000;
    return o;
}

hub_options mt_hub() {
    hub_options h;
    h.history_size = 100'000;
    h.replay_limit = 100'000;
    return h;
}

/// What one subscriber saw, checked on the test thread.
struct seen {
    std::string name;
    std::string failure;
    std::map<std::string, std::uint64_t> count;  // events per "sub|topic"
};

/// Checks one event in a subscriber thread: per subscription and topic the
/// offsets must be contiguous, and per publisher its sequence must increase.
struct order_checker {
    std::map<std::string, std::uint64_t> last_offset;  // sub|topic -> offset
    std::map<std::string, std::int64_t> last_seq;      // sub|topic|publisher -> seq
    std::string failure;

    void on_event(const std::string& sub, const std::string& topic, std::uint64_t offset,
                  const std::string& publisher, std::int64_t seq, std::uint64_t first_expected) {
        if (!failure.empty()) return;
        auto key = sub + "|" + topic;
        auto it = last_offset.find(key);
        std::uint64_t expected = it == last_offset.end() ? first_expected : it->second + 1;
        if (expected != 0 && offset != expected) {
            failure = key + ": expected offset " + std::to_string(expected) + ", got " +
                      std::to_string(offset);
            return;
        }
        last_offset[key] = offset;
        auto pkey = key + "|" + publisher;
        auto pit = last_seq.find(pkey);
        if (pit != last_seq.end() && seq <= pit->second) {
            failure = pkey + ": sequence " + std::to_string(seq) + " after " +
                      std::to_string(pit->second);
            return;
        }
        last_seq[pkey] = seq;
    }
};

}  // namespace

TEST_CASE("mt: concurrent publishers and subscribers, every event once and in order", "[mt]") {
    test_server s(mt_options(), mt_hub(), nullptr, io_threads);
    const std::vector<std::string> topics = {"mt:0", "mt:1", "mt:2", "mt:3"};
    constexpr int per_publisher = 600;

    // Publishers: 2 host threads (topics 0, 1), 2 WebSocket clients (topics 2,
    // 3, and 0), 1 HTTP keep-alive client (topic 1). Expected totals per topic:
    std::map<std::string, std::uint64_t> expected_total = {{"mt:0", 2 * per_publisher},
                                                           {"mt:1", 2 * per_publisher},
                                                           {"mt:2", per_publisher},
                                                           {"mt:3", per_publisher}};
    // (host-0 -> mt:0, host-1 -> mt:1, ws-0 -> mt:2 + mt:0, ws-1 -> mt:3, http -> mt:1)

    std::atomic<int> ready{0};
    // Subscribers keep their connections until the delivery metric has been
    // read: a connection that ends right after its last write may not count
    // that write as delivered.
    std::atomic<int> finished{0};
    std::atomic<bool> release{false};
    auto hold = [&] {
        ++finished;
        eventually([&] { return release.load(); }, 30s);
    };
    constexpr int ws_subscribers = 4;
    constexpr int sse_subscribers = 2;
    std::vector<seen> results(ws_subscribers + sse_subscribers);
    std::vector<std::thread> threads;

    for (int i = 0; i < ws_subscribers; ++i) {
        threads.emplace_back([&, i] {
            auto& r = results[static_cast<std::size_t>(i)];
            r.name = "ws subscriber " + std::to_string(i);
            try {
                ws_client ws;
                if (!ws.open(s.port())) throw std::runtime_error("open failed");
                std::map<std::string, std::uint64_t> first;
                for (const auto& t : topics) first[t] = ws.subscribe(t).u64("offset") + 1;
                ws.subscribe("mt:*");
                ++ready;
                order_checker check;
                std::uint64_t want = 0;
                for (const auto& [t, n] : expected_total) want += 2 * n;  // exact + pattern
                std::uint64_t got = 0;
                while (got < want) {
                    auto m = ws.next_message(default_timeout);
                    if (!m) throw std::runtime_error("stalled after " + std::to_string(got));
                    if (m->type() != "event") throw std::runtime_error("unexpected " + m->text());
                    auto sub = m->str("sub");
                    auto topic = m->str("topic");
                    auto* data = m->get("data");
                    std::string publisher = (*data)["p"].GetString();
                    std::int64_t seq = (*data)["seq"].GetInt64();
                    check.on_event(sub, topic, m->u64("offset"), publisher, seq,
                                   sub == topic ? first[topic] : 0);
                    if (!check.failure.empty()) throw std::runtime_error(check.failure);
                    ++r.count[sub + "|" + topic];
                    ++got;
                }
                if (!ws.sync().empty()) throw std::runtime_error("more events than published");
                hold();
            } catch (const std::exception& e) {
                r.failure = e.what();
                ++ready;
                ++finished;
            }
        });
    }
    for (int i = 0; i < sse_subscribers; ++i) {
        threads.emplace_back([&, i] {
            auto& r = results[static_cast<std::size_t>(ws_subscribers + i)];
            r.name = "sse subscriber " + std::to_string(i);
            try {
                sse_client sse;
                if (!sse.open(s.port(), "/events?topic=mt:0&topic=mt:1&topic=mt:2&topic=mt:3")) {
                    throw std::runtime_error("open failed");
                }
                std::map<std::string, std::uint64_t> first;
                auto retry = sse.next();
                if (!retry || !retry->retry) throw std::runtime_error("no retry");
                for (std::size_t k = 0; k < topics.size(); ++k) {
                    auto b = sse.next();
                    if (!b || b->event != "subscribed") throw std::runtime_error("no subscribed");
                    json_msg d(b->data);
                    first[d.str("topic")] = d.u64("offset") + 1;
                }
                ++ready;
                order_checker check;
                std::uint64_t want = 0;
                for (const auto& [t, n] : expected_total) want += n;
                std::uint64_t got = 0;
                while (got < want) {
                    auto b = sse.next_non_comment(default_timeout);
                    if (!b) throw std::runtime_error("stalled after " + std::to_string(got));
                    json_msg m(b->data);
                    auto topic = m.str("topic");
                    auto* data = m.get("data");
                    check.on_event(topic, topic, m.u64("offset"), (*data)["p"].GetString(),
                                   (*data)["seq"].GetInt64(), first[topic]);
                    if (!check.failure.empty()) throw std::runtime_error(check.failure);
                    ++r.count[topic + "|" + topic];
                    ++got;
                }
                hold();
            } catch (const std::exception& e) {
                r.failure = e.what();
                ++ready;
                ++finished;
            }
        });
    }
    REQUIRE(eventually([&] { return ready.load() == ws_subscribers + sse_subscribers; }));

    std::atomic<int> publish_failures{0};
    std::vector<std::thread> publishers;
    auto data = [](const std::string& p, int seq) {
        return R"({"p":")" + p + R"(","seq":)" + std::to_string(seq) + "}";
    };
    for (int h = 0; h < 2; ++h) {
        publishers.emplace_back([&, h] {
            auto topic = topics[static_cast<std::size_t>(h)];
            auto name = "host-" + std::to_string(h);
            for (int seq = 0; seq < per_publisher; ++seq) {
                // Chained: each publish waits for the previous one, so their
                // order is the order of the sequence numbers.
                std::promise<std::error_code> p;
                auto f = p.get_future();
                s.hub().async_publish(
                    topic, data(name, seq), {},
                    [&p](std::error_code ec, sluice::stream_position) { p.set_value(ec); });
                if (f.wait_for(default_timeout) != std::future_status::ready || f.get()) {
                    ++publish_failures;
                    return;
                }
            }
        });
    }
    for (int w = 0; w < 2; ++w) {
        publishers.emplace_back([&, w] {
            try {
                ws_client ws;
                if (!ws.open(s.port())) throw std::runtime_error("open");
                auto name = "ws-" + std::to_string(w);
                // Pipelined in flights of 25: one connection's publishes are
                // applied in the order sent.
                int sent = 0;
                int acked = 0;
                const int total = w == 0 ? 2 * per_publisher : per_publisher;
                while (acked < total) {
                    for (int k = 0; k < 25 && sent < total; ++k, ++sent) {
                        std::string topic = w == 0 ? (sent % 2 ? "mt:0" : "mt:2") : "mt:3";
                        ws.send_json(R"({"type":"publish","topic":")" + topic + R"(","data":)" +
                                     data(name, sent) + "}");
                    }
                    while (acked < sent) {
                        auto m = ws.next_message();
                        if (!m || m->type() != "published") throw std::runtime_error("no ack");
                        ++acked;
                    }
                }
            } catch (const std::exception&) {
                ++publish_failures;
            }
        });
    }
    publishers.emplace_back([&] {
        http_client c;
        if (!c.connect(s.port())) {
            ++publish_failures;
            return;
        }
        for (int seq = 0; seq < per_publisher; ++seq) {
            auto r = c.request(
                publish_request_text(R"({"topic":"mt:1","data":)" + data("http", seq) + "}"));
            if (r.status != 200) {
                ++publish_failures;
                return;
            }
            if (c.buffer().size() > 0) {
                ++publish_failures;
                return;
            }
        }
    });
    for (auto& t : publishers) t.join();
    CHECK(eventually([&] { return finished.load() == ws_subscribers + sse_subscribers; }, 60s));
    std::uint64_t published = 0;
    for (const auto& [t, n] : expected_total) published += n;
    CHECK(s.metric("sluice_messages_published_total") == static_cast<double>(published));
    const auto expected_deliveries =
        static_cast<double>(published * (2 * ws_subscribers + sse_subscribers));
    eventually([&] { return s.metric("sluice_messages_delivered_total") == expected_deliveries; });
    CHECK(s.metric("sluice_messages_delivered_total") == expected_deliveries);
    release = true;
    for (auto& t : threads) t.join();

    CHECK(publish_failures == 0);
    for (const auto& r : results) {
        INFO(r.name << ": " << r.failure);
        CHECK(r.failure.empty());
        for (const auto& [topic, n] : expected_total) {
            INFO(topic);
            CHECK(r.count.at(topic + "|" + topic) == n);
            if (r.name.rfind("ws", 0) == 0) CHECK(r.count.at("mt:*|" + topic) == n);
        }
    }
}

TEST_CASE("mt: recovery race with WebSocket publishers on 4 threads", "[mt][recovery]") {
    test_server s(mt_options(), mt_hub(), nullptr, io_threads);
    const std::string topic = "mtr:1";
    auto [ec0, pos0] = s.publish(topic, R"({"n":1})");
    REQUIRE_FALSE(ec0);
    const std::string epoch = pos0.epoch;
    constexpr int clients = 8;
    constexpr std::uint64_t tail = 200;  // published after the last subscribe
    std::atomic<std::uint64_t> top{1};
    std::atomic<std::uint64_t> last{0};
    std::atomic<int> subscribed{0};
    std::atomic<int> publish_failures{0};

    std::thread publisher([&] {
        std::uint64_t next = 2;
        try {
            ws_client ws;
            if (!ws.open(s.port())) throw std::runtime_error("open");
            std::uint64_t stop_at = 0;
            while (stop_at == 0 || next <= stop_at) {
                std::uint64_t batch_end = next + 19;
                if (stop_at != 0) batch_end = std::min(batch_end, stop_at);
                for (auto n = next; n <= batch_end; ++n) {
                    ws.send_json(R"({"type":"publish","topic":")" + topic + R"(","data":{"n":)" +
                                 std::to_string(n) + "}}");
                }
                for (auto n = next; n <= batch_end; ++n) {
                    auto m = ws.next_message();
                    if (!m || m->type() != "published" || m->u64("offset") != n) {
                        throw std::runtime_error("bad ack");
                    }
                    top = n;
                }
                next = batch_end + 1;
                if (stop_at == 0 && subscribed.load() == clients) stop_at = next + tail;
            }
        } catch (const std::exception&) {
            ++publish_failures;
        }
        last = next - 1;
    });

    std::vector<std::string> failures(clients);
    std::vector<std::uint64_t> received(clients, 0);
    std::vector<std::uint64_t> starts(clients, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            auto idx = static_cast<std::size_t>(i);
            try {
                ws_client ws;
                bool opened = ws.open(s.port());
                std::this_thread::sleep_for(std::chrono::milliseconds(5 * i));
                if (!opened) {
                    ++subscribed;
                    throw std::runtime_error("open");
                }
                std::uint64_t seen = top.load();
                std::uint64_t start;
                if (i % 2 == 0) {
                    start = ws.subscribe(topic).u64("offset") + 1;
                    ++subscribed;
                } else {
                    auto from = seen > 10 ? seen - 10 : 0;
                    auto sub = ws.subscribe(topic, R"(,"since":{"offset":)" + std::to_string(from) +
                                                       R"(,"epoch":")" + epoch + "\"}");
                    ++subscribed;
                    if (sub.boolean("recovered") != true) throw std::runtime_error("not recovered");
                    start = from + 1;
                }
                starts[idx] = start;
                auto expected = start;
                auto progress = steady::now();
                for (;;) {
                    auto end = last.load();
                    if (end != 0 && expected > end) break;
                    auto m = ws.next_message(50ms);
                    if (!m) {
                        if (ws.close_received || steady::now() - progress > default_timeout) {
                            throw std::runtime_error("stalled at " + std::to_string(expected));
                        }
                        continue;
                    }
                    progress = steady::now();
                    if (m->u64("offset") != expected) {
                        throw std::runtime_error("expected " + std::to_string(expected) + ", got " +
                                                 std::to_string(m->u64("offset")));
                    }
                    ++expected;
                    ++received[idx];
                }
                if (!ws.sync().empty()) throw std::runtime_error("duplicate after the end");
            } catch (const std::exception& e) {
                failures[idx] = e.what();
            }
        });
    }
    for (auto& t : threads) t.join();
    publisher.join();
    CHECK(publish_failures == 0);
    for (int i = 0; i < clients; ++i) {
        auto idx = static_cast<std::size_t>(i);
        INFO("client " << i << ": " << failures[idx]);
        CHECK(failures[idx].empty());
        CHECK(received[idx] == last.load() - starts[idx] + 1);
        CHECK(received[idx] >= tail);
    }
}

TEST_CASE("mt: connection churn while publishing leaves nothing behind", "[mt]") {
    test_server s(mt_options(), mt_hub(), nullptr, io_threads);
    std::atomic<bool> stop{false};
    std::atomic<int> publish_failures{0};
    std::thread publisher([&] {
        int i = 0;
        while (!stop) {
            try {
                auto [ec, pos] = s.publish("churn:" + std::to_string(i % 3),
                                           R"({"i":)" + std::to_string(i) + "}");
                if (ec) ++publish_failures;
            } catch (const std::exception&) {
                ++publish_failures;
            }
            ++i;
        }
    });
    std::atomic<int> failures{0};
    std::vector<std::thread> churners;
    for (int c = 0; c < 4; ++c) {
        churners.emplace_back([&, c] {
            for (int round = 0; round < 15; ++round) {
                try {
                    if ((round + c) % 3 == 0) {
                        sse_client sse;
                        if (!sse.open(s.port(), "/events?topic=churn:0&topic=churn:%23"))
                            ++failures;
                        sse.next();
                        sse.next();
                        // Dropped without reading on.
                    } else {
                        ws_client ws;
                        if (!ws.open(s.port())) {
                            ++failures;
                            continue;
                        }
                        ws.subscribe("churn:" + std::to_string(round % 3));
                        ws.subscribe("churn:*");
                        ws.next_message(50ms);
                        if (round % 2) {
                            ws.send_close(1000);
                            ws.wait_close(1000ms, false);
                        }
                        // else: the TCP connection is just dropped.
                    }
                } catch (const std::exception&) {
                    ++failures;
                }
            }
        });
    }
    for (auto& t : churners) t.join();
    stop = true;
    publisher.join();
    CHECK(failures == 0);
    CHECK(publish_failures == 0);
    CHECK(eventually([&] {
        return s.metric("sluice_connections{transport=\"ws\"}") == 0 &&
               s.metric("sluice_connections{transport=\"sse\"}") == 0 &&
               s.metric("sluice_send_queue_bytes") == 0 && s.server().connection_count() == 0;
    }));
    CHECK(http_get(s.port(), "/health").status == 200);
}

TEST_CASE("mt: stop() under traffic closes everyone and calls back", "[mt][stop]") {
    test_server s(mt_options(), mt_hub(), nullptr, io_threads);
    std::atomic<bool> stop{false};
    std::thread publisher([&] {
        int i = 0;
        while (!stop) {
            try {
                s.publish("st:" + std::to_string(i % 2), R"({"i":)" + std::to_string(i) + "}");
            } catch (const std::exception&) {
            }
            ++i;
        }
    });
    std::vector<std::unique_ptr<ws_client>> ws;
    for (int i = 0; i < 6; ++i) {
        ws.push_back(std::make_unique<ws_client>());
        REQUIRE(ws.back()->open(s.port()));
        ws.back()->subscribe("st:*");
    }
    std::vector<std::unique_ptr<sse_client>> sse;
    for (int i = 0; i < 3; ++i) {
        sse.push_back(std::make_unique<sse_client>());
        REQUIRE(sse.back()->open(s.port(), "/events?topic=st:0&topic=st:1"));
    }
    std::this_thread::sleep_for(200ms);
    s.stop_async();
    for (auto& c : ws) {
        auto r = c->wait_close(default_timeout);
        CHECK(r.close_frame);
        CHECK(r.code == 1001);
    }
    for (auto& c : sse) CHECK(c->wait_closed());
    CHECK(eventually([&] { return s.stopped(); }));
    stop = true;
    publisher.join();
    CHECK(s.server().connection_count() == 0);
}
