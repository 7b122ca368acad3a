#include "sluice/router.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using visit_list = std::vector<std::pair<std::uint64_t, std::string>>;

template <class Router>
visit_list visits(Router& r, std::string_view topic) {
    visit_list out;
    std::size_t n = r.match(topic, [&](const typename Router::subscription& s) {
        out.emplace_back(s.subscriber(), std::string(s.topic()));
    });
    REQUIRE(n == out.size());
    std::sort(out.begin(), out.end());
    return out;
}

// Random segments over a small alphabet, so that topics and patterns collide.
std::string random_segment(std::mt19937_64& rng) {
    static const char* const words[] = {"a", "b", "c", "d", "prices", "AAPL", "x.y"};
    return words[rng() % 7];
}

std::string random_topic(std::mt19937_64& rng) {
    std::size_t n = 1 + rng() % 4;
    std::string t;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) t += ':';
        t += random_segment(rng);
    }
    return t;
}

std::string random_subscription(std::mt19937_64& rng) {
    std::size_t n = 1 + rng() % 4;
    std::string t;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) t += ':';
        auto roll = rng() % 10;
        if (roll < 2) {
            t += '*';
        } else if (roll < 3 && i + 1 == n) {
            t += '#';
        } else {
            t += random_segment(rng);
        }
    }
    return t;
}

}  // namespace

TEST_CASE("the documented example", "[router]") {
    // snippet: router
    sluice::router r;
    r.subscribe(1, "country:42");
    r.subscribe(1, "country:*");
    r.subscribe(2, "country:#");
    std::size_t to_connection_1 = 0;
    std::size_t visits = r.match("country:42", [&](const sluice::router::subscription& s) {
        if (s.subscriber() == 1) ++to_connection_1;
    });
    // visits == 3; to_connection_1 == 2 (via "country:42" and via "country:*")
    // end snippet
    CHECK(visits == 3);
    CHECK(to_connection_1 == 2);
}

TEST_CASE("exact topics and patterns match per the grammar", "[router]") {
    sluice::router r;
    REQUIRE_FALSE(r.subscribe(1, "country:42"));
    REQUIRE_FALSE(r.subscribe(2, "country:*"));
    REQUIRE_FALSE(r.subscribe(3, "country:#"));
    REQUIRE_FALSE(r.subscribe(4, "*:entity:7"));
    REQUIRE_FALSE(r.subscribe(5, "#"));
    REQUIRE_FALSE(r.subscribe(6, "country:*:gdp"));
    CHECK(r.size() == 6);

    CHECK(visits(r, "country:42") ==
          visit_list{{1, "country:42"}, {2, "country:*"}, {3, "country:#"}, {5, "#"}});
    CHECK(visits(r, "country") == visit_list{{3, "country:#"}, {5, "#"}});
    CHECK(visits(r, "country:42:gdp") ==
          visit_list{{3, "country:#"}, {5, "#"}, {6, "country:*:gdp"}});
    CHECK(visits(r, "transactions.new:entity:7") == visit_list{{4, "*:entity:7"}, {5, "#"}});
    CHECK(visits(r, "countries:42") == visit_list{{5, "#"}});
}

TEST_CASE("subscribe validates and rejects duplicates", "[router]") {
    sluice::router r;
    CHECK(r.subscribe(1, "") == sluice::errc::invalid_topic);
    CHECK(r.subscribe(1, "a::b") == sluice::errc::invalid_topic);
    CHECK(r.subscribe(1, "a:#:b") == sluice::errc::invalid_topic);
    CHECK(r.subscribe(1, "a*") == sluice::errc::invalid_topic);
    CHECK(r.subscribe(1, std::string(201, 'a')) == sluice::errc::invalid_topic);
    CHECK(r.empty());
    CHECK(r.subscriber_count() == 0);

    CHECK_FALSE(r.subscribe(1, "a:b"));
    CHECK(r.subscribe(1, "a:b") == sluice::errc::already_subscribed);
    CHECK_FALSE(r.subscribe(1, "a:*"));
    CHECK(r.subscribe(1, "a:*") == sluice::errc::already_subscribed);
    CHECK_FALSE(r.subscribe(2, "a:b"));
    CHECK_FALSE(r.subscribe(2, "a:*"));
    CHECK(r.size() == 4);
    CHECK(r.subscribers_of("a:b") == 2);
    CHECK(r.subscribers_of("a:*") == 2);
    CHECK(r.subscribers_of("a:#") == 0);
    CHECK(r.subscriptions_of(1) == 2);
    CHECK(r.topic_count() == 1);
    CHECK(r.pattern_count() == 1);

    CHECK(r.unsubscribe(1, "a:c") == sluice::errc::not_subscribed);
    CHECK(r.unsubscribe(3, "a:b") == sluice::errc::not_subscribed);
    CHECK(r.unsubscribe(1, "a:#") == sluice::errc::not_subscribed);
    CHECK(r.unsubscribe(1, "a::") == sluice::errc::invalid_topic);
    CHECK_FALSE(r.unsubscribe(1, "a:b"));
    CHECK(r.unsubscribe(1, "a:b") == sluice::errc::not_subscribed);
    CHECK(r.subscribers_of("a:b") == 1);
    CHECK(r.size() == 3);
}

