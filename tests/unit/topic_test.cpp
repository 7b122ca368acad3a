#include "sluice/topic.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == ':') {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

// An independent reference matcher over split segments (recursive, the
// grammar's definition read literally).
bool reference_match(const std::vector<std::string>& p, std::size_t pi,
                     const std::vector<std::string>& t, std::size_t ti) {
    if (pi == p.size()) return ti == t.size();
    if (p[pi] == "#" && pi + 1 == p.size()) return true;  // zero or more segments
    if (ti == t.size()) return false;
    if (p[pi] != "*" && p[pi] != t[ti]) return false;
    return reference_match(p, pi + 1, t, ti + 1);
}

bool reference_match(const std::string& pattern, const std::string& topic) {
    return reference_match(split(pattern), 0, split(topic), 0);
}

// All strings of `count` segments drawn from `alphabet` (joined with ':').
void enumerate(const std::vector<std::string>& alphabet, const std::vector<std::string>& last,
               std::size_t count, std::string prefix, std::vector<std::string>& out) {
    if (count == 1) {
        for (const auto& a : last) out.push_back(prefix + a);
        return;
    }
    for (const auto& a : alphabet) enumerate(alphabet, last, count - 1, prefix + a + ":", out);
}

std::vector<std::string> all_topics(std::size_t max_segments) {
    std::vector<std::string> out;
    std::vector<std::string> letters{"a", "b", "c"};
    for (std::size_t n = 1; n <= max_segments; ++n) enumerate(letters, letters, n, "", out);
    return out;
}

std::vector<std::string> all_patterns(std::size_t max_segments) {
    std::vector<std::string> out;
    std::vector<std::string> inner{"a", "b", "*"};
    std::vector<std::string> last{"a", "b", "*", "#"};
    for (std::size_t n = 1; n <= max_segments; ++n) enumerate(inner, last, n, "", out);
    return out;
}

}  // namespace

TEST_CASE("topic lengths: 1 and 200 bytes are valid, 0 and 201 are not", "[topic]") {
    CHECK(sluice::check_topic("a").ok());
    CHECK(sluice::check_topic(std::string(200, 'a')).ok());
    CHECK(sluice::check_pattern(std::string(200, 'a')).ok());
    std::string long_pattern = std::string(198, 'a') + ":#";
    CHECK(sluice::check_pattern(long_pattern).ok());

    auto empty = sluice::check_topic("");
    CHECK(empty.error == sluice::errc::invalid_topic);
    CHECK(empty.reason == "empty");
    CHECK(empty.message() == "empty");
    CHECK_FALSE(static_cast<bool>(empty));

    auto too_long = sluice::check_topic(std::string(201, 'a'));
    CHECK(too_long.error == sluice::errc::invalid_topic);
    CHECK(too_long.reason == "longer than 200 bytes");
    CHECK(sluice::check_pattern(std::string(199, 'a') + ":#").error == sluice::errc::invalid_topic);
    CHECK(sluice::check_pattern("").error == sluice::errc::invalid_topic);
}

TEST_CASE("topic characters: every allowed one, and the others", "[topic]") {
    std::string allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-@=+";
    CHECK(sluice::check_topic(allowed).ok());
    for (char c : allowed) {
        CHECK(sluice::check_topic(std::string(1, c)).ok());
        CHECK(sluice::check_pattern(std::string("x:") + c).ok());
    }
    int rejected = 0;
    for (int i = 0; i < 256; ++i) {
        char c = static_cast<char>(i);
        if (allowed.find(c) != std::string::npos || c == ':') continue;
        std::string topic = std::string("ab") + c + "d";
        auto r = sluice::check_topic(topic);
        CHECK(r.error == sluice::errc::invalid_topic);
        CHECK(r.position == 2);
        if (c != '*' && c != '#') CHECK(r.reason == "character not allowed");
        CHECK_FALSE(sluice::check_pattern(topic).ok());
        ++rejected;
    }
    CHECK(rejected == 256 - 69);
    auto space = sluice::check_topic("prices: AAPL");
    CHECK(space.message() == "character not allowed at byte 7");
}

