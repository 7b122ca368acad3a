#include "sluice/filter.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace {

rapidjson::Document json(const char* text) {
    rapidjson::Document d;
    d.Parse(text);
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

sluice::filter compiled(const char* spec) {
    auto r = sluice::parse_filter(spec);
    INFO(spec << ": " << r.message);
    REQUIRE(r);
    return std::move(r.compiled);
}

bool matches(const char* spec, const char* data) {
    auto d = json(data);
    return compiled(spec).matches(d);
}

void check_invalid(const char* spec, const std::string& key, const std::string& message_part) {
    auto r = sluice::parse_filter(spec);
    INFO(spec);
    CHECK(r.error == sluice::errc::invalid_filter);
    CHECK_FALSE(r);
    CHECK(r.key == key);
    INFO(r.message);
    CHECK(r.message.find(message_part) != std::string::npos);
    if (!key.empty()) CHECK(r.message.find("\"" + key + "\"") != std::string::npos);
    CHECK(r.compiled.empty());
}

}  // namespace

TEST_CASE("the documented example", "[filter]") {
    // snippet: filter
    auto r = sluice::parse_filter(R"({"amount": {"gte": 100}, "currency": "EUR"})");
    rapidjson::Document data;
    data.Parse(R"({"amount": 250, "currency": "EUR"})");
    bool send = r && r.compiled.matches(data);  // true
    // end snippet
    CHECK(send);
    CHECK(r.compiled.size() == 2);
}

TEST_CASE("an empty filter matches everything", "[filter]") {
    sluice::filter none;
    CHECK(none.empty());
    CHECK(none.size() == 0);
    CHECK(none.matches(json(R"({"a":1})")));
    CHECK(none.matches(json("42")));
    auto r = sluice::parse_filter("{}");
    REQUIRE(r);
    CHECK(r.compiled.empty());
    CHECK(r.compiled.matches(json("null")));
    CHECK(r.compiled.matches(json("[1,2]")));
}

TEST_CASE("scalar equality without coercion", "[filter]") {
    CHECK(matches(R"({"a": 5})", R"({"a": 5})"));
    CHECK(matches(R"({"a": 5})", R"({"a": 5.0})"));
    CHECK(matches(R"({"a": 5.0})", R"({"a": 5})"));
    CHECK(matches(R"({"a": 5e0})", R"({"a": 5})"));
    CHECK_FALSE(matches(R"({"a": 5})", R"({"a": "5"})"));
    CHECK_FALSE(matches(R"({"a": "5"})", R"({"a": 5})"));
    CHECK(matches(R"({"a": "x"})", R"({"a": "x"})"));
    CHECK_FALSE(matches(R"({"a": "x"})", R"({"a": "X"})"));
    CHECK_FALSE(matches(R"({"a": "x"})", R"({"a": "x "})"));
    CHECK(matches(R"({"a": true})", R"({"a": true})"));
    CHECK_FALSE(matches(R"({"a": true})", R"({"a": 1})"));
    CHECK_FALSE(matches(R"({"a": 1})", R"({"a": true})"));
    CHECK(matches(R"({"a": null})", R"({"a": null})"));
    CHECK_FALSE(matches(R"({"a": null})", R"({})"));
    CHECK_FALSE(matches(R"({"a": null})", R"({"a": 0})"));
    CHECK_FALSE(matches(R"({"a": 0})", R"({"a": null})"));
    CHECK_FALSE(matches(R"({"a": 1})", R"({"a": [1]})"));
    CHECK_FALSE(matches(R"({"a": 1})", R"({"a": {"b": 1}})"));
    CHECK(matches(R"({"a": {"eq": 1}})", R"({"a": 1})"));
    CHECK_FALSE(matches(R"({"a": {"eq": 1}})", R"({"a": 2})"));
    // strings compare bytewise, embedded NULs included
    CHECK(matches(R"({"a": "a\u0000b"})", R"({"a": "a\u0000b"})"));
    CHECK_FALSE(matches(R"({"a": "a\u0000b"})", R"({"a": "a\u0000c"})"));
    CHECK(matches(R"({"a": "\u00e9"})", "{\"a\": \"\xc3\xa9\"}"));
}

