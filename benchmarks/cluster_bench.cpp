// Cluster benchmarks: what the Redis backplane (PROTOCOL.md section 9) costs
// against the in-memory broker, measured in the same run.
//
// Setups (each hub with its own server runs alone on its own thread):
//   memory      one in-memory hub; publisher and subscribers on it (baseline);
//   redis-same  one hub with the Redis backplane; publisher and subscribers on
//               it (every publish makes the round trip through Redis);
//   redis-cross two hubs with the Redis backplane; publisher on hub A,
//               subscribers on hub B (the cluster path).
// Redis is a real redis-server started by tests/support/redis_server.hpp
// (persistence off, loopback), flushed before every run.
//
// Modes (docs/benchmarks.d/cluster.md explains the method and the figures):
//   fanout   S WebSocket subscribers on one topic, a WebSocket publisher with
//            at most 64 un-acked publishes; events per second (wall) and
//            deliveries per CPU-second of the hub threads (+ redis-server).
//   latency  a publisher at a fixed rate; publish-to-receive p50/p99/max, and
//            what Redis adds to the in-memory figure.
// Every run checks that every subscriber got every offset exactly once and in
// order, and exits non-zero otherwise.
//
// Usage: cluster_bench [--quick] [--mode=fanout|latency] [--rounds=N]
//                      [--setup=memory|redis-same|redis-cross] (profiling aids)
// A library built without Redis (SLUICE_WITH_REDIS=OFF): prints a "skipped"
// line and exits 0.
#include "../tests/support/redis_server.hpp"
#include "bench.hpp"
#include "loadgen_client.hpp"
#include "stream_run.hpp"

#include <sluice/server.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using sluice::bench::cpu_seconds;
using sluice::bench::load_average;
using sluice::bench::loaded_options;
using sluice::bench::median;
using sluice::bench::percentile_ms;
using sluice::bench::raise_nofile_limit;
using steady = std::chrono::steady_clock;

enum class setup { memory, redis_same, redis_cross };

const char* name_of(setup s) {
    switch (s) {
    case setup::memory: return "memory";
    case setup::redis_same: return "redis-same";
    case setup::redis_cross: return "redis-cross";
    }
    return "?";
}

/// User + system CPU seconds of process `pid` (fields 14 and 15 of its stat).
double process_cpu(pid_t pid) {
    if (pid <= 0) return 0;
    auto [user, sys] = sluice::bench::stat_user_sys("/proc/" + std::to_string(pid) + "/stat");
    return user + sys;
}

/// One hub and its server on their own thread: in memory, or joined to the
/// Redis on `redis_port`.
class node {
public:
    explicit node(std::uint16_t redis_port) {
        auto policy = std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/true);
        if (redis_port != 0) {
            sluice::redis_options redis;
            redis.host = "127.0.0.1";
            redis.port = redis_port;
            hub_ = std::make_unique<sluice::hub>(io_.get_executor(), policy, sluice::hub_options{},
                                                 redis);
        } else {
            hub_ = std::make_unique<sluice::hub>(io_.get_executor(), policy);
        }
        server_ = std::make_unique<sluice::server>(io_, *hub_, loaded_options());
        if (server_->listen("127.0.0.1", 0)) {
            std::fprintf(stderr, "cluster_bench: cannot listen\n");
            std::exit(2);
        }
        port_ = server_->local_endpoint().port();
        thread_ = std::thread([this] {
            io_.run();
            finished_ = true;
        });
        pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_);
    }
    node(const node&) = delete;
    node& operator=(const node&) = delete;

    ~node() {
        asio::post(io_, [this] {
            work_.reset();
            server_->stop([this] { io_.stop(); });
        });
        for (int i = 0; i < 300 && !finished_.load(); ++i) std::this_thread::sleep_for(10ms);
        io_.stop();
        thread_.join();
        server_.reset();
        hub_.reset();
    }

    std::uint16_t port() const { return port_; }
    double cpu() const { return cpu_seconds(cpu_clock_); }

    /// Waits (bounded) until the hub says its backplane is up; asked on the
    /// hub's own thread.
    bool wait_backplane_up(std::chrono::milliseconds timeout) {
        auto deadline = steady::now() + timeout;
        while (steady::now() < deadline) {
            std::promise<bool> p;
            auto f = p.get_future();
            asio::post(io_, [&] { p.set_value(hub_->backplane_up()); });
            if (f.wait_for(1s) == std::future_status::ready && f.get()) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

private:
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        io_.get_executor()};
    std::unique_ptr<sluice::hub> hub_;
    std::unique_ptr<sluice::server> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    clockid_t cpu_clock_{};
    std::atomic<bool> finished_{false};
};

struct stream_config : sluice::bench::stream_spec {
    setup kind = setup::memory;
    stream_config() { timeout = std::chrono::seconds(120); }
};

