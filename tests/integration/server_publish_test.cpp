// Publishing over plain HTTP (PROTOCOL.md section 5) and through the host API
// (`hub::async_publish`).
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
using sluice::server_options;

namespace {

void expect_http_error(const http_response& r, int status, const std::string& code) {
    INFO(r.head_text << r.body);
    CHECK(r.status == status);
    CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
    json_msg body(r.body);
    CHECK(body.str("code") == code);
    CHECK((body.get("message") && body.get("message")->IsString()));
}

std::string chunked(const std::vector<std::string>& pieces) {
    std::string out;
    for (const auto& p : pieces) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", p.size());
        out += size;
        out += p;
        out += "\r\n";
    }
    return out + "0\r\n\r\n";
}

std::string chunked_request(const std::string& body_chunks) {
    return "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" +
           body_chunks;
}

}  // namespace

TEST_CASE("POST /publish: 200 with topic, offset, epoch; subscribers get the event", "[publish]") {
    test_server s(quick_options());
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto sub = ws.subscribe("hp:1");

    auto r =
        http_fetch(s.port(), publish_request_text(R"({"topic":"hp:1","data":{"x":[1,"two",null]},)"
                                                  R"("event":"tick:new"})"));
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
    CHECK(r.header("Access-Control-Allow-Origin").value_or("") == "*");
    json_msg body(r.body);
    CHECK(body.str("topic") == "hp:1");
    CHECK(body.u64("offset") == 1);
    CHECK(body.str("epoch") == sub.str("epoch"));
    auto ev = ws.expect("event");
    CHECK(ev.str("event") == "tick:new");
    CHECK(ev.json_of("data") == R"({"x":[1,"two",null]})");
    CHECK(ev.u64("offset") == 1);

    SECTION("content type with parameters and in any case") {
        auto r2 = http_fetch(s.port(), publish_request_text(R"({"topic":"hp:1","data":2})", {},
                                                            "application/json; charset=utf-8"));
        CHECK(r2.status == 200);
        auto r3 = http_fetch(
            s.port(), publish_request_text(R"({"topic":"hp:1","data":3})", {}, "Application/JSON"));
        CHECK(r3.status == 200);
        CHECK(json_msg(r3.body).u64("offset") == 3);
    }
    SECTION("a chunked body") {
        auto r2 = http_fetch(
            s.port(),
            chunked_request(chunked({R"({"topic":"h)", R"(p:1","da)", R"(ta":"chunky"})"})));
        CHECK(r2.status == 200);
        CHECK(json_msg(r2.body).u64("offset") == 2);
        CHECK(ws.expect("event").json_of("data") == "\"chunky\"");
    }
    SECTION("a chunked body with chunk extensions and a trailer") {
        std::string body = R"({"topic":"hp:1","data":"ext"})";
        char size[16];
        std::snprintf(size, sizeof size, "%zx", body.size() - 5);
        auto r2 = http_fetch(
            s.port(), chunked_request("5;name=value\r\n" + body.substr(0, 5) + "\r\n" + size +
                                      "\r\n" + body.substr(5) + "\r\n0\r\nX-Trailer: 1\r\n\r\n"));
        CHECK(r2.status == 200);
        CHECK(ws.expect("event").json_of("data") == "\"ext\"");
    }
    SECTION("Expect: 100-continue") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        std::string body = R"({"topic":"hp:1","data":4})";
        REQUIRE(
            c.send("POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                   "Expect: 100-continue\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
        auto cont = c.read_head();
        REQUIRE(cont);
        CHECK(cont->status == 100);
        REQUIRE(c.send(body));
        auto done = c.read_response();
        REQUIRE(done);
        CHECK(done->status == 200);
    }
    SECTION("the idempotency key over HTTP") {
        auto a = http_fetch(
            s.port(), publish_request_text(R"({"topic":"hp:1","data":5,"idempotency_key":"abc"})"));
        auto b = http_fetch(
            s.port(), publish_request_text(R"({"topic":"hp:1","data":6,"idempotency_key":"abc"})"));
        CHECK(a.status == 200);
        CHECK(b.status == 200);
        CHECK(a.body == b.body);
        ws.expect("event");
        CHECK(ws.sync().empty());
    }
}

TEST_CASE("POST /publish: 400 for bad JSON, topic or names", "[publish]") {
    test_server s(quick_options());
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "bad_request"},
        {"", "bad_request"},
        {"[1]", "bad_request"},
        {R"({"data":1})", "bad_request"},
        {R"({"topic":5,"data":1})", "bad_request"},
        {R"({"topic":"a"})", "bad_request"},
        {R"({"topic":"a::b","data":1})", "invalid_topic"},
        {R"({"topic":"a:*","data":1})", "invalid_topic"},
        {R"({"topic":"a","data":1,"event":"no spaces"})", "bad_request"},
        {R"({"topic":"a","data":1,"event":7})", "bad_request"},
        {R"({"topic":"a","data":1,"idempotency_key":""})", "bad_request"},
        {R"({"topic":"a","data":1,"idempotency_key":")" + std::string(65, 'k') + "\"}",
         "bad_request"},
        {R"({"topic":"a","data":1)", "bad_request"},
    };
    http_client c;
    REQUIRE(c.connect(s.port()));
    for (const auto& [body, code] : cases) {
        INFO(body);
        auto r = c.request(publish_request_text(body.empty() ? std::string_view{} : body,
                                                body.empty() ? "Content-Length: 0\r\n" : ""));
        expect_http_error(r, 400, code);
    }
    CHECK(s.metric("sluice_messages_published_total") == 0);
}