TEST_CASE("numbers compare exactly across int64, uint64 and double", "[filter]") {
    // 2^63 is a uint64, 2^63-1 an int64; 9223372036854775807.0 is the double 2^63.
    CHECK(matches(R"({"a": {"gt": 9223372036854775807}})", R"({"a": 9223372036854775808})"));
    CHECK_FALSE(matches(R"({"a": 9223372036854775807})", R"({"a": 9223372036854775808})"));
    CHECK(matches(R"({"a": 9223372036854775808})", R"({"a": 9223372036854775808.0})"));
    CHECK_FALSE(matches(R"({"a": 9223372036854775807})", R"({"a": 9223372036854775807.0})"));
    CHECK(matches(R"({"a": {"lt": 9223372036854775807.0}})", R"({"a": 9223372036854775807})"));
    // 2^53 + 1 is not a double: the int compares exactly against 2^53.
    CHECK(matches(R"({"a": {"gt": 9007199254740992.0}})", R"({"a": 9007199254740993})"));
    CHECK_FALSE(matches(R"({"a": 9007199254740992.0})", R"({"a": 9007199254740993})"));
    CHECK(matches(R"({"a": 18446744073709551615})", R"({"a": 18446744073709551615})"));
    CHECK(matches(R"({"a": {"lt": 18446744073709551616.0}})", R"({"a": 18446744073709551615})"));
    CHECK(matches(R"({"a": {"lt": 0}})", R"({"a": -9223372036854775808})"));
    CHECK(matches(R"({"a": {"gt": -1}})", R"({"a": 18446744073709551615})"));
    CHECK(matches(R"({"a": {"lt": 18446744073709551615}})", R"({"a": -1})"));
    CHECK(matches(R"({"a": {"lt": -9223372036854775808}})", R"({"a": -1e300})"));
    CHECK(matches(R"({"a": {"gt": 2}})", R"({"a": 2.5})"));
    CHECK(matches(R"({"a": {"lt": 3}})", R"({"a": 2.5})"));
    CHECK(matches(R"({"a": {"gt": -3}})", R"({"a": -2.5})"));
    CHECK(matches(R"({"a": {"lt": -2}})", R"({"a": -2.5})"));
    CHECK(matches(R"({"a": {"gt": 2.25}})", R"({"a": 2.5})"));
    CHECK(matches(R"({"a": 0})", R"({"a": -0.0})"));
}

TEST_CASE("ordering operators", "[filter]") {
    const char* data = R"({"n": 10, "s": "m", "b": true, "z": null})";
    CHECK(matches(R"({"n": {"gt": 9}})", data));
    CHECK_FALSE(matches(R"({"n": {"gt": 10}})", data));
    CHECK(matches(R"({"n": {"gte": 10}})", data));
    CHECK_FALSE(matches(R"({"n": {"gte": 11}})", data));
    CHECK(matches(R"({"n": {"lt": 11}})", data));
    CHECK_FALSE(matches(R"({"n": {"lt": 10}})", data));
    CHECK(matches(R"({"n": {"lte": 10}})", data));
    CHECK_FALSE(matches(R"({"n": {"lte": 9.99}})", data));
    CHECK(matches(R"({"n": {"gt": 1, "lt": 100}})", data));
    CHECK_FALSE(matches(R"({"n": {"gt": 1, "lt": 5}})", data));
    // strings bytewise
    CHECK(matches(R"({"s": {"gt": "l"}})", data));
    CHECK(matches(R"({"s": {"lt": "ma"}})", data));
    CHECK(matches(R"({"s": {"gte": "m", "lte": "m"}})", data));
    CHECK(matches(R"({"s": {"lt": "\u00e9"}})", data));  // 0xC3 > 'm'
    CHECK_FALSE(matches(R"({"s": {"gt": "m"}})", data));
    // mixed types never match, in either direction
    CHECK_FALSE(matches(R"({"n": {"gt": "1"}})", data));
    CHECK_FALSE(matches(R"({"n": {"lt": "99"}})", data));
    CHECK_FALSE(matches(R"({"s": {"gt": 1}})", data));
    CHECK_FALSE(matches(R"({"s": {"lt": 1}})", data));
    CHECK_FALSE(matches(R"({"b": {"gte": 0}})", data));
    CHECK_FALSE(matches(R"({"z": {"lte": 0}})", data));
    CHECK_FALSE(matches(R"({"missing": {"lt": 0}})", data));
    CHECK_FALSE(matches(R"({"missing": {"gte": 0}})", data));
}