TEST_CASE("topic segments must not be empty", "[topic]") {
    for (const char* bad : {":", ":a", "a:", "a::b", "a:b:", "::"}) {
        auto r = sluice::check_topic(bad);
        CHECK(r.error == sluice::errc::invalid_topic);
        CHECK(r.reason == "empty segment");
        CHECK_FALSE(sluice::check_pattern(bad).ok());
    }
    auto r = sluice::check_topic("prices::AAPL");
    CHECK(r.position == 7);
    CHECK(r.message() == "empty segment at byte 7");
    CHECK(sluice::check_topic("a:").position == 2);
    CHECK(sluice::check_topic(":a").position == 0);
    CHECK(sluice::check_pattern("a:*:").reason == "empty segment");
}

TEST_CASE("wildcard placement in patterns", "[topic]") {
    for (const char* good :
         {"*", "#", "a:*", "*:a", "a:#", "*:#", "*:*", "a:*:b:#", "*:entity:7", "country:*:gdp"}) {
        INFO(good);
        CHECK(sluice::check_pattern(good).ok());
        CHECK(sluice::is_pattern(good));
    }
    for (const char* bad : {"#:a", "a:#:b", "#:#", "a:#:*"}) {
        INFO(bad);
        auto r = sluice::check_pattern(bad);
        CHECK(r.error == sluice::errc::invalid_topic);
        CHECK(r.reason == "'#' not in the last segment");
    }
    CHECK(sluice::check_pattern("a:#:b").position == 2);
    for (const char* bad : {"a*", "*a", "a:b*", "**", "##", "a:#b", "x#", "a:*#", "a:**"}) {
        INFO(bad);
        auto r = sluice::check_pattern(bad);
        CHECK(r.error == sluice::errc::invalid_topic);
        CHECK(r.reason == "wildcard mixed with other characters");
        CHECK_FALSE(sluice::is_pattern(bad));
    }
    CHECK(sluice::check_pattern("ab:c*").position == 4);
}

TEST_CASE("a publish topic has no wildcards", "[topic]") {
    for (const char* bad : {"*", "#", "a:*", "a:#", "*:b", "a*"}) {
        INFO(bad);
        auto r = sluice::check_topic(bad);
        CHECK(r.error == sluice::errc::invalid_topic);
        CHECK(r.reason == "wildcard in a topic");
    }
    CHECK(sluice::check_topic("a:*").position == 2);
    for (const char* good : {"prices:AAPL", "country:42", "transactions.new:entity:7", "a=b+c@d"}) {
        CHECK(sluice::check_topic(good).ok());
        CHECK(sluice::check_pattern(good).ok());
        CHECK_FALSE(sluice::is_pattern(good));
    }
}

TEST_CASE("event names", "[topic]") {
    CHECK(sluice::check_event_name("analysis:start").ok());
    CHECK(sluice::check_event_name("a").ok());
    CHECK(sluice::check_event_name(":").ok());
    CHECK(sluice::check_event_name("a::b").ok());
    CHECK(sluice::check_event_name(std::string(64, 'x')).ok());
    CHECK(sluice::check_event_name("A-Za-z0-9_.@=+:").ok());

    auto empty = sluice::check_event_name("");
    CHECK(empty.error == sluice::errc::bad_request);
    CHECK(empty.reason == "empty");
    auto too_long = sluice::check_event_name(std::string(65, 'x'));
    CHECK(too_long.error == sluice::errc::bad_request);
    CHECK(too_long.reason == "longer than 64 bytes");
    for (const char* bad : {"a b", "a\r", "a\nb", "a*", "#", "caf\xc3\xa9", "a/b", "a\tb"}) {
        INFO(bad);
        auto r = sluice::check_event_name(bad);
        CHECK(r.error == sluice::errc::bad_request);
        CHECK(r.reason == "character not allowed");
    }
    CHECK(sluice::check_event_name("ab\ncd").position == 2);
    std::string with_nul("a\0b", 3);
    CHECK_FALSE(sluice::check_event_name(with_nul).ok());
    CHECK_FALSE(sluice::check_topic(with_nul).ok());
}

TEST_CASE("pattern_matches: the examples of PROTOCOL.md", "[topic]") {
    CHECK(sluice::pattern_matches("country:*", "country:42"));
    CHECK_FALSE(sluice::pattern_matches("country:*", "country"));
    CHECK_FALSE(sluice::pattern_matches("country:*", "country:42:gdp"));
    CHECK(sluice::pattern_matches("country:#", "country"));
    CHECK(sluice::pattern_matches("country:#", "country:42"));
    CHECK(sluice::pattern_matches("country:#", "country:42:gdp"));
    CHECK_FALSE(sluice::pattern_matches("country:#", "countryside"));
    CHECK_FALSE(sluice::pattern_matches("country:#", "other:42"));
    CHECK(sluice::pattern_matches("*:entity:7", "transactions.new:entity:7"));
    CHECK(sluice::pattern_matches("#", "a"));
    CHECK(sluice::pattern_matches("#", "a:b:c"));
    CHECK(sluice::pattern_matches("prices:AAPL", "prices:AAPL"));
    CHECK_FALSE(sluice::pattern_matches("prices:AAPL", "prices:AAP"));
    CHECK_FALSE(sluice::pattern_matches("prices:AAP", "prices:AAPL"));
}