TEST_CASE("POST /publish: 413 for a body over max_message_bytes", "[publish]") {
    server_options o = quick_options();
    o.max_message_bytes = 1024;
    test_server s(o);
    std::string big = R"({"topic":"big:1","data":")" + std::string(1100, 'x') + "\"}";
    SECTION("by Content-Length") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        REQUIRE(
            c.send("POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                   "Content-Length: " +
                   std::to_string(big.size()) + "\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK_FALSE(json_msg(r->body).str("code").empty());
    }
    SECTION("chunked") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto r = c.request(
            chunked_request(chunked({big.substr(0, 400), big.substr(400, 400), big.substr(800)})));
        CHECK(r.status == 413);
    }
    SECTION("at the limit is fine") {
        std::string prefix = R"({"topic":"big:1","data":")";
        std::string exact = prefix + std::string(1024 - prefix.size() - 2, 'x') + "\"}";
        REQUIRE(exact.size() == 1024);
        CHECK(http_fetch(s.port(), publish_request_text(exact)).status == 200);
        CHECK(http_fetch(s.port(),
                         chunked_request(chunked({exact.substr(0, 500), exact.substr(500)})))
                  .status == 200);
    }
    CHECK(s.metric("sluice_messages_published_total") <= 2);
}

TEST_CASE("POST /publish: 415 for another content type", "[publish]") {
    test_server s(quick_options());
    std::string body = R"({"topic":"ct:1","data":1})";
    for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                             "multipart/form-data"}) {
        INFO(type);
        expect_http_error(http_fetch(s.port(), publish_request_text(body, {}, type)), 415,
                          "bad_request");
    }
    auto none = http_fetch(s.port(), http_request_text("POST", "/publish", {}, body));
    CHECK(none.status == 415);
    CHECK(s.metric("sluice_messages_published_total") == 0);
}

TEST_CASE("POST /publish and WS publish: forbidden without publish rights", "[publish][auth]") {
    test_server s(quick_options(), {}, std::make_shared<sluice::anonymous_policy>(false));
    expect_http_error(http_fetch(s.port(), publish_request_text(R"({"topic":"np:1","data":1})")),
                      403, "forbidden");
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    auto m = ws.next_message(100ms);
    CHECK_FALSE(m);
    REQUIRE(ws.send_json(R"({"type":"publish","id":"p","topic":"np:1","data":1})"));
    auto e = ws.expect("error");
    CHECK(e.str("code") == "forbidden");
    CHECK(e.str("id") == "p");
    // Subscribing is still fine.
    ws.subscribe("np:#");
    CHECK(s.metric("sluice_messages_published_total") == 0);
}

TEST_CASE("POST /publish: 429 past the connection's rate", "[publish][rate]") {
    server_options o = quick_options();
    o.client_rate = 2;
    o.client_rate_window = 3000ms;
    test_server s(o);
    http_client c;
    REQUIRE(c.connect(s.port()));
    auto body = publish_request_text(R"({"topic":"rl:1","data":1})");
    int ok = 0;
    std::optional<http_response> limited;
    for (int i = 0; i < 3 && !limited; ++i) {
        auto r = c.request(body);
        if (r.status == 200) {
            ++ok;
        } else {
            limited = r;
        }
    }
    REQUIRE(limited);
    CHECK(ok == 2);
    expect_http_error(*limited, 429, "rate_limited");
    CHECK(limited->has_header("Retry-After"));
    CHECK(limited->header("Access-Control-Allow-Origin").value_or("") == "*");
    CHECK(s.metric("sluice_messages_published_total") == 2);
}

TEST_CASE("hub::async_publish: positions, errors, completion outside the call", "[publish][host]") {
    test_server s(quick_options());
    auto [ec, pos] = s.publish("host:1", R"({"a":1})");
    CHECK_FALSE(ec);
    CHECK(pos.offset == 1);
    CHECK(pos.epoch.size() >= 8);
    CHECK(s.publish("host:1", "2").second.offset == 2);

    CHECK(s.publish("bad::topic", "1").first == sluice::errc::invalid_topic);
    CHECK(s.publish("host:*", "1").first == sluice::errc::invalid_topic);
    CHECK(s.publish("host:1", "{not json").first == sluice::errc::bad_request);
    sluice::publish_options bad_event;
    bad_event.event = "a b";
    CHECK(s.publish("host:1", "1", bad_event).first == sluice::errc::bad_request);
    sluice::publish_options long_key;
    long_key.idempotency_key = std::string(65, 'k');
    CHECK(s.publish("host:1", "1", long_key).first == sluice::errc::bad_request);

    sluice::publish_options key;
    key.idempotency_key = "once";
    auto first = s.publish("host:1", "3", key);
    auto again = s.publish("host:1", "4", key);
    CHECK(first.second.offset == 3);
    CHECK(again.second.offset == 3);
    CHECK(again.second.epoch == first.second.epoch);

    // The handler never runs inside the initiating call (here: not on the
    // calling thread, which runs no handler of the io_context).
    std::atomic<bool> done{false};
    std::thread::id ran_on;
    std::error_code result = sluice::errc::internal;
    s.hub().async_publish("host:2", "1", {}, [&](std::error_code e, sluice::stream_position) {
        ran_on = std::this_thread::get_id();
        result = e;
        done = true;
    });
    REQUIRE(eventually([&] { return done.load(); }));
    CHECK(ran_on != std::this_thread::get_id());
    CHECK_FALSE(result);
    CHECK(s.metric("sluice_messages_published_total") == 4);
}