TEST_CASE("ne, in, nin", "[filter]") {
    const char* data = R"({"n": 2, "s": "b", "z": null, "arr": [1, 2]})";
    CHECK(matches(R"({"n": {"ne": 3}})", data));
    CHECK_FALSE(matches(R"({"n": {"ne": 2.0}})", data));
    CHECK(matches(R"({"n": {"ne": "2"}})", data));
    CHECK(matches(R"({"z": {"ne": 0}})", data));
    CHECK_FALSE(matches(R"({"z": {"ne": null}})", data));
    CHECK(matches(R"({"arr": {"ne": 1}})", data));
    CHECK(matches(R"({"n": {"in": [1, 2, 3]}})", data));
    CHECK(matches(R"({"n": {"in": ["x", 2.0]}})", data));
    CHECK_FALSE(matches(R"({"n": {"in": ["2", 3]}})", data));
    CHECK(matches(R"({"s": {"in": ["a", "b"]}})", data));
    CHECK(matches(R"({"z": {"in": [null]}})", data));
    CHECK_FALSE(matches(R"({"n": {"in": []}})", data));
    CHECK_FALSE(matches(R"({"arr": {"in": [1, 2]}})", data));  // an array is not a scalar
    CHECK(matches(R"({"n": {"nin": [1, 3]}})", data));
    CHECK_FALSE(matches(R"({"n": {"nin": [1, 2]}})", data));
    CHECK(matches(R"({"n": {"nin": []}})", data));
    CHECK(matches(R"({"s": {"nin": ["B"]}})", data));
}

TEST_CASE("a missing field satisfies only ne, nin and exists:false", "[filter]") {
    const char* data = R"({"a": {"b": 1}})";
    CHECK_FALSE(matches(R"({"x": 1})", data));
    CHECK_FALSE(matches(R"({"x": {"eq": null}})", data));
    CHECK(matches(R"({"x": {"ne": 1}})", data));
    CHECK(matches(R"({"x": {"ne": null}})", data));
    CHECK_FALSE(matches(R"({"x": {"gt": 0}})", data));
    CHECK_FALSE(matches(R"({"x": {"gte": 0}})", data));
    CHECK_FALSE(matches(R"({"x": {"lt": 0}})", data));
    CHECK_FALSE(matches(R"({"x": {"lte": 0}})", data));
    CHECK_FALSE(matches(R"({"x": {"in": [null]}})", data));
    CHECK(matches(R"({"x": {"nin": [null]}})", data));
    CHECK_FALSE(matches(R"({"x": {"exists": true}})", data));
    CHECK(matches(R"({"x": {"exists": false}})", data));
    CHECK_FALSE(matches(R"({"x": {"contains": 1}})", data));
    // a path through a non-object is missing
    CHECK(matches(R"({"a.b.c": {"exists": false}})", data));
    CHECK(matches(R"({"a.b.c": {"ne": 1}})", data));
    // data that is not an object: every path is missing
    CHECK(matches(R"({"a": {"exists": false}})", "[1, 2]"));
    CHECK_FALSE(matches(R"({"a": {"exists": true}})", "5"));
}

TEST_CASE("exists: a null value exists", "[filter]") {
    const char* data = R"({"z": null, "f": false, "e": ""})";
    CHECK(matches(R"({"z": {"exists": true}})", data));
    CHECK_FALSE(matches(R"({"z": {"exists": false}})", data));
    CHECK(matches(R"({"f": {"exists": true}})", data));
    CHECK(matches(R"({"e": {"exists": true}})", data));
}

