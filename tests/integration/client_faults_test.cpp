// sluice::ws_client and sluice::sse_client against a real in-process hub and
// server, through the fault-injecting proxy (tests/support/fault_proxy.hpp):
// cuts while a publisher runs (no loss, no duplicate), a gap beyond the
// history (`recovered == false`), a blackholed link found by the heartbeat,
// the breaker opening on refusals and closing when the server is back, the
// outbox flushed in order (and published once) after a cut, and a server
// restart (a new epoch). Every wait is bounded.
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include "fault_proxy.hpp"
#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <set>

using namespace sluice::test;
using sluice::client_errc;
using sluice::client_state_kind;

namespace {

constexpr auto long_wait = std::chrono::milliseconds(15000);

/// The server's options for these tests: quick timers, no per-IP handshake
/// limit in the way of many reconnections, short SSE retry hints and
/// heartbeats.
sluice::server_options fault_server_options() {
    auto o = quick_options();
    o.handshake_rate = 100000;
    o.sse_retry_min = 20ms;
    o.sse_retry_max = 50ms;
    o.sse_heartbeat = 100ms;
    return o;
}

struct ws_kind {
    using client = sluice::ws_client;
    using options = sluice::ws_client_options;
    static std::string url(std::uint16_t port) {
        return "ws://127.0.0.1:" + std::to_string(port) + "/ws";
    }
    static void short_heartbeat(options& o) {
        o.ping_interval = 200ms;
        o.pong_timeout = 600ms;
    }
};

struct sse_kind {
    using client = sluice::sse_client;
    using options = sluice::sse_client_options;
    static std::string url(std::uint16_t port) {
        return "http://127.0.0.1:" + std::to_string(port) + "/events";
    }
    static void short_heartbeat(options& o) { o.heartbeat_timeout = 800ms; }
};

/// Fast reconnections, no breaker, a fixed seed.
template <class Kind>
typename Kind::options fast_options() {
    typename Kind::options o;
    o.connect_timeout = 2s;
    o.reconnect.initial_delay = 20ms;
    o.reconnect.max_delay = 200ms;
    o.breaker.reset();
    o.seed = 42;
    return o;
}

struct seen_event {
    std::string sub;
    std::string topic;
    std::uint64_t offset = 0;
    std::string epoch;
    std::string data;
};

struct seen_status {
    std::string topic;
    std::error_code error;
    bool resumed = false;
    bool recovered = true;
    std::uint64_t offset = 0;
    std::string epoch;
};

struct seen_state {
    sluice::client_state state;
    std::uint64_t proxy_accepted = 0;  // the proxy's count when the state was reported
};

/// Collects what a client reports, from its strand; the test thread waits on
/// it (bounded) and reads it under the lock.
class recorder {
public:
    explicit recorder(const fault_proxy* proxy = nullptr) : proxy_(proxy) {}

    sluice::client_event_handler on_event() {
        return [this](const sluice::client_event& e) {
            std::lock_guard<std::mutex> lock(mutex_);
            events.push_back({std::string(e.sub), std::string(e.topic), e.offset,
                              std::string(e.epoch), std::string(e.data)});
            changed_.notify_all();
        };
    }
    sluice::subscription_status_handler on_status() {
        return [this](const sluice::subscription_status& s) {
            std::lock_guard<std::mutex> lock(mutex_);
            statuses.push_back({std::string(s.topic), s.error, s.resumed, s.recovered, s.offset,
                                std::string(s.epoch)});
            changed_.notify_all();
        };
    }
    sluice::client_state_handler on_state() {
        return [this](const sluice::client_state& s) {
            std::lock_guard<std::mutex> lock(mutex_);
            states.push_back({s, proxy_ ? proxy_->accepted() : 0});
            changed_.notify_all();
        };
    }
    sluice::subscribe_options sub_options() {
        sluice::subscribe_options o;
        o.on_status = on_status();
        return o;
    }

