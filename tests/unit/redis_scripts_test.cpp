// The Lua scripts of the Redis backplane (src/redis/redis_scripts.hpp), run
// by a real redis-server: offsets, epochs, the stream, trimming, TTLs,
// idempotency, and what the sync script returns.
#include "redis/redis_scripts.hpp"

#include "redis_server.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
namespace script = sluice::detail::redis::script;

namespace {

struct topic_keys {
    std::string meta = "t:m:x";
    std::string stream = "t:s:x";
};

redis_reply publish(redis_server& redis, const std::string& data, const std::string& epoch,
                    const std::string& maxlen = "1000", const std::string& idem = "",
                    const topic_keys& k = {}) {
    return redis.command({"EVALSHA", script::publish.sha1, "3", k.meta, k.stream,
                          idem.empty() ? k.meta : idem, "t:events", "x", data, "", "1700000000000",
                          epoch, maxlen, "300000", "86400000", idem.empty() ? "0" : "300000"});
}

redis_reply sync(redis_server& redis, const std::string& local_epoch, const std::string& local_top,
                 const std::string& since_epoch, const std::string& since_offset,
                 const std::string& limit = "1000", const topic_keys& k = {}) {
    return redis.command({"EVALSHA", script::sync.sha1, "2", k.meta, k.stream, local_epoch,
                          local_top, since_epoch, since_offset, limit, "feedfacefeedface",
                          "86400000"});
}

std::vector<long long> entry_offsets(const redis_reply& entries) {
    std::vector<long long> out;
    for (const auto& e : entries.elements) out.push_back(std::stoll(e.elements.at(0).str));
    return out;
}

void load_scripts(redis_server& redis) {
    REQUIRE(redis.command({"SCRIPT", "LOAD", script::publish.body}).str == script::publish.sha1);
    REQUIRE(redis.command({"SCRIPT", "LOAD", script::sync.body}).str == script::sync.sha1);
}

}  // namespace

TEST_CASE("redis publish script: offsets, one epoch, the stream and its bounds", "[redis]") {
    redis_server redis;
    load_scripts(redis);

    auto first = publish(redis, R"({"a":1})", "0123456789abcdef");
    REQUIRE(first.type == redis_reply::kind::array);
    CHECK(first.elements.at(0).integer == 1);
    CHECK(first.elements.at(1).integer == 1);
    CHECK(first.elements.at(2).str == "0123456789abcdef");
    // Later candidates are ignored: the topic keeps its epoch.
    auto second = publish(redis, "2", "ffffffffffffffff");
    CHECK(second.elements.at(1).integer == 2);
    CHECK(second.elements.at(2).str == "0123456789abcdef");

    auto entries = redis.command({"XRANGE", "t:s:x", "-", "+"});
    REQUIRE(entries.elements.size() == 2);
    CHECK(entries.elements[0].elements[0].str == "1-0");
    const auto& fields = entries.elements[0].elements[1].elements;
    REQUIRE(fields.size() == 8);
    CHECK(fields[0].str == "e");
    CHECK(fields[1].str == "0123456789abcdef");
    CHECK(fields[7].str == R"({"a":1})");
    CHECK(redis.command({"PTTL", "t:m:x"}).integer > 86000000);
    CHECK(redis.command({"PTTL", "t:s:x"}).integer > 290000);

    // Trimmed to the history size.
    for (int i = 3; i <= 6; ++i) publish(redis, std::to_string(i), "e", "3");
    CHECK(redis.command({"XLEN", "t:s:x"}).integer == 3);
    CHECK(entry_offsets(redis.command({"XRANGE", "t:s:x", "-", "+"})) ==
          std::vector<long long>{4, 5, 6});

    // History size 0: positions only.
    topic_keys y{"t:m:y", "t:s:y"};
    CHECK(publish(redis, "1", "e", "0", "", y).elements.at(1).integer == 1);
    CHECK(redis.command({"EXISTS", "t:s:y"}).integer == 0);
}

