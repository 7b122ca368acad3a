// One hub of a Redis cluster in the test process: a hub with the Redis
// backplane and a server on 127.0.0.1:0, on its own io_context and threads.
// Shared by the cluster_*_test.cpp files.
//
// Every wait is bounded. The Redis options are tuned for tests (probes every
// 100 ms, down after 600 ms without one, reconnect within 50-300 ms).
#pragma once

#include "redis_server.hpp"
#include "test_client.hpp"

#include <sluice/hub.hpp>
#include <sluice/server.hpp>

namespace sluice::test {

/// Redis options for a test hub on 127.0.0.1:`port`.
inline redis_options test_redis_options(std::uint16_t port) {
    redis_options r;
    r.port = port;
    r.key_prefix = "test:";
    r.connect_timeout = 1s;
    r.command_timeout = 1s;
    r.probe_interval = 100ms;
    r.probe_timeout = 600ms;
    r.reconnect_initial_delay = 50ms;
    r.reconnect_max_delay = 300ms;
    return r;
}

class cluster_node {
public:
    explicit cluster_node(redis_options redis, hub_options hub_opts = {},
                          server_options options = {}, std::size_t threads = 1)
        : work_(asio::make_work_guard(io_)) {
        hub_.emplace(io_.get_executor(), std::make_shared<anonymous_policy>(true), hub_opts,
                     std::move(redis));
        server_.emplace(io_, *hub_, std::move(options));
        if (auto ec = server_->listen("127.0.0.1", 0)) {
            throw std::runtime_error("cluster_node: listen failed: " + ec.message());
        }
        port_ = server_->local_endpoint().port();
        for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i) {
            threads_.emplace_back([this] { io_.run(); });
        }
    }
    cluster_node(const cluster_node&) = delete;
    cluster_node& operator=(const cluster_node&) = delete;

    ~cluster_node() {
        auto fired = std::make_shared<std::promise<void>>();
        auto future = fired->get_future();
        server_->stop([fired] { fired->set_value(); });
        future.wait_for(default_timeout);
        work_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        hub_.reset();
    }

    std::uint16_t port() const noexcept { return port_; }
    sluice::hub& hub() { return *hub_; }

    /// Waits (bounded) until the hub has joined the cluster.
    bool wait_up(std::chrono::milliseconds timeout = default_timeout) {
        return eventually([this] { return hub_->backplane_up(); }, timeout);
    }
    /// Waits (bounded) until the hub reports the backplane down.
    bool wait_down(std::chrono::milliseconds timeout = default_timeout) {
        return eventually([this] { return !hub_->backplane_up(); }, timeout);
    }

    /// A host publish, waited for (bounded).
    std::pair<std::error_code, stream_position> publish(std::string topic, std::string data_json,
                                                        publish_options options = {}) {
        auto p = std::make_shared<std::promise<std::pair<std::error_code, stream_position>>>();
        auto f = p->get_future();
        hub_->async_publish(std::move(topic), std::move(data_json), std::move(options),
                            [p](std::error_code ec, stream_position pos) {
                                p->set_value({ec, std::move(pos)});
                            });
        if (f.wait_for(default_timeout) != std::future_status::ready) {
            throw std::runtime_error("cluster_node: publish did not complete");
        }
        return f.get();
    }

    double metric(std::string_view series) const {
        return test_server::metric_in(hub_->metrics_text(), series);
    }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::optional<sluice::hub> hub_;
    std::optional<sluice::server> server_;
    std::uint16_t port_ = 0;
    std::vector<std::thread> threads_;
};

/// The `offset`s of the `event` messages among `messages`, in order.
inline std::vector<std::uint64_t> event_offsets(const std::vector<json_msg>& messages) {
    std::vector<std::uint64_t> out;
    for (const auto& m : messages) {
        if (m.type() == "event") out.push_back(m.u64("offset"));
    }
    return out;
}

}  // namespace sluice::test
