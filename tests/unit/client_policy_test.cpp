// The clients' pure decisions (src/client_policy.hpp): close codes and HTTP
// statuses, the reconnection schedule (backoff, breaker, healthy reset) on a
// manual clock, and the resume position of a subscription.
#include "client_policy.hpp"

#include "manual_clock.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using sluice::client_errc;
using sluice::errc;
using sluice::detail::disconnect_action;
using sluice::test::manual_clock;

TEST_CASE("client policy: close codes follow PROTOCOL.md 3.4", "[client][policy]") {
    using sluice::detail::classify_close_code;
    for (std::uint16_t code : {1001, 1005, 1006, 1011, 1012, 1013, 4001, 4100}) {
        INFO(code);
        CHECK(classify_close_code(code).action == disconnect_action::reconnect);
        CHECK(classify_close_code(code).error == client_errc::connection_lost);
    }
    for (std::uint16_t code : {1000, 1002, 1003, 1007, 1009, 4500, 4999}) {
        INFO(code);
        CHECK(classify_close_code(code).action == disconnect_action::fatal);
        CHECK(classify_close_code(code).error == client_errc::closed_by_server);
    }
    CHECK(classify_close_code(4401).action == disconnect_action::fatal);
    CHECK(classify_close_code(4401).error == errc::unauthorized);
    CHECK(classify_close_code(1008).error == errc::forbidden);
    CHECK(classify_close_code(4503).error == errc::forbidden);
    CHECK(classify_close_code(4429).action == disconnect_action::reconnect_slow);
    CHECK(classify_close_code(4429).error == errc::rate_limited);
}

TEST_CASE("client policy: HTTP answers to the handshake", "[client][policy]") {
    using sluice::detail::classify_http_status;
    CHECK(classify_http_status(401, "unauthorized").action == disconnect_action::fatal);
    CHECK(classify_http_status(401, "").error == errc::unauthorized);
    CHECK(classify_http_status(403, "").error == errc::forbidden);
    CHECK(classify_http_status(429, "").action == disconnect_action::reconnect_slow);
    CHECK(classify_http_status(503, "").action == disconnect_action::reconnect);
    CHECK(classify_http_status(503, "").error == errc::unavailable);
    CHECK(classify_http_status(502, "").error == client_errc::handshake_failed);
    CHECK(classify_http_status(502, "").action == disconnect_action::reconnect);
    CHECK(classify_http_status(400, "invalid_topic").error == errc::invalid_topic);
    CHECK(classify_http_status(400, "too_many_subscriptions").error ==
          errc::too_many_subscriptions);
    CHECK(classify_http_status(400, "what").error == client_errc::handshake_failed);
    CHECK(classify_http_status(404, "").action == disconnect_action::fatal);
}

namespace {

using policy = sluice::detail::basic_reconnect_policy<manual_clock>;

sluice::backoff_options fixed(std::chrono::milliseconds initial) {
    sluice::backoff_options b;
    b.initial_delay = initial;
    b.multiplier = 2;
    b.max_delay = 1s;
    b.jitter = sluice::jitter_mode::none;
    return b;
}

}  // namespace

TEST_CASE("client policy: backoff grows, resets after a healthy connection", "[client][policy]") {
    manual_clock::reset();
    policy p(fixed(100ms), std::nullopt, 10s, std::minstd_rand(1));
    auto now = manual_clock::now();
    REQUIRE_FALSE(p.begin_attempt(now));
    p.attempt_failed(now, disconnect_action::reconnect);
    auto d = p.next(now, disconnect_action::reconnect);
    CHECK(d.kind == policy::decision::wait);
    CHECK(d.delay == 100ms);
    CHECK(d.attempt == 1);
    CHECK(p.next(now, disconnect_action::reconnect).delay == 200ms);
    // A connection that lasted less than healthy_after: the backoff goes on.
    p.attempt_succeeded(now);
    manual_clock::advance(9s);
    p.connection_lost(manual_clock::now());
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect).delay == 400ms);
    // One that lasted 10 s: the next delay is the first again.
    p.attempt_succeeded(manual_clock::now());
    manual_clock::advance(10s);
    p.connection_lost(manual_clock::now());
    d = p.next(manual_clock::now(), disconnect_action::reconnect);
    CHECK(d.delay == 100ms);
    CHECK(d.attempt == 1);
    // 4429 takes three steps at once; Retry-After is a lower bound.
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect_slow).delay == 800ms);
    p.reset(manual_clock::now());
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect, 3s).delay == 3s);
    CHECK(p.next(manual_clock::now(), disconnect_action::fatal).kind == policy::decision::give_up);
}

TEST_CASE("client policy: max_attempts gives up", "[client][policy]") {
    manual_clock::reset();
    auto b = fixed(10ms);
    b.max_attempts = 2;
    policy p(b, std::nullopt, 10s, std::minstd_rand(1));
    auto now = manual_clock::now();
    CHECK(p.next(now, disconnect_action::reconnect).kind == policy::decision::wait);
    CHECK(p.next(now, disconnect_action::reconnect).kind == policy::decision::wait);
    CHECK(p.next(now, disconnect_action::reconnect).kind == policy::decision::give_up);
}

