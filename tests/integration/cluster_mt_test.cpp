// Two clustered hubs whose io_contexts run on several threads each, with
// publishers and subscribers on many client threads at once (run under
// ThreadSanitizer: the hiredis adapter, the backplane and the hub must keep
// to the hub strand).
#include "cluster_fixture.hpp"

#include <catch2/catch.hpp>

#include <atomic>

using namespace sluice::test;

TEST_CASE("clustered hubs on several threads: concurrent publishes and subscribes",
          "[cluster][threads]") {
    redis_server redis;
    cluster_node a(test_redis_options(redis.port()), {}, {}, 3);
    cluster_node b(test_redis_options(redis.port()), {}, {}, 3);
    REQUIRE(a.wait_up());
    REQUIRE(b.wait_up());

    constexpr int topics = 4;
    constexpr int per_topic = 25;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    // Subscribers: one per hub and topic, each checks its topic's sequence.
    for (auto* node : {&a, &b}) {
        for (int t = 0; t < topics; ++t) {
            threads.emplace_back([&, node, t] {
                ws_client c;
                if (!c.open(node->port())) return void(++failures);
                auto topic = "mt:" + std::to_string(t);
                auto first = c.subscribe(topic).u64("offset");
                std::uint64_t next = first + 1;
                while (next <= static_cast<std::uint64_t>(per_topic)) {
                    auto e = c.next_message(std::chrono::seconds(10));
                    if (!e || e->type() != "event" || e->u64("offset") != next) {
                        return void(++failures);
                    }
                    ++next;
                }
            });
        }
    }
    // Publish from both hubs on many threads (a subscriber that lands late
    // starts from its subscribed offset).
    for (int t = 0; t < topics; ++t) {
        threads.emplace_back([&, t] {
            auto topic = "mt:" + std::to_string(t);
            for (int i = 0; i < per_topic; ++i) {
                auto& node = (i % 2 == 0) ? a : b;
                if (node.publish(topic, std::to_string(i)).first) ++failures;
            }
        });
        threads.emplace_back([&] {
            for (int i = 0; i < 20; ++i) {
                (void)a.hub().health_json();
                (void)b.hub().metrics_text();
                if (!a.hub().backplane_up()) ++failures;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(failures.load() == 0);
}
