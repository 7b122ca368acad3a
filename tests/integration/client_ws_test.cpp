// sluice::ws_client against the in-process hub and server (PROTOCOL.md 3,
// 3.1, 3.2, 3.4, 6): subscribe, filters, publish outcomes, the unsubscribe
// handle, resumption with `since` across server restarts, `recovered ==
// false`, fatal refusals and the offline outbox.
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include "client_test_support.hpp"

#include <catch2/catch.hpp>

using namespace sluice::test;
using namespace std::chrono_literals;
using sluice::client_state_kind;

namespace {

std::string ws_url(std::uint16_t port) { return "ws://127.0.0.1:" + std::to_string(port) + "/ws"; }

bool connected(recorder& r, std::size_t n = 1) {
    return r.wait_for(
        [n](recorder& x) { return x.count_state_locked(client_state_kind::connected) >= n; });
}

}  // namespace

TEST_CASE("ws_client: subscribe, filter, publish with outcome, unsubscribe", "[client][ws]") {
    restartable_server server;
    client_loop loop;
    recorder rec, filtered;
    sluice::ws_client client(loop.executor(), ws_url(server.port()),
                             quick_client(sluice::ws_client_options{}));
    client.on_state(rec.states());
    sluice::subscribe_options all;
    all.on_status = rec.statuses();
    auto sub = client.subscribe("cw:1", all, rec.events());
    sluice::subscribe_options big;
    big.filter_json = R"({"n":{"gte":3}})";
    big.on_status = filtered.statuses();
    client.subscribe("cw:*", big, filtered.events());
    client.connect();
    REQUIRE(connected(rec));
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    REQUIRE(filtered.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    CHECK(rec.statuses_copy()[0].recovered);
    CHECK_FALSE(rec.statuses_copy()[0].resumed);

    for (int i = 1; i <= 4; ++i) {
        client.publish("cw:1", R"({"n":)" + std::to_string(i) + "}",
                       rec.published("p" + std::to_string(i)));
    }
    REQUIRE(
        rec.wait_for([](recorder& r) { return r.outcomes_.size() == 4 && r.events_.size() == 4; }));
    auto outcomes = rec.outcomes_copy();
    for (std::size_t i = 0; i < 4; ++i) {
        CHECK(outcomes[i].tag == "p" + std::to_string(i + 1));
        CHECK_FALSE(outcomes[i].error);
        CHECK(outcomes[i].position.offset == i + 1);
        CHECK(!outcomes[i].position.epoch.empty());
    }
    auto events = rec.events_copy();
    CHECK(offsets(events, "cw:1") == std::vector<std::uint64_t>{1, 2, 3, 4});
    CHECK(events[0].sub == "cw:1");
    CHECK(events[0].data == R"({"n":1})");
    REQUIRE(filtered.wait_for([](recorder& r) { return r.events_.size() == 2; }));
    CHECK(offsets(filtered.events_copy(), "cw:1") == std::vector<std::uint64_t>{3, 4});
    CHECK(filtered.events_copy()[0].sub == "cw:*");

    // A publish the server refuses completes once with its error.
    client.publish("bad topic", "1", rec.published("bad"));
    client.publish("cw:1", "not json", rec.published("notjson"));
    REQUIRE(rec.wait_for([](recorder& r) { return r.outcomes_.size() == 6; }));
    outcomes = rec.outcomes_copy();
    for (std::size_t i = 4; i < 6; ++i) {
        if (outcomes[i].tag == "bad") CHECK(outcomes[i].error == sluice::errc::invalid_topic);
        if (outcomes[i].tag == "notjson") CHECK(outcomes[i].error == sluice::errc::bad_request);
    }
    CHECK(outcomes[4].tag != outcomes[5].tag);

    CHECK(sub.active());
    sub.unsubscribe();
    CHECK_FALSE(sub.active());
    client.publish("cw:1", R"({"n":5})", rec.published("p5"));
    REQUIRE(rec.wait_for([](recorder& r) { return r.outcomes_.size() == 7; }));
    REQUIRE(filtered.wait_for([](recorder& r) { return r.events_.size() == 3; }));
    CHECK(rec.events_copy().size() == 4);  // nothing after the unsubscribe

    // Subscribing twice to one string is refused locally.
    recorder twice;
    sluice::subscribe_options o;
    o.on_status = twice.statuses();
    auto dup = client.subscribe("cw:*", o, twice.events());
    REQUIRE(twice.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    CHECK(twice.statuses_copy()[0].error == sluice::errc::already_subscribed);
    CHECK_FALSE(dup.active());

    client.close();
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
    CHECK_FALSE(rec.states_copy().back().error);
}

TEST_CASE("ws_client: a server restart resumes with since: no gap, no duplicate", "[client][ws]") {
    restartable_server server;
    client_loop loop;
    recorder rec;
    sluice::ws_client client(loop.executor(), ws_url(server.port()),
                             quick_client(sluice::ws_client_options{}));
    client.on_state(rec.states());
    sluice::subscribe_options o;
    o.on_status = rec.statuses();
    client.subscribe("rs:1", o, rec.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    for (int i = 1; i <= 5; ++i) server.publish("rs:1", std::to_string(i));
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 5; }));

    server.stop();  // close 1001: reconnectable
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.count_state_locked(client_state_kind::reconnecting) >= 1; }));
    for (int i = 6; i <= 10; ++i) server.publish("rs:1", std::to_string(i));
    server.start();
    REQUIRE(connected(rec, 2));
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.events_.size() == 10 && r.statuses_.size() == 2; }));
    for (int i = 11; i <= 12; ++i) server.publish("rs:1", std::to_string(i));
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 12; }));
    std::vector<std::uint64_t> want;
    for (std::uint64_t i = 1; i <= 12; ++i) want.push_back(i);
    CHECK(offsets(rec.events_copy(), "rs:1") == want);
    auto st = rec.statuses_copy();
    CHECK(st[1].resumed);
    CHECK(st[1].recovered);
    auto states = rec.states_copy();
    bool saw_1001 = false;
    for (auto& s : states) {
        if (s.kind == client_state_kind::reconnecting) {
            saw_1001 = saw_1001 || s.close_code == 1001;
            CHECK(s.delay <= 200ms);
        }
    }
    CHECK(saw_1001);

    // reset_connection(): a cut without a close frame resumes the same way.
    client.reset_connection();
    REQUIRE(connected(rec, 3));
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 3; }));
    server.publish("rs:1", "13");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 13; }));
    CHECK(rec.events_copy().back().offset == 13);
}

