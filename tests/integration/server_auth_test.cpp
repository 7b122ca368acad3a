// Authentication, authorization, token expiry and refresh, CORS and origins,
// and the per-IP handshake limit (PROTOCOL.md sections 3.3 and 6).
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <mutex>

using namespace sluice::test;
using sluice::server_options;

namespace {

const std::string secret = "integration-secret-of-at-least-32-bytes";

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string seconds_json(double s) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.3f", s);
    return buffer;
}

/// A token for `sub` with the given rights (JSON arrays) and `exp` (seconds
/// from now; 0: none).
std::string token(const std::string& sub, const std::string& subscribe = R"(["#"])",
                  const std::string& publish = R"([])", double exp_in = 3600) {
    std::string claims = R"({"sub":)" + json_quote(sub) + R"(,"subscribe":)" + subscribe +
                         R"(,"publish":)" + publish;
    if (exp_in != 0) claims += R"(,"exp":)" + seconds_json(now_seconds() + exp_in);
    return sluice::jwt_sign(secret, claims + "}");
}

std::shared_ptr<const sluice::auth_policy> jwt() {
    return std::make_shared<sluice::jwt_policy>(secret);
}

std::string bearer(const std::string& t) { return "Authorization: Bearer " + t + "\r\n"; }

void expect_refused(const http_response& r, int status, const std::string& code) {
    INFO(r.head_text << r.body);
    CHECK(r.status == status);
    CHECK(json_msg(r.body).str("code") == code);
}

}  // namespace

