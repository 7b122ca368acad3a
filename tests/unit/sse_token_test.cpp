#include "sse_token.hpp"

#include <catch2/catch.hpp>

using sluice::detail::append_resume_token;
using sluice::detail::parse_resume_token;
using sluice::detail::token_position;
using sluice::detail::topic_tag;

TEST_CASE("resume token round-trips every position", "[sse_token]") {
    std::vector<token_position> positions{{topic_tag("prices:AAPL"), "cb7d6006d88c6eb6", 17},
                                          {topic_tag("alerts:critical"), "0123456789abcdef", 0}};
    std::string token;
    append_resume_token(token, "gen1", positions);
    auto parsed = parse_resume_token(token, "gen1");
    REQUIRE(parsed.size() == 2);
    CHECK(parsed[0].tag == positions[0].tag);
    CHECK(parsed[0].epoch == "cb7d6006d88c6eb6");
    CHECK(parsed[0].offset == 17);
    CHECK(parsed[1].offset == 0);
}

TEST_CASE("resume token leaves out unknown positions", "[sse_token]") {
    std::string token;
    append_resume_token(token, "g", {{topic_tag("a"), "", 5}, {topic_tag("b"), "e1e1e1e1", 9}});
    auto parsed = parse_resume_token(token, "g");
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].tag == topic_tag("b"));
}

TEST_CASE("a token from another generation or unreadable gives nothing", "[sse_token]") {
    std::string token;
    append_resume_token(token, "gen1", {{topic_tag("a"), "e1e1e1e1", 3}});
    CHECK(parse_resume_token(token, "gen2").empty());
    CHECK(parse_resume_token("garbage", "gen1").empty());
    CHECK(parse_resume_token("", "gen1").empty());
    CHECK(parse_resume_token("1.gen1.zzzzzzzz~e~1", "gen1").empty());    // tag not hex
    CHECK(parse_resume_token("1.gen1.0000000a~e~x", "gen1").empty());    // offset not a number
    CHECK(parse_resume_token("1.gen1.0000000a~e\n~1", "gen1").empty());  // unsafe epoch
    CHECK(parse_resume_token(std::string(5000, 'a'), "gen1").empty());   // over 4 KiB
    CHECK(parse_resume_token("1.gen1", "gen1").empty());  // no topic: nothing to resume
}

TEST_CASE("64 topics stay well under 4 KiB", "[sse_token]") {
    std::vector<token_position> positions;
    for (int i = 0; i < 64; ++i) {
        positions.push_back(
            {topic_tag("topic:" + std::to_string(i)), "0123456789abcdef", 18446744073709551615ULL});
    }
    std::string token;
    append_resume_token(token, "0123456789ab", positions);
    CHECK(token.size() < 4096);
    CHECK(parse_resume_token(token, "0123456789ab").size() == 64);
}