struct stream_result : sluice::bench::stream_counts {
    stream_config config;
    double hub_cpu = 0, redis_cpu = 0;

    double events_per_second() const {
        return wall > 0 ? static_cast<double>(config.events) / wall : 0;
    }
    double deliveries_per_cpu_second() const {
        double cpu = hub_cpu + redis_cpu;
        return cpu > 0 ? static_cast<double>(delivered) / cpu : 0;
    }
};

/// One run: the hubs of `kind`, S subscribers and one publisher driven from
/// this thread, every offset checked; the CPU of the hub threads and of
/// redis-server is read at the start and end of the measured window.
stream_result run_stream(const stream_config& c, sluice::test::redis_server* redis) {
    stream_result r;
    r.config = c;
    const std::uint16_t redis_port = c.kind == setup::memory ? 0 : redis->port();
    if (redis_port) {
        auto flushed = redis->command({"FLUSHALL"});
        if (flushed.is_error()) r.failures.push_back("FLUSHALL: " + flushed.str);
    }
    std::vector<std::unique_ptr<node>> nodes;
    nodes.push_back(std::make_unique<node>(redis_port));
    if (c.kind == setup::redis_cross) nodes.push_back(std::make_unique<node>(redis_port));
    for (auto& n : nodes) {
        if (redis_port && !n->wait_backplane_up(10s))
            r.failures.push_back("a hub did not join Redis in 10 s");
    }
    if (!r.failures.empty()) return r;
    auto at = [](const node& n) {
        return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), n.port());
    };
    auto hub_cpu = [&] {
        double sum = 0;
        for (const auto& n : nodes) sum += n->cpu();
        return sum;
    };
    auto redis_cpu = [&] { return c.kind == setup::memory ? 0 : process_cpu(redis->pid()); };
    double hub_cpu0 = 0, redis_cpu0 = 0;
    sluice::bench::drive_stream(
        c, at(*nodes.front()), at(*nodes.back()), /*connect_concurrency=*/100, r,
        [&] {
            hub_cpu0 = hub_cpu();
            redis_cpu0 = redis_cpu();
        },
        [&] {
            r.hub_cpu = hub_cpu() - hub_cpu0;
            r.redis_cpu = redis_cpu() - redis_cpu0;
        });
    return r;
}

bool check(const stream_result& r) {
    for (std::size_t i = 0; i < r.failures.size() && i < 3; ++i) {
        std::fprintf(stderr, "cluster_bench: %s: %s\n", name_of(r.config.kind),
                     r.failures[i].c_str());
    }
    if (r.missing || r.out_of_order) {
        std::fprintf(stderr, "cluster_bench: %s: %llu missing, %llu duplicate or reordered\n",
                     name_of(r.config.kind), static_cast<unsigned long long>(r.missing),
                     static_cast<unsigned long long>(r.out_of_order));
    }
    return r.correct();
}

}  // namespace

