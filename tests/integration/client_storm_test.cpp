// A reconnection storm: 500 sluice::ws_client lose their server at once (the
// fault proxy cuts every link) and come back. With full jitter (the default)
// their first retry delays, as reported by their `reconnecting(delay,
// attempt)` states, and their connection arrivals at the proxy spread over the
// whole backoff window; without jitter they all come back at the same moment.
// Every wait is bounded; the whole file runs in a few seconds.
#include <sluice/ws_client.hpp>

#include "fault_proxy.hpp"
#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <cmath>
#include <mutex>

using namespace sluice::test;
using sluice::client_state_kind;

namespace {

constexpr std::size_t clients = 500;
constexpr auto window = std::chrono::milliseconds(2000);  // the first retry's un-jittered delay

// 500 clients, 500 proxied links (two sockets each) and 500 server sessions
// in one process: more descriptors than the usual soft limit of 1024.
void raise_nofile_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

struct stats {
    double min = 0, max = 0, mean = 0, stddev = 0, p5 = 0, p95 = 0;
    std::array<std::size_t, 10> buckets{};  // over [0, span]
};

/// Statistics of `values` (seconds), histogram over [0, span] (values past
/// the span land in the last bucket).
stats describe(std::vector<double> values, double span) {
    stats s;
    std::sort(values.begin(), values.end());
    s.min = values.front();
    s.max = values.back();
    s.p5 = values[values.size() * 5 / 100];
    s.p95 = values[values.size() * 95 / 100];
    for (double v : values) s.mean += v;
    s.mean /= static_cast<double>(values.size());
    for (double v : values) s.stddev += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(s.stddev / static_cast<double>(values.size()));
    for (double v : values) {
        auto b = static_cast<std::size_t>(std::max(0.0, v) / span * 10.0);
        ++s.buckets[std::min<std::size_t>(b, 9)];
    }
    return s;
}

std::size_t largest(const stats& s) {
    return *std::max_element(s.buckets.begin(), s.buckets.end());
}

/// What one client reported after the cut.
struct after_cut {
    bool seen = false;
    std::chrono::nanoseconds delay{0};  // of its `reconnecting` state
    std::uint32_t attempt = 0;
    steady::time_point noticed;  // when it reported `reconnecting`
    steady::time_point retried;  // when it reported the next `connecting`
};

/// The seconds after the cut of a storm, per client: when it noticed the
/// cut, the delay it announced, when it tried again; and when the proxy
/// accepted each new connection.
struct storm_result {
    std::vector<double> noticed, delays, waited, arrivals;
};

/// Runs the storm with `jitter`.
storm_result storm(sluice::jitter_mode jitter) {
    raise_nofile_limit();
    auto server_options = quick_options();
    server_options.handshake_rate = 100000;  // 500 clients share one IP
    test_server server(server_options);
    io_thread net;
    fault_proxy proxy(net.executor(), server.port());
    io_thread client_io;

    std::mutex mutex;
    std::size_t connected = 0;
    bool cut = false;
    std::vector<after_cut> reports(clients);
    std::vector<std::unique_ptr<sluice::ws_client>> crowd;
    crowd.reserve(clients);
    for (std::size_t i = 0; i < clients; ++i) {
        sluice::ws_client_options o;
        o.reconnect.initial_delay = window;
        o.reconnect.max_delay = 4 * window;
        o.reconnect.jitter = jitter;
        o.healthy_after = 50ms;
        o.connect_timeout = 10s;
        o.breaker.reset();
        o.seed = 1000 + i;  // consecutive seeds (instance ids): unrelated jitter all the same
        auto c = std::make_unique<sluice::ws_client>(
            client_io.executor(), "ws://127.0.0.1:" + std::to_string(proxy.port()) + "/ws", o);
        c->on_state([&, i](const sluice::client_state& s) {
            std::lock_guard<std::mutex> lock(mutex);
            if (s.kind == client_state_kind::connected) ++connected;
            auto& r = reports[i];
            if (s.kind == client_state_kind::reconnecting && cut && !r.seen) {
                r = {true, s.delay, s.attempt, steady::now(), {}};
            } else if (s.kind == client_state_kind::connecting && r.seen &&
                       r.retried == steady::time_point{}) {
                r.retried = steady::now();
            }
        });
        c->connect();
        crowd.push_back(std::move(c));
    }
    auto count_connected = [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return connected;
    };
    REQUIRE(eventually([&] { return count_connected() == clients; }, 30s));
    REQUIRE(eventually([&] { return proxy.open_links() == clients; }));
    std::this_thread::sleep_for(100ms);  // past healthy_after: the backoff starts afresh

    proxy.clear_accept_times();
    {
        std::lock_guard<std::mutex> lock(mutex);
        cut = true;
    }
    auto t0 = steady::now();
    proxy.cut();
    REQUIRE(eventually([&] { return count_connected() == 2 * clients; }, 20s));

    storm_result out;
    {
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto& r : reports) {
            REQUIRE(r.seen);
            CHECK(r.attempt == 1);  // the first retry of a healthy connection
            out.noticed.push_back(seconds(r.noticed - t0));
            out.delays.push_back(seconds(r.delay));
            out.waited.push_back(seconds(r.retried - r.noticed));
        }
    }
    for (auto t : proxy.accept_times()) out.arrivals.push_back(seconds(t - t0));
    CHECK(out.arrivals.size() == clients);  // one attempt each: none failed
    crowd.clear();                          // closes them all before the proxy and the server go
    return out;
}

