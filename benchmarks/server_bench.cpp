// Server benchmarks: sluice's hub+server against a plain websocketpp broadcast
// server (benchmarks/baseline_websocketpp.hpp), driven by a raw-Asio load
// generator (benchmarks/loadgen_client.hpp) in the same process.
//
// Modes (docs/benchmarks.d/server.md explains the method and the figures):
//   fan-out   S WebSocket subscribers on one topic, a publisher with a bounded
//             window of un-acked publishes; deliveries per server-CPU-second.
//   latency   a publisher at a fixed rate; publish-to-receive p50/p99/max.
//   idle      N subscribed WebSockets to a server in a forked child; the
//             child's RSS per connection.
//   sse       S SSE subscribers (`/events`), publisher over WebSocket.
// Every mode checks that every subscriber got every offset exactly once and in
// order, and exits non-zero otherwise.
//
// The server under test runs alone on one thread (its io_context.run(); the
// latency mode also runs sluice on two); its CPU time is read from those
// threads' CPU clocks before and after the measured window. The load generator runs on the main
// thread; its CPU is reported too.
//
// Usage: server_bench [--quick]
#define ASIO_STANDALONE
#define _WEBSOCKETPP_CPP11_STL_

#include "baseline_websocketpp.hpp"
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
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using sluice::bench::cpu_seconds;
using sluice::bench::load_average;
using sluice::bench::loaded_options;
using sluice::bench::median;
using sluice::bench::percentile_ms;
using sluice::bench::raise_nofile_limit;
using sluice::bench::thread_user_sys;
using sluice::bench::loadgen::client;

enum class server_kind { sluice, baseline };

const char* name_of(server_kind k) { return k == server_kind::sluice ? "sluice" : "websocketpp"; }

std::size_t nofile_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<std::size_t>(rl.rlim_cur);
}

/// VmRSS of `pid` in KiB (0 if unreadable).
std::size_t rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
    return 0;
}

/// The idle run keeps every default except the handshake limit.
sluice::server_options idle_options() {
    sluice::server_options o;
    o.handshake_rate = 1000;
    o.handshake_window = 1ms;
    return o;
}

/// A server running alone on its own threads (`threads` run its io_context;
/// the baseline always gets one: it is written for a single thread).
class server_under_test {
public:
    server_under_test(server_kind kind, const sluice::server_options& options,
                      unsigned threads = 1) {
        if (kind == server_kind::sluice) {
            hub_ = std::make_unique<sluice::hub>(
                io_.get_executor(),
                std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/true));
            server_ = std::make_unique<sluice::server>(io_, *hub_, options);
            if (!server_->listen("127.0.0.1", 0)) port_ = server_->local_endpoint().port();
        } else {
            baseline_ = std::make_unique<sluice::bench::baseline_server>(io_);
            port_ = baseline_->listen();
        }
        if (port_ == 0) {
            std::fprintf(stderr, "server_bench: %s cannot listen\n", name_of(kind));
            std::exit(2);
        }
        if (kind == server_kind::baseline) threads = 1;
        tids_ = std::vector<std::atomic<pid_t>>(threads);
        cpu_clocks_.resize(threads);
        for (unsigned t = 0; t < threads; ++t) {
            threads_.emplace_back([this, t] {
                tids_[t].store(static_cast<pid_t>(syscall(SYS_gettid)));
                io_.run();
                ++finished_;
            });
            pthread_getcpuclockid(threads_.back().native_handle(), &cpu_clocks_[t]);
        }
    }

    ~server_under_test() {
        asio::post(io_, [this] {
            work_.reset();
            if (server_) {
                server_->stop([this] { io_.stop(); });
            } else {
                baseline_->stop();
                io_.stop();
            }
        });
        // Bounded: a graceful stop that does not finish in 3 s is cut short.
        for (int i = 0; i < 300 && finished_.load() < threads_.size(); ++i)
            std::this_thread::sleep_for(10ms);
        io_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        hub_.reset();
        baseline_.reset();
    }

    std::uint16_t port() const { return port_; }
    /// CPU seconds the server threads have used so far, together.
    double cpu() const {
        double sum = 0;
        for (auto c : cpu_clocks_) sum += cpu_seconds(c);
        return sum;
    }
    /// User and system CPU seconds of the server threads (10 ms resolution).
    std::pair<double, double> user_sys() const {
        std::pair<double, double> sum{0, 0};
        for (const auto& t : tids_) {
            pid_t tid = t.load();
            while (tid == 0) {
                std::this_thread::yield();
                tid = t.load();
            }
            auto [user, sys] = thread_user_sys(tid);
            sum.first += user;
            sum.second += sys;
        }
        return sum;
    }