TEST_CASE("redis publish script: an idempotency key answers the first position", "[redis]") {
    redis_server redis;
    load_scripts(redis);
    auto first = publish(redis, "1", "0123456789abcdef", "1000", "t:i:x\nk");
    auto again = publish(redis, "1", "0123456789abcdef", "1000", "t:i:x\nk");
    CHECK(first.elements.at(0).integer == 1);
    CHECK(again.elements.at(0).integer == 0);
    CHECK(again.elements.at(1).str == "1 0123456789abcdef");
    CHECK(redis.command({"HGET", "t:m:x", "o"}).str == "1");
    CHECK(redis.command({"XLEN", "t:s:x"}).integer == 1);
}

TEST_CASE("redis publish script: a lost position starts a new epoch and drops the old stream",
          "[redis]") {
    redis_server redis;
    load_scripts(redis);
    for (int i = 0; i < 3; ++i) publish(redis, "1", "aaaaaaaaaaaaaaaa");
    REQUIRE(redis.command({"DEL", "t:m:x"}).integer == 1);
    auto after = publish(redis, "1", "bbbbbbbbbbbbbbbb");
    CHECK(after.elements.at(1).integer == 1);
    CHECK(after.elements.at(2).str == "bbbbbbbbbbbbbbbb");
    CHECK(entry_offsets(redis.command({"XRANGE", "t:s:x", "-", "+"})) == std::vector<long long>{1});
}

TEST_CASE("redis sync script: the position and the entries a hub or a resume needs", "[redis]") {
    redis_server redis;
    load_scripts(redis);

    SECTION("an unknown topic gets its epoch now, offset 0, no entries") {
        auto r = sync(redis, "", "0", "", "0");
        REQUIRE(r.elements.size() == 4);
        CHECK(r.elements[0].str == "feedfacefeedface");
        CHECK(r.elements[1].integer == 0);
        CHECK(r.elements[2].integer == -1);
        CHECK(r.elements[3].elements.empty());
        // ...and the first publish keeps that epoch.
        CHECK(publish(redis, "1", "0000000000000000").elements.at(2).str == "feedfacefeedface");
    }
    SECTION("entries after the local top, or after a usable since when it is lower") {
        for (int i = 0; i < 5; ++i) publish(redis, std::to_string(i), "aaaaaaaaaaaaaaaa");
        auto r = sync(redis, "aaaaaaaaaaaaaaaa", "3", "", "0");
        CHECK(r.elements[1].integer == 5);
        CHECK(r.elements[2].integer == 3);
        CHECK(entry_offsets(r.elements[3]) == std::vector<long long>{4, 5});
        auto resume = sync(redis, "aaaaaaaaaaaaaaaa", "4", "aaaaaaaaaaaaaaaa", "1");
        CHECK(resume.elements[2].integer == 1);
        CHECK(entry_offsets(resume.elements[3]) == std::vector<long long>{2, 3, 4, 5});
        // Over the replay limit, a wrong epoch, or above the top: since is ignored.
        CHECK(sync(redis, "", "0", "aaaaaaaaaaaaaaaa", "1", "3").elements[2].integer == -1);
        CHECK(sync(redis, "", "0", "bbbbbbbbbbbbbbbb", "1").elements[2].integer == -1);
        CHECK(sync(redis, "", "0", "aaaaaaaaaaaaaaaa", "9").elements[2].integer == -1);
        // At the top: nothing to send.
        auto top = sync(redis, "aaaaaaaaaaaaaaaa", "5", "", "0");
        CHECK(top.elements[2].integer == 5);
        CHECK(top.elements[3].elements.empty());
        // A stale local epoch: everything of the current one.
        auto stale = sync(redis, "cccccccccccccccc", "9", "", "0");
        CHECK(stale.elements[2].integer == 0);
        CHECK(entry_offsets(stale.elements[3]) == std::vector<long long>{1, 2, 3, 4, 5});
    }
}