TEST_CASE("a duplicate keeps the first filter and value", "[router]") {
    sluice::basic_router<std::uint64_t, int> r;
    REQUIRE_FALSE(r.subscribe(7, "t", {}, 1));
    auto f = sluice::parse_filter(R"({"x": 1})");
    REQUIRE(f);
    CHECK(r.subscribe(7, "t", std::move(f.compiled), 2) == sluice::errc::already_subscribed);
    REQUIRE(r.find(7, "t") != nullptr);
    CHECK(*r.find(7, "t") == 1);
    r.match("t", [](const auto& s) { CHECK(s.filter().empty()); });
}

TEST_CASE("the visitor sees subscriber, string, filter and a mutable value", "[router]") {
    struct state {
        std::string sub_json;
        int delivered = 0;
    };
    sluice::basic_router<const void*, state> r;
    int conn_a = 0;
    int conn_b = 0;
    auto f = sluice::parse_filter(R"({"level": {"in": ["warn", "error"]}})");
    REQUIRE(f);
    REQUIRE_FALSE(r.subscribe(&conn_a, "logs:*", std::move(f.compiled), state{"\"logs:*\"", 0}));
    REQUIRE_FALSE(r.subscribe(&conn_b, "logs:api", {}, state{"\"logs:api\"", 0}));

    rapidjson::Document info;
    info.Parse(R"({"level": "info"})");
    rapidjson::Document error;
    error.Parse(R"({"level": "error"})");

    auto deliver = [](sluice::basic_router<const void*, state>::subscription& s) {
        ++s.value().delivered;
        CHECK(s.value().sub_json == "\"" + std::string(s.topic()) + "\"");
    };
    CHECK(r.match("logs:api", info, deliver) == 1);
    CHECK(r.match("logs:api", error, deliver) == 2);
    CHECK(r.match("logs:db", error, deliver) == 1);
    CHECK(r.find(&conn_a, "logs:*")->delivered == 2);
    CHECK(r.find(&conn_b, "logs:api")->delivered == 2);
    CHECK(r.find(&conn_b, "logs:*") == nullptr);
    CHECK(r.contains(&conn_a, "logs:*"));

    // the unfiltered match visits both, whatever the filter says
    std::size_t patterns = 0;
    const auto& cr = r;
    CHECK(cr.match("logs:api", [&](const auto& s) { patterns += s.is_pattern() ? 1 : 0; }) == 2);
    CHECK(patterns == 1);
    CHECK(cr.find(&conn_a, "logs:*")->delivered == 2);

    std::vector<std::string> of_a;
    r.for_each(&conn_a, [&](const auto& s) { of_a.emplace_back(s.topic()); });
    CHECK(of_a == std::vector<std::string>{"logs:*"});
}

TEST_CASE("unsubscribe_all removes exactly one subscriber's subscriptions", "[router]") {
    sluice::router r;
    for (std::uint64_t c = 1; c <= 3; ++c) {
        REQUIRE_FALSE(r.subscribe(c, "a"));
        REQUIRE_FALSE(r.subscribe(c, "a:*"));
        REQUIRE_FALSE(r.subscribe(c, "b:" + std::to_string(c)));
    }
    CHECK(r.unsubscribe_all(2) == 3);
    CHECK(r.unsubscribe_all(2) == 0);
    CHECK(r.size() == 6);
    CHECK(r.subscriptions_of(2) == 0);
    CHECK(r.subscriber_count() == 2);
    CHECK(visits(r, "a") == visit_list{{1, "a"}, {3, "a"}});
    CHECK(visits(r, "a:x") == visit_list{{1, "a:*"}, {3, "a:*"}});
    CHECK(visits(r, "b:2").empty());
    CHECK(r.topic_count() == 3);  // a, b:1, b:3
}

TEST_CASE("removing the last subscriptions prunes the trie and the tables", "[router]") {
    sluice::router r;
    const std::vector<std::string> subs{"a:b:c:d", "a:*:c", "a:#", "*:*:*:#", "#", "x:y", "a:b"};
    for (std::uint64_t c = 0; c < 5; ++c) {
        for (const auto& s : subs) REQUIRE_FALSE(r.subscribe(c, s));
    }
    CHECK(r.trie_node_count() > 0);
    CHECK(r.pattern_count() == 4);
    CHECK(r.topic_count() == 3);
    // churn does not grow the trie
    std::size_t nodes = r.trie_node_count();
    for (int round = 0; round < 100; ++round) {
        REQUIRE_FALSE(r.subscribe(99, "q:*:r:" + std::to_string(round % 3) + ":#"));
        REQUIRE_FALSE(r.unsubscribe(99, "q:*:r:" + std::to_string(round % 3) + ":#"));
    }
    CHECK(r.trie_node_count() == nodes);
    for (std::uint64_t c = 0; c < 5; ++c) {
        for (const auto& s : subs) REQUIRE_FALSE(r.unsubscribe(c, s));
    }
    CHECK(r.empty());
    CHECK(r.trie_node_count() == 0);
    CHECK(r.pattern_count() == 0);
    CHECK(r.topic_count() == 0);
    CHECK(r.subscriber_count() == 0);
    CHECK(visits(r, "a:b").empty());
}