TEST_CASE("client policy: the breaker opens after failed attempts and probes half-open",
          "[client][policy]") {
    manual_clock::reset();
    sluice::circuit_breaker_options cb;
    cb.consecutive_failures = 3;
    cb.open_duration = 5s;
    policy p(fixed(100ms), cb, 10s, std::minstd_rand(1));
    for (int i = 0; i < 3; ++i) {
        auto now = manual_clock::now();
        REQUIRE_FALSE(p.begin_attempt(now));
        p.attempt_failed(now, disconnect_action::reconnect);
        auto d = p.next(now, disconnect_action::reconnect);
        CHECK(d.kind == (i < 2 ? policy::decision::wait : policy::decision::circuit_open));
        if (i == 2) CHECK(d.delay == 5s);
        manual_clock::advance(d.delay);
    }
    // Open time over: one probe; a second concurrent one is refused.
    REQUIRE_FALSE(p.begin_attempt(manual_clock::now()));
    CHECK(p.breaker()->state() == sluice::circuit_state::half_open);
    p.attempt_succeeded(manual_clock::now());
    CHECK(p.breaker()->state() == sluice::circuit_state::closed);
    // Fatal refusals say nothing about the server's health.
    for (int i = 0; i < 5; ++i) {
        REQUIRE_FALSE(p.begin_attempt(manual_clock::now()));
        p.attempt_failed(manual_clock::now(), disconnect_action::fatal);
    }
    CHECK(p.breaker()->state() == sluice::circuit_state::closed);
}

TEST_CASE("client policy: the open breaker answers with the time left", "[client][policy]") {
    manual_clock::reset();
    sluice::circuit_breaker_options cb;
    cb.consecutive_failures = 1;
    cb.open_duration = 2s;
    policy p(fixed(100ms), cb, 10s, std::minstd_rand(1));
    REQUIRE_FALSE(p.begin_attempt(manual_clock::now()));
    p.attempt_failed(manual_clock::now(), disconnect_action::reconnect);
    manual_clock::advance(500ms);
    auto wait = p.begin_attempt(manual_clock::now());
    REQUIRE(wait);
    CHECK(*wait == 1500ms);
}

TEST_CASE("client policy: the SSE retry hint replaces the first delay", "[client][policy]") {
    manual_clock::reset();
    policy p(fixed(1s), std::nullopt, 10s, std::minstd_rand(1));
    p.set_initial_delay(250ms);
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect).delay == 250ms);
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect).delay == 500ms);
    p.set_initial_delay(100ms);  // keeps the attempts made
    CHECK(p.next(manual_clock::now(), disconnect_action::reconnect).delay == 400ms);
}

TEST_CASE("client policy: full jitter spreads the first delay, none does not", "[client][policy]") {
    manual_clock::reset();
    auto b = fixed(1s);
    b.jitter = sluice::jitter_mode::full;
    std::minstd_rand seeds(7);
    std::vector<std::chrono::nanoseconds> delays;
    for (int i = 0; i < 200; ++i) {
        policy p(b, std::nullopt, 10s, std::minstd_rand(seeds()));
        delays.push_back(p.next(manual_clock::now(), disconnect_action::reconnect).delay);
    }
    auto [lo, hi] = std::minmax_element(delays.begin(), delays.end());
    CHECK(*lo < 100ms);
    CHECK(*hi > 900ms);
    CHECK(*hi <= 1s);
}

TEST_CASE("resume position: drops duplicates, follows the answers", "[client][resume]") {
    sluice::detail::resume_position pos;
    CHECK_FALSE(pos.known());
    // A plain subscribe: continue after the answer's top.
    pos.on_subscribed(false, false, 4, "e1");
    CHECK(pos.known());
    CHECK_FALSE(pos.accept(4, "e1"));
    CHECK(pos.accept(5, "e1"));
    CHECK(pos.accept(7, "e1"));  // filtered subscriptions see gaps
    CHECK_FALSE(pos.accept(6, "e1"));
    CHECK_FALSE(pos.accept(7, "e1"));
    // Recovered: the replay follows, the position stays.
    pos.on_subscribed(true, true, 12, "e1");
    CHECK(pos.offset() == 7);
    CHECK(pos.accept(8, "e1"));
    // Not recovered: continue from the answer's position.
    pos.on_subscribed(true, false, 20, "e2");
    CHECK(pos.epoch() == "e2");
    CHECK_FALSE(pos.accept(20, "e2"));
    CHECK(pos.accept(21, "e2"));
    // A new epoch is always delivered.
    CHECK(pos.accept(1, "e3"));
    // Patterns carry no epoch: nothing changes.
    pos.on_subscribed(false, false, 0, "");
    CHECK(pos.epoch() == "e3");
}