    /// Waits until `pred()` (called under the lock) holds; false after `timeout`.
    template <class Pred>
    bool wait(Pred pred, std::chrono::milliseconds timeout = long_wait) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, pred);
    }
    /// Runs `f()` under the lock and returns its result.
    template <class F>
    auto read(F f) {
        std::lock_guard<std::mutex> lock(mutex_);
        return f();
    }

    // Under the lock only (inside wait / read).
    std::size_t count(client_state_kind kind) const {
        return static_cast<std::size_t>(
            std::count_if(states.begin(), states.end(),
                          [&](const seen_state& s) { return s.state.kind == kind; }));
    }
    bool has_offset(std::uint64_t offset) const {
        return std::any_of(events.begin(), events.end(),
                           [&](const seen_event& e) { return e.offset == offset; });
    }
    std::vector<std::uint64_t> offsets() const {
        std::vector<std::uint64_t> out;
        for (const auto& e : events) out.push_back(e.offset);
        return out;
    }

    std::vector<seen_event> events;
    std::vector<seen_status> statuses;
    std::vector<seen_state> states;

private:
    const fault_proxy* proxy_;
    std::mutex mutex_;
    std::condition_variable changed_;
};

/// A hub and server, a proxy in front of it, one client of `Kind` through the
/// proxy, and a recorder. Destruction: the client first.
template <class Kind>
struct rig {
    explicit rig(sluice::hub_options hub = {})
        : server(std::make_unique<test_server>(fault_server_options(), hub)),
          proxy(net.executor(), server->port()) {}
    rig(const rig&) = delete;
    rig& operator=(const rig&) = delete;
    ~rig() { client.reset(); }

    typename Kind::client& make_client(typename Kind::options options) {
        client = std::make_unique<typename Kind::client>(
            client_io.executor(), Kind::url(proxy.port()), std::move(options));
        client->on_state(rec.on_state());
        return *client;
    }

    /// Subscribes `topic`, connects, and waits for the first `subscribed`.
    void start(const std::string& topic, typename Kind::options options) {
        make_client(std::move(options));
        client->subscribe(topic, rec.sub_options(), rec.on_event());
        client->connect();
        REQUIRE(rec.wait([&] { return !rec.statuses.empty(); }));
        REQUIRE(rec.read([&] { return !rec.statuses.front().error; }));
    }

    io_thread net;
    std::unique_ptr<test_server> server;
    fault_proxy proxy;
    io_thread client_io;
    recorder rec{&proxy};
    std::unique_ptr<typename Kind::client> client;
};

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (auto i = first; i <= last; ++i) out.push_back(i);
    return out;
}

std::string data_of(std::uint64_t i) { return R"({"i":)" + std::to_string(i) + "}"; }

}  // namespace

TEMPLATE_TEST_CASE("client faults: cuts while publishing lose nothing and duplicate nothing",
                   "[client][faults]", ws_kind, sse_kind) {
    rig<TestType> r;
    r.start("cuts:1", fast_options<TestType>());

    constexpr std::uint64_t total = 400;
    std::atomic<bool> publishing{true};
    std::thread publisher([&] {
        for (std::uint64_t i = 1; i <= total; ++i) {
            auto [ec, pos] = r.server->publish("cuts:1", data_of(i));
            if (ec || pos.offset != i) break;
            std::this_thread::sleep_for(3ms);  // a live feed, not a burst
        }
        publishing = false;
    });
    int cuts = 0;
    while (publishing) {
        std::this_thread::sleep_for(150ms);
        r.proxy.cut(cuts % 2 == 1);  // FIN and RST in turn
        ++cuts;
    }
    publisher.join();

    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(total); }));
    r.rec.read([&] {
        CHECK(r.rec.offsets() == range(1, total));  // every offset once, in order
        for (const auto& e : r.rec.events) {
            CHECK(e.topic == "cuts:1");
            CHECK(e.sub == "cuts:1");
            CHECK(e.epoch == r.rec.events.front().epoch);
            CHECK(e.data == data_of(e.offset));
        }
        CHECK(r.rec.count(client_state_kind::connected) >= 3);  // it really was cut
        for (const auto& s : r.rec.statuses) {
            CHECK_FALSE(s.error);
            CHECK(s.recovered);  // within history: every gap was filled
        }
        CHECK(std::count_if(r.rec.statuses.begin(), r.rec.statuses.end(),
                            [](const seen_status& s) { return s.resumed; }) >= 2);
        return 0;
    });
    CHECK(cuts >= 3);
}