TEST_CASE("pattern_matches agrees with a reference matcher", "[topic]") {
    auto topics = all_topics(4);
    auto patterns = all_patterns(4);
    std::size_t matches = 0;
    for (const auto& p : patterns) {
        for (const auto& t : topics) {
            bool expected = reference_match(p, t);
            if (sluice::pattern_matches(p, t) != expected) {
                FAIL("pattern " << p << " topic " << t << " expected " << expected);
            }
            matches += expected ? 1 : 0;
        }
    }
    CHECK(matches > 1000);  // the universe exercises both outcomes
}

TEST_CASE("pattern_contains: the examples of PROTOCOL.md section 6", "[topic]") {
    CHECK(sluice::pattern_contains("country:#", "country:*"));
    CHECK_FALSE(sluice::pattern_contains("country:*", "country:#"));
    CHECK(sluice::pattern_contains("#", "#"));
    CHECK_FALSE(sluice::pattern_contains("a:#", "#"));
    CHECK_FALSE(sluice::pattern_contains("*", "#"));
    CHECK_FALSE(sluice::pattern_contains("user:alice:#", "user:*:inbox"));
    CHECK(sluice::pattern_contains("user:alice:#", "user:alice:inbox"));
    CHECK(sluice::pattern_contains("country:*", "country:42"));
    CHECK(sluice::pattern_contains("country:42", "country:42"));
    CHECK_FALSE(sluice::pattern_contains("country:42", "country:*"));
    CHECK(sluice::pattern_contains("a:#", "a:*:c"));
    CHECK(sluice::pattern_contains("*:#", "*:*"));
    CHECK(sluice::pattern_contains("#", "*:*"));
    CHECK_FALSE(sluice::pattern_contains("a:*", "a:#"));
    CHECK(sluice::pattern_contains("a:#", "a:b:#"));
    CHECK(sluice::pattern_contains("a:#", "a:#"));
    CHECK(sluice::pattern_contains("a:#", "a"));
    CHECK_FALSE(sluice::pattern_contains("x:*:#", "x:#"));
    CHECK(sluice::pattern_contains("x:*:#", "x:*:#"));
    CHECK(sluice::pattern_contains("x:*:#", "x:y:#"));
    // `*:#` and `#` match the same (non-empty) topics.
    CHECK(sluice::pattern_contains("*:#", "#"));
    CHECK(sluice::pattern_contains("#", "*:#"));
    CHECK_FALSE(sluice::pattern_contains("*:*:#", "#"));
}

TEST_CASE("pattern_contains agrees with brute force over a small universe", "[topic]") {
    // Patterns of up to 3 segments over {a, b, *, #}; topics of up to 5
    // segments over {a, b, c} (c never appears in a pattern, so it witnesses
    // what '*' and '#' match and literals do not).
    auto topics = all_topics(5);
    auto patterns = all_patterns(3);
    std::vector<std::vector<bool>> matched(patterns.size(), std::vector<bool>(topics.size()));
    for (std::size_t p = 0; p < patterns.size(); ++p) {
        for (std::size_t t = 0; t < topics.size(); ++t) {
            matched[p][t] = reference_match(patterns[p], topics[t]);
        }
    }
    std::size_t contained = 0;
    for (std::size_t o = 0; o < patterns.size(); ++o) {
        for (std::size_t i = 0; i < patterns.size(); ++i) {
            bool expected = true;
            for (std::size_t t = 0; t < topics.size() && expected; ++t) {
                if (matched[i][t] && !matched[o][t]) expected = false;
            }
            if (sluice::pattern_contains(patterns[o], patterns[i]) != expected) {
                FAIL("outer " << patterns[o] << " inner " << patterns[i] << " expected "
                              << expected);
            }
            contained += expected ? 1 : 0;
        }
    }
    CHECK(contained > patterns.size());  // more than the reflexive pairs
    CHECK(contained < patterns.size() * patterns.size() / 2);
}