private:
    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        io_.get_executor()};
    std::unique_ptr<sluice::hub> hub_;
    std::unique_ptr<sluice::server> server_;
    std::unique_ptr<sluice::bench::baseline_server> baseline_;
    std::uint16_t port_ = 0;
    std::vector<std::thread> threads_;
    std::vector<clockid_t> cpu_clocks_;
    std::atomic<std::size_t> finished_{0};
    std::vector<std::atomic<pid_t>> tids_;
};

// ---------------------------------------------------------------------------
// Streaming runs (fan-out, latency, SSE): one server, S subscribers, one
// publisher, every offset checked.

struct stream_config : sluice::bench::stream_spec {
    server_kind kind = server_kind::sluice;
    unsigned server_threads = 1;  ///< threads running the server's io_context
};

struct stream_result : sluice::bench::stream_counts {
    stream_config config;
    double server_cpu = 0, loadgen_cpu = 0;
    double server_user = 0, server_sys = 0;

    double per_cpu_second() const {
        return server_cpu > 0 ? static_cast<double>(delivered) / server_cpu : 0;
    }
};

/// One run against a fresh server_under_test; its threads' CPU (and the load
/// generator's) is read at the start and end of the measured window.
stream_result run_stream(const stream_config& c) {
    server_under_test sut(c.kind, loaded_options(), c.server_threads);
    stream_result r;
    r.config = c;
    const auto endpoint = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), sut.port());
    double server_cpu0 = 0, loadgen_cpu0 = 0;
    std::pair<double, double> user_sys0{};
    sluice::bench::drive_stream(
        c, endpoint, endpoint, /*connect_concurrency=*/200, r,
        [&] {
            server_cpu0 = sut.cpu();
            user_sys0 = sut.user_sys();
            loadgen_cpu0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
        },
        [&] {
            r.server_cpu = sut.cpu() - server_cpu0;
            auto user_sys = sut.user_sys();
            r.server_user = user_sys.first - user_sys0.first;
            r.server_sys = user_sys.second - user_sys0.second;
            r.loadgen_cpu = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - loadgen_cpu0;
        });
    return r;
}

// ---------------------------------------------------------------------------
// Idle connections: the server alone in a forked child, its RSS read from
// /proc before and after N subscribed WebSockets.

struct idle_result {
    server_kind kind{};
    std::size_t connections = 0;
    std::size_t subscribed = 0;
    std::size_t rss_before_kib = 0, rss_after_kib = 0;
    std::vector<std::string> failures;
    bool correct() const { return failures.empty() && subscribed == connections; }
    double kib_per_connection() const {
        return connections
                   ? (static_cast<double>(rss_after_kib) - static_cast<double>(rss_before_kib)) /
                         static_cast<double>(connections)
                   : 0;
    }
};

