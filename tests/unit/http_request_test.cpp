#include "http_request.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using sluice::detail::body_framing;
using sluice::detail::body_limits;
using sluice::detail::body_reader;
using sluice::detail::http_parse_result;
using sluice::detail::http_parse_status;
using sluice::detail::http_query;
using sluice::detail::http_request_head;
using sluice::detail::http_request_limits;
using sluice::detail::http_request_parser;
using sluice::detail::percent_decode;

namespace {

// Everything observable about a parse, as one comparable string.
std::string describe(const http_parse_result& r, const http_request_head& h) {
    std::string s;
    switch (r.status) {
    case http_parse_status::need_more: return "need_more";
    case http_parse_status::error:
        return "error " + std::to_string(r.http_status) + " " + std::string(r.reason);
    case http_parse_status::complete: s = "complete " + std::to_string(r.consumed); break;
    }
    s += "|" + std::string(h.method()) + "|" + std::string(h.target()) + "|" +
         std::string(h.path()) + "|" + std::string(h.query()) + "|" + std::string(h.authority()) +
         "|" + std::to_string(h.version()) + "|" + std::to_string(static_cast<int>(h.framing())) +
         "|" + std::to_string(h.content_length()) + "|" + (h.keep_alive() ? "ka" : "close");
    for (const auto& f : h) s += "|" + std::string(f.name) + ":" + std::string(f.value);
    return s;
}

std::string parse_once(std::string_view bytes, http_request_limits limits = {}) {
    http_request_parser p(limits);
    const auto r = p.parse(bytes);
    return describe(r, p.head());
}

int status_of(std::string_view bytes, http_request_limits limits = {}) {
    http_request_parser p(limits);
    const auto r = p.parse(bytes);
    if (r.failed()) return r.http_status;
    if (r.complete()) return 200;
    return 0;  // need_more
}

// Feeds growing prefixes ending at the given cut points, then the whole.
std::string parse_in_pieces(std::string_view bytes, const std::vector<std::size_t>& cuts) {
    http_request_parser p;
    http_parse_result r;
    for (std::size_t cut : cuts) {
        r = p.parse(bytes.substr(0, cut));
        if (!r.need_more()) break;
    }
    if (r.need_more()) r = p.parse(bytes);
    return describe(r, p.head());
}

// Checks that every single split point and a byte-by-byte feed give the
// one-piece result.
void check_every_split(std::string_view bytes) {
    const std::string expected = parse_once(bytes);
    for (std::size_t k = 0; k <= bytes.size(); ++k) {
        INFO("split at " << k);
        REQUIRE(parse_in_pieces(bytes, {k}) == expected);
    }
    std::vector<std::size_t> every;
    for (std::size_t k = 0; k <= bytes.size(); ++k) every.push_back(k);
    REQUIRE(parse_in_pieces(bytes, every) == expected);
}

struct body_outcome {
    http_parse_status status;
    int http_status;
    std::size_t consumed;  // of the whole data
    std::string body;
    bool operator==(const body_outcome& o) const {
        return status == o.status && http_status == o.http_status && consumed == o.consumed &&
               body == o.body;
    }
};

std::ostream& operator<<(std::ostream& os, const body_outcome& o) {
    return os << static_cast<int>(o.status) << " " << o.http_status << " " << o.consumed << " ["
              << o.body << "]";
}

// Reads a body from `data` fed in the given pieces (sizes of consecutive
// slices; the rest goes last).
body_outcome read_body(body_framing framing, std::uint64_t length, std::string_view data,
                       const std::vector<std::size_t>& pieces, body_limits limits = {}) {
    body_reader reader(limits);
    body_outcome o{http_parse_status::need_more, 0, 0, {}};
    auto r = reader.start(framing, length);
    std::size_t pos = 0;
    std::vector<std::size_t> all = pieces;
    all.push_back(std::string_view::npos);
    for (std::size_t piece : all) {
        if (!r.need_more()) break;
        const std::string_view slice = data.substr(pos, piece);
        r = reader.read(slice, o.body);
        if (r.need_more()) REQUIRE(r.consumed == slice.size());
        if (r.complete()) REQUIRE(r.consumed <= slice.size());
        pos += r.complete() || r.need_more() ? r.consumed : 0;
    }
    o.status = r.status;
    o.http_status = r.http_status;
    o.consumed = r.failed() ? 0 : pos;
    if (r.failed()) o.body.clear();
    return o;
}

const std::string ws_upgrade =
    "GET /ws?token=abc HTTP/1.1\r\n"
    "Host: hub.example.com:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Origin: https://app.example.com\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_~+/==\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) \xc3\xa9\r\n"
    "\r\n";

const std::string sse_get =
    "GET /events?topic=prices%3AAAPL&topic=country%3A*&filter=%7B%22amount%22%3A%7B%22gt%22%"
    "3A10%7D%7D&lastEventId=abc+def HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Accept: text/event-stream\r\n"
    "Last-Event-ID: tok\r\n"
    "\r\n";

const std::string post_fixed =
    "POST /publish HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 30\r\n"
    "\r\n"
    "{\"topic\":\"a:b\",\"data\":[1,2,3]}";

const std::string post_chunked =
    "POST /publish HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "a\r\n{\"topic\":\"\r\n"
    "14;name=value;x\r\na:b\",\"data\":[1,2,3]}\r\n"
    "0\r\n"
    "X-Checksum: 1234\r\n"
    "\r\n";

std::string request_with_head_size(std::size_t size) {
    std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    const std::size_t fixed = head.size() + 4;  // "\r\n\r\n"
    REQUIRE(size >= fixed);
    head.append(size - fixed, 'p');
    head += "\r\n\r\n";
    REQUIRE(head.size() == size);
    return head;
}

}  // namespace

TEST_CASE("a simple GET parses into its parts", "[http_request]") {
    http_request_parser p;
    const std::string req = "GET /health HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n";
    const auto r = p.parse(req);
    REQUIRE(r.complete());
    CHECK(r.consumed == req.size());
    const auto& h = p.head();
    CHECK(h.method() == "GET");
    CHECK(h.target() == "/health");
    CHECK(h.path() == "/health");
    CHECK(h.query().empty());
    CHECK(h.authority().empty());
    CHECK(h.version() == 11);
    CHECK(h.host() == "localhost");
    CHECK(h.size() == 2);
    CHECK(h[0].name == "Host");
    CHECK(h[1].value == "*/*");
    CHECK(h.framing() == body_framing::none);
    CHECK(h.keep_alive());
    CHECK_FALSE(h.is_websocket_upgrade());
    CHECK_FALSE(h.bearer_token().has_value());
    CHECK(h.raw() == req);
}

TEST_CASE("a WebSocket upgrade with every header", "[http_request]") {
    http_request_parser p;
    REQUIRE(p.parse(ws_upgrade).complete());
    const auto& h = p.head();
    CHECK(h.is_websocket_upgrade());
    CHECK(h.path() == "/ws");
    CHECK(h.query() == "token=abc");
    CHECK(h.header("sec-websocket-key") == std::string_view("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(h.header("SEC-WEBSOCKET-VERSION") == std::string_view("13"));
    CHECK(h.header("origin") == std::string_view("https://app.example.com"));
    CHECK(h.header("x-missing") == std::nullopt);
    CHECK(h.has_token("sec-websocket-protocol", "superchat"));
    CHECK_FALSE(h.has_token("sec-websocket-protocol", "super"));
    CHECK(h.bearer_token() == std::string_view("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_~+/=="));
    CHECK(h.header("user-agent") == std::string_view("Mozilla/5.0 (X11; Linux x86_64) \xc3\xa9"));
    CHECK(h.host() == "hub.example.com:8080");
    check_every_split(ws_upgrade);
}

TEST_CASE("what makes a WebSocket upgrade", "[http_request]") {
    const auto upgrade = [](std::string_view head) {
        http_request_parser p;
        REQUIRE(p.parse(head).complete());
        return p.head().is_websocket_upgrade();
    };
    CHECK(upgrade(
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n\r\n"));
    CHECK(upgrade(
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c, websocket\r\nConnection: x\r\nConnection: "
        "UPGRADE\r\n\r\n"));
    CHECK_FALSE(upgrade("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"));
    CHECK_FALSE(upgrade("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n"));
    CHECK_FALSE(upgrade(
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocketx\r\nConnection: upgrade\r\n\r\n"));
    CHECK_FALSE(upgrade(
        "POST /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
    CHECK_FALSE(upgrade("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
}

TEST_CASE("an SSE GET with repeated topics and an encoded filter", "[http_request]") {
    http_request_parser p;
    REQUIRE(p.parse(sse_get).complete());
    const auto& h = p.head();
    CHECK(h.path() == "/events");
    http_query q;
    REQUIRE_FALSE(q.parse(h.query()));
    REQUIRE(q.size() == 4);
    CHECK(q.values("topic") == std::vector<std::string_view>{"prices:AAPL", "country:*"});
    CHECK(q.value("filter") == std::string_view(R"({"amount":{"gt":10}})"));
    CHECK(q.value("lastEventId") == std::string_view("abc def"));
    CHECK_FALSE(q.contains("last_event_id"));
    CHECK(h.header("last-event-id") == std::string_view("tok"));
    std::vector<std::string> keys;
    for (const auto& param : q) keys.emplace_back(param.key);
    CHECK(keys == std::vector<std::string>{"topic", "topic", "filter", "lastEventId"});
    check_every_split(sse_get);
}

TEST_CASE("query strings: decoding, order, empty pairs, bad escapes", "[http_request]") {
    http_query q;
    REQUIRE_FALSE(q.parse("a=1&&b&c=&a=2&=x&d=%41%62+c%2B"));
    REQUIRE(q.size() == 6);
    CHECK(q[0].key == "a");
    CHECK(q[1].key == "b");
    CHECK(q[1].value.empty());
    CHECK(q[2].key == "c");
    CHECK(q[3].value == "2");
    CHECK(q[4].key.empty());
    CHECK(q[4].value == "x");
    CHECK(q.value("d") == std::string_view("Ab c+"));
    CHECK(q.values("a") == std::vector<std::string_view>{"1", "2"});
    CHECK(q.values("zz").empty());
    CHECK(q.value("zz") == std::nullopt);
    // A value may contain '='.
    REQUIRE_FALSE(q.parse("f=a=b"));
    CHECK(q.value("f") == std::string_view("a=b"));

    REQUIRE_FALSE(q.parse(""));
    CHECK(q.empty());
    for (std::string_view bad : {"a=%", "a=%4", "a=%G1", "a=%4g", "%zz=1", "a=1&b=%%"}) {
        INFO(bad);
        const auto ec = q.parse(bad);
        CHECK(ec == sluice::errc::bad_request);
        CHECK(q.empty());
    }
}

TEST_CASE("percent_decode", "[http_request]") {
    std::string out = "x";
    CHECK(percent_decode("/a%20b+c%2f%2F", out));
    CHECK(out == "x/a b+c//");
    out.clear();
    CHECK(percent_decode("a+b", out, true));
    CHECK(out == "a b");
    out = "keep";
    CHECK_FALSE(percent_decode("ab%2", out));
    CHECK(out == "keep");
    out.clear();
    CHECK(percent_decode("%00%ff", out));
    CHECK(out == std::string("\0\xff", 2));
}

TEST_CASE("a POST with a Content-Length body, however it is split", "[http_request]") {
    http_request_parser p;
    const auto r = p.parse(post_fixed);
    REQUIRE(r.complete());
    const auto& h = p.head();
    CHECK(h.framing() == body_framing::content_length);
    CHECK(h.content_length() == 30);
    CHECK(h.header("content-type") == std::string_view("application/json"));
    const std::string_view body = std::string_view(post_fixed).substr(r.consumed);
    CHECK(body.size() == 30);
    check_every_split(post_fixed);

    const body_outcome expected{http_parse_status::complete, 0, 30,
                                "{\"topic\":\"a:b\",\"data\":[1,2,3]}"};
    for (std::size_t k = 0; k <= body.size(); ++k) {
        INFO("split at " << k);
        CHECK(read_body(h.framing(), h.content_length(), body, {k}) == expected);
    }
    CHECK(read_body(h.framing(), h.content_length(), body, std::vector<std::size_t>(30, 1)) ==
          expected);
}

TEST_CASE("a chunked POST, however the body is split", "[http_request]") {
    http_request_parser p;
    const auto r = p.parse(post_chunked);
    REQUIRE(r.complete());
    CHECK(p.head().framing() == body_framing::chunked);
    check_every_split(post_chunked);

    const std::string_view body = std::string_view(post_chunked).substr(r.consumed);
    const body_outcome expected{http_parse_status::complete, 0, body.size(),
                                "{\"topic\":\"a:b\",\"data\":[1,2,3]}"};
    for (std::size_t a = 0; a <= body.size(); ++a) {
        for (std::size_t b = 0; a + b <= body.size(); b += 3) {
            INFO("pieces " << a << ", " << b);
            REQUIRE(read_body(body_framing::chunked, 0, body, {a, b}) == expected);
        }
    }
    CHECK(read_body(body_framing::chunked, 0, body, std::vector<std::size_t>(body.size(), 1)) ==
          expected);
}

TEST_CASE("the body reader appends and stops at the end of the body", "[http_request]") {
    body_reader reader;
    std::string out = "prefix:";
    REQUIRE(reader.start(body_framing::content_length, 3).need_more());
    const auto r = reader.read("abcGET / HTTP/1.1\r\n", out);
    REQUIRE(r.complete());
    CHECK(r.consumed == 3);
    CHECK(out == "prefix:abc");
    CHECK(reader.body_bytes() == 3);
    // Repeats: nothing more is consumed.
    CHECK(reader.read("more", out).consumed == 0);
    CHECK(out == "prefix:abc");

    out.clear();
    const auto c = reader.start(body_framing::chunked);
    REQUIRE(c.need_more());
    const auto rc = reader.read("3\r\nxyz\r\n0\r\n\r\nNEXT", out);
    REQUIRE(rc.complete());
    CHECK(rc.consumed == 13);
    CHECK(out == "xyz");

    CHECK(reader.start(body_framing::none).complete());
    CHECK(reader.start(body_framing::content_length, 0).complete());
    CHECK(reader.read("abc", out).consumed == 0);
}

TEST_CASE("chunked syntax: extensions, hex, trailers accepted", "[http_request]") {
    const auto read_all = [](std::string_view data) {
        return read_body(body_framing::chunked, 0, data, {});
    };
    CHECK(read_all("A\r\n0123456789\r\n0\r\n\r\n").body == "0123456789");
    CHECK(read_all("0000a\r\n0123456789\r\n0\r\n\r\n").body == "0123456789");
    CHECK(read_all("1 ;a=b\r\nx\r\n0;last\r\n\r\n").body == "x");
    CHECK(read_all("1;a=\"q s\"\r\nx\r\n0\r\nA: 1\r\nB:\r\n\r\n").body == "x");
    CHECK(read_all("0\r\n\r\n").status == http_parse_status::complete);
    CHECK(read_all("0\r\n\r\n").body.empty());
}

TEST_CASE("chunked syntax errors are 400", "[http_request]") {
    for (std::string_view bad : {
             "\r\n",                    // no size
             "g\r\n",                   // not hex
             "-1\r\n",                  // sign
             "1\nx\r\n0\r\n\r\n",       // bare LF after size
             "1\rx",                    // CR without LF
             "1 x\r\n",                 // junk after BWS
             "1;\x01\r\n",              // CTL in extension
             "1;a\nb\r\n",              // LF in extension
             "1\r\nxy\r\n",             // data longer than size
             "1\r\nx\n0\r\n\r\n",       // bare LF after data
             "1\r\nx\r\r\n",            // CR CR
             "0\r\nbad field\r\n\r\n",  // trailer name with space
             "0\r\n:x\r\n\r\n",         // empty trailer name
             "0\r\n a: b\r\n\r\n",      // folded trailer
             "0\r\nA: \x01\r\n\r\n",    // CTL in trailer
             "0\r\nA: b\n\r\n",         // bare LF in trailer
             "0\r\n\rX",                // final CR without LF
         }) {
        INFO(bad);
        const auto o = read_body(body_framing::chunked, 0, bad, {});
        CHECK(o.status == http_parse_status::error);
        CHECK(o.http_status == 400);
    }
    // A size line of only leading zeros is bounded.
    const std::string zeros(5000, '0');
    CHECK(read_body(body_framing::chunked, 0, zeros, {}).http_status == 400);
}

TEST_CASE("the body limit gives 413 for both framings", "[http_request]") {
    body_limits limits;
    limits.max_body_bytes = 10;
    // Content-Length: before reading anything.
    body_reader reader(limits);
    auto r = reader.start(body_framing::content_length, 11);
    CHECK(r.failed());
    CHECK(r.http_status == 413);
    std::string sink;
    CHECK(reader.read("x", sink).http_status == 413);  // sticky
    CHECK(sink.empty());
    CHECK(read_body(body_framing::content_length, 10, "0123456789", {}, limits).status ==
          http_parse_status::complete);
    CHECK(reader.start(body_framing::content_length, UINT64_MAX).http_status == 413);

    // Chunked: as soon as a chunk size makes the running total exceed it,
    // before its data arrives.
    CHECK(read_body(body_framing::chunked, 0, "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", {}, limits)
              .status == http_parse_status::complete);
    std::string out;
    body_reader chunked(limits);
    chunked.start(body_framing::chunked);
    REQUIRE(chunked.read("5\r\n01234\r\n", out).need_more());
    const auto over = chunked.read("6\r\n", out);
    CHECK(over.failed());
    CHECK(over.http_status == 413);
    CHECK(read_body(body_framing::chunked, 0, "b\r\n", {}, limits).http_status == 413);
    CHECK(read_body(body_framing::chunked, 0, "ffffffffffffffffffffffff\r\n", {}, limits)
              .http_status == 413);

    // The default limit is PROTOCOL.md's 1 MiB message limit.
    CHECK(body_reader().limits().max_body_bytes == 1024 * 1024);
    CHECK(body_reader().start(body_framing::content_length, 1024 * 1024).need_more());
    CHECK(body_reader().start(body_framing::content_length, 1024 * 1024 + 1).http_status == 413);
}

TEST_CASE("trailers are bounded", "[http_request]") {
    body_limits limits;
    limits.max_trailer_bytes = 64;
    const std::string ok = "0\r\nX: " + std::string(50, 'a') + "\r\n\r\n";
    CHECK(read_body(body_framing::chunked, 0, ok, {}, limits).status ==
          http_parse_status::complete);
    const std::string big = "0\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
    CHECK(read_body(body_framing::chunked, 0, big, {}, limits).http_status == 431);
}

TEST_CASE("a head of exactly the limit is accepted, one byte more is 431", "[http_request]") {
    const std::string exact = request_with_head_size(16384);
    const std::string over = request_with_head_size(16385);

    CHECK(status_of(exact) == 200);
    CHECK(status_of(over) == 431);

    // Trickling in, without ever sending the end: 431 as soon as 16384 bytes
    // are in without the end of the head.
    http_request_parser p;
    std::string buffer;
    http_parse_result r;
    for (char c : over.substr(0, 16383)) {
        buffer.push_back(c);
        r = p.parse(buffer);
        REQUIRE(r.need_more());
    }
    buffer.push_back(over[16383]);
    r = p.parse(buffer);
    CHECK(r.failed());
    CHECK(r.http_status == 431);

    // The exact one trickling in completes at its last byte.
    http_request_parser q;
    buffer.clear();
    for (std::size_t i = 0; i < exact.size(); ++i) {
        buffer.push_back(exact[i]);
        r = q.parse(buffer);
        if (i + 1 < exact.size()) REQUIRE(r.need_more());
    }
    CHECK(r.complete());
    CHECK(r.consumed == 16384);

    // Body bytes after a head of exactly the limit do not count.
    CHECK(status_of(exact + "trailing bytes of the next request") == 200);

    // Leading blank lines count.
    CHECK(status_of("\r\n" + exact) == 431);
    CHECK(status_of("\r\n" + request_with_head_size(16382)) == 200);

    // A smaller configured limit.
    http_request_limits small;
    small.max_head_bytes = 64;
    CHECK(status_of(request_with_head_size(64), small) == 200);
    CHECK(status_of(request_with_head_size(65), small) == 431);
    CHECK(status_of(std::string(64, 'G'), small) == 431);
    CHECK(status_of(std::string(63, 'G'), small) == 0);
}

TEST_CASE("over 100 header fields is 431", "[http_request]") {
    const auto with_fields = [](std::size_t n) {
        std::string s = "GET / HTTP/1.1\r\nHost: h\r\n";
        for (std::size_t i = 1; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
        return s + "\r\n";
    };
    CHECK(status_of(with_fields(100)) == 200);
    CHECK(status_of(with_fields(101)) == 431);
    http_request_limits limits;
    limits.max_header_fields = 3;
    CHECK(status_of(with_fields(3), limits) == 200);
    CHECK(status_of(with_fields(4), limits) == 431);
}

TEST_CASE("RFC 9112 violations get their status", "[http_request]") {
    struct rejected {
        std::string_view request;
        int status;
    };
    const rejected cases[] = {
        // Request line.
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
        {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},
        {"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", 400},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/x.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
        {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
        {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET events HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"CONNECT u@h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        // Line ends.
        {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
        {"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400},
        // Field lines.
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A(b): c\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\n: c\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: c\r\n\r\n", 400},
        {std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 36), 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400},
        // Host.
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
        // Content-Length.
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: ,\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        // Transfer-Encoding.
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         501},
    };
    for (const auto& c : cases) {
        INFO(std::string(c.request));
        CHECK(status_of(c.request) == c.status);
    }
}

TEST_CASE("accepted variants", "[http_request]") {
    const auto ok = [](std::string_view request) {
        http_request_parser p;
        const auto r = p.parse(request);
        INFO(std::string(request) << " -> " << r.reason);
        REQUIRE(r.complete());
        CHECK(r.consumed == request.size());
        return p.head();
    };
    // Blank lines before the request line are skipped (RFC 9112 2.2).
    CHECK(ok("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").method() == "GET");
    // HTTP/1.0 without Host; 1.x minor versions above 1 are handled as 1.1.
    CHECK(ok("GET / HTTP/1.0\r\n\r\n").version() == 10);
    CHECK(ok("GET / HTTP/1.2\r\nHost: h\r\n\r\n").version() == 11);
    // Value whitespace is trimmed, HTAB and obs-text kept inside.
    auto h = ok("GET / HTTP/1.1\r\nHost:h\r\nX: \t a\tb \xff \t\r\nY:\r\n\r\n");
    CHECK(h.header("x") == std::string_view("a\tb \xff"));
    CHECK(h.header("y") == std::string_view(""));
    // Field names may use every tchar.
    CHECK(ok("GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n").size() == 2);
    // Empty Host (RFC 9112 3.2) and IPv6 hosts.
    CHECK(ok("GET / HTTP/1.1\r\nHost:\r\n\r\n").host().empty());
    CHECK(ok("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").host() == "[::1]:8080");
    // Content-Length: identical repeats.
    h = ok("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-length: 5\r\n\r\n");
    CHECK(h.framing() == body_framing::content_length);
    CHECK(h.content_length() == 5);
    CHECK(ok("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n").content_length() == 7);
    CHECK(ok("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n")
              .content_length() == UINT64_MAX);
    // Transfer-Encoding: case and empty list elements.
    CHECK(ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n").framing() ==
          body_framing::chunked);
    // Query and path.
    h = ok("GET /a%2Fb/../c?x=1?2 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(h.path() == "/a%2Fb/../c");
    CHECK(h.query() == "x=1?2");
    CHECK(ok("GET /? HTTP/1.1\r\nHost: h\r\n\r\n").query().empty());
    // Visible characters a browser may leave unencoded.
    CHECK(ok("GET /events?filter={\"a\":[1,2]}|^`\\ HTTP/1.1\r\nHost: h\r\n\r\n").path() ==
          "/events");
    // absolute-form: the authority is the host (RFC 9112 3.2.2).
    h = ok("GET http://Example.com:81/events?topic=a HTTP/1.1\r\nHost: other\r\n\r\n");
    CHECK(h.authority() == "Example.com:81");
    CHECK(h.host() == "Example.com:81");
    CHECK(h.path() == "/events");
    CHECK(h.query() == "topic=a");
    h = ok("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(h.path() == "/");
    CHECK(h.query().empty());
    h = ok("GET http://h?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(h.path() == "/");
    CHECK(h.query() == "x=1");
    // asterisk-form with OPTIONS, authority-form with CONNECT.
    CHECK(ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").path() == "*");
    h = ok("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    CHECK(h.authority() == "h:443");
    CHECK(h.path().empty());
    // Unknown methods are the server's business (405/501).
    CHECK(ok("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n").method() == "BREW");
    // Expect: 100-continue.
    CHECK(ok("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
              .expects_continue());
    CHECK_FALSE(ok("POST / HTTP/1.1\r\nHost: h\r\n\r\n").expects_continue());
}

TEST_CASE("keep-alive per HTTP/1.0 and 1.1", "[http_request]") {
    const auto keep_alive = [](std::string_view request) {
        http_request_parser p;
        REQUIRE(p.parse(request).complete());
        return p.head().keep_alive();
    };
    CHECK(keep_alive("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"));
    CHECK_FALSE(
        keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: close\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CHECK(keep_alive("GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n"));
    CHECK_FALSE(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

TEST_CASE("bearer tokens", "[http_request]") {
    const auto bearer = [](std::string_view fields) {
        http_request_parser p;
        const std::string request = "GET / HTTP/1.1\r\nHost: h\r\n" + std::string(fields) + "\r\n";
        REQUIRE(p.parse(request).complete());
        const auto token = p.head().bearer_token();
        return token ? "[" + std::string(*token) + "]" : std::string("none");
    };
    CHECK(bearer("") == "none");
    CHECK(bearer("Authorization: Bearer abc.def\r\n") == "[abc.def]");
    CHECK(bearer("authorization: bearer   abc==\r\n") == "[abc==]");
    CHECK(bearer("Authorization: Basic dXNlcjpwdw==\r\n") == "none");
    CHECK(bearer("Authorization: Bearers abc\r\n") == "none");
    CHECK(bearer("Authorization: Bearer\r\n") == "[]");
    CHECK(bearer("Authorization: Bearer \r\n") == "[]");
    CHECK(bearer("Authorization: Bearer a b\r\n") == "[]");
    CHECK(bearer("Authorization: Bearer a=b\r\n") == "[]");
    CHECK(bearer("Authorization: Bearer =\r\n") == "[]");
    CHECK(bearer("Authorization: Bearer a\r\nAuthorization: Bearer b\r\n") == "[]");
}

TEST_CASE("header lookup", "[http_request]") {
    http_request_parser p;
    REQUIRE(p.parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n").complete());
    const auto& h = p.head();
    CHECK(h.header_values("X-a") == std::vector<std::string_view>{"1", "2"});
    CHECK(h.header_count("X-A") == 2);
    CHECK(h.header_count("X-C") == 0);
    CHECK(h.header_values("X-C").empty());
    CHECK(h.header("X-A") == std::string_view("1"));
    std::size_t n = 0;
    for (const auto& f : h) n += f.name.empty() ? 0 : 1;
    CHECK(n == 4);
}

TEST_CASE("pipelined requests parse one after the other", "[http_request]") {
    const std::string two = post_fixed + "GET /health HTTP/1.1\r\nHost: h\r\n\r\n" + "GET /x";
    http_request_parser p;
    body_reader body;
    std::string_view rest = two;

    auto r = p.parse(rest);
    REQUIRE(r.complete());
    CHECK(p.head().method() == "POST");
    rest.remove_prefix(r.consumed);
    std::string out;
    REQUIRE(body.start(p.head()).need_more());
    const auto b = body.read(rest, out);
    REQUIRE(b.complete());
    CHECK(out == "{\"topic\":\"a:b\",\"data\":[1,2,3]}");
    rest.remove_prefix(b.consumed);

    p.reset();
    r = p.parse(rest);
    REQUIRE(r.complete());
    CHECK(p.head().method() == "GET");
    CHECK(p.head().path() == "/health");
    REQUIRE(body.start(p.head()).complete());
    rest.remove_prefix(r.consumed);
    CHECK(rest == "GET /x");

    p.reset();
    CHECK(p.parse(rest).need_more());

    // Stray CRLF between requests (some clients add one after a body).
    p.reset();
    CHECK(p.parse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").complete());
}

TEST_CASE("results are sticky until reset, and the head outlives the buffer", "[http_request]") {
    http_request_parser p;
    {
        std::string buffer = "GET /a?b=c HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\nmore";
        const auto r = p.parse(buffer);
        REQUIRE(r.complete());
        CHECK(r.consumed == buffer.size() - 4);
        buffer.assign(buffer.size(), 'z');  // overwritten, then destroyed
    }
    CHECK(p.head().path() == "/a");
    CHECK(p.head().query() == "b=c");
    CHECK(p.head().header("x") == std::string_view("y"));
    // A copy and a moved head are independent of the parser.
    http_request_head copy = p.head();
    http_request_head moved = std::move(p.head_for_move());
    p.reset();
    CHECK(copy.header("x") == std::string_view("y"));
    CHECK(moved.target() == "/a?b=c");
    CHECK(p.head().method().empty());

    // A complete result repeats.
    REQUIRE(p.parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").complete());
    CHECK(p.parse("whatever").complete());
    // An error repeats until reset.
    p.reset();
    REQUIRE(p.parse("GET / HTTP/1.1\n").http_status == 400);
    CHECK(p.parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").http_status == 400);
    p.reset();
    CHECK(p.parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n").complete());

    // A buffer shorter than what was scanned restarts the parse.
    p.reset();
    REQUIRE(p.parse("GET /long-path HTTP/1.1\r\nHo").need_more());
    CHECK(p.parse("GET / HTTP/1.0\r\n\r\n").complete());
    CHECK(p.head().path() == "/");
    CHECK(p.head().version() == 10);
}

TEST_CASE("errors inside the head are found before the head ends", "[http_request]") {
    // A bad line is rejected when its CRLF arrives, without waiting for the
    // blank line.
    http_request_parser p;
    CHECK(p.parse("GET / HTTP/1.1\r\n").need_more());
    CHECK(p.parse("GET / HTTP/1.1\r\nBad Name: x").need_more());
    CHECK(p.parse("GET / HTTP/1.1\r\nBad Name: x\r\n").http_status == 400);
    http_request_parser q;
    CHECK(q.parse("GET / HTTP/2.0\r\n").http_status == 505);
}

TEST_CASE("bad limits are programmer errors", "[http_request]") {
    http_request_limits limits;
    limits.max_head_bytes = 8;
    CHECK_THROWS_AS(http_request_parser(limits), std::invalid_argument);
    limits = {};
    limits.max_header_fields = 0;
    CHECK_THROWS_AS(http_request_parser(limits), std::invalid_argument);
    body_limits body;
    body.max_body_bytes = 0;
    CHECK_THROWS_AS(body_reader(body), std::invalid_argument);
}