int main(int argc, char** argv) {
    auto settings = sluice::bench::parse_args(argc, argv);
    const bool quick = settings.quick;
    if (!sluice::hub::redis_supported()) {
        std::printf("cluster_bench: skipped: sluice built without Redis (SLUICE_WITH_REDIS=OFF)\n");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();
    std::string only_mode, only_setup;
    int rounds_arg = 0;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.rfind("--mode=", 0) == 0) only_mode = a.substr(7);
        if (a.rfind("--rounds=", 0) == 0) rounds_arg = std::atoi(argv[i] + 9);
        if (a.rfind("--setup=", 0) == 0) only_setup = a.substr(8);
    }
    auto want = [&](const char* mode) { return only_mode.empty() || only_mode == mode; };

    const std::size_t fanout_subs = quick ? 10 : 200;
    const std::size_t fanout_events = quick ? 100 : 5000;
    const int fanout_rounds = rounds_arg > 0 ? rounds_arg : quick ? 1 : 3;
    const std::size_t latency_subs = quick ? 10 : 100;
    const double latency_rate = quick ? 200 : 100;
    const std::size_t latency_events = quick ? 40 : 1000;  // 0.2 s / 10 s

    std::unique_ptr<sluice::test::redis_server> redis;
    try {
        redis = std::make_unique<sluice::test::redis_server>();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cluster_bench: %s\n", e.what());
        return 1;
    }
    auto version = redis->command({"INFO", "server"}).str;
    auto vpos = version.find("redis_version:");
    version = vpos == std::string::npos
                  ? "?"
                  : version.substr(vpos + 14, version.find('\r', vpos) - vpos - 14);

    std::printf("# cluster_bench%s\n\n", quick ? " --quick" : "");
    std::printf("Load average at start: %s (%u CPUs); redis-server %s on 127.0.0.1:%u\n\n",
                load_average().c_str(), std::thread::hardware_concurrency(), version.c_str(),
                redis->port());
    const setup kinds[] = {setup::memory, setup::redis_same, setup::redis_cross};
    auto use = [&](int k) { return only_setup.empty() || only_setup == name_of(kinds[k]); };
    bool ok = true;
    // One run of `kind`; a failed check makes the program exit 1 at the end.
    auto run_checked = [&](setup kind, std::size_t subscribers, std::size_t events,
                           double rate_hz) {
        stream_config c;
        c.kind = kind;
        c.subscribers = subscribers;
        c.events = events;
        c.rate_hz = rate_hz;
        auto r = run_stream(c, redis.get());
        ok = check(r) && ok;
        return r;
    };

    double fanout_eps[3] = {0, 0, 0};
    if (want("fanout")) {
        std::printf(
            "## Fan-out (%zu WebSocket subscribers, %zu events of %d-byte data, window 64; "
            "median of %d)\n\n",
            fanout_subs, fanout_events, 100, fanout_rounds);
        std::printf(
            "| setup | events / s | deliveries / s | hub CPU s | redis-server CPU s | "
            "deliveries / CPU-s (hubs + Redis) | wall s |\n|---|---:|---:|---:|---:|---:|---:|\n");
        std::vector<stream_result> results[3];
        // Interleaved rounds, so drifting load on a shared machine hits every
        // setup alike.
        for (int round = 0; round < fanout_rounds; ++round) {
            for (int k = 0; k < 3; ++k) {
                if (!use(k)) continue;
                results[k].push_back(run_checked(kinds[k], fanout_subs, fanout_events, 0));
            }
        }
        for (int k = 0; k < 3; ++k) {
            if (!use(k)) continue;
            std::vector<double> eps, dps, hub, rcpu, per_cpu, wall;
            for (auto& r : results[k]) {
                eps.push_back(r.events_per_second());
                dps.push_back(r.wall > 0 ? static_cast<double>(r.delivered) / r.wall : 0);
                hub.push_back(r.hub_cpu);
                rcpu.push_back(r.redis_cpu);
                per_cpu.push_back(r.deliveries_per_cpu_second());
                wall.push_back(r.wall);
            }
            fanout_eps[k] = median(eps);
            std::printf("| %s | %.0f | %.0f | %.3f | %.3f | %.0f | %.3f |\n", name_of(kinds[k]),
                        fanout_eps[k], median(dps), median(hub), median(rcpu), median(per_cpu),
                        median(wall));
        }
        std::printf("\n");
    }

    double p50[3] = {0, 0, 0}, p99[3] = {0, 0, 0};
    if (want("latency")) {
        std::printf("## Publish-to-receive latency (%zu subscribers, %.0f events/s for %.1f s)\n\n",
                    latency_subs, latency_rate, static_cast<double>(latency_events) / latency_rate);
        std::printf(
            "| setup | samples | p50 ms | p99 ms | max ms | added p50 ms | added p99 ms |\n"
            "|---|---:|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < 3; ++k) {
            if (!use(k)) continue;
            auto r = run_checked(kinds[k], latency_subs, latency_events, latency_rate);
            std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
            p50[k] = percentile_ms(r.latencies_ns, 0.50);
            p99[k] = percentile_ms(r.latencies_ns, 0.99);
            double max =
                r.latencies_ns.empty() ? 0 : static_cast<double>(r.latencies_ns.back()) / 1e6;
            std::printf("| %s | %zu | %.3f | %.3f | %.3f | %+.3f | %+.3f |\n", name_of(kinds[k]),
                        r.latencies_ns.size(), p50[k], p99[k], max, p50[k] - p50[0],
                        p99[k] - p99[0]);
        }
        std::printf("\n");
    }

    std::printf("## Summary\n\n| figure | value |\n|---|---:|\n");
    if (want("fanout") && fanout_eps[0] > 0 && fanout_eps[2] > 0) {
        std::printf("| cross-hub events/s vs in-memory | %.2fx |\n", fanout_eps[2] / fanout_eps[0]);
        std::printf("| same-hub-through-Redis events/s vs in-memory | %.2fx |\n",
                    fanout_eps[1] / fanout_eps[0]);
    }
    if (want("latency") && only_setup.empty()) {
        std::printf("| p50 added by the cross-hub path | %.3f ms |\n", p50[2] - p50[0]);
        std::printf("| p99 added by the cross-hub path | %.3f ms |\n", p99[2] - p99[0]);
    }
    std::printf("| every offset exactly once, in order, every run | %s |\n", ok ? "yes" : "NO");
    std::printf("\nLoad average at end: %s\n", load_average().c_str());
    if (quick) std::printf("\n(--quick: only correctness is asserted.)\n");
    return ok ? 0 : 1;
}
