// Client benchmark: how many events per second one sluice::ws_client (and one
// sluice::sse_client) consumes from an in-process sluice server, and the CPU
// it costs, against the raw load-generator client of
// benchmarks/loadgen_client.hpp consuming the same stream in the same run.
//
// Method (docs/benchmarks.d/client.md): a hub and a server run on one thread,
// which also hosts the feed: it publishes to one topic through the hub,
// keeping at most `window` events ahead of what the consumer has received
// (so no run ever trips the slow-consumer limit). The consumer runs alone on
// a second thread, with its own io_context; its CPU time is read from that
// thread's CPU clock over the measured window (first publish to last event).
// Every consumer checks that it got every offset exactly once and in order;
// the program exits 1 otherwise. Each configuration is run `rounds` times;
// the best round is reported (the least disturbed one on a shared machine).
//
// Usage: client_bench [--quick]
#include "bench.hpp"
#include "loadgen_client.hpp"

#include <sluice/server.hpp>
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sluice::bench::loadgen::client;

double cpu_seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

const std::string topic = "bench:client";

/// A realistic small event: about 60 bytes of data.
std::string event_data(std::uint64_t n) {
    return R"({"sym":"AAPL","bid":189.25,"ask":189.27,"seq":)" + std::to_string(n) + "}";
}

/// The hub, the server and the feed, on one thread.
class server_side {
public:
    server_side() {
        sluice::server_options o;
        o.max_queue_bytes = std::size_t{64} << 20;
        o.send_timeout = 60s;
        o.ping_interval = 600s;
        o.sse_heartbeat = 600s;
        hub_.emplace(io_.get_executor(), std::make_shared<sluice::anonymous_policy>(true));
        server_.emplace(io_, *hub_, o);
        if (auto ec = server_->listen("127.0.0.1", 0)) {
            std::fprintf(stderr, "client_bench: cannot listen: %s\n", ec.message().c_str());
            std::exit(2);
        }
        port_ = server_->local_endpoint().port();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~server_side() {
        std::atomic<bool> stopped{false};
        asio::post(io_, [&] { server_->stop([&] { stopped = true; }); });
        for (int i = 0; i < 300 && !stopped; ++i) std::this_thread::sleep_for(10ms);
        work_.reset();
        io_.stop();
        thread_.join();
    }

    std::uint16_t port() const { return port_; }

    /// Publishes `total` events (offsets first+1 … first+total), at most
    /// `window` ahead of `received`; returns at once (the feed runs on the
    /// server's thread).
    void feed(std::uint64_t first, std::uint64_t total, std::uint64_t window,
              const std::atomic<std::uint64_t>& received) {
        asio::post(io_, [=, &received] {
            published_ = 0;
            pump(first, total, window, received);
        });
    }

private:
    void pump(std::uint64_t first, std::uint64_t total, std::uint64_t window,
              const std::atomic<std::uint64_t>& received) {
        std::size_t batch = 0;
        while (published_ < total && published_ < received.load() + window && batch < 256) {
            hub_->publish(topic, event_data(first + ++published_));
            ++batch;
        }
        if (published_ >= total) return;
        auto next = [=, &received](std::error_code = {}) { pump(first, total, window, received); };
        if (batch > 0) {
            asio::post(io_, next);
        } else {
            timer_.expires_after(20us);
            timer_.async_wait(next);
        }
    }

    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        io_.get_executor()};
    std::optional<sluice::hub> hub_;
    std::optional<sluice::server> server_;
    asio::steady_timer timer_{io_};
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::uint64_t published_ = 0;
};

enum class consumer_kind { ws_client, sse_client, loadgen_ws, loadgen_sse };

const char* name_of(consumer_kind k) {
    switch (k) {
    case consumer_kind::ws_client: return "sluice::ws_client";
    case consumer_kind::sse_client: return "sluice::sse_client";
    case consumer_kind::loadgen_ws: return "raw loadgen client (WebSocket)";
    case consumer_kind::loadgen_sse: return "raw loadgen client (SSE)";
    }
    return "?";
}

struct result {
    std::uint64_t events = 0;
    double wall = 0;  // seconds, first publish to last event
    double cpu = 0;   // consumer thread CPU seconds over the same window
    std::uint64_t errors = 0;
    double per_second() const { return wall > 0 ? static_cast<double>(events) / wall : 0; }
    double cpu_per_million() const { return events ? cpu * 1e6 / static_cast<double>(events) : 0; }
};

