#include <sluice/publication.hpp>

#include <sluice/detail/json_string.hpp>

#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace {

using sluice::errc;
using sluice::publication;
using sluice::detail::json_string;

constexpr const char* epoch = "0123456789abcdef";
constexpr std::int64_t ts = 1700000000123;

rapidjson::Document parse(std::string_view text) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

sluice::publication_ptr make(std::string_view data_json, std::string_view name = {},
                             std::string_view topic = "prices:AAPL", std::uint64_t offset = 7) {
    auto r = publication::create_from_json(topic, offset, epoch, ts, data_json, name);
    REQUIRE(r);
    REQUIRE(r.publication != nullptr);
    return r.publication;
}

}  // namespace

TEST_CASE("the WebSocket event message has every field of PROTOCOL.md 3 with its type",
          "[publication]") {
    auto doc = parse(R"({"price": 1.5, "source": {"name": "x"}})");
    auto r = publication::create("prices:AAPL", 42, epoch, ts, doc);
    REQUIRE(r);
    const auto& pub = *r.publication;

    const std::string message = pub.ws_message(json_string("prices:*"));
    auto m = parse(message);
    REQUIRE(m.IsObject());
    CHECK(m.MemberCount() == 7);
    CHECK(std::string(m["type"].GetString()) == "event");
    CHECK(std::string(m["sub"].GetString()) == "prices:*");
    CHECK(std::string(m["topic"].GetString()) == "prices:AAPL");
    REQUIRE(m["offset"].IsUint64());
    CHECK(m["offset"].GetUint64() == 42);
    CHECK(std::string(m["epoch"].GetString()) == epoch);
    REQUIRE(m["ts"].IsInt64());
    CHECK(m["ts"].GetInt64() == ts);
    CHECK(m["data"] == doc);
    CHECK_FALSE(m.HasMember("event"));

    CHECK(message == std::string(publication::ws_event_head()) + "\"prices:*\"" +
                         std::string(pub.ws_event_tail()));
    CHECK(pub.ws_event_tail() ==
          R"(,"topic":"prices:AAPL","offset":42,"epoch":"0123456789abcdef","ts":1700000000123,)"
          R"("data":{"price":1.5,"source":{"name":"x"}}})");
}

TEST_CASE("the accessors view the shared buffer", "[publication]") {
    auto pub = make(R"({"a":1})", "analysis:start", "country:42", 9);
    CHECK(pub->topic() == "country:42");
    CHECK(pub->offset() == 9);
    CHECK(pub->epoch() == epoch);
    CHECK(pub->ts() == ts);
    CHECK(pub->event_name() == "analysis:start");
    CHECK(pub->has_event_name());
    CHECK(pub->data() == R"({"a":1})");
    CHECK(pub->position() == sluice::stream_position{9, epoch});
    CHECK(pub->position() != sluice::stream_position{9, "other"});
    const char* begin = pub->ws_event_tail().data();
    const char* end = begin + pub->ws_event_tail().size();
    for (auto view : {pub->topic(), pub->epoch(), pub->data(), pub->event_name()}) {
        CHECK(view.data() >= begin);
        CHECK(view.data() + view.size() <= end);
    }
    CHECK(pub->memory_bytes() > pub->ws_event_tail().size() + pub->sse_event_field().size());
}

TEST_CASE("an event name adds the event member and the SSE event line", "[publication]") {
    auto named = make(R"({"a":1})", "quote");
    auto m = parse(named->ws_message(json_string("prices:AAPL")));
    REQUIRE(m.HasMember("event"));
    CHECK(std::string(m["event"].GetString()) == "quote");
    CHECK(named->sse_event_field() == "event: quote\n");

    auto plain = make(R"({"a":1})");
    CHECK_FALSE(plain->has_event_name());
    CHECK(plain->event_name().empty());
    CHECK(plain->sse_event_field() == "event: message\n");
}