TEST_CASE("JWT: 401 on missing, bad or expired tokens at upgrade, SSE and /publish",
          "[auth][jwt]") {
    test_server s(quick_options(), {}, jwt());
    const std::string exp_past = sluice::jwt_sign(
        secret, R"({"sub":"a","subscribe":["#"],"exp":)" + seconds_json(now_seconds() - 5) + "}");
    const std::string nbf_future = sluice::jwt_sign(
        secret, R"({"sub":"a","subscribe":["#"],"nbf":)" + seconds_json(now_seconds() + 600) + "}");
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"missing", ""},
        {"garbage", "abc"},
        {"bad signature", sluice::jwt_sign("another-secret-of-at-least-32-bytes!!",
                                           R"({"sub":"a","subscribe":["#"]})")},
        {"expired", exp_past},
        {"not yet valid", nbf_future},
        {"no sub", sluice::jwt_sign(secret, R"({"subscribe":["#"]})")},
        {"empty sub", sluice::jwt_sign(secret, R"({"sub":"","subscribe":["#"]})")},
        {"alg HS512", sluice::jwt_sign(secret, R"({"sub":"a"})", R"({"alg":"HS512","typ":"JWT"})")},
        {"alg none", sluice::jwt_sign(secret, R"({"sub":"a"})", R"({"alg":"none"})")},
        {"truncated", token("a").substr(0, 30)},
    };
    for (const auto& [name, t] : bad) {
        INFO(name);
        std::string query = t.empty() ? "" : "token=" + url_encode(t);
        ws_client ws;
        CHECK_FALSE(ws.handshake(s.port(), "/ws?" + query));
        expect_refused(ws.handshake_response, 401, "unauthorized");
        if (!t.empty()) {
            ws_client wh;
            CHECK_FALSE(wh.handshake(s.port(), "/ws", bearer(t)));
            expect_refused(wh.handshake_response, 401, "unauthorized");
        }
        sse_client sse;
        CHECK_FALSE(sse.open(s.port(), "/events?topic=a&" + query));
        expect_refused(sse.response, 401, "unauthorized");
        auto pub = http_fetch(s.port(), publish_request_text(R"({"topic":"a","data":1})",
                                                             t.empty() ? "" : bearer(t)));
        expect_refused(pub, 401, "unauthorized");
    }
    // /health and /metrics need no token.
    CHECK(http_get(s.port(), "/health").status == 200);
    CHECK(http_get(s.port(), "/metrics").status == 200);
    // A good token, in the query or the header.
    ws_client q;
    CHECK(q.open(s.port(), "/ws?token=" + url_encode(token("a"))));
    ws_client h;
    CHECK(h.open(s.port(), "/ws", bearer(token("a"))));
    // The header wins when both are present.
    ws_client both_good_header;
    CHECK(both_good_header.open(s.port(), "/ws?token=garbage", bearer(token("a"))));
    ws_client both_bad_header;
    CHECK_FALSE(both_bad_header.handshake(s.port(), "/ws?token=" + url_encode(token("a")),
                                          bearer("garbage")));
    CHECK(both_bad_header.handshake_response.status == 401);
}

TEST_CASE("JWT: subscribe rights, {sub}, and 403 forbidden", "[auth][jwt]") {
    test_server s(quick_options(), {}, jwt());
    auto t = token("alice", R"(["news:#","user:{sub}:#","country:*"])", R"(["chat:{sub}"])");
    ws_client ws;
    REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t)));
    for (const char* ok : {"news", "news:1", "news:*", "news:#", "news:a:b", "user:alice",
                           "user:alice:inbox", "user:alice:#", "country:42", "country:*"}) {
        INFO(ok);
        CHECK(ws.subscribe(ok).str("topic") == ok);
    }
    int id = 0;
    for (const char* no : {"sports:1", "#", "*", "user:bob:inbox", "user:*:inbox", "user:#",
                           "country:#", "country:42:gdp", "country", "chat:alice"}) {
        INFO(no);
        REQUIRE(ws.send_json(R"({"type":"subscribe","id":)" + std::to_string(++id) +
                             R"(,"topic":)" + json_quote(no) + "}"));
        auto e = ws.expect("error");
        CHECK(e.str("code") == "forbidden");
        CHECK(e.json_of("id") == std::to_string(id));
    }
    // Publishing: the publish claim alone decides.
    CHECK(ws.publish("chat:alice", "1").u64("offset") == 1);
    for (const char* no : {"chat:bob", "news:1", "user:alice:inbox"}) {
        INFO(no);
        REQUIRE(ws.send_json(R"({"type":"publish","id":"p","topic":)" + json_quote(no) +
                             R"(,"data":1})"));
        auto e = ws.expect("error");
        CHECK(e.str("code") == "forbidden");
        CHECK(e.str("id") == "p");
    }
    // Over HTTP.
    CHECK(
        http_fetch(s.port(), publish_request_text(R"({"topic":"chat:alice","data":2})", bearer(t)))
            .status == 200);
    expect_refused(
        http_fetch(s.port(), publish_request_text(R"({"topic":"chat:bob","data":2})", bearer(t))),
        403, "forbidden");
    expect_refused(http_fetch(s.port(), publish_request_text(R"({"topic":"chat:alice","data":2})",
                                                             "X-Other: 1\r\n", "application/json")),
                   401, "unauthorized");
    // SSE: a topic outside the rights is 403 for the whole stream.
    sse_client ok;
    CHECK(ok.open(s.port(), "/events?topic=news:1&topic=user:alice:x&token=" + url_encode(t)));
    sse_client no;
    CHECK_FALSE(no.open(s.port(), "/events?topic=news:1&topic=user:bob:x&token=" + url_encode(t)));
    expect_refused(no.response, 403, "forbidden");
    sse_client with_header;
    CHECK(with_header.open(s.port(), "/events?topic=news:1", bearer(t)));
}

TEST_CASE("JWT: a sub that is not a topic segment does not widen {sub} rights", "[auth][jwt]") {
    test_server s(quick_options(), {}, jwt());
    auto t = token("a:#", R"(["user:{sub}:#"])");
    ws_client ws;
    REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t)));
    REQUIRE(ws.send_json(R"({"type":"subscribe","topic":"user:a:x"})"));
    CHECK(ws.expect("error").str("code") == "forbidden");
}

TEST_CASE("token expiry closes with 4401 at exp plus grace", "[auth][expiry]") {
    server_options o = quick_options();
    o.ping_interval = 10s;
    SECTION("no grace") {
        o.token_grace = 0ms;
        test_server s(o, {}, jwt());
        auto exp = now_seconds() + 0.8;
        auto t = sluice::jwt_sign(
            secret, R"({"sub":"a","subscribe":["#"],"exp":)" + seconds_json(exp) + "}");
        ws_client ws;
        REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t)));
        auto r = ws.wait_close(4000ms);
        auto at = now_seconds();
        CHECK(r.close_frame);
        CHECK(r.code == 4401);
        CHECK(at >= exp - 0.05);
        CHECK(at < exp + 2.0);
        CHECK(eventually([&] { return s.metric("sluice_close_total{code=\"4401\"}") == 1; }));
    }
    SECTION("with grace") {
        o.token_grace = 500ms;
        test_server s(o, {}, jwt());
        auto exp = now_seconds() + 0.5;
        auto t = sluice::jwt_sign(
            secret, R"({"sub":"a","subscribe":["#"],"exp":)" + seconds_json(exp) + "}");
        ws_client ws;
        REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t)));
        auto r = ws.wait_close(4000ms);
        auto at = now_seconds();
        CHECK(r.code == 4401);
        CHECK(at >= exp + 0.45);
        CHECK(at < exp + 2.5);
    }
}