TEST_CASE("nested paths follow object keys only", "[filter]") {
    const char* data =
        R"({"source": {"name": "bank", "geo": {"cc": "DE"}}, "items": [{"id": 1}], "x.y": 1})";
    CHECK(matches(R"({"source.name": "bank"})", data));
    CHECK(matches(R"({"source.geo.cc": "DE", "source.name": {"ne": "x"}})", data));
    CHECK_FALSE(matches(R"({"source.geo.cc": "FR"})", data));
    CHECK(matches(R"({"source.geo": {"exists": true}})", data));
    CHECK_FALSE(matches(R"({"source": "bank"})", data));
    // no array indexes
    CHECK(matches(R"({"items.0.id": {"exists": false}})", data));
    CHECK(matches(R"({"items.id": {"exists": false}})", data));
    // a key containing '.' cannot be addressed
    CHECK(matches(R"({"x.y": {"exists": false}})", data));
    // keys are matched bytewise and case-sensitively
    CHECK(matches(R"({"Source.name": {"exists": false}})", data));
}

TEST_CASE("contains: substring of a string, element of an array", "[filter]") {
    const char* data = R"({"s": "hello world", "tags": ["a", "b", 3, null, true, [1], {"k":1}],
                           "n": 5, "nums": [1.0, 2]})";
    CHECK(matches(R"({"s": {"contains": "lo w"}})", data));
    CHECK(matches(R"({"s": {"contains": "hello world"}})", data));
    CHECK(matches(R"({"s": {"contains": ""}})", data));
    CHECK_FALSE(matches(R"({"s": {"contains": "World"}})", data));
    CHECK_FALSE(matches(R"({"s": {"contains": 5}})", data));
    CHECK(matches(R"({"tags": {"contains": "b"}})", data));
    CHECK_FALSE(matches(R"({"tags": {"contains": "c"}})", data));
    CHECK_FALSE(matches(R"({"tags": {"contains": ""}})", data));
    CHECK(matches(R"({"tags": {"contains": 3.0}})", data));
    CHECK_FALSE(matches(R"({"tags": {"contains": "3"}})", data));
    CHECK(matches(R"({"tags": {"contains": null}})", data));
    CHECK(matches(R"({"tags": {"contains": true}})", data));
    CHECK_FALSE(matches(R"({"tags": {"contains": false}})", data));
    CHECK(matches(R"({"nums": {"contains": 1}})", data));
    CHECK_FALSE(matches(R"({"n": {"contains": 5}})", data));
    CHECK_FALSE(matches(R"({"s": {"contains": "l", "eq": "x"}})", data));
}

TEST_CASE("all conditions must hold; 16 is the limit", "[filter]") {
    std::string spec = "{";
    std::string data = "{";
    for (int i = 0; i < 16; ++i) {
        if (i) {
            spec += ",";
            data += ",";
        }
        spec += "\"k" + std::to_string(i) + "\": " + std::to_string(i);
        data += "\"k" + std::to_string(i) + "\": " + std::to_string(i);
    }
    spec += "}";
    data += "}";
    auto r = sluice::parse_filter(spec);
    REQUIRE(r);
    CHECK(r.compiled.size() == 16);
    CHECK(r.compiled.matches(json(data.c_str())));
    std::string bad = data;
    bad.replace(bad.find("\"k7\": 7"), 7, "\"k7\": 8");
    CHECK_FALSE(r.compiled.matches(json(bad.c_str())));

    // each operator counts as one condition
    auto ops16 = sluice::parse_filter(
        R"({"a": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true},
            "b": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true}})");
    REQUIRE(ops16);
    CHECK(ops16.compiled.size() == 16);
    CHECK(ops16.compiled.matches(json(R"({"a": 1, "b": 1})")));
    CHECK_FALSE(ops16.compiled.matches(json(R"({"a": 1, "b": 3})")));

    check_invalid(
        R"({"a": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true},
            "b": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true},
            "c": 1})",
        "c", "more than 16 conditions");
    check_invalid(
        R"({"a": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true},
            "b": {"gt":0,"gte":0,"lt":9,"lte":9,"ne":5,"in":[1],"nin":[2],"exists":true,"eq":1}})",
        "b", "more than 16 conditions");
}