[[noreturn]] void child_server(server_kind kind, int port_fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Hand back the heap the parent freed before fork (inherited pages would
    // otherwise absorb the child's first allocations and hide their cost).
    malloc_trim(0);
    asio::io_context io;
    std::uint16_t port = 0;
    std::unique_ptr<sluice::hub> hub;
    std::unique_ptr<sluice::server> server;
    std::unique_ptr<sluice::bench::baseline_server> baseline;
    if (kind == server_kind::sluice) {
        hub = std::make_unique<sluice::hub>(io.get_executor(),
                                            std::make_shared<sluice::anonymous_policy>(true));
        server = std::make_unique<sluice::server>(io, *hub, idle_options());
        if (!server->listen("127.0.0.1", 0)) port = server->local_endpoint().port();
    } else {
        baseline = std::make_unique<sluice::bench::baseline_server>(io);
        port = baseline->listen();
    }
    if (write(port_fd, &port, sizeof port) != static_cast<ssize_t>(sizeof port)) _exit(3);
    close(port_fd);
    auto work = asio::make_work_guard(io);
    io.run();
    _exit(0);
}

idle_result run_idle(server_kind kind, std::size_t connections, std::chrono::seconds timeout) {
    idle_result r;
    r.kind = kind;
    r.connections = connections;
    int fds[2];
    if (pipe(fds) != 0) {
        r.failures.push_back("pipe failed");
        return r;
    }
    std::fflush(stdout);
    malloc_trim(0);
    pid_t pid = fork();
    if (pid < 0) {
        r.failures.push_back("fork failed");
        return r;
    }
    if (pid == 0) {
        close(fds[0]);
        child_server(kind, fds[1]);
    }
    close(fds[1]);
    std::uint16_t port = 0;
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, 10000) == 1 &&
        read(fds[0], &port, sizeof port) == static_cast<ssize_t>(sizeof port) && port != 0) {
        std::this_thread::sleep_for(100ms);  // let the child settle before the first reading
        r.rss_before_kib = rss_kib(pid);
        asio::io_context io;
        asio::steady_timer timer(io);
        auto endpoint = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
        std::vector<std::shared_ptr<client>> clients;
        clients.reserve(connections);
        std::size_t started = 0;
        bool stopped = false;
        auto stop = [&] {
            stopped = true;
            timer.cancel();
        };
        std::function<void()> connect_next = [&] {
            if (started >= connections || stopped) return;
            auto c = std::make_shared<client>(io, client::transport::websocket, "/ws", 4096);
            c->tag = started++;
            c->on_open = [](client& self) {
                self.send_text(R"({"type":"subscribe","id":1,"topic":"idle:)" +
                               std::to_string(self.tag) + "\"}");
            };
            c->on_message = [&](client&, std::string_view m) {
                auto type = sluice::bench::loadgen::message_type(m);
                if (type == "subscribed") {
                    if (++r.subscribed == connections) stop();
                    connect_next();
                } else if (type == "error") {
                    r.failures.push_back("idle client got " + std::string(m));
                    stop();
                }
            };
            c->on_failure = [&](client& self, std::string_view why) {
                r.failures.push_back("idle client " + std::to_string(self.tag) + ": " +
                                     std::string(why));
                stop();
            };
            clients.push_back(c);
            c->start(endpoint);
        };
        timer.expires_after(timeout);
        timer.async_wait([&](const std::error_code& ec) {
            if (!ec) {
                r.failures.push_back("timed out with " + std::to_string(r.subscribed) +
                                     " subscribed");
                stopped = true;
            }
        });
        for (int i = 0; i < 100; ++i) connect_next();
        while (!stopped && io.run_one()) {
        }
        // Let the server finish what it queued (it runs in the child).
        std::this_thread::sleep_for(200ms);
        r.rss_after_kib = rss_kib(pid);
        // Killing the server first leaves TIME_WAIT on its side, not on the
        // load generator's ephemeral ports.
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        for (auto& c : clients) c->close();
    } else {
        r.failures.push_back("child server did not start");
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    close(fds[0]);
    return r;
}

// ---------------------------------------------------------------------------
// Reporting

bool report_failures(const char* what, const std::vector<std::string>& failures) {
    for (std::size_t i = 0; i < failures.size() && i < 3; ++i) {
        std::fprintf(stderr, "server_bench: %s: %s\n", what, failures[i].c_str());
    }
    return failures.empty();
}

