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
using sluice::bench::loadgen::client;
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

double cpu_seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
        .count();
}

/// User + system CPU seconds of process `pid` (fields 14 and 15 of its stat).
double process_cpu(pid_t pid) {
    if (pid <= 0) return 0;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) return 0;
    const char* p = stat.c_str() + close_paren + 2;
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field <= 15 && p; ++field) {
        if (field == 14) utime = std::strtoull(p, nullptr, 10);
        if (field == 15) stime = std::strtoull(p, nullptr, 10);
        p = std::strchr(p, ' ');
        if (p) ++p;
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

void raise_nofile_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/// As server_bench: defaults, except that one IP may open many connections at
/// once, the publisher is not throttled, queues hold a whole run and no ping
/// falls due during one.
sluice::server_options loaded_options() {
    sluice::server_options o;
    o.client_rate = 1000;
    o.client_rate_window = 10ms;
    o.max_queue_bytes = std::size_t{64} << 20;
    o.send_timeout = 60s;
    o.ping_interval = 600s;
    o.handshake_rate = 1000;
    o.handshake_window = 1ms;
    return o;
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

struct stream_config {
    setup kind = setup::memory;
    std::size_t subscribers = 0;
    std::size_t events = 0;
    std::size_t window = 64;  ///< un-acked publishes in flight (fan-out)
    double rate_hz = 0;       ///< > 0: publish at this fixed rate instead
    std::size_t data_bytes = 100;
    std::chrono::seconds timeout{120};
};

struct stream_result {
    stream_config config;
    std::uint64_t delivered = 0;
    std::uint64_t missing = 0;
    std::uint64_t out_of_order = 0;
    std::vector<std::string> failures;
    double hub_cpu = 0, redis_cpu = 0, wall = 0;
    std::vector<std::int64_t> latencies_ns;

    bool correct() const { return missing == 0 && out_of_order == 0 && failures.empty(); }
    double events_per_second() const {
        return wall > 0 ? static_cast<double>(config.events) / wall : 0;
    }
    double deliveries_per_cpu_second() const {
        double cpu = hub_cpu + redis_cpu;
        return cpu > 0 ? static_cast<double>(delivered) / cpu : 0;
    }
};

/// One run: the hubs of `kind`, S subscribers and one publisher driven from
/// this thread, every offset checked.
class stream_run {
public:
    stream_run(const stream_config& c, sluice::test::redis_server* redis)
        : cfg_(c), redis_(redis), timer_(io_) {
        result_.config = c;
        const std::uint16_t redis_port = c.kind == setup::memory ? 0 : redis->port();
        if (redis_port) {
            auto flushed = redis->command({"FLUSHALL"});
            if (flushed.is_error()) fail("FLUSHALL: " + flushed.str);
        }
        nodes_.push_back(std::make_unique<node>(redis_port));
        if (c.kind == setup::redis_cross) nodes_.push_back(std::make_unique<node>(redis_port));
        for (auto& n : nodes_) {
            if (redis_port && !n->wait_backplane_up(10s)) fail("a hub did not join Redis in 10 s");
        }
        auto at = [](const node& n) {
            return asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), n.port());
        };
        publish_endpoint_ = at(*nodes_.front());
        subscribe_endpoint_ = at(*nodes_.back());
        states_.resize(c.subscribers);
        pad_.assign(c.data_bytes, 'x');
        if (c.rate_hz > 0) result_.latencies_ns.reserve(c.subscribers * c.events);
    }

    stream_result run() {
        if (!result_.failures.empty()) return std::move(result_);
        timer_.expires_after(cfg_.timeout);
        timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) fail("timed out after " + std::to_string(cfg_.timeout.count()) + " s");
        });
        publisher_ = std::make_shared<client>(io_, client::transport::websocket, "/ws");
        publisher_->on_open = [this](client&) { maybe_begin(); };
        publisher_->on_message = [this](client&, std::string_view m) { on_publisher_message(m); };
        publisher_->on_failure = [this](client&, std::string_view why) {
            fail("publisher: " + std::string(why));
        };
        publisher_->start(publish_endpoint_);
        for (std::size_t i = 0; i < std::min<std::size_t>(100, cfg_.subscribers); ++i)
            connect_next();
        io_.run();
        if (!finished_) result_.wall = std::chrono::duration<double>(steady::now() - t0_).count();
        for (auto& s : states_) {
            if (s.received < cfg_.events) result_.missing += cfg_.events - s.received;
            result_.delivered += s.received;
        }
        return std::move(result_);
    }

