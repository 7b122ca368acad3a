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

/// One cluster member: a test_server whose hub uses the Redis backplane.
class cluster_node : public test_server {
public:
    explicit cluster_node(redis_options redis, hub_options hub_opts = {},
                          server_options options = {}, std::size_t threads = 1)
        : test_server(std::move(options), hub_opts, nullptr, threads, std::move(redis)) {}

    /// Waits (bounded) until the hub has joined the cluster.
    bool wait_up(std::chrono::milliseconds timeout = default_timeout) {
        return eventually([this] { return hub().backplane_up(); }, timeout);
    }
    /// Waits (bounded) until the hub reports the backplane down.
    bool wait_down(std::chrono::milliseconds timeout = default_timeout) {
        return eventually([this] { return !hub().backplane_up(); }, timeout);
    }
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