TEST_CASE("the SSE block follows PROTOCOL.md 4", "[publication]") {
    auto pub = make(R"([1,2])", "tick", "t", 3);
    CHECK(pub->sse_block("tok-1", json_string("t")) ==
          "id: tok-1\n"
          "event: tick\n"
          "data: {\"type\":\"event\",\"sub\":\"t\",\"topic\":\"t\",\"offset\":3,"
          "\"epoch\":\"0123456789abcdef\",\"ts\":1700000000123,\"data\":[1,2],"
          "\"event\":\"tick\"}\n"
          "\n");
    auto unnamed = make("null", {}, "t", 4);
    const std::string block = unnamed->sse_block("x", json_string("t"));
    CHECK(block.rfind("id: x\nevent: message\ndata: {", 0) == 0);
    CHECK(block.substr(block.size() - 2) == "\n\n");
    CHECK(block.find('\n', 0) == 5);  // the id line
}

TEST_CASE("pretty-printed data is stored compact on one line", "[publication]") {
    const char* pretty = "{\n  \"a\" : [ 1,\n\t2 ],\r\n  \"b\": { \"c\" : \"d\" }\n}\n";
    auto from_text = make(pretty);
    CHECK(from_text->data() == R"({"a":[1,2],"b":{"c":"d"}})");

    auto doc = parse(pretty);
    auto from_value = publication::create("t", 1, epoch, ts, doc);
    REQUIRE(from_value);
    CHECK(from_value.publication->data() == R"({"a":[1,2],"b":{"c":"d"}})");
    CHECK(from_value.publication->ws_event_tail().find('\n') == std::string_view::npos);
    CHECK(from_value.publication->ws_event_tail().find('\r') == std::string_view::npos);
}

TEST_CASE("unicode, escapes and numbers in data are preserved", "[publication]") {
    const char* text =
        R"({"s":"line\nbreak \"q\" \\ \/ \u00e9 é \ud83d\ude00 \u0001 \u2028","n":[0,-1,2.5,-3e2,)"
        R"(18446744073709551615,12345678901234567890123,1.50],"z":null,"t":true,"f":false,"e":{}})";
    auto pub = make(text);
    const std::string_view data = pub->data();
    CHECK(data.find('\n') == std::string_view::npos);
    CHECK(data.find('\r') == std::string_view::npos);
    // Numbers keep their spelling from text.
    CHECK(data.find("-3e2") != std::string_view::npos);
    CHECK(data.find("12345678901234567890123") != std::string_view::npos);
    CHECK(data.find("1.50") != std::string_view::npos);
    // The value is the same JSON.
    auto original = parse(text);
    auto stored = parse(data);
    CHECK(stored == original);
    CHECK(std::string(stored["s"].GetString(), stored["s"].GetStringLength()) ==
          "line\nbreak \"q\" \\ / \xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80 \x01 \xe2\x80\xa8");

    // From a parsed value the strings survive too.
    auto from_value = publication::create("t", 1, epoch, ts, original);
    REQUIRE(from_value);
    auto again = parse(from_value.publication->data());
    CHECK(again["s"] == original["s"]);
    CHECK(again["n"][6] == original["n"][6]);  // 1.50 as a double
    CHECK(from_value.publication->data().find('\n') == std::string_view::npos);

    // The whole message is valid JSON whose data is the original.
    auto m = parse(pub->ws_message(json_string("t")));
    CHECK(m["data"] == original);
}

TEST_CASE("any JSON value is valid data", "[publication]") {
    CHECK(make("\"text\"")->data() == "\"text\"");
    CHECK(make(" 42 ")->data() == "42");
    CHECK(make("null")->data() == "null");
    CHECK(make("[]")->data() == "[]");
    CHECK(make("-0.5e-3")->data() == "-0.5e-3");
}

TEST_CASE("invalid data is bad_request, not a throw", "[publication]") {
    for (const char* bad : {"", " ", "{", "{\"a\":}", "[1,]", "{} {}", "nul", "'x'", "{\"a\":1}x",
                            "\"\xff\"", "NaN"}) {
        auto r = publication::create_from_json("t", 1, epoch, ts, bad);
        CAPTURE(bad);
        CHECK_FALSE(r);
        CHECK(r.error == errc::bad_request);
        CHECK(r.publication == nullptr);
    }
    rapidjson::Value nan;
    nan.SetDouble(std::numeric_limits<double>::quiet_NaN());
    auto r = publication::create("t", 1, epoch, ts, nan);
    CHECK(r.error == errc::bad_request);
}