TEMPLATE_TEST_CASE("client faults: a gap beyond the history is reported recovered == false",
                   "[client][faults]", ws_kind, sse_kind) {
    sluice::hub_options hub;
    hub.history_size = 5;
    rig<TestType> r(hub);
    r.start("trim:1", fast_options<TestType>());
    for (std::uint64_t i = 1; i <= 3; ++i)
        REQUIRE_FALSE(r.server->publish("trim:1", data_of(i)).first);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(3); }));

    r.proxy.refuse(true, refusal::not_listening);
    r.proxy.cut();
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::reconnecting) >= 1; }));
    // 20 events while it is away: the history keeps only 19..23.
    std::string epoch;
    for (std::uint64_t i = 4; i <= 23; ++i) {
        auto [ec, pos] = r.server->publish("trim:1", data_of(i));
        REQUIRE_FALSE(ec);
        epoch = pos.epoch;
    }
    r.proxy.refuse(false, refusal::not_listening);

    REQUIRE(r.rec.wait([&] { return r.rec.statuses.size() >= 2; }));
    auto status = r.rec.read([&] { return r.rec.statuses.back(); });
    CHECK_FALSE(status.error);
    CHECK(status.resumed);
    CHECK_FALSE(status.recovered);
    CHECK(status.offset == 23);
    CHECK(status.epoch == epoch);

    REQUIRE_FALSE(r.server->publish("trim:1", data_of(24)).first);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(24); }));
    // Nothing of the trimmed gap, nothing partially replayed: live from 24.
    CHECK(r.rec.read([&] { return r.rec.offsets(); }) == std::vector<std::uint64_t>{1, 2, 3, 24});
}

TEMPLATE_TEST_CASE("client faults: the heartbeat finds a blackholed link", "[client][faults]",
                   ws_kind, sse_kind) {
    rig<TestType> r;
    auto options = fast_options<TestType>();
    TestType::short_heartbeat(options);
    r.start("hb:1", options);
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::connected) == 1; }));

    auto is_heartbeat_timeout = [&] {
        return std::any_of(r.rec.states.begin(), r.rec.states.end(), [](const seen_state& s) {
            return s.state.error == client_errc::heartbeat_timeout;
        });
    };
    // A healthy but idle link is not mistaken for a dead one.
    CHECK_FALSE(r.rec.wait(is_heartbeat_timeout, 1500ms));

    r.proxy.blackhole(true);
    auto t0 = steady::now();
    REQUIRE_FALSE(r.server->publish("hb:1", data_of(1)).first);  // swallowed by the blackhole
    REQUIRE(r.rec.wait(is_heartbeat_timeout, 5000ms));
    auto detected_after = steady::now() - t0;
    CHECK(detected_after < 4s);
    CHECK(r.rec.read([&] { return r.rec.events.empty(); }));
    auto reported = r.rec.read([&] {
        auto it = std::find_if(r.rec.states.begin(), r.rec.states.end(), [](const seen_state& s) {
            return s.state.error == client_errc::heartbeat_timeout;
        });
        return it->state.kind;
    });
    CHECK((reported == client_state_kind::reconnecting ||
           reported == client_state_kind::circuit_open));

    r.proxy.blackhole(false);
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::connected) >= 2; }));
    REQUIRE_FALSE(r.server->publish("hb:1", data_of(2)).first);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(2); }));
    // The event lost in the blackhole came back by recovery, once.
    CHECK(r.rec.read([&] { return r.rec.offsets(); }) == std::vector<std::uint64_t>{1, 2});
}