void print_throughput_header() {
    std::printf(
        "| server | transport | subscribers | events | deliveries | server CPU s (user + sys) | "
        "deliveries / server-CPU-s | load generator CPU s | wall s | missing | dup/reordered |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

void print_throughput_row(const stream_result& r) {
    std::printf(
        "| %s | %s | %zu | %zu | %llu | %.3f (%.2f + %.2f) | %.0f | %.3f | %.3f | %llu | %llu |\n",
        name_of(r.config.kind),
        r.config.transport == client::transport::websocket ? "WebSocket" : "SSE",
        r.config.subscribers, r.config.events, static_cast<unsigned long long>(r.delivered),
        r.server_cpu, r.server_user, r.server_sys, r.per_cpu_second(), r.loadgen_cpu, r.wall,
        static_cast<unsigned long long>(r.missing),
        static_cast<unsigned long long>(r.out_of_order));
}

}  // namespace

int main(int argc, char** argv) {
    auto settings = sluice::bench::parse_args(argc, argv);
    const bool quick = settings.quick;
    signal(SIGPIPE, SIG_IGN);
    raise_nofile_limit();
    // Profiling aids: --mode=idle|fanout|latency|sse and --server=sluice|websocketpp
    // restrict the run (the default runs everything).
    std::string only_mode, only_server;
    int rounds_arg = 0;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.rfind("--mode=", 0) == 0) only_mode = a.substr(7);
        if (a.rfind("--server=", 0) == 0) only_server = a.substr(9);
        if (a.rfind("--rounds=", 0) == 0) rounds_arg = std::atoi(argv[i] + 9);
    }
    auto want = [&](const char* mode) { return only_mode.empty() || only_mode == mode; };
    std::vector<server_kind> kinds;
    for (auto kind : {server_kind::sluice, server_kind::baseline}) {
        if (only_server.empty() || only_server == name_of(kind)) kinds.push_back(kind);
    }

    const std::size_t fanout_subs = quick ? 20 : 1000;
    const std::size_t fanout_events = quick ? 200 : 1000;
    const int fanout_rounds = rounds_arg > 0 ? rounds_arg : quick ? 1 : 3;
    const std::size_t latency_subs = quick ? 20 : 1000;
    const double latency_rate = 50;
    const std::size_t latency_events = quick ? 50 : 500;  // 1 s / 10 s at 50/s
    const std::size_t sse_subs = quick ? 20 : 200;
    const std::size_t sse_events = quick ? 200 : 5000;
    std::size_t idle_conns = quick ? 200 : 10000;
    if (idle_conns + 64 > nofile_limit()) {
        std::fprintf(
            stderr, "server_bench: RLIMIT_NOFILE %zu too low for %zu idle connections; using %zu\n",
            nofile_limit(), idle_conns, nofile_limit() - 64);
        idle_conns = nofile_limit() - 64;
    }
    const auto timeout = quick ? 15s : 120s;
    bool ok = true;

    std::printf("# server_bench%s\n\n",
                quick ? " --quick (correctness only; figures are not meaningful)" : "");
    std::printf("Load average at start: %s (%u CPUs)\n\n", load_average().c_str(),
                std::thread::hardware_concurrency());

    // Idle first: fork() while the process has no other thread.
    idle_result idle[2];
    if (want("idle")) {
        std::printf("## Idle connections (server RSS per subscribed WebSocket)\n\n");
        std::printf(
            "| server | connections | subscribed | RSS before KiB | RSS after KiB | KiB per "
            "connection |\n"
            "|---|---:|---:|---:|---:|---:|\n");
        for (auto kind : kinds) {
            auto& r = idle[kind == server_kind::sluice ? 0 : 1];
            r = run_idle(kind, idle_conns, quick ? 15s : 120s);
            ok &= report_failures(name_of(kind), r.failures) && r.correct();
            std::printf("| %s | %zu | %zu | %zu | %zu | %.2f |\n", name_of(kind), r.connections,
                        r.subscribed, r.rss_before_kib, r.rss_after_kib, r.kib_per_connection());
            std::fflush(stdout);
        }
    }

    std::vector<double> rate[2];
    if (want("fanout")) {
        std::printf("\n## Fan-out over WebSocket (%zu subscribers, %zu-byte data, window 64)\n\n",
                    fanout_subs, std::size_t{100});
        print_throughput_header();
        for (int round = 0; round < fanout_rounds; ++round) {
            for (auto kind : kinds) {
                stream_config c;
                c.kind = kind;
                c.subscribers = fanout_subs;
                c.events = fanout_events;
                c.timeout = timeout;
                auto r = run_stream(c);
                ok &= report_failures(name_of(kind), r.failures) && r.correct();
                print_throughput_row(r);
                std::fflush(stdout);
                rate[kind == server_kind::sluice ? 0 : 1].push_back(r.per_cpu_second());
            }
        }
    }
    const double fanout_ratio = median(rate[1]) > 0 ? median(rate[0]) / median(rate[1]) : 0;
    if (want("fanout")) {
        std::printf(
            "\nMedian deliveries per server-CPU-second: sluice %.0f, websocketpp %.0f, ratio "
            "%.2fx\n",
            median(rate[0]), median(rate[1]), fanout_ratio);
    }

    // Latency: each server on one thread, then sluice with its io_context on
    // two threads (a host may run it on several; the fan-out of one event is
    // then shared between them).
    double sluice_p99[2] = {0, 0};  // one thread, two threads
    if (want("latency")) {
        std::printf(
            "\n## Latency (%zu subscribers, %.0f events/s for %.0f s, publish to receive)\n\n",
            latency_subs, latency_rate, static_cast<double>(latency_events) / latency_rate);
        std::printf(
            "| server | server threads | deliveries | p50 ms | p99 ms | max ms | server CPU s "
            "(user "
            "+ sys) | server CPU us per delivery | load generator CPU s | missing | dup/reordered "
            "|\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        std::vector<std::pair<server_kind, unsigned>> runs;
        for (auto kind : kinds) runs.emplace_back(kind, 1u);
        if (only_server.empty() || only_server == "sluice")
            runs.emplace_back(server_kind::sluice, 2u);
        for (auto [kind, threads] : runs) {
            stream_config c;
            c.kind = kind;
            c.subscribers = latency_subs;
            c.events = latency_events;
            c.rate_hz = latency_rate;
            c.server_threads = threads;
            c.timeout = timeout;
            auto r = run_stream(c);
            ok &= report_failures(name_of(kind), r.failures) && r.correct();
            std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
            double p99 = percentile_ms(r.latencies_ns, 0.99);
            if (kind == server_kind::sluice) sluice_p99[threads == 1 ? 0 : 1] = p99;
            std::printf(
                "| %s | %u | %llu | %.3f | %.3f | %.3f | %.3f (%.2f + %.2f) | %.2f | %.3f | %llu | "
                "%llu |\n",
                name_of(kind), threads, static_cast<unsigned long long>(r.delivered),
                percentile_ms(r.latencies_ns, 0.50), p99,
                r.latencies_ns.empty() ? 0.0 : static_cast<double>(r.latencies_ns.back()) / 1e6,
                r.server_cpu, r.server_user, r.server_sys,
                r.delivered ? r.server_cpu * 1e6 / static_cast<double>(r.delivered) : 0.0,
                r.loadgen_cpu, static_cast<unsigned long long>(r.missing),
                static_cast<unsigned long long>(r.out_of_order));
            std::fflush(stdout);
        }
    }

    double sse_rate = 0;
    if (want("sse")) {
        std::printf("\n## SSE fan-out (%zu subscribers on /events, publisher over WebSocket)\n\n",
                    sse_subs);
        print_throughput_header();
        {
            stream_config c;
            c.kind = server_kind::sluice;
            c.transport = client::transport::sse;
            c.subscribers = sse_subs;
            c.events = sse_events;
            c.timeout = timeout;
            auto r = run_stream(c);
            ok &= report_failures("sluice SSE", r.failures) && r.correct();
            print_throughput_row(r);
            sse_rate = r.per_cpu_second();
        }
    }

    std::printf("\n## Targets\n\n| target | measured | met |\n|---|---|---|\n");
    auto yes = [](bool b) { return b ? "yes" : "**no**"; };
    if (want("fanout")) {
        std::printf("| fan-out deliveries per server-CPU-second >= 3x websocketpp | %.2fx | %s |\n",
                    fanout_ratio, yes(fanout_ratio >= 3));
    }
    if (want("latency")) {
        for (int t = 0; t < 2; ++t) {
            std::printf(
                "| p99 publish-to-receive < 10 ms at 50 events/s (%d server thread%s) | %.3f ms | "
                "%s |\n",
                t + 1, t ? "s" : "", sluice_p99[t], yes(sluice_p99[t] < 10));
        }
    }
    if (want("idle"))
        std::printf(
            "| idle WebSocket < 6 KiB server RSS per connection (websocketpp: %.2f) | %.2f KiB | "
            "%s "
            "|\n",
            idle[1].kib_per_connection(), idle[0].kib_per_connection(),
            yes(idle[0].kib_per_connection() < 6));
    if (want("sse")) {
        std::printf("| SSE >= 1,000,000 deliveries per server-CPU-second | %.0f | %s |\n", sse_rate,
                    yes(sse_rate >= 1e6));
    }
    std::printf("| every offset exactly once, in order, every mode | %s | %s |\n",
                ok ? "yes" : "NO", yes(ok));
    std::printf("\nLoad average at end: %s\n", load_average().c_str());
    if (quick) std::printf("\n(--quick: only correctness is asserted.)\n");
    return ok ? 0 : 1;
}