TEST_CASE("nesting is limited to 256 levels on both paths", "[publication]") {
    auto nested = [](int depth) {
        return std::string(static_cast<std::size_t>(depth), '[') +
               std::string(static_cast<std::size_t>(depth), ']');
    };
    CHECK(publication::create_from_json("t", 1, epoch, ts, nested(256)));
    CHECK(publication::create_from_json("t", 1, epoch, ts, nested(257)).error == errc::bad_request);
    // Deep input does not exhaust the stack (iterative parsing).
    CHECK(publication::create_from_json("t", 1, epoch, ts, nested(200000)).error ==
          errc::bad_request);

    rapidjson::Document ok;
    ok.Parse<rapidjson::kParseIterativeFlag>(nested(256).c_str());
    CHECK(publication::create("t", 1, epoch, ts, ok));
    rapidjson::Document deep;
    deep.Parse<rapidjson::kParseIterativeFlag>(nested(257).c_str());
    REQUIRE_FALSE(deep.HasParseError());
    CHECK(publication::create("t", 1, epoch, ts, deep).error == errc::bad_request);
}

TEST_CASE("topics, epochs and event names outside the grammar are refused", "[publication]") {
    const auto data = parse("1");
    auto make_with = [&](std::string_view topic, std::string_view ep, std::string_view name) {
        return publication::create(topic, 1, ep, ts, data, name).error;
    };
    CHECK(make_with("a:b.c-d_e@f=g+h", epoch, "x:y") == std::error_code{});
    CHECK(make_with(std::string(200, 'a'), epoch, {}) == std::error_code{});
    CHECK(make_with(std::string(201, 'a'), epoch, {}) == errc::invalid_topic);
    CHECK(make_with("", epoch, {}) == errc::invalid_topic);
    CHECK(make_with("a\"b", epoch, {}) == errc::invalid_topic);
    CHECK(make_with("a b", epoch, {}) == errc::invalid_topic);
    CHECK(make_with("a\\b", epoch, {}) == errc::invalid_topic);
    CHECK(make_with("t", "", {}) == errc::bad_request);
    CHECK(make_with("t", "ab\"c", {}) == errc::bad_request);
    CHECK(make_with("t", epoch, "a b") == errc::bad_request);
    CHECK(make_with("t", epoch, "a\nb") == errc::bad_request);
    CHECK(make_with("t", epoch, "a\r") == errc::bad_request);
    CHECK(make_with("t", epoch, std::string(64, 'n')) == std::error_code{});
    CHECK(make_with("t", epoch, std::string(65, 'n')) == errc::bad_request);
}

TEST_CASE("offsets and timestamps print in full", "[publication]") {
    auto r = publication::create_from_json("t", std::numeric_limits<std::uint64_t>::max(), epoch,
                                           -1, "0");
    REQUIRE(r);
    auto m = parse(r.publication->ws_message(json_string("t")));
    CHECK(m["offset"].GetUint64() == std::numeric_limits<std::uint64_t>::max());
    CHECK(m["ts"].GetInt64() == -1);
}

TEST_CASE("json_string quotes and escapes", "[publication]") {
    CHECK(json_string("") == "\"\"");
    CHECK(json_string("prices:*") == "\"prices:*\"");
    CHECK(json_string("a\"b\\c\n\r\t\b\f\x01\x1f\xc3\xa9/") ==
          "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\xc3\xa9/\"");
    std::string with_nul("a\0b", 3);
    CHECK(json_string(with_nul) == "\"a\\u0000b\"");
    // Round trip through a JSON parser.
    const std::string raw = "x\"y\\z\n\x02 \xe2\x82\xac";
    auto d = parse(json_string(raw));
    CHECK(std::string(d.GetString(), d.GetStringLength()) == raw);
}

TEST_CASE("a huge payload does not keep the serialization scratch large", "[publication]") {
    // Functional check only: a 1 MiB string round-trips, and a small one after
    // it is still correct.
    std::string big = "\"" + std::string(1 << 20, 'x') + "\"";
    auto r = publication::create_from_json("t", 1, epoch, ts, big);
    REQUIRE(r);
    CHECK(r.publication->data().size() == big.size());
    CHECK(make("[3]")->data() == "[3]");
}