/// What each client waited (from its `reconnecting` state to its next
/// `connecting` state, both seen in callbacks that queue behind the other
/// clients' work) matches the delay it announced: timers fire late on a busy
/// machine, not early.
void check_waits_follow_delays(const storm_result& r) {
    const double w = seconds(window);
    std::vector<double> late;
    for (std::size_t i = 0; i < r.delays.size(); ++i) late.push_back(r.waited[i] - r.delays[i]);
    std::sort(late.begin(), late.end());
    CHECK(late.front() > -0.05 * w);
    CHECK(late[late.size() * 95 / 100] < 0.1 * w);
}

void print(const char* what, const stats& s) {
    std::printf("%-28s min %.3f p5 %.3f mean %.3f p95 %.3f max %.3f sd %.3f  buckets", what, s.min,
                s.p5, s.mean, s.p95, s.max, s.stddev);
    for (auto b : s.buckets) std::printf(" %zu", b);
    std::printf("\n");
}

}  // namespace

TEST_CASE("client storm: full jitter spreads 500 reconnections over the window",
          "[client][storm]") {
    auto r = storm(sluice::jitter_mode::full);
    const double w = seconds(window);
    auto n = describe(r.noticed, w);
    auto d = describe(r.delays, w);
    auto a = describe(r.arrivals, w);
    print("full jitter, noticed (s)", n);
    print("full jitter, delays (s)", d);
    print("full jitter, arrivals (s)", a);

    // Announced delays: uniform in [0, window] (sd of a uniform: w / sqrt(12)).
    CHECK(d.min >= 0.0);
    CHECK(d.max <= w);
    CHECK(d.stddev > 0.2 * w);
    CHECK(d.p95 - d.p5 > 0.7 * w);
    CHECK(largest(d) <= clients / 4);  // no bucket of the 10 holds more than 25 %
    check_waits_follow_delays(r);
    // Arrivals at the server side follow them: spread over the window, far
    // more than over the moments the clients noticed the cut.
    CHECK(a.p95 - a.p5 > 0.6 * w);
    CHECK(a.p95 - a.p5 > 2 * (n.p95 - n.p5));
    CHECK(a.stddev > 0.2 * w);
    CHECK(largest(a) <= clients / 4);
}

TEST_CASE("client storm: without jitter the 500 reconnections arrive together", "[client][storm]") {
    auto r = storm(sluice::jitter_mode::none);
    const double w = seconds(window);
    auto n = describe(r.noticed, w);
    auto d = describe(r.delays, w);
    auto a = describe(r.arrivals, 2 * w);
    print("no jitter, noticed (s)", n);
    print("no jitter, delays (s)", d);
    print("no jitter, arrivals (s)", a);

    CHECK(d.min == Approx(w));  // every client waits exactly the window
    CHECK(d.max == Approx(w));
    check_waits_follow_delays(r);
    CHECK(a.p5 >= w);  // nobody early...
    // ...and no more spread than the moments they noticed the cut had (a
    // busy machine's timer lateness aside): a storm.
    CHECK(a.p95 - a.p5 < (n.p95 - n.p5) + 0.15 * w);
    CHECK(a.p95 - a.p5 < 0.2 * w);
}