TEST_CASE("ws_client: recovered == false when the history was trimmed or the epoch changed",
          "[client][ws]") {
    sluice::hub_options h;
    h.history_size = 3;
    restartable_server server(h);
    client_loop loop;
    recorder rec;
    sluice::ws_client client(loop.executor(), ws_url(server.port()),
                             quick_client(sluice::ws_client_options{}));
    client.on_state(rec.states());
    sluice::subscribe_options o;
    o.on_status = rec.statuses();
    client.subscribe("tr:1", o, rec.events());
    client.connect();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
    server.publish("tr:1", "1");
    server.publish("tr:1", "2");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 2; }));
    server.stop();
    for (int i = 3; i <= 10; ++i) server.publish("tr:1", std::to_string(i));
    server.start();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 2; }));
    auto st = rec.statuses_copy()[1];
    CHECK(st.resumed);
    CHECK_FALSE(st.recovered);
    CHECK(st.offset == 10);
    server.publish("tr:1", "11");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 3; }));
    CHECK(offsets(rec.events_copy(), "tr:1") == std::vector<std::uint64_t>{1, 2, 11});

    // A new hub: a new epoch, not recovered, and the new epoch's events delivered.
    const std::string old_epoch = rec.events_copy().back().epoch;
    server.stop();
    server.replace_hub();
    server.start();
    REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 3; }));
    CHECK_FALSE(rec.statuses_copy()[2].recovered);
    server.publish("tr:1", "1");
    REQUIRE(rec.wait_for([](recorder& r) { return r.events_.size() == 4; }));
    auto last = rec.events_copy().back();
    CHECK(last.offset == 1);
    CHECK(last.epoch != old_epoch);
}

