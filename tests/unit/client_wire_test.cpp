// The clients' wire pieces (src/client_url.hpp, src/client_wire.hpp,
// src/client_json.hpp): URLs, WebSocket client frames, HTTP response heads,
// chunked bodies, the SSE parser and the JSON member skimmer.
#include "client_wire.hpp"
#include "client_json.hpp"
#include "client_url.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace sluice::detail;

TEST_CASE("client url: schemes, ports, paths, IPv6", "[client][url]") {
    std::string error;
    auto u = parse_client_url("ws://example.com", "/ws", error);
    REQUIRE(u);
    CHECK_FALSE(u->tls);
    CHECK(u->websocket);
    CHECK(u->host == "example.com");
    CHECK(u->port == 80);
    CHECK(u->target() == "/ws");
    CHECK(u->host_header == "example.com");
    CHECK_FALSE(u->host_is_ip);

    u = parse_client_url("WSS://127.0.0.1:8443/custom?x=1#frag", "/ws", error);
    REQUIRE(u);
    CHECK(u->tls);
    CHECK(u->port == 8443);
    CHECK(u->target() == "/custom?x=1");
    CHECK(u->host_header == "127.0.0.1:8443");
    CHECK(u->host_is_ip);

    u = parse_client_url("https://[::1]:9000/", "/events", error);
    REQUIRE(u);
    CHECK(u->host == "::1");
    CHECK(u->host_header == "[::1]:9000");
    CHECK(u->path == "/events");
    CHECK(u->host_is_ip);

    u = parse_client_url("http://h?topic=a", "/events", error);
    REQUIRE(u);
    CHECK(u->path == "/events");
    CHECK(u->query == "topic=a");
    CHECK(parse_client_url("https://h:443/x", "/", error)->host_header == "h");

    for (const char* bad :
         {"example.com", "ftp://h", "ws://", "ws://:80", "ws://h:0", "ws://h:65536", "ws://h:x",
          "ws://u@h", "ws://[::1", "ws://::1/", "ws://h h", "ws://h:"}) {
        INFO(bad);
        error.clear();
        CHECK_FALSE(parse_client_url(bad, "/ws", error));
        CHECK_FALSE(error.empty());
    }
}

TEST_CASE("client ws frames: masked out, unmasked in", "[client][ws]") {
    std::string out;
    ws_append_client_frame(out, 1, "Hi", 0x01020304);
    REQUIRE(out.size() == 2 + 4 + 2);
    CHECK(static_cast<unsigned char>(out[0]) == 0x81);
    CHECK(static_cast<unsigned char>(out[1]) == 0x82);
    CHECK((out[6] ^ 0x01) == 'H');
    CHECK((out[7] ^ 0x02) == 'i');
    out.clear();
    ws_append_client_frame(out, 1, std::string(300, 'a'), 0);
    CHECK(static_cast<unsigned char>(out[1]) == (0x80 | 126));
    CHECK(out.size() == 4 + 4 + 300);
    out.clear();
    ws_append_client_frame(out, 1, std::string(70000, 'a'), 0);
    CHECK(static_cast<unsigned char>(out[1]) == (0x80 | 127));
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");

    ws_client_decoder d(1000);
    std::vector<std::pair<int, std::string>> got;
    auto collect = [&](std::uint8_t op, std::string_view p) {
        got.emplace_back(op, std::string(p));
    };
    // A text frame, fragmented message with an interleaved ping, fed byte by byte.
    const std::string stream = std::string(
                                   "\x81\x03"
                                   "abc",
                                   5) +
                               std::string(
                                   "\x01\x02"
                                   "de",
                                   4) +
                               std::string(
                                   "\x89\x01"
                                   "p",
                                   3) +
                               std::string(
                                   "\x80\x01"
                                   "f",
                                   3);
    std::string pending;
    std::uint16_t err = 0;
    for (char c : stream) {
        pending += c;
        auto used = d.feed(reinterpret_cast<const std::uint8_t*>(pending.data()), pending.size(),
                           err, collect);
        REQUIRE(err == 0);
        pending.erase(0, used);
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0] == std::make_pair(1, std::string("abc")));
    CHECK(got[1] == std::make_pair(9, std::string("p")));
    CHECK(got[2] == std::make_pair(1, std::string("def")));

    auto fails = [](std::string bytes, std::uint16_t code, std::size_t max = 1000) {
        ws_client_decoder dec(max);
        std::uint16_t e = 0;
        dec.feed(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), e,
                 [](std::uint8_t, std::string_view) {});
        return e == code;
    };
    CHECK(fails(std::string("\x81\x81\0\0\0\0a", 7), 1002));  // masked by the server
    CHECK(fails(std::string("\xC1\x01"
                            "a",
                            3),
                1002));  // RSV1
    CHECK(fails(std::string("\x80\x01"
                            "a",
                            3),
                1002));  // continuation first
    CHECK(fails(std::string("\x09\x01"
                            "a",
                            3),
                1002));  // fragmented control
    CHECK(fails(std::string("\x83\x01"
                            "a",
                            3),
                1002));                                      // reserved opcode
    CHECK(fails(std::string("\x81\x7E\x00\x05", 4), 1002));  // non-minimal length
    CHECK(fails(std::string("\x81\x7E\x01\x00", 4), 1009, 100));
}