TEMPLATE_TEST_CASE(
    "client faults: the breaker opens on refusals and closes when the server is back",
    "[client][faults]", ws_kind, sse_kind) {
    rig<TestType> r;
    auto options = fast_options<TestType>();
    options.reconnect.initial_delay = 10ms;
    options.reconnect.max_delay = 50ms;
    sluice::circuit_breaker_options breaker;
    breaker.consecutive_failures = 3;
    breaker.open_duration = 400ms;
    options.breaker = breaker;
    if constexpr (std::is_same_v<TestType, sse_kind>) options.use_retry_hint = false;
    r.start("brk:1", options);
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::connected) == 1; }));

    SECTION("connections closed at once") { r.proxy.refuse(true, refusal::close_at_once); }
    SECTION("connections refused") { r.proxy.refuse(true, refusal::not_listening); }
    REQUIRE(r.proxy.settle());
    auto accepted_before = r.proxy.accepted();
    r.proxy.cut();

    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::circuit_open) >= 1; }));
    auto open = r.rec.read([&] {
        return *std::find_if(r.rec.states.begin(), r.rec.states.end(), [](const seen_state& s) {
            return s.state.kind == client_state_kind::circuit_open;
        });
    });
    CHECK(open.state.delay > 0ns);
    CHECK(open.state.delay <= 400ms);
    CHECK(open.state.error);

    // While open, no attempt reaches the network: the next attempt (the
    // probe) comes only after the open state, and the proxy saw nothing new.
    REQUIRE(r.rec.wait([&] {
        auto at = std::find_if(r.rec.states.begin(), r.rec.states.end(), [](const seen_state& s) {
            return s.state.kind == client_state_kind::circuit_open;
        });
        return std::any_of(at, r.rec.states.end(), [](const seen_state& s) {
            return s.state.kind == client_state_kind::connecting;
        });
    }));
    auto probe = r.rec.read([&] {
        auto at = std::find_if(r.rec.states.begin(), r.rec.states.end(), [](const seen_state& s) {
            return s.state.kind == client_state_kind::circuit_open;
        });
        return *std::find_if(at, r.rec.states.end(), [](const seen_state& s) {
            return s.state.kind == client_state_kind::connecting;
        });
    });
    CHECK(probe.proxy_accepted == open.proxy_accepted);
    if (r.proxy.refused() > 0) {
        // close_at_once: exactly the 3 failed attempts in a row reached the
        // proxy before the breaker opened.
        CHECK(open.proxy_accepted - accepted_before == 3);
    }

    // The probe fails too: the breaker opens again rather than hammering.
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::circuit_open) >= 2; }));
    auto attempts_while_down = r.proxy.accepted() - accepted_before;
    CHECK(attempts_while_down <= 5);

    REQUIRE_FALSE(r.server->publish("brk:1", data_of(1)).first);  // missed while down
    r.proxy.refuse(false, refusal::not_listening);
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::connected) >= 2; }));
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(1); }));

    // Closed again: a new cut reconnects with the backoff, not the breaker.
    auto opens = r.rec.read([&] { return r.rec.count(client_state_kind::circuit_open); });
    r.proxy.cut();
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::connected) >= 3; }));
    CHECK(r.rec.read([&] { return r.rec.count(client_state_kind::circuit_open); }) == opens);
    REQUIRE_FALSE(r.server->publish("brk:1", data_of(2)).first);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(2); }));
    CHECK(r.rec.read([&] { return r.rec.offsets(); }) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("client faults: the outbox is flushed in order after a cut (ws_client)",
          "[client][faults][outbox]") {
    rig<ws_kind> r;
    r.start("ob:1", fast_options<ws_kind>());

    r.proxy.refuse(true, refusal::not_listening);
    r.proxy.cut();
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::reconnecting) >= 1; }));

    struct outcome {
        std::uint64_t i;
        std::error_code ec;
        std::uint64_t offset;
    };
    std::mutex mutex;
    std::vector<outcome> outcomes;
    constexpr std::uint64_t total = 30;
    for (std::uint64_t i = 1; i <= total; ++i) {
        r.client->publish("ob:1", data_of(i),
                          [&, i](std::error_code ec, const sluice::stream_position& at) {
                              std::lock_guard<std::mutex> lock(mutex);
                              outcomes.push_back({i, ec, at.offset});
                          });
    }
    auto done = [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return outcomes.size();
    };
    REQUIRE(r.rec.wait([&] { return r.rec.count(client_state_kind::reconnecting) >= 2; }));
    CHECK(done() == 0);  // nothing answered while away

    r.proxy.refuse(false, refusal::not_listening);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(total); }));
    REQUIRE(eventually([&] { return done() == total; }, long_wait));

    std::lock_guard<std::mutex> lock(mutex);
    for (std::size_t k = 0; k < outcomes.size(); ++k) {
        CHECK(outcomes[k].i == k + 1);  // completed in the order published
        CHECK_FALSE(outcomes[k].ec);
        CHECK(outcomes[k].offset == k + 1);  // published in that order
    }
    r.rec.read([&] {
        CHECK(r.rec.offsets() == range(1, total));
        for (const auto& e : r.rec.events) CHECK(e.data == data_of(e.offset));
        return 0;
    });
    // Published once each: the next offset of the topic is total + 1.
    CHECK(r.server->publish("ob:1", data_of(total + 1)).second.offset == total + 1);
}