TEST_CASE("the router agrees with a brute-force model", "[router]") {
    // Seeded: thousands of random subscribes, unsubscribes and
    // unsubscribe_alls; after every few operations every random topic is
    // matched by the router and by pattern_matches over the model.
    for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
        std::mt19937_64 rng(seed);
        sluice::router r;
        std::set<std::pair<std::uint64_t, std::string>> model;
        std::size_t matched_visits = 0;
        for (int op = 0; op < 6000; ++op) {
            std::uint64_t who = rng() % 12;
            auto roll = rng() % 100;
            if (roll < 55) {
                std::string s = random_subscription(rng);
                bool fresh = model.emplace(who, s).second;
                auto ec = r.subscribe(who, s);
                if (fresh) {
                    REQUIRE_FALSE(ec);
                } else {
                    REQUIRE(ec == sluice::errc::already_subscribed);
                }
            } else if (roll < 90) {
                // half the time a string the subscriber holds
                std::string s = random_subscription(rng);
                if (rng() % 2 == 0) {
                    for (const auto& m : model) {
                        if (m.first == who) {
                            s = m.second;
                            break;
                        }
                    }
                }
                bool held = model.erase({who, s}) == 1;
                auto ec = r.unsubscribe(who, s);
                if (held) {
                    REQUIRE_FALSE(ec);
                } else {
                    REQUIRE(ec == sluice::errc::not_subscribed);
                }
            } else if (roll < 93) {
                std::size_t expected = 0;
                for (auto it = model.begin(); it != model.end();) {
                    if (it->first == who) {
                        it = model.erase(it);
                        ++expected;
                    } else {
                        ++it;
                    }
                }
                REQUIRE(r.unsubscribe_all(who) == expected);
            } else {
                for (int q = 0; q < 20; ++q) {
                    std::string topic = random_topic(rng);
                    visit_list expected;
                    for (const auto& m : model) {
                        if (sluice::pattern_matches(m.second, topic)) expected.push_back(m);
                    }
                    INFO("seed " << seed << " op " << op << " topic " << topic);
                    REQUIRE(visits(r, topic) == expected);
                    matched_visits += expected.size();
                }
            }
            REQUIRE(r.size() == model.size());
            REQUIRE(r.subscriptions_of(who) == static_cast<std::size_t>(std::count_if(
                                                   model.begin(), model.end(),
                                                   [&](const auto& m) { return m.first == who; })));
        }
        CHECK(matched_visits > 1000);  // the universe produces real matches
        for (std::uint64_t who = 0; who < 12; ++who) r.unsubscribe_all(who);
        CHECK(r.empty());
        CHECK(r.trie_node_count() == 0);
        CHECK(r.topic_count() == 0);
        CHECK(r.pattern_count() == 0);
    }
}

TEST_CASE("moving a router keeps its subscriptions", "[router]") {
    sluice::router a;
    REQUIRE_FALSE(a.subscribe(1, "p:*"));
    REQUIRE_FALSE(a.subscribe(2, "p:q"));
    sluice::router b(std::move(a));
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): documented state
    CHECK(a.trie_node_count() == 0);
    CHECK(visits(a, "p:q").empty());
    CHECK(visits(b, "p:q") == visit_list{{1, "p:*"}, {2, "p:q"}});
    sluice::router c;
    REQUIRE_FALSE(c.subscribe(3, "z"));
    c = std::move(b);
    CHECK(visits(c, "p:q") == visit_list{{1, "p:*"}, {2, "p:q"}});
    CHECK(visits(c, "z").empty());
    CHECK(c.size() == 2);
    REQUIRE_FALSE(a.subscribe(4, "p:q"));  // a moved-from router is usable
    CHECK(visits(a, "p:q") == visit_list{{4, "p:q"}});
    c.clear();
    CHECK(c.empty());
    CHECK(c.trie_node_count() == 0);
}

TEST_CASE("deep topics and long segments", "[router]") {
    sluice::router r;
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += (i ? ":a" : "a");  // 199 bytes, 100 segments
    std::string deep_pattern;
    for (int i = 0; i < 99; ++i) deep_pattern += (i ? ":*" : "*");
    deep_pattern += ":#";
    std::string long_segment(200, 'z');
    REQUIRE_FALSE(r.subscribe(1, deep));
    REQUIRE_FALSE(r.subscribe(2, deep_pattern));
    REQUIRE_FALSE(r.subscribe(3, long_segment));
    REQUIRE_FALSE(r.subscribe(4, std::string(198, 'z') + ":#"));
    CHECK(visits(r, deep) == visit_list{{1, deep}, {2, deep_pattern}});
    CHECK(visits(r, long_segment) == visit_list{{3, long_segment}});
    CHECK(visits(r, std::string(198, 'z')) == visit_list{{4, std::string(198, 'z') + ":#"}});
    r.clear();
    CHECK(r.trie_node_count() == 0);
}