/// The consumer: its own thread and io_context; counts events and checks
/// their offsets.
class consumer {
public:
    consumer(consumer_kind kind, std::uint16_t port) {
        switch (kind) {
        case consumer_kind::ws_client: {
            sluice::ws_client_options o;
            o.ping_interval = 600s;
            ws_ = start(std::make_unique<sluice::ws_client>(
                io_.get_executor(), "ws://127.0.0.1:" + std::to_string(port) + "/ws", o));
            break;
        }
        case consumer_kind::sse_client: {
            sluice::sse_client_options o;
            o.heartbeat_timeout = 600s;
            sse_ = start(std::make_unique<sluice::sse_client>(
                io_.get_executor(), "http://127.0.0.1:" + std::to_string(port) + "/events", o));
            break;
        }
        case consumer_kind::loadgen_ws:
        case consumer_kind::loadgen_sse: {
            bool ws = kind == consumer_kind::loadgen_ws;
            raw_ = std::make_shared<client>(
                io_, ws ? client::transport::websocket : client::transport::sse,
                ws ? "/ws" : "/events?topic=" + topic);
            raw_->on_open = [ws](client& c) {
                if (ws) c.send_text(R"({"type":"subscribe","topic":")" + topic + R"("})");
            };
            raw_->on_message = [this](client&, std::string_view json) {
                auto type = sluice::bench::loadgen::message_type(json);
                if (type == "event") {
                    count(sluice::bench::loadgen::field_u64(json, R"("offset":)"));
                } else if (type == "subscribed") {
                    ready_ = true;
                }
            };
            raw_->on_failure = [this](client&, std::string_view why) {
                std::fprintf(stderr, "client_bench: loadgen client failed: %.*s\n",
                             static_cast<int>(why.size()), why.data());
                ++errors_;
            };
            raw_->start({asio::ip::make_address_v4("127.0.0.1"), port});
            break;
        }
        }
        thread_ = std::thread([this] { io_.run(); });
        pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_);
    }

    ~consumer() {
        asio::post(io_, [this] {
            if (ws_) ws_->close();
            if (sse_) sse_->close();
            if (raw_) raw_->close();
        });
        std::this_thread::sleep_for(20ms);  // let the close go out
        work_.reset();
        io_.stop();
        thread_.join();
        ws_.reset();
        sse_.reset();
        raw_.reset();
    }

    bool wait_ready(std::chrono::seconds timeout) {
        auto deadline = steady::now() + timeout;
        while (!ready_ && steady::now() < deadline) std::this_thread::sleep_for(1ms);
        return ready_;
    }
    double cpu() const { return cpu_seconds(cpu_clock_); }
    const std::atomic<std::uint64_t>& received() const { return received_; }
    std::uint64_t errors() const { return errors_; }

private:
    // Subscribes a sluice client to the topic and connects it.
    template <class Client>
    std::unique_ptr<Client> start(std::unique_ptr<Client> c) {
        sluice::subscribe_options s;
        s.on_status = [this](const sluice::subscription_status& st) {
            if (!st.error) ready_ = true;
        };
        c->subscribe(topic, s, [this](const sluice::client_event& e) { count(e.offset); });
        c->connect();
        return c;
    }

    void count(std::uint64_t offset) {
        if (offset != expected_) ++errors_;
        expected_ = offset + 1;
        received_.store(received_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        io_.get_executor()};
    std::unique_ptr<sluice::ws_client> ws_;
    std::unique_ptr<sluice::sse_client> sse_;
    std::shared_ptr<client> raw_;
    std::thread thread_;
    clockid_t cpu_clock_{};
    std::atomic<bool> ready_{false};
    std::atomic<std::uint64_t> received_{0};
    std::atomic<std::uint64_t> errors_{0};
    std::uint64_t expected_ = 1;
};

/// One run: a fresh server, one consumer, `events` events.
result run(consumer_kind kind, std::uint64_t events, std::uint64_t window) {
    server_side server;
    consumer c(kind, server.port());
    result r;
    if (!c.wait_ready(10s)) {
        std::fprintf(stderr, "client_bench: %s did not subscribe\n", name_of(kind));
        r.errors = 1;
        return r;
    }
    auto t0 = steady::now();
    double cpu0 = c.cpu();
    server.feed(0, events, window, c.received());
    auto deadline = t0 + std::chrono::seconds(120);
    while (c.received().load(std::memory_order_acquire) < events && steady::now() < deadline) {
        std::this_thread::sleep_for(200us);
    }
    r.wall = std::chrono::duration<double>(steady::now() - t0).count();
    r.cpu = c.cpu() - cpu0;
    r.events = c.received().load();
    r.errors = c.errors() + (r.events == events ? 0 : 1);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    auto settings = sluice::bench::parse_args(argc, argv);
    const std::uint64_t events = settings.quick ? 2000 : 200000;
    const int rounds = settings.quick ? 1 : 3;
    const std::uint64_t window = 1000;

    std::printf("client_bench: %llu events per run, window %llu, best of %d; load average %s\n",
                static_cast<unsigned long long>(events), static_cast<unsigned long long>(window),
                rounds, load_average().c_str());
    std::printf("%-32s %12s %10s %14s %10s %10s\n", "consumer", "events/s", "ratio",
                "CPU s / 1M ev", "ratio", "errors");

    int status = 0;
    struct pair_of {
        consumer_kind baseline, subject;
    };
    for (auto p : {pair_of{consumer_kind::loadgen_ws, consumer_kind::ws_client},
                   pair_of{consumer_kind::loadgen_sse, consumer_kind::sse_client}}) {
        // Per consumer: the best events/s and the best CPU per million events
        // over the rounds (each from the least disturbed round).
        double rate[2] = {0, 0};
        double cpu[2] = {1e300, 1e300};
        std::uint64_t errors[2] = {0, 0};
        for (int round = 0; round < rounds; ++round) {
            // Alternate the order so neither side always runs first.
            for (int k = 0; k < 2; ++k) {
                int which = (round % 2 == 0) ? k : 1 - k;
                auto kind = which == 0 ? p.baseline : p.subject;
                auto r = run(kind, events, window);
                if (r.errors) {
                    std::fprintf(stderr, "client_bench: %s: %llu errors\n", name_of(kind),
                                 static_cast<unsigned long long>(r.errors));
                    status = 1;
                }
                errors[which] += r.errors;
                rate[which] = std::max(rate[which], r.per_second());
                cpu[which] = std::min(cpu[which], r.cpu_per_million());
            }
        }
        std::printf("%-32s %12.0f %10s %14.3f %10s %10llu\n", name_of(p.baseline), rate[0], "1.00",
                    cpu[0], "1.00", static_cast<unsigned long long>(errors[0]));
        std::printf("%-32s %12.0f %10.2f %14.3f %10.2f %10llu\n", name_of(p.subject), rate[1],
                    rate[1] / std::max(rate[0], 1e-9), cpu[1], cpu[1] / std::max(cpu[0], 1e-12),
                    static_cast<unsigned long long>(errors[1]));
    }
    return status;
}