TEST_CASE("client http: response heads, Retry-After, chunked bodies", "[client][http]") {
    http_response r;
    std::string head =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive, "
        "Upgrade\r\n"
        "Sec-WebSocket-Accept: abc\r\n\r\nrest";
    CHECK(parse_http_response(head.substr(0, 20), r) == 0);
    const std::size_t n = parse_http_response(head, r);
    CHECK(n == head.size() - 4);
    CHECK(r.status == 101);
    CHECK(r.has_token("connection", "upgrade"));
    CHECK(r.header("SEC-WEBSOCKET-ACCEPT") == std::string_view("abc"));
    CHECK_FALSE(r.header("x"));
    CHECK(parse_http_response("HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\n\r\n", r) > 0);
    CHECK(retry_after_seconds(r) == std::optional<std::uint64_t>(7));
    CHECK(parse_http_response("HTTP/1.1 200\r\n\r\n", r) > 0);
    CHECK(r.status == 200);
    CHECK(parse_http_response("SSH-2.0\r\n\r\n", r) == static_cast<std::size_t>(-1));
    CHECK(parse_http_response(std::string(20000, 'a'), r) == static_cast<std::size_t>(-1));

    chunked_decoder c;
    std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n";
    std::string out;
    for (char ch : body) {  // byte by byte
        std::string one(1, ch);
        std::size_t k = 0;
        REQUIRE(c.decode(one.data(), 1, k));
        out += one.substr(0, k);
    }
    CHECK(out == "hello world");
    CHECK(c.done());
    chunked_decoder bad;
    std::string junk = "zz\r\n";
    std::size_t k = 0;
    CHECK_FALSE(bad.decode(junk.data(), junk.size(), k));
}

TEST_CASE("client sse: the WHATWG event stream", "[client][sse]") {
    sse_parser p(1000);
    struct block {
        std::string event, data, id;
        bool has_id;
    };
    std::vector<block> got;
    std::vector<std::uint64_t> retries;
    auto on_block = [&](const sse_event_view& b) {
        got.push_back({std::string(b.event), std::string(b.data), std::string(b.id), b.has_id});
    };
    auto on_retry = [&](std::uint64_t ms) { retries.push_back(ms); };
    const std::string stream =
        "retry: 2500\n\n: ping\n\nid: t1\nevent: subscribed\ndata: {\"a\":1}\n\n"
        "data: x\r\ndata:y\r\n\r\nid: t2\r\rretry: 1x\n\n";
    const std::string& s = stream;
    for (std::size_t split = 1; split < 7; ++split) {  // every chunking gives the same
        got.clear();
        retries.clear();
        p.reset();
        for (std::size_t i = 0; i < s.size(); i += split) {
            REQUIRE(p.feed(std::string_view(s).substr(i, split), on_block, on_retry));
        }
        REQUIRE(got.size() == 3);
        CHECK(got[0].event == "subscribed");
        CHECK(got[0].data == "{\"a\":1}");
        CHECK(got[0].id == "t1");
        CHECK(got[1].data == "x\ny");
        CHECK_FALSE(got[1].has_id);
        CHECK(got[2].id == "t2");
        CHECK(got[2].data.empty());
        CHECK(retries == std::vector<std::uint64_t>{2500});
    }
    sse_parser small(10);
    CHECK_FALSE(small.feed("data: 0123456789abc\n", on_block, on_retry));
}

TEST_CASE("client json: members, strings, numbers", "[client][json]") {
    std::vector<std::pair<std::string, std::string>> m;
    const std::string text =
        R"({"type":"event","sub":"a:*","offset":12,"data":{"x":[1,{"y":"}"}],"s":"\"q"},"ts":-5,"n":null,"b":true})";
    REQUIRE(json_for_each_member(text, [&](std::string_view k, std::string_view v) {
        m.emplace_back(std::string(k), std::string(v));
    }));
    REQUIRE(m.size() == 7);
    CHECK(m[3].second == R"({"x":[1,{"y":"}"}],"s":"\"q"})");
    CHECK(m[4].second == "-5");
    std::string scratch;
    std::string_view s;
    CHECK(json_string(R"("plain")", scratch, s));
    CHECK(s == "plain");
    CHECK(json_string(R"("a\"b\\c\u00e9\ud83d\ude00\/")", scratch, s));
    CHECK(s == "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80/");
    CHECK_FALSE(json_string("12", scratch, s));
    std::uint64_t u = 0;
    CHECK(json_u64("18446744073709551615", u));
    CHECK(u == 18446744073709551615ull);
    CHECK_FALSE(json_u64("18446744073709551616", u));
    CHECK_FALSE(json_u64("01", u));
    CHECK_FALSE(json_u64("1.5", u));
    std::int64_t i = 0;
    CHECK(json_i64("-9223372036854775808", i));
    CHECK(i == INT64_MIN);
    bool b = false;
    CHECK(json_bool("true", b));
    CHECK(b);
    for (const char* bad : {"", "[]", "{", R"({"a"})", R"({"a":})", R"({"a":1,})", R"({"a":1}x)",
                            R"({"a":[1})", R"({"a":"\x"})", R"({"a":tru})", "{\"a\":\"\x01\"}"}) {
        INFO(bad);
        CHECK_FALSE(json_for_each_member(bad, [](std::string_view, std::string_view) {}));
    }
}