TEST_CASE("bad filters are invalid_filter naming the key", "[filter]") {
    check_invalid("[]", "", "not a JSON object");
    check_invalid("5", "", "not a JSON object");
    check_invalid("\"a\"", "", "not a JSON object");
    check_invalid("null", "", "not a JSON object");
    check_invalid("{", "", "not valid JSON");
    check_invalid("", "", "not valid JSON");
    check_invalid("{} {}", "", "not valid JSON");
    check_invalid("{'a': 1}", "", "not valid JSON");
    check_invalid(R"({"amount": {}})", "amount", "empty operator object");
    check_invalid(R"({"amount": {"gtx": 1}})", "amount", "unknown operator \"gtx\"");
    check_invalid(R"({"amount": {"GT": 1}})", "amount", "unknown operator \"GT\"");
    check_invalid(R"({"amount": {"gt": 1, "$gt": 1}})", "amount", "unknown operator \"$gt\"");
    check_invalid(R"({"amount": [1, 2]})", "amount", "array");
    check_invalid(R"({"": 1})", "", "empty path");
    check_invalid(R"({"a..b": 1})", "a..b", "empty path segment");
    check_invalid(R"({".a": 1})", ".a", "empty path segment");
    check_invalid(R"({"a.": 1})", "a.", "empty path segment");
    check_invalid(R"({".": 1})", ".", "empty path segment");
    // wrong operand types
    for (const char* op : {"eq", "ne", "contains"}) {
        for (const char* operand : {"[1]", "{}", R"({"a":1})"}) {
            std::string spec = std::string(R"({"k": {")") + op + "\": " + operand + "}}";
            check_invalid(spec.c_str(), "k", "needs a scalar operand");
        }
    }
    for (const char* op : {"gt", "gte", "lt", "lte"}) {
        for (const char* operand : {"true", "null", "[1]", "{}"}) {
            std::string spec = std::string(R"({"k": {")") + op + "\": " + operand + "}}";
            check_invalid(spec.c_str(), "k", "needs a number or a string");
        }
    }
    for (const char* op : {"in", "nin"}) {
        for (const char* operand : {"1", "\"a\"", "null", "[[1]]", "[1, {}]", "{}"}) {
            std::string spec = std::string(R"({"k": {")") + op + "\": " + operand + "}}";
            check_invalid(spec.c_str(), "k", "needs an array of scalars");
        }
    }
    for (const char* operand : {"1", "\"true\"", "null", "[]"}) {
        std::string spec = std::string(R"({"k": {"exists": )") + operand + "}}";
        check_invalid(spec.c_str(), "k", "needs true or false");
    }
    // the first bad key is reported even after good ones
    check_invalid(R"({"ok": 1, "bad": {"nope": 1}, "worse": {}})", "bad", "unknown operator");
}

TEST_CASE("compile_filter takes an already-parsed value", "[filter]") {
    auto doc =
        json(R"({"type":"subscribe","topic":"a","filter":{"level":{"in":["warn","error"]}}})");
    auto r = sluice::compile_filter(doc["filter"]);
    REQUIRE(r);
    CHECK(r.error == std::error_code{});
    CHECK(r.message.empty());
    CHECK(r.compiled.matches(json(R"({"level":"warn"})")));
    CHECK_FALSE(r.compiled.matches(json(R"({"level":"info"})")));
    CHECK(sluice::compile_filter(doc["topic"]).error == sluice::errc::invalid_filter);
}

TEST_CASE("filters copy deeply and move cheaply", "[filter]") {
    auto r = sluice::parse_filter(R"({"a": {"in": ["x", "y"]}, "b.c": {"contains": "z"}})");
    REQUIRE(r);
    sluice::filter copy = r.compiled;
    sluice::filter moved = std::move(r.compiled);
    CHECK(r.compiled.empty());  // NOLINT(bugprone-use-after-move): documented state
    auto yes = json(R"({"a": "y", "b": {"c": "xyz"}})");
    auto no = json(R"({"a": "y", "b": {"c": "xy"}})");
    CHECK(copy.matches(yes));
    CHECK_FALSE(copy.matches(no));
    CHECK(moved.matches(yes));
    sluice::filter assigned;
    assigned = copy;
    CHECK(assigned.size() == 2);
    CHECK_FALSE(assigned.matches(no));
    assigned = sluice::filter{};
    CHECK(assigned.matches(no));
}