TEST_CASE("client faults: a publish whose answer was cut is re-sent and published once (ws_client)",
          "[client][faults][outbox]") {
    rig<ws_kind> r;
    r.start("ob:2", fast_options<ws_kind>());

    // Every chunk is held 1 s by the proxy: the publish reaches the server
    // after 1 s, its answer would come back 1 s later; the link is cut as soon
    // as the server has published it, so the answer is lost.
    r.proxy.delay(1000ms);
    std::atomic<int> calls{0};
    std::error_code result = std::make_error_code(std::errc::interrupted);
    std::uint64_t offset = 0;
    std::mutex mutex;
    r.client->publish("ob:2", data_of(1),
                      [&](std::error_code ec, const sluice::stream_position& at) {
                          std::lock_guard<std::mutex> lock(mutex);
                          result = ec;
                          offset = at.offset;
                          ++calls;
                      });
    REQUIRE(eventually([&] { return r.server->metric("sluice_messages_published_total") >= 1; },
                       5000ms));
    r.proxy.cut();
    r.proxy.delay(0ms);
    CHECK(calls == 0);

    REQUIRE(eventually([&] { return calls.load() == 1; }, long_wait));
    {
        std::lock_guard<std::mutex> lock(mutex);
        CHECK_FALSE(result);
        CHECK(offset == 1);  // the first answer, repeated by the server
    }
    CHECK(r.server->metric("sluice_messages_published_total") == 1);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(1); }));
    CHECK(r.server->publish("ob:2", data_of(2)).second.offset == 2);
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(2); }));
    CHECK(r.rec.read([&] { return r.rec.offsets(); }) == std::vector<std::uint64_t>{1, 2});
    CHECK(calls == 1);
}

TEMPLATE_TEST_CASE("client faults: a server restart gives a new epoch, recovered == false",
                   "[client][faults]", ws_kind, sse_kind) {
    rig<TestType> r;
    r.start("rs:1", fast_options<TestType>());
    std::string old_epoch;
    for (std::uint64_t i = 1; i <= 5; ++i) {
        auto [ec, pos] = r.server->publish("rs:1", data_of(i));
        REQUIRE_FALSE(ec);
        old_epoch = pos.epoch;
    }
    REQUIRE(r.rec.wait([&] { return r.rec.has_offset(5); }));

    // The server is replaced by a new process (a new in-memory hub) on
    // another port; the proxy plays the load balancer that follows it.
    auto replacement = std::make_unique<test_server>(fault_server_options());
    r.proxy.set_target(replacement->port());
    REQUIRE(r.proxy.settle());
    r.server.reset();  // graceful: 1001 to the WebSocket, the SSE stream ends
    r.server = std::move(replacement);

    REQUIRE(r.rec.wait([&] { return r.rec.statuses.size() >= 2; }));
    auto status = r.rec.read([&] { return r.rec.statuses.back(); });
    CHECK_FALSE(status.error);
    CHECK(status.resumed);
    CHECK_FALSE(status.recovered);
    CHECK(status.epoch != old_epoch);
    CHECK(status.offset == 0);

    // The new epoch's offsets start at 1 again, and are all delivered.
    std::string new_epoch;
    for (std::uint64_t i = 1; i <= 8; ++i) {
        auto [ec, pos] = r.server->publish("rs:1", data_of(100 + i));
        REQUIRE_FALSE(ec);
        new_epoch = pos.epoch;
    }
    CHECK(new_epoch == status.epoch);
    REQUIRE(r.rec.wait([&] { return r.rec.events.size() >= 13; }));
    r.rec.read([&] {
        REQUIRE(r.rec.events.size() == 13);
        for (std::size_t k = 0; k < 5; ++k) {
            CHECK(r.rec.events[k].offset == k + 1);
            CHECK(r.rec.events[k].epoch == old_epoch);
        }
        for (std::size_t k = 5; k < 13; ++k) {
            CHECK(r.rec.events[k].offset == k - 4);
            CHECK(r.rec.events[k].epoch == new_epoch);
            CHECK(r.rec.events[k].data == data_of(100 + (k - 4)));
        }
        return 0;
    });
}
