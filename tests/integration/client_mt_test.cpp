// ws_client and sse_client used from several threads at once while their
// io_context runs on three threads (run under ThreadSanitizer): every
// publish completes exactly once, events stay in offset order per
// subscription, close/connect/unsubscribe races leave nothing behind.
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include "client_test_support.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>

using namespace sluice::test;
using namespace std::chrono_literals;
using sluice::client_state_kind;

TEST_CASE("clients: concurrent subscribe, publish, unsubscribe, close and connect",
          "[client][threads]") {
    restartable_server server;
    client_loop loop(3);
    const std::string port = std::to_string(server.port());

    std::mutex m;
    std::map<std::string, std::vector<std::uint64_t>> per_sub;  // sub -> offsets seen
    std::atomic<int> outcomes{0}, ok_outcomes{0};
    // One sequence per client and subscription.
    auto on_event = [&](std::string client) {
        return [&, client](const sluice::client_event& e) {
            std::lock_guard<std::mutex> lock(m);
            per_sub[client + "/" + std::string(e.sub) + "/" + std::string(e.topic)].push_back(
                e.offset);
        };
    };

    auto ws_options = quick_client(sluice::ws_client_options{});
    {
        sluice::ws_client ws(loop.executor(), "ws://127.0.0.1:" + port + "/ws", ws_options);
        sluice::sse_client sse(loop.executor(), "http://127.0.0.1:" + port + "/events",
                               quick_client(sluice::sse_client_options{}));
        recorder states;
        ws.on_state(states.states());
        ws.connect();
        sse.connect();

        constexpr int threads = 4, per_thread = 20;
        std::vector<std::thread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                auto mine = ws.subscribe("mt:" + std::to_string(t), on_event("ws"));
                auto pattern = ws.subscribe("mt:*:" + std::to_string(t), on_event("ws"));
                auto s = sse.subscribe("mt:" + std::to_string(t), on_event("sse"));
                for (int i = 0; i < per_thread; ++i) {
                    ws.publish("mt:" + std::to_string(i % threads), std::to_string(i),
                               [&](std::error_code ec, const sluice::stream_position&) {
                                   ++outcomes;
                                   if (!ec) ++ok_outcomes;
                               });
                    if (i == per_thread / 2 && t == 0) ws.reset_connection();
                    if (i == per_thread / 2 && t == 1) sse.reset_connection();
                    (void)mine.active();
                }
                pattern.unsubscribe();
                if (t == 2) s.unsubscribe();
            });
        }
        for (auto& w : workers) w.join();
        REQUIRE(eventually([&] { return outcomes.load() == threads * per_thread; }, 15s));
        CHECK(ok_outcomes.load() == threads * per_thread);

        // close and connect racing from two threads, then a final close.
        std::thread a([&] {
            for (int i = 0; i < 5; ++i) ws.close();
        });
        std::thread b([&] {
            for (int i = 0; i < 5; ++i) ws.connect();
        });
        a.join();
        b.join();
        ws.close();
        REQUIRE(states.wait_for([](recorder& r) {
            return !r.states_.empty() && r.states_.back().kind == client_state_kind::closed;
        }));
        // The clients are destroyed here, from this thread, while the loop runs.
    }
    std::lock_guard<std::mutex> lock(m);
    CHECK(!per_sub.empty());
    for (const auto& [key, seen] : per_sub) {
        INFO(key);
        for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i] > seen[i - 1]);
    }
}