TEST_CASE("refresh: refreshed with expires_at, a later exp keeps the connection",
          "[auth][refresh]") {
    server_options o = quick_options();
    o.token_grace = 0ms;
    test_server s(o, {}, jwt());
    auto exp1 = now_seconds() + 0.8;
    auto t1 = sluice::jwt_sign(
        secret, R"({"sub":"alice","subscribe":["a:#"],"exp":)" + seconds_json(exp1) + "}");
    ws_client ws;
    REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t1)));

    // Refusals leave the connection as it was.
    auto other = token("bob", R"(["#"])", "[]", 60);
    auto e1 = ws.call(R"({"type":"refresh","id":1,"token":)" + json_quote(other) + "}", "error");
    CHECK(e1.str("code") == "unauthorized");
    CHECK(e1.json_of("id") == "1");
    auto e2 = ws.call(R"({"type":"refresh","id":2,"token":"garbage"})", "error");
    CHECK(e2.str("code") == "unauthorized");
    auto expired = sluice::jwt_sign(
        secret, R"({"sub":"alice","exp":)" + seconds_json(now_seconds() - 1) + "}");
    auto e3 = ws.call(R"({"type":"refresh","id":3,"token":)" + json_quote(expired) + "}", "error");
    CHECK(e3.str("code") == "unauthorized");

    // A later exp, with wider rights.
    auto exp2 = now_seconds() + 2.0;
    auto t2 = sluice::jwt_sign(
        secret, R"({"sub":"alice","subscribe":["a:#","b:#"],"exp":)" + seconds_json(exp2) + "}");
    auto r = ws.call(R"({"type":"refresh","id":"r","token":)" + json_quote(t2) + "}", "refreshed");
    CHECK(r.str("id") == "r");
    CHECK(std::llabs(r.i64("expires_at") - static_cast<std::int64_t>(exp2 * 1000)) <= 1);
    CHECK(ws.subscribe("b:1").str("topic") == "b:1");

    // Past the first exp, still open.
    auto m = ws.next_message(
        std::chrono::milliseconds(static_cast<int>((exp1 - now_seconds()) * 1000) + 300));
    CHECK_FALSE(m);
    CHECK_FALSE(ws.close_received);
    CHECK(ws.call(R"({"type":"ping","id":1})", "pong").json_of("id") == "1");
    // Then closed at the second.
    auto closed = ws.wait_close(4000ms);
    CHECK(closed.code == 4401);
    CHECK(now_seconds() >= exp2 - 0.05);
}

TEST_CASE("refresh: a token without exp never expires; anonymous refresh is refused",
          "[auth][refresh]") {
    SECTION("jwt") {
        server_options o = quick_options();
        o.token_grace = 0ms;
        test_server s(o, {}, jwt());
        auto exp = now_seconds() + 0.5;
        auto t1 = sluice::jwt_sign(secret, R"({"sub":"alice","exp":)" + seconds_json(exp) + "}");
        ws_client ws;
        REQUIRE(ws.open(s.port(), "/ws?token=" + url_encode(t1)));
        auto t2 = sluice::jwt_sign(secret, R"({"sub":"alice"})");
        auto r = ws.call(R"({"type":"refresh","token":)" + json_quote(t2) + "}", "refreshed");
        CHECK_FALSE(r.has("expires_at"));
        CHECK_FALSE(r.has("id"));
        CHECK_FALSE(ws.next_message(1000ms));
        CHECK_FALSE(ws.close_received);
    }
    SECTION("anonymous") {
        test_server s(quick_options());
        ws_client ws;
        REQUIRE(ws.open(s.port()));
        auto e = ws.call(R"({"type":"refresh","id":9,"token":"x"})", "error");
        CHECK(e.str("code") == "unauthorized");
        CHECK(e.json_of("id") == "9");
    }
}

TEST_CASE("CORS: * by default, and preflights", "[auth][cors]") {
    test_server s(quick_options());
    auto origin = "Origin: https://anywhere.example\r\n";
    auto pub = http_fetch(s.port(), publish_request_text(R"({"topic":"c:1","data":1})", origin));
    CHECK(pub.header("Access-Control-Allow-Origin").value_or("") == "*");
    auto err = http_fetch(s.port(), publish_request_text("bad", origin));
    CHECK(err.header("Access-Control-Allow-Origin").value_or("") == "*");
    sse_client sse;
    REQUIRE(sse.open(s.port(), "/events?topic=c:1", origin));
    CHECK(sse.response.header("Access-Control-Allow-Origin").value_or("") == "*");
    ws_client ws;
    CHECK(ws.open(s.port(), "/ws", origin));

    for (const char* path : {"/events", "/publish"}) {
        INFO(path);
        auto r = http_fetch(
            s.port(),
            http_request_text("OPTIONS", path,
                              std::string(origin) + "Access-Control-Request-Method: GET\r\n"));
        CHECK(r.status == 204);
        CHECK(r.header("Access-Control-Allow-Origin").value_or("") == "*");
        auto methods = r.header("Access-Control-Allow-Methods").value_or("");
        CHECK(methods.find(std::string(path) == "/events" ? "GET" : "POST") != std::string::npos);
        CHECK(r.header("Access-Control-Allow-Headers").value_or("") ==
              "Authorization, Content-Type, Last-Event-ID");
        auto max_age = r.header("Access-Control-Max-Age");
        REQUIRE(max_age);
        CHECK(std::atoi(max_age->c_str()) == 600);
        CHECK(r.body.empty());
    }
}

TEST_CASE("CORS: allowed origins are echoed with Vary, others get no CORS headers",
          "[auth][cors]") {
    server_options o = quick_options();
    o.allowed_origins = {"https://app.example", "http://localhost:3000"};
    o.cors_max_age = 120s;
    test_server s(o);
    const std::string good = "Origin: https://app.example\r\n";
    const std::string bad = "Origin: https://evil.example\r\n";

    auto pub = http_fetch(s.port(), publish_request_text(R"({"topic":"c:1","data":1})", good));
    CHECK(pub.status == 200);
    CHECK(pub.header("Access-Control-Allow-Origin").value_or("") == "https://app.example");
    CHECK(pub.header("Vary").value_or("").find("Origin") != std::string::npos);
    auto pub_bad = http_fetch(s.port(), publish_request_text(R"({"topic":"c:1","data":1})", bad));
    CHECK_FALSE(pub_bad.has_header("Access-Control-Allow-Origin"));
    auto pub_none = http_fetch(s.port(), publish_request_text(R"({"topic":"c:1","data":1})"));
    CHECK_FALSE(pub_none.has_header("Access-Control-Allow-Origin"));

    sse_client sse_good;
    REQUIRE(sse_good.open(s.port(), "/events?topic=c:1", "Origin: http://localhost:3000\r\n"));
    CHECK(sse_good.response.header("Access-Control-Allow-Origin").value_or("") ==
          "http://localhost:3000");
    CHECK(sse_good.response.header("Vary").value_or("").find("Origin") != std::string::npos);
    sse_client sse_bad;
    REQUIRE(sse_bad.open(s.port(), "/events?topic=c:1", bad));
    CHECK_FALSE(sse_bad.response.has_header("Access-Control-Allow-Origin"));
    sse_client sse_err;
    CHECK_FALSE(sse_err.open(s.port(), "/events", good));
    CHECK(sse_err.response.header("Access-Control-Allow-Origin").value_or("") ==
          "https://app.example");

    auto pre = http_fetch(s.port(), http_request_text("OPTIONS", "/publish", good));
    CHECK(pre.status == 204);
    CHECK(pre.header("Access-Control-Allow-Origin").value_or("") == "https://app.example");
    CHECK(pre.header("Access-Control-Max-Age").value_or("") == "120");
    auto pre_bad = http_fetch(s.port(), http_request_text("OPTIONS", "/events", bad));
    CHECK_FALSE(pre_bad.has_header("Access-Control-Allow-Origin"));

    // WebSocket upgrades: a present, not allowed Origin is 403.
    ws_client ws_bad;
    CHECK_FALSE(ws_bad.handshake(s.port(), "/ws", bad));
    CHECK(ws_bad.handshake_response.status == 403);
    ws_client ws_good;
    CHECK(ws_good.open(s.port(), "/ws", good));
    ws_client ws_none;
    CHECK(ws_none.open(s.port(), "/ws"));
}

TEST_CASE("handshake limit per IP: 429 with Retry-After; refused ones do not count",
          "[auth][handshake]") {
    server_options o = quick_options();
    o.handshake_rate = 3;
    o.handshake_window = 2000ms;
    test_server s(o, {}, jwt());
    auto t = token("a");
    // Refused by authentication: not counted.
    for (int i = 0; i < 5; ++i) {
        ws_client bad;
        CHECK_FALSE(bad.handshake(s.port(), "/ws?token=garbage"));
        CHECK(bad.handshake_response.status == 401);
    }
    // Plain HTTP requests are not connections of the limit.
    for (int i = 0; i < 5; ++i) CHECK(http_get(s.port(), "/health").status == 200);

    auto t0 = steady::now();
    ws_client a, b;
    REQUIRE(a.open(s.port(), "/ws", bearer(t)));
    REQUIRE(b.open(s.port(), "/ws", bearer(t)));
    sse_client c;
    REQUIRE(c.open(s.port(), "/events?topic=x", bearer(t)));
    std::this_thread::sleep_until(t0 + 1000ms);
    ws_client d;
    CHECK_FALSE(d.handshake(s.port(), "/ws", bearer(t)));
    expect_refused(d.handshake_response, 429, "rate_limited");
    auto retry = d.handshake_response.header("Retry-After");
    REQUIRE(retry);
    CHECK(std::atoi(retry->c_str()) >= 1);
    CHECK(std::atoi(retry->c_str()) <= 2);
    sse_client e;
    CHECK_FALSE(e.open(s.port(), "/events?topic=x", bearer(t)));
    CHECK(e.response.status == 429);
    CHECK(e.response.has_header("Retry-After"));
    // The refusals did not count: once the accepted ones left the window, the
    // next one is accepted although the refusals are younger than the window.
    REQUIRE(steady::now() < t0 + 1900ms);
    std::this_thread::sleep_until(t0 + 2150ms);
    ws_client f;
    CHECK(f.open(s.port(), "/ws", bearer(t)));
}

TEST_CASE("tokens are never written to the log", "[auth][log]") {
    server_options o = quick_options();
    o.token_grace = 0ms;
    test_server s(o, {}, jwt());
    std::mutex mutex;
    std::vector<std::string> lines;
    s.hub().on_log([&](sluice::log_level, std::string_view line) {
        std::lock_guard<std::mutex> lock(mutex);
        lines.emplace_back(line);
    });
    auto good = token("alice", R"(["a:#"])", R"(["a:#"])");
    auto forged = sluice::jwt_sign("not-the-secret-but-also-32-bytes-long", R"({"sub":"alice"})");
    auto other = token("bob");
    auto short_lived = sluice::jwt_sign(
        secret, R"({"sub":"alice","exp":)" + seconds_json(now_seconds() + 0.3) + "}");
    {
        ws_client bad;
        CHECK_FALSE(bad.handshake(s.port(), "/ws?token=" + url_encode(forged)));
        ws_client ws;
        REQUIRE(ws.open(s.port(), "/ws", bearer(good)));
        ws.call(R"({"type":"refresh","token":)" + json_quote(other) + "}", "error");
        ws.call(R"({"type":"refresh","token":)" + json_quote(forged) + "}", "error");
        ws.call(R"({"type":"subscribe","topic":"b:1"})", "error");
        ws.call(R"({"type":"publish","topic":"b:1","data":1})", "error");
        ws.send_binary("x");
        ws.wait_close();
        ws_client expiring;
        REQUIRE(expiring.open(s.port(), "/ws?token=" + url_encode(short_lived)));
        CHECK(expiring.wait_close(3000ms).code == 4401);
        sse_client sse;
        CHECK_FALSE(sse.open(s.port(), "/events?topic=b:1&token=" + url_encode(good)));
        http_fetch(s.port(), publish_request_text(R"({"topic":"b:1","data":1})", bearer(good)));
        http_fetch(s.port(), publish_request_text(R"({"topic":"a:1","data":1})", bearer(forged)));
        s.hub().publish("bad topic", "1");  // fire-and-forget: failures are logged
    }
    CHECK(eventually([&] {
        std::lock_guard<std::mutex> lock(mutex);
        return !lines.empty();
    }));
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& line : lines) {
        INFO(line);
        for (const auto* t : {&good, &forged, &other, &short_lived}) {
            CHECK(line.find(*t) == std::string::npos);
            // Nor its signature or payload part alone.
            auto dot = t->rfind('.');
            CHECK(line.find(t->substr(dot + 1)) == std::string::npos);
        }
    }
}
