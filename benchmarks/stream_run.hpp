// The streaming run shared by server_bench and cluster_bench, and the small
// measurement helpers around it.
//
// Provides, in namespace sluice::bench:
//   - cpu_seconds(), now_ns(), thread_user_sys(), stat_user_sys(): CPU clocks
//     and the user/system split from /proc/.../stat;
//   - load_average(), raise_nofile_limit(): the machine and the process;
//   - percentile_ms(), median(): reporting;
//   - loaded_options(): the sluice server options of the loaded runs;
//   - stream_spec, stream_counts, drive_stream(): one checked streaming run.
//     S subscribers (WebSocket or SSE) on topic `bench`, one WebSocket
//     publisher with a window of un-acked publishes or a fixed rate, every
//     offset checked to arrive exactly once and in order. The caller owns the
//     server(s) and its CPU accounting: drive_stream() calls `on_begin` when
//     the measured window opens (every subscriber subscribed, publisher open)
//     and `on_finish` when it closes (every event delivered and acked).
//
// Thread-safety: drive_stream() runs the load generator on the calling thread;
// the hooks are called on that thread.
#pragma once

#include "loadgen_client.hpp"

#include <sluice/server.hpp>

#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

namespace sluice::bench {

inline double cpu_seconds(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

inline void raise_nofile_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/// User and system CPU seconds from a /proc stat file (`/proc/<pid>/stat`,
/// `/proc/self/task/<tid>/stat`): fields 14 and 15, in clock ticks.
inline std::pair<double, double> stat_user_sys(const std::string& path) {
    std::ifstream in(path);
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) return {0, 0};
    // After ") " come fields 3.. (state is field 3); utime is 14, stime 15.
    const char* p = stat.c_str() + close_paren + 2;
    unsigned long long utime = 0, stime = 0;
    for (int field = 3; field <= 15 && *p; ++field) {
        if (field == 14) utime = std::strtoull(p, nullptr, 10);
        if (field == 15) stime = std::strtoull(p, nullptr, 10);
        p = std::strchr(p, ' ');
        if (!p) break;
        ++p;
    }
    const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return {static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

/// User and system CPU seconds of thread `tid` of this process.
inline std::pair<double, double> thread_user_sys(pid_t tid) {
    return stat_user_sys("/proc/self/task/" + std::to_string(tid) + "/stat");
}

/// The 1, 5 and 15 minute load averages (the machine is shared).
inline std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

/// The `p` quantile (0..1, nearest rank) of sorted nanoseconds, in ms.
inline double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1e6;
}

/// The upper median.
inline double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/// The sluice options of the throughput and latency runs: the defaults, except
/// that one IP may open 1000 connections at once, the publisher may send
/// 100,000 messages per second, queues may hold a whole run and no ping is
/// due during a run. The per-connection limiter keeps a log of
/// `client_rate` entries, so the rate is raised with a short window rather
/// than a huge count.
inline sluice::server_options loaded_options() {
    using namespace std::chrono_literals;
    sluice::server_options o;
    o.client_rate = 1000;
    o.client_rate_window = 10ms;
    o.max_queue_bytes = std::size_t{64} << 20;
    o.send_timeout = 60s;
    o.ping_interval = 600s;  // runs under a profiler can outlast the default 25 s
    o.handshake_rate = 1000;
    o.handshake_window = 1ms;
    return o;
}

// ---------------------------------------------------------------------------
// The checked streaming run.

struct stream_spec {
    loadgen::client::transport transport = loadgen::client::transport::websocket;
    std::size_t subscribers = 0;
    std::size_t events = 0;
    std::size_t window = 64;  ///< un-acked publishes in flight (window mode)
    double rate_hz = 0;       ///< > 0: publish at this fixed rate instead
    std::size_t data_bytes = 100;
    std::chrono::seconds timeout{60};
};

struct stream_counts {
    std::uint64_t delivered = 0;     ///< events received in order, exactly once
    std::uint64_t missing = 0;       ///< expected events never received (or skipped)
    std::uint64_t out_of_order = 0;  ///< duplicates and events older than one already received
    std::vector<std::string> failures;
    double wall = 0;                         ///< seconds of the measured window
    std::vector<std::int64_t> latencies_ns;  ///< publish to receive (rate mode only)

    bool correct() const { return missing == 0 && out_of_order == 0 && failures.empty(); }
};

namespace detail {

class stream_driver {
public:
    using steady = std::chrono::steady_clock;
    using client = loadgen::client;

    stream_driver(const stream_spec& spec, std::size_t connect_concurrency, stream_counts& out,
                  std::function<void()> on_begin, std::function<void()> on_finish)
        : cfg_(spec),
          connect_concurrency_(connect_concurrency),
          result_(out),
          on_begin_(std::move(on_begin)),
          on_finish_(std::move(on_finish)),
          timer_(io_) {
        states_.resize(spec.subscribers);
        pad_.assign(spec.data_bytes, 'x');
        if (spec.rate_hz > 0) result_.latencies_ns.reserve(spec.subscribers * spec.events);
    }

    void run(const asio::ip::tcp::endpoint& publish_at,
             const asio::ip::tcp::endpoint& subscribe_at) {
        subscribe_at_ = subscribe_at;
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
        publisher_->start(publish_at);
        for (std::size_t i = 0; i < std::min(connect_concurrency_, cfg_.subscribers); ++i)
            connect_next();
        io_.run();
        if (!finished_) {
            // Timed out or failed: account for what never arrived.
            result_.wall = std::chrono::duration<double>(steady::now() - t0_).count();
        }
        for (auto& s : states_) {
            if (s.received < cfg_.events) result_.missing += cfg_.events - s.received;
            result_.delivered += s.received;
        }
    }

private:
    struct sub_state {
        std::uint64_t first = 0;  ///< the first offset expected (subscribed.offset + 1)
        std::uint64_t next = 0;   ///< the next offset expected
        std::uint64_t received = 0;
        bool ready = false;
        bool done = false;
    };

    void connect_next() {
        if (started_ >= cfg_.subscribers || stopped_) return;
        std::size_t index = started_++;
        std::string target =
            cfg_.transport == client::transport::websocket ? "/ws" : "/events?topic=bench";
        auto c = std::make_shared<client>(io_, cfg_.transport, std::move(target));
        c->tag = index;
        if (cfg_.transport == client::transport::websocket) {
            c->on_open = [](client& self) {
                self.send_text(R"({"type":"subscribe","id":1,"topic":"bench"})");
            };
        }
        c->on_message = [this](client& self, std::string_view m) {
            on_subscriber_message(self.tag, m);
        };
        c->on_failure = [this](client& self, std::string_view why) {
            fail("subscriber " + std::to_string(self.tag) + ": " + std::string(why));
        };
        subscribers_.push_back(c);
        c->start(subscribe_at_);
    }

    void on_subscriber_message(std::size_t index, std::string_view m) {
        using loadgen::field_u64;
        auto& s = states_[index];
        auto type = loadgen::message_type(m);
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
        if (on_begin_) on_begin_();
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
        auto type = loadgen::message_type(m);
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
        if (on_finish_) on_finish_();
        result_.wall = std::chrono::duration<double>(steady::now() - t0_).count();
        stop();
    }

    void fail(std::string why) {
        if (stopped_) return;
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

    stream_spec cfg_;
    std::size_t connect_concurrency_;
    stream_counts& result_;
    std::function<void()> on_begin_, on_finish_;
    asio::io_context io_;
    asio::steady_timer timer_;
    std::optional<asio::steady_timer> rate_timer_;
    asio::ip::tcp::endpoint subscribe_at_;
    std::shared_ptr<client> publisher_;
    std::vector<std::shared_ptr<client>> subscribers_;
    std::vector<sub_state> states_;
    std::string pad_;
    std::size_t started_ = 0, ready_ = 0, done_ = 0, sent_ = 0, acked_ = 0;
    bool began_ = false, finished_ = false, stopped_ = false;
    steady::time_point t0_{};
    steady::duration period_{};
};

}  // namespace detail

/// One checked streaming run against a server the caller runs: the publisher
/// connects to `publish_at`, the subscribers (at most `connect_concurrency`
/// connecting at once) to `subscribe_at`. Adds the counts, failures, wall time
/// and (rate mode) latencies to `out`; `on_begin`/`on_finish` bracket the
/// measured window (see the top of this file).
inline void drive_stream(const stream_spec& spec, const asio::ip::tcp::endpoint& publish_at,
                         const asio::ip::tcp::endpoint& subscribe_at,
                         std::size_t connect_concurrency, stream_counts& out,
                         std::function<void()> on_begin, std::function<void()> on_finish) {
    detail::stream_driver driver(spec, connect_concurrency, out, std::move(on_begin),
                                 std::move(on_finish));
    driver.run(publish_at, subscribe_at);
}

}  // namespace sluice::bench