private:
    struct sub_state {
        std::uint64_t first = 0;  ///< subscribed.offset + 1
        std::uint64_t next = 0;
        std::uint64_t received = 0;
        bool ready = false;
        bool done = false;
    };

    double hub_cpu() const {
        double sum = 0;
        for (const auto& n : nodes_) sum += n->cpu();
        return sum;
    }
    double redis_cpu() const { return cfg_.kind == setup::memory ? 0 : process_cpu(redis_->pid()); }

    void connect_next() {
        if (started_ >= cfg_.subscribers || stopped_) return;
        std::size_t index = started_++;
        auto c = std::make_shared<client>(io_, client::transport::websocket, "/ws");
        c->tag = index;
        c->on_open = [](client& self) {
            self.send_text(R"({"type":"subscribe","id":1,"topic":"bench"})");
        };
        c->on_message = [this](client& self, std::string_view m) {
            on_subscriber_message(self.tag, m);
        };
        c->on_failure = [this](client& self, std::string_view why) {
            fail("subscriber " + std::to_string(self.tag) + ": " + std::string(why));
        };
        subscribers_.push_back(c);
        c->start(subscribe_endpoint_);
    }

    void on_subscriber_message(std::size_t index, std::string_view m) {
        using sluice::bench::loadgen::field_u64;
        auto& s = states_[index];
        auto type = sluice::bench::loadgen::message_type(m);
        if (type == "event") {
            const std::uint64_t offset = field_u64(m, R"("offset":)");
            if (!s.ready || offset < s.next) {
                ++result_.out_of_order;
                return;
            }
            s.next = offset + 1;
            if (offset - s.first >= cfg_.events) {
                return fail("subscriber " + std::to_string(index) + " got offset " +
                            std::to_string(offset) + " beyond the last published");
            }
            ++s.received;
            if (cfg_.rate_hz > 0)
                result_.latencies_ns.push_back(now_ns() -
                                               static_cast<std::int64_t>(field_u64(m, R"("t":)")));
            if (s.next == s.first + cfg_.events && !s.done) {
                s.done = true;
                ++done_;
                maybe_finish();
            }
        } else if (type == "subscribed") {
            if (s.ready) return fail("second subscribed for one subscriber");
            s.ready = true;
            s.first = s.next = field_u64(m, R"("offset":)") + 1;
            ++ready_;
            connect_next();
            maybe_begin();
        } else if (type == "error") {
            fail("subscriber got " + std::string(m));
        }
    }

    void maybe_begin() {
        if (began_ || ready_ < cfg_.subscribers || !publisher_->is_open()) return;
        began_ = true;
        t0_ = steady::now();
        hub_cpu0_ = hub_cpu();
        redis_cpu0_ = redis_cpu();
        if (cfg_.rate_hz > 0) {
            period_ = std::chrono::duration_cast<steady::duration>(
                std::chrono::duration<double>(1.0 / cfg_.rate_hz));
            tick(t0_);
        } else {
            while (sent_ < cfg_.events && sent_ - acked_ < cfg_.window) publish_one();
        }
    }

    void tick(steady::time_point due) {
        if (stopped_) return;
        publish_one();
        if (sent_ >= cfg_.events) return;
        due += period_;
        if (!rate_timer_) rate_timer_.emplace(io_);
        rate_timer_->expires_at(due);
        rate_timer_->async_wait([this, due](const std::error_code& ec) {
            if (!ec) tick(due);
        });
    }

    void publish_one() {
        ++sent_;
        std::string t = std::to_string(now_ns());
        // `data` is exactly cfg_.data_bytes long: {"t":T,"pad":"xx…"}
        std::size_t fixed = 5 + t.size() + 9;
        std::size_t pad = cfg_.data_bytes > fixed ? cfg_.data_bytes - fixed : 0;
        std::string msg = R"({"type":"publish","id":)" + std::to_string(sent_) +
                          R"(,"topic":"bench","data":{"t":)" + t + R"(,"pad":")";
        msg.append(pad_, 0, pad);
        msg += "\"}}";
        publisher_->send_text(msg);
    }

    void on_publisher_message(std::string_view m) {
        auto type = sluice::bench::loadgen::message_type(m);
        if (type == "published") {
            ++acked_;
            if (cfg_.rate_hz <= 0) {
                while (sent_ < cfg_.events && sent_ - acked_ < cfg_.window) publish_one();
            }
            maybe_finish();
        } else if (type == "error") {
            fail("publisher got " + std::string(m));
        }
    }

    void maybe_finish() {
        if (finished_ || done_ < cfg_.subscribers || acked_ < cfg_.events) return;
        finished_ = true;
        result_.hub_cpu = hub_cpu() - hub_cpu0_;
        result_.redis_cpu = redis_cpu() - redis_cpu0_;
        result_.wall = std::chrono::duration<double>(steady::now() - t0_).count();
        stop();
    }

    void fail(std::string why) {
        result_.failures.push_back(std::move(why));
        stop();
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        timer_.cancel();
        if (rate_timer_) rate_timer_->cancel();
        if (publisher_) publisher_->close();
        for (auto& c : subscribers_) c->close();
    }

    stream_config cfg_;
    sluice::test::redis_server* redis_;
    std::vector<std::unique_ptr<node>> nodes_;
    asio::io_context io_;
    asio::steady_timer timer_;
    std::optional<asio::steady_timer> rate_timer_;
    asio::ip::tcp::endpoint publish_endpoint_, subscribe_endpoint_;
    std::shared_ptr<client> publisher_;
    std::vector<std::shared_ptr<client>> subscribers_;
    std::vector<sub_state> states_;
    std::string pad_;
    stream_result result_;
    std::size_t started_ = 0, ready_ = 0, done_ = 0, sent_ = 0, acked_ = 0;
    bool began_ = false, finished_ = false, stopped_ = false;
    steady::time_point t0_{};
    steady::duration period_{};
    double hub_cpu0_ = 0, redis_cpu0_ = 0;
};

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1e6;
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
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
        stream_run run(c, redis.get());
        auto r = run.run();
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
