// The plain HTTP side of PROTOCOL.md sections 1 and 7: routing, status codes,
// malformed requests, head limits and timeouts, keep-alive, /health,
// /metrics and static files.
#include <sluice/server.hpp>

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace sluice::test;
using sluice::server_options;

namespace {

/// A fresh directory under the system temp dir, removed at the end.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        static int counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("sluice-it-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    void write(const std::string& relative, const std::string& content) const {
        auto p = path / relative;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << content;
    }
};

bool connection_closed(http_client& c, std::chrono::milliseconds timeout = 2000ms) {
    return c.wait_closed(timeout);
}

}  // namespace

TEST_CASE("/health answers the JSON shape of section 1", "[http]") {
    test_server s(quick_options());
    auto r = http_get(s.port(), "/health");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type").value_or("").find("application/json") == 0);
    json_msg body(r.body);
    REQUIRE(body.is_object());
    CHECK(body.str("status") == "ok");
    CHECK(body.str("backplane") == "memory");
    auto* connections = body.get("connections");
    REQUIRE(connections);
    REQUIRE(connections->IsObject());
    REQUIRE(connections->HasMember("ws"));
    REQUIRE(connections->HasMember("sse"));
    CHECK((*connections)["ws"].GetInt() == 0);
    CHECK((*connections)["sse"].GetInt() == 0);

    ws_client ws;
    REQUIRE(ws.open(s.port()));
    sse_client sse;
    REQUIRE(sse.open(s.port(), "/events?topic=h:1"));
    REQUIRE(sse.next());  // the stream is live
    CHECK(eventually([&] {
        json_msg b(http_get(s.port(), "/health").body);
        auto* c = b.get("connections");
        return c && (*c)["ws"].GetInt() == 1 && (*c)["sse"].GetInt() == 1;
    }));
}

TEST_CASE("/metrics: content type, every family of section 7, transport series at 0",
          "[http][metrics]") {
    test_server s(quick_options());
    auto r = http_get(s.port(), "/metrics");
    CHECK(r.status == 200);
    CHECK(r.header("Content-Type").value_or("").find("text/plain; version=0.0.4") == 0);
    const std::string& text = r.body;
    const std::vector<std::pair<std::string, std::string>> families = {
        {"sluice_connections", "gauge"},
        {"sluice_messages_published_total", "counter"},
        {"sluice_messages_delivered_total", "counter"},
        {"sluice_messages_dropped_total", "counter"},
        {"sluice_send_queue_bytes", "gauge"},
        {"sluice_slow_consumer_disconnects_total", "counter"},
        {"sluice_rate_limited_total", "counter"},
        {"sluice_recoveries_total", "counter"},
        {"sluice_close_total", "counter"},
        {"sluice_backplane_up", "gauge"},
        {"sluice_publish_delivery_seconds", "histogram"},
    };
    for (const auto& [name, type] : families) {
        INFO(name);
        // Prometheus names counters in TYPE lines with or without _total
        // (OpenMetrics); accept both spellings.
        bool found = text.find("# TYPE " + name + " " + type + "\n") != std::string::npos;
        if (!found && name.size() > 6 && name.substr(name.size() - 6) == "_total") {
            found = text.find("# TYPE " + name.substr(0, name.size() - 6) + " " + type + "\n") !=
                    std::string::npos;
        }
        CHECK(found);
    }
    CHECK(test_server::metric_in(text, "sluice_connections{transport=\"ws\"}") == 0);
    CHECK(test_server::metric_in(text, "sluice_connections{transport=\"sse\"}") == 0);
    CHECK(test_server::metric_in(text, "sluice_backplane_up") == 1);
    CHECK(test_server::metric_in(text, "sluice_messages_published_total") == 0);
    CHECK(test_server::metric_in(text, "sluice_messages_dropped_total{reason=\"slow_consumer\"}") ==
          0);
    CHECK(test_server::metric_in(text, "sluice_recoveries_total{result=\"recovered\"}") == 0);
    CHECK(test_server::metric_in(text, "sluice_recoveries_total{result=\"not_recovered\"}") == 0);
    // The histogram: buckets below 1 ms, +Inf, _sum and _count.
    bool sub_millisecond_bucket = false;
    for (const char* le : {"0.0001", "0.00025", "0.0005", "0.00005", "0.0002", "1e-04", "5e-04"}) {
        if (text.find(std::string("sluice_publish_delivery_seconds_bucket{le=\"") + le + "\"}") !=
            std::string::npos) {
            sub_millisecond_bucket = true;
        }
    }
    CHECK(sub_millisecond_bucket);
    CHECK(text.find("sluice_publish_delivery_seconds_bucket{le=\"+Inf\"} 0") != std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_sum ") != std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_count 0") != std::string::npos);
    // Every sample line belongs to a family with a TYPE line.
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        std::string line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (line.empty() || line[0] == '#') continue;
        std::string name = line.substr(0, line.find_first_of("{ "));
        INFO(line);
        bool typed = false;
        for (const std::string suffix : {"", "_bucket", "_sum", "_count", "_total"}) {
            if (name.size() >= suffix.size() &&
                name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
                auto base = name.substr(0, name.size() - suffix.size());
                if (text.find("# TYPE " + base + " ") != std::string::npos) typed = true;
            }
        }
        CHECK(typed);
    }

    // The counters move: a publish and a delivery.
    ws_client ws;
    REQUIRE(ws.open(s.port()));
    ws.subscribe("m:1");
    REQUIRE_FALSE(s.publish("m:1", "1").first);
    ws.expect("event");
    CHECK(eventually([&] {
        auto t = s.metrics_text();
        return test_server::metric_in(t, "sluice_messages_published_total") == 1 &&
               test_server::metric_in(t, "sluice_messages_delivered_total") == 1 &&
               test_server::metric_in(t, "sluice_connections{transport=\"ws\"}") == 1 &&
               test_server::metric_in(t, "sluice_publish_delivery_seconds_count") == 1;
    }));
}