TEST_CASE("ws_client: publishes made offline are flushed in order on connection", "[client][ws]") {
    restartable_server server;
    client_loop loop;
    recorder rec;
    sluice::ws_client client(loop.executor(), ws_url(server.port()),
                             quick_client(sluice::ws_client_options{}));
    client.subscribe("ob:1", rec.events());
    for (int i = 1; i <= 150; ++i) {  // over the server's 100/s: paced by the client
        client.publish("ob:1", std::to_string(i), rec.published(std::to_string(i)));
    }
    client.connect();
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.outcomes_.size() == 150 && r.events_.size() == 150; }, 10s));
    auto outcomes = rec.outcomes_copy();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        CHECK_FALSE(outcomes[i].error);
        CHECK(outcomes[i].tag == std::to_string(i + 1));
        CHECK(outcomes[i].position.offset == i + 1);
    }
    auto events = rec.events_copy();
    for (std::size_t i = 0; i < events.size(); ++i) CHECK(events[i].data == std::to_string(i + 1));

    // close() cancels what is still waiting.
    recorder late;
    client.close();
    client.publish("ob:1", "1", late.published("after-close"));
    REQUIRE(late.wait_for([](recorder& r) { return r.outcomes_.size() == 1; }));
    CHECK(late.outcomes_copy()[0].error);
}

TEST_CASE("ws_client: 401 and 403 are fatal with a clear error", "[client][ws]") {
    const std::string secret = "a-secret-of-at-least-32-bytes-long!!";
    restartable_server server({}, std::make_shared<sluice::jwt_policy>(secret));
    client_loop loop;
    SECTION("bad token: 401") {
        recorder rec;
        auto o = quick_client(sluice::ws_client_options{});
        o.token = "not-a-token";
        sluice::ws_client client(loop.executor(), ws_url(server.port()), o);
        client.on_state(rec.states());
        client.subscribe("a:1", rec.events());
        client.connect();
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
        auto s = rec.states_copy().back();
        CHECK(s.error == sluice::errc::unauthorized);
        CHECK(s.http_status == 401);
        CHECK(rec.count_state(client_state_kind::connecting) == 1);
    }
    SECTION("a valid token gets in; a forbidden topic is refused per subscription") {
        recorder rec;
        auto o = quick_client(sluice::ws_client_options{});
        o.token = sluice::jwt_sign(secret, R"({"sub":"u1","subscribe":["ok:#"]})");
        sluice::ws_client client(loop.executor(), ws_url(server.port()), o);
        client.on_state(rec.states());
        sluice::subscribe_options so;
        so.on_status = rec.statuses();
        auto no = client.subscribe("no:1", so, rec.events());
        client.connect();
        REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
        CHECK(rec.statuses_copy()[0].error == sluice::errc::forbidden);
        CHECK_FALSE(no.active());
    }
}

TEST_CASE("ws_client: a disallowed Origin gets 403, fatal", "[client][ws]") {
    sluice::server_options so = quick_options();
    so.allowed_origins = {"https://good.example"};
    restartable_server server({}, nullptr, so);
    client_loop loop;
    recorder rec;
    auto o = quick_client(sluice::ws_client_options{});
    o.headers = {{"Origin", "https://evil.example"}};
    sluice::ws_client client(loop.executor(), ws_url(server.port()), o);
    client.on_state(rec.states());
    client.connect();
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
    auto s = rec.states_copy().back();
    CHECK(s.error == sluice::errc::forbidden);
    CHECK(s.http_status == 403);
}

TEST_CASE("ws_client: refused connections back off, then the breaker opens", "[client][ws]") {
    client_loop loop;
    std::uint16_t port;
    {
        restartable_server gone;  // a port that refuses connections once it is gone
        port = gone.port();
    }
    recorder rec;
    auto o = quick_client(sluice::ws_client_options{});
    o.reconnect.jitter = sluice::jitter_mode::none;
    o.reconnect.initial_delay = 10ms;
    o.reconnect.max_delay = 10ms;
    sluice::circuit_breaker_options b;
    b.consecutive_failures = 3;
    b.open_duration = 300ms;
    o.breaker = b;
    sluice::ws_client client(loop.executor(), ws_url(port), o);
    client.on_state(rec.states());
    client.connect();
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.count_state_locked(client_state_kind::circuit_open) >= 1; }));
    auto states = rec.states_copy();
    std::size_t connecting = 0, reconnecting = 0;
    for (auto& s : states) {
        if (s.kind == client_state_kind::connecting) ++connecting;
        if (s.kind == client_state_kind::reconnecting) {
            ++reconnecting;
            CHECK(s.delay == 10ms);
            CHECK(s.error);
        }
        if (s.kind == client_state_kind::circuit_open) {
            CHECK(s.delay > 200ms);
            CHECK(s.delay <= 300ms);
        }
    }
    CHECK(connecting == 3);
    CHECK(reconnecting == 2);
    // Half-open: one probe after the open duration, which fails and reopens.
    REQUIRE(rec.wait_for(
        [](recorder& r) { return r.count_state_locked(client_state_kind::circuit_open) >= 2; }));
    CHECK(rec.count_state(client_state_kind::connecting) == 4);
}

