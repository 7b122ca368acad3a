// One hiredis connection on Asio (src/redis/redis_link.hpp) against a real
// redis-server: connect, AUTH, commands in order, pub/sub, and every way the
// link fails (refused, bad password, connect and command timeouts, a crash,
// destruction with commands pending). Each wait is bounded by run_for.
#include "redis/redis_link.hpp"

#include "redis_server.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <optional>

using namespace sluice::test;
using redis_link = sluice::detail::redis::link;
using namespace std::chrono_literals;

namespace {

struct loop {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    redis_link::strand_type strand{asio::make_strand(io.get_executor())};

    /// Runs the loop until `done` holds or `timeout` passes; returns `done()`.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done() && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
        return done();
    }
};

sluice::redis_options options_for(std::uint16_t port) {
    sluice::redis_options o;
    o.port = port;
    o.connect_timeout = 500ms;
    o.command_timeout = 500ms;
    return o;
}

struct connect_result {
    std::optional<std::error_code> error;
    std::string why;
};

std::shared_ptr<redis_link> connected(loop& l, const sluice::redis_options& o, connect_result& r) {
    auto c = std::make_shared<redis_link>(l.strand, o, "test");
    c->connect([&r](std::error_code ec, std::string why) {
        r.error = ec;
        r.why = std::move(why);
    });
    l.run_until([&] { return r.error.has_value(); });
    return c;
}

}  // namespace

TEST_CASE("redis link: connects, runs commands in order, receives pub/sub", "[redis]") {
    redis_server redis;
    loop l;
    connect_result r;
    auto c = connected(l, options_for(redis.port()), r);
    REQUIRE(r.error);
    REQUIRE_FALSE(*r.error);
    CHECK(c->ready());

    std::vector<std::string> replies;
    for (int i = 0; i < 20; ++i) {
        REQUIRE(c->command({"INCR", "counter"}, [&](const redisReply* reply) {
            replies.push_back(sluice::detail::redis::describe(reply));
        }));
    }
    REQUIRE(l.run_until([&] { return replies.size() == 20; }));
    for (int i = 0; i < 20; ++i)
        CHECK(replies[static_cast<std::size_t>(i)] == std::to_string(i + 1));

    connect_result rs;
    auto sub = connected(l, options_for(redis.port()), rs);
    REQUIRE_FALSE(*rs.error);
    std::vector<std::pair<std::string, std::string>> messages;
    REQUIRE(sub->subscribe({"ch:1", "ch:2"}, [&](std::string_view ch, std::string_view payload) {
        messages.emplace_back(ch, payload);
    }));
    // Publish until the subscription is active, then once more on the other channel.
    REQUIRE(l.run_until(
        [&] {
            if (messages.empty()) c->command({"PUBLISH", "ch:1", "hello\nworld"}, [](auto) {});
            return !messages.empty();
        },
        5s));
    c->command({"PUBLISH", "ch:2", std::string_view("\0bin", 4)}, [](auto) {});
    REQUIRE(l.run_until([&] { return messages.size() >= 2 && messages.back().first == "ch:2"; }));
    CHECK(messages.front() == std::make_pair(std::string("ch:1"), std::string("hello\nworld")));
    CHECK(messages.back().second == std::string("\0bin", 4));
}

TEST_CASE("redis link: AUTH and SELECT", "[redis]") {
    redis_server redis;
    REQUIRE_FALSE(redis.command({"CONFIG", "SET", "requirepass", "pw"}).is_error());
    loop l;
    auto o = options_for(redis.port());
    SECTION("the right password, and a database") {
        o.password = "pw";
        o.database = 3;
        connect_result r;
        auto c = connected(l, o, r);
        REQUIRE_FALSE(*r.error);
        std::string db;
        c->command({"CLIENT", "INFO"},
                   [&](const redisReply* reply) { db = sluice::detail::redis::describe(reply); });
        REQUIRE(l.run_until([&] { return !db.empty(); }));
        CHECK(db.find(" db=3 ") != std::string::npos);
    }
    SECTION("a wrong password fails the connect") {
        o.password = "nope";
        connect_result r;
        auto c = connected(l, o, r);
        REQUIRE(r.error);
        CHECK(*r.error);
        CHECK(r.why.find("AUTH") != std::string::npos);
        CHECK_FALSE(c->ready());
        CHECK_FALSE(c->command({"PING"}, [](auto) {}));
    }
    SECTION("no password where one is needed fails at SELECT") {
        connect_result r;
        connected(l, o, r);
        REQUIRE(r.error);
        CHECK(*r.error);
    }
}

TEST_CASE("redis link: refused and timed-out connects fail once", "[redis]") {
    loop l;
    SECTION("nothing listens") {
        int calls = 0;
        connect_result r;
        auto c = std::make_shared<redis_link>(l.strand, options_for(1), "test");
        c->connect([&](std::error_code ec, std::string why) {
            ++calls;
            r.error = ec;
            r.why = why;
        });
        REQUIRE(l.run_until([&] { return calls > 0; }));
        l.run_until([] { return false; }, 100ms);
        CHECK(calls == 1);
        CHECK(*r.error);
    }
    SECTION("a server that accepts but never answers") {
        redis_server redis;
        redis.freeze();
        connect_result r;
        auto started = std::chrono::steady_clock::now();
        connected(l, options_for(redis.port()), r);
        REQUIRE(r.error);
        CHECK(*r.error);
        CHECK(r.why.find("timeout") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - started < 3s);
        redis.thaw();
    }
}

TEST_CASE("redis link: a lost server fails pending commands and reports the close", "[redis]") {
    redis_server redis;
    loop l;
    connect_result r;
    auto c = connected(l, options_for(redis.port()), r);
    REQUIRE_FALSE(*r.error);
    std::optional<std::string> closed;
    c->on_closed([&](std::string why) { closed = why; });

    SECTION("a crash") {
        redis.kill();
        REQUIRE(l.run_until([&] { return closed.has_value(); }));
        CHECK_FALSE(c->ready());
    }
    SECTION("no answer within the command timeout") {
        redis.freeze();
        bool null_reply = false;
        REQUIRE(c->command({"PING"}, [&](const redisReply* reply) { null_reply = !reply; }));
        REQUIRE(l.run_until([&] { return null_reply && closed.has_value(); }, 3s));
        CHECK(closed->find("timeout") != std::string::npos);
        redis.thaw();
    }
}

TEST_CASE("redis link: destroyed with commands pending, every handler runs once", "[redis]") {
    redis_server redis;
    loop l;
    connect_result r;
    auto c = connected(l, options_for(redis.port()), r);
    REQUIRE_FALSE(*r.error);
    int nulls = 0;
    for (int i = 0; i < 5; ++i) {
        c->command({"PING"}, [&](const redisReply* reply) { nulls += reply ? 100 : 1; });
    }
    c.reset();
    l.run_until([] { return false; }, 100ms);
    CHECK(nulls == 5);
}