TEST_CASE("routing: 404, 405 with Allow, 426 for /ws without upgrade", "[http]") {
    test_server s(quick_options());
    CHECK(http_get(s.port(), "/nope").status == 404);
    CHECK(http_get(s.port(), "/").status == 404);
    CHECK(http_get(s.port(), "/ws/extra").status == 404);
    CHECK(http_get(s.port(), "/health/x").status == 404);

    struct wrong_method {
        std::string method, path, allowed;
    };
    const std::vector<wrong_method> cases = {
        {"POST", "/health", "GET"},     {"DELETE", "/metrics", "GET"}, {"POST", "/ws", "GET"},
        {"PUT", "/events", "GET"},      {"POST", "/events", "GET"},    {"GET", "/publish", "POST"},
        {"DELETE", "/publish", "POST"},
    };
    for (const auto& c : cases) {
        INFO(c.method << " " << c.path);
        auto r = http_fetch(s.port(), http_request_text(c.method, c.path));
        CHECK(r.status == 405);
        auto allow = r.header("Allow");
        REQUIRE(allow);
        CHECK(allow->find(c.allowed) != std::string::npos);
    }

    // RFC 9112 3.2.2: a server must accept the absolute form; a query is
    // not part of the path.
    CHECK(http_fetch(s.port(), "GET http://127.0.0.1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
              .status == 200);
    CHECK(http_get(s.port(), "/health?verbose=1").status == 200);

    auto r = http_get(s.port(), "/ws");
    CHECK(r.status == 426);
    r = http_get(s.port(), "/ws", "Connection: Upgrade\r\n");
    CHECK(r.status == 426);
}

TEST_CASE("malformed requests get 400 and the connection is closed", "[http]") {
    test_server s(quick_options());
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"garbage line", "HELLO\r\n\r\n"},
        {"no Host", "GET /health HTTP/1.1\r\n\r\n"},
        {"two Hosts", "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        {"space before colon", "GET /health HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n"},
        {"obs-fold", "GET /health HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"},
        {"Content-Length and Transfer-Encoding",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"two different Content-Lengths",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x"},
        {"bad Content-Length",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Content-Length: 1x\r\n\r\n"},
        {"negative Content-Length",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Content-Length: -1\r\n\r\n"},
        {"unknown transfer coding",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: gzip\r\n\r\n"},
        {"bad chunk size",
         "POST /publish HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
        {"control character in the target", "GET /he\x01lth HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"NUL in a header value",
         std::string("GET /health HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 40)},
        {"no header colon", "GET /health HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n"},
        {"empty header name", "GET /health HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"},
        {"lowercase method token with space", "GET  /health HTTP/1.1\r\nHost: a\r\n\r\n"},
    };
    for (const auto& [name, raw] : cases) {
        INFO(name);
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto r = c.request(raw);
        CHECK(r.status == 400);
        CHECK(connection_closed(c));
    }
}

TEST_CASE("a request head over 16384 bytes gets 431", "[http]") {
    test_server s(quick_options());
    auto head_with_total = [](std::size_t total) {
        std::string start = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ";
        std::string end = "\r\n\r\n";
        return start + std::string(total - start.size() - end.size(), 'p') + end;
    };
    SECTION("16384 bytes is fine") {
        auto raw = head_with_total(16384);
        REQUIRE(raw.size() == 16384);
        CHECK(http_fetch(s.port(), raw).status == 200);
    }
    SECTION("16385 bytes is too large") {
        auto raw = head_with_total(16385);
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto r = c.request(raw);
        CHECK(r.status == 431);
        CHECK(connection_closed(c));
    }
    SECTION("many header lines adding up") {
        std::string headers;
        for (int i = 0; i < 90; ++i)
            headers += "X-H" + std::to_string(i) + ": " + std::string(200, 'v') + "\r\n";
        auto r = http_fetch(s.port(), http_request_text("GET", "/health", headers));
        CHECK(r.status == 431);
    }
    SECTION("a head that never ends is cut at the limit") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        std::string raw = "GET /health HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(40000, 'p');
        c.send(raw);
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 431);
    }
}

TEST_CASE("a client that does not complete its head in head_timeout is closed", "[http]") {
    server_options o = quick_options();
    o.head_timeout = 300ms;
    test_server s(o);
    SECTION("half a head") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto start = steady::now();
        REQUIRE(c.send("GET /health HTTP/1.1\r\nHo"));
        CHECK(connection_closed(c, 3000ms));
        auto took = steady::now() - start;
        CHECK(took >= 250ms);
        CHECK(took < 2000ms);
    }
    SECTION("nothing at all") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        CHECK(connection_closed(c, 3000ms));
    }
    SECTION("bytes trickling in do not extend it") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto start = steady::now();
        std::string head =
            "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(60, 's');
        bool closed = false;
        for (char ch : head) {
            if (!c.send(std::string(1, ch))) {
                closed = true;
                break;
            }
            if (c.read_more(steady::now() + 20ms) == io_status::eof || c.last_read_error()) {
                closed = true;
                break;
            }
            if (steady::now() - start > 2000ms) break;
        }
        if (!closed) closed = connection_closed(c, 1000ms);
        CHECK(closed);
        CHECK(steady::now() - start < 1500ms);
        CHECK(c.buffer().find("HTTP/1.1 200") == std::string::npos);
    }
    SECTION("an idle keep-alive connection is closed too") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        CHECK(c.request(http_request_text("GET", "/health")).status == 200);
        CHECK(connection_closed(c, 3000ms));
    }
    SECTION("a complete head in time is answered") {
        http_client c;
        REQUIRE(c.connect(s.port()));
        REQUIRE(c.send("GET /health HTTP/1.1\r\n"));
        std::this_thread::sleep_for(100ms);
        CHECK(c.request("Host: a\r\n\r\n").status == 200);
    }
}

TEST_CASE("keep-alive: several requests on one connection", "[http]") {
    test_server s(quick_options());
    http_client c;
    REQUIRE(c.connect(s.port()));
    auto r1 = c.request(http_request_text("GET", "/health"));
    CHECK(r1.status == 200);
    CHECK_FALSE(r1.header("Connection").value_or("") == "close");
    auto r2 = c.request(http_request_text("GET", "/metrics"));
    CHECK(r2.status == 200);
    auto r3 = c.request(http_request_text("GET", "/nope"));
    CHECK(r3.status == 404);
    auto r4 = c.request(publish_request_text(R"({"topic":"k:1","data":1})"));
    CHECK(r4.status == 200);
    auto r5 = c.request(publish_request_text("not json"));
    CHECK(r5.status == 400);
    // A client error on a plain path keeps the connection.
    auto r6 = c.request(http_request_text("GET", "/health"));
    CHECK(r6.status == 200);

    SECTION("pipelined requests are answered in order") {
        REQUIRE(c.send(http_request_text("GET", "/health") + http_request_text("GET", "/nope") +
                       http_request_text("GET", "/metrics")));
        auto a = c.read_response();
        auto b = c.read_response();
        auto d = c.read_response();
        REQUIRE(a);
        REQUIRE(b);
        REQUIRE(d);
        CHECK(a->status == 200);
        CHECK(b->status == 404);
        CHECK(d->status == 200);
        CHECK(d->body.find("sluice_connections") != std::string::npos);
    }
    SECTION("Connection: close ends it") {
        auto r = c.request(http_request_text("GET", "/health", "Connection: close\r\n"));
        CHECK(r.status == 200);
        CHECK(r.header("Connection").value_or("") == "close");
        CHECK(connection_closed(c));
    }
    SECTION("HTTP/1.0 closes unless asked to keep alive") {
        http_client d;
        REQUIRE(d.connect(s.port()));
        auto r = d.request("GET /health HTTP/1.0\r\n\r\n");
        CHECK(r.status == 200);
        CHECK(connection_closed(d));
    }
}

TEST_CASE("rate limit on a keep-alive connection: 429 with Retry-After, closed on the 10th",
          "[http][rate]") {
    server_options o = quick_options();
    o.client_rate = 3;
    o.client_rate_window = 3000ms;
    test_server s(o);
    http_client c;
    REQUIRE(c.connect(s.port()));
    for (int i = 0; i < 3; ++i) CHECK(c.request(http_request_text("GET", "/health")).status == 200);
    for (int i = 1; i <= 9; ++i) {
        INFO("refusal " << i);
        auto r = c.request(http_request_text("GET", "/health"));
        CHECK(r.status == 429);
        auto retry = r.header("Retry-After");
        REQUIRE(retry);
        CHECK(std::atoi(retry->c_str()) >= 1);
        CHECK(std::atoi(retry->c_str()) <= 3);
        CHECK(json_msg(r.body).str("code") == "rate_limited");
    }
    auto last = c.request(http_request_text("GET", "/health"));
    CHECK(last.status == 429);
    CHECK(connection_closed(c));
    CHECK(s.metric("sluice_rate_limited_total") >= 10);
    // Another connection is not limited.
    CHECK(http_get(s.port(), "/health").status == 200);
}

TEST_CASE("static files: types, index.html, no way out of the directory", "[http][static]") {
    temp_dir root;
    auto dir = root.path / "www";
    root.write("secret.txt", "TOPSECRET");
    root.write("www/index.html", "<!doctype html><title>hub</title>");
    root.write("www/app.js", "console.log(1);");
    root.write("www/style.css", "body{}");
    root.write("www/data.json", "{\"a\":1}");
    root.write("www/img.png", std::string("\x89PNG\r\n\x1a\n", 8));
    root.write("www/icon.svg", "<svg/>");
    root.write("www/sub/page.html", "<p>sub</p>");
    root.write("www/health", "not the health endpoint");
    server_options o = quick_options();
    o.static_dir = dir.string();
    test_server s(o);

    struct file_case {
        std::string path, type_prefix, body;
    };
    const std::vector<file_case> files = {
        {"/", "text/html", "<!doctype html><title>hub</title>"},
        {"/index.html", "text/html", "<!doctype html><title>hub</title>"},
        {"/app.js", "text/javascript", "console.log(1);"},
        {"/style.css", "text/css", "body{}"},
        {"/data.json", "application/json", "{\"a\":1}"},
        {"/img.png", "image/png", std::string("\x89PNG\r\n\x1a\n", 8)},
        {"/icon.svg", "image/svg+xml", "<svg/>"},
        {"/sub/page.html", "text/html", "<p>sub</p>"},
    };
    for (const auto& f : files) {
        INFO(f.path);
        auto r = http_get(s.port(), f.path);
        CHECK(r.status == 200);
        auto type = r.header("Content-Type").value_or("");
        if (f.type_prefix == "text/javascript") {
            CHECK((type.find("text/javascript") == 0 || type.find("application/javascript") == 0));
        } else {
            CHECK(type.find(f.type_prefix) == 0);
        }
        CHECK(r.body == f.body);
    }
    CHECK(http_get(s.port(), "/missing.html").status == 404);
    {
        http_client c;
        REQUIRE(c.connect(s.port()));
        auto head = c.request(http_request_text("HEAD", "/app.js"), default_timeout, true);
        CHECK(head.status == 200);
        CHECK(head.header("Content-Length").value_or("") == "15");
        // Nothing follows the head: the next response on the connection is clean.
        auto next = c.request(http_request_text("GET", "/style.css"));
        CHECK(next.status == 200);
        CHECK(next.body == "body{}");
    }
    // The paths of section 1 win over files.
    auto health = http_get(s.port(), "/health");
    CHECK(health.status == 200);
    CHECK(json_msg(health.body).str("status") == "ok");

    const std::vector<std::string> escapes = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..\\secret.txt",
        "/.%2e/secret.txt",
        "/%252e%252e/secret.txt",
    };
    for (const auto& e : escapes) {
        INFO(e);
        auto r = http_get(s.port(), e);
        CHECK(r.status >= 400);
        CHECK(r.status < 500);
        CHECK(r.body.find("TOPSECRET") == std::string::npos);
    }
    // A raw request whose target is not origin-form.
    auto r = http_fetch(s.port(), "GET ../secret.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r.body.find("TOPSECRET") == std::string::npos);
    r = http_fetch(s.port(), "GET http://127.0.0.1/../secret.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(r.body.find("TOPSECRET") == std::string::npos);
}

TEST_CASE("without static_dir, / is 404", "[http][static]") {
    test_server s(quick_options());
    CHECK(http_get(s.port(), "/").status == 404);
    CHECK(http_get(s.port(), "/index.html").status == 404);
}