TEST_CASE("ws_client: wss verifies the certificate: refused without the CA, works with it",
          "[client][ws][tls]") {
    restartable_server server;
    self_signed_cert cert;
    tls_forwarder tls(cert, server.port());
    client_loop loop;
    const std::string url = "wss://127.0.0.1:" + std::to_string(tls.port()) + "/ws";
    SECTION("without the CA: fatal tls_verification_failed") {
        recorder rec;
        sluice::ws_client client(loop.executor(), url, quick_client(sluice::ws_client_options{}));
        client.on_state(rec.states());
        client.connect();
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
        CHECK(rec.states_copy().back().error == sluice::client_errc::tls_verification_failed);
        CHECK(tls.handshakes() == 0);
    }
    SECTION("with the CA but another host name: fatal tls_verification_failed") {
        recorder rec;
        auto o = quick_client(sluice::ws_client_options{});
        o.tls.ca_file = cert.ca_file();
        o.tls.server_name = "other.example";
        sluice::ws_client client(loop.executor(), url, o);
        client.on_state(rec.states());
        client.connect();
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.count_state_locked(client_state_kind::closed) == 1; }));
        CHECK(rec.states_copy().back().error == sluice::client_errc::tls_verification_failed);
    }
    SECTION("with the CA: events flow") {
        recorder rec;
        auto o = quick_client(sluice::ws_client_options{});
        o.tls.ca_file = cert.ca_file();
        sluice::ws_client client(loop.executor(), url, o);
        client.on_state(rec.states());
        sluice::subscribe_options so;
        so.on_status = rec.statuses();
        client.subscribe("tls:1", so, rec.events());
        client.connect();
        REQUIRE(rec.wait_for([](recorder& r) { return r.statuses_.size() == 1; }));
        client.publish("tls:1", R"({"secure":true})", rec.published("p"));
        REQUIRE(rec.wait_for(
            [](recorder& r) { return r.events_.size() == 1 && r.outcomes_.size() == 1; }));
        CHECK(rec.events_copy()[0].data == R"({"secure":true})");
        CHECK(tls.handshakes() == 1);
    }
    SECTION("localhost resolves and verifies by name (SNI)") {
        recorder rec;
        auto o = quick_client(sluice::ws_client_options{});
        o.tls.ca_file = cert.ca_file();
        sluice::ws_client client(loop.executor(), "wss://localhost:" + std::to_string(tls.port()),
                                 o);
        client.on_state(rec.states());
        client.connect();
        REQUIRE(rec.wait_for([](recorder& r) {
            return r.count_state_locked(client_state_kind::connected) == 1 ||
                   r.count_state_locked(client_state_kind::closed) == 1;
        }));
        CHECK(rec.count_state(client_state_kind::connected) == 1);
    }
}

TEST_CASE("ws_client and sse_client: misuse at construction throws", "[client]") {
    client_loop loop;
    auto ex = loop.executor();
    CHECK_THROWS_AS(sluice::ws_client(ex, "http://127.0.0.1:1/ws"), std::invalid_argument);
    CHECK_THROWS_AS(sluice::ws_client(ex, "ws://"), std::invalid_argument);
    CHECK_THROWS_AS(sluice::sse_client(ex, "ws://127.0.0.1:1/"), std::invalid_argument);
    sluice::ws_client_options o;
    o.connect_timeout = 0ms;
    CHECK_THROWS_AS(sluice::ws_client(ex, "ws://127.0.0.1:1/", o), std::invalid_argument);
    sluice::ws_client_options bad_backoff;
    bad_backoff.reconnect.multiplier = 0.5;
    CHECK_THROWS_AS(sluice::ws_client(ex, "ws://127.0.0.1:1/", bad_backoff), std::invalid_argument);
    sluice::ws_client_options no_ca;
    no_ca.tls.ca_file = "/nonexistent/ca.pem";
    CHECK_THROWS_AS(sluice::ws_client(ex, "wss://127.0.0.1:1/", no_ca), std::invalid_argument);
    CHECK_NOTHROW(sluice::sse_client(ex, "https://[::1]:1/events"));
}
