// One member of a sluice cluster, embedded (docs/cluster.md): a hub joined to
// Redis and a server on the host's io_context, a timer publishing through
// `async_publish` (which answers `unavailable` while Redis is down), and a
// graceful stop on SIGINT/SIGTERM. Start two with different ports and the same
// Redis, subscribe on one, and see the other's ticks arrive.
//
//   sluice_cluster_example [LISTEN_PORT [REDIS_HOST [REDIS_PORT]]]
//   (defaults: 8081, 127.0.0.1, 6379)
#include <sluice/server.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

int main(int argc, char** argv) {
    const auto listen_port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8081);
    // snippet: cluster
    asio::io_context io;
    sluice::redis_options redis;  // every hub of the cluster names the same Redis
    redis.host = argc > 2 ? argv[2] : "127.0.0.1";
    redis.port = static_cast<std::uint16_t>(argc > 3 ? std::atoi(argv[3]) : 6379);
    sluice::hub_options options;  // with Redis, these bound what Redis keeps
    options.history_size = 1000;
    sluice::hub hub(io.get_executor(),
                    std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/true), options,
                    redis);
    hub.on_log([](sluice::log_level, std::string_view line) {
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    });
    sluice::server server(io, hub);
    if (auto ec = server.listen("127.0.0.1", listen_port))
        return std::fprintf(stderr, "%s\n", ec.message().c_str()), 2;

    // Publishes of this process get cluster-wide offsets; while Redis is
    // down they fail with `unavailable` (the host decides: retry, or drop).
    asio::steady_timer tick(io);
    std::function<void()> publish = [&] {
        hub.async_publish("ticks:" + std::to_string(listen_port), R"({"from":"embedded"})", {},
                          [](std::error_code ec, sluice::stream_position pos) {
                              if (ec == sluice::errc::unavailable)
                                  std::fprintf(stderr, "Redis is down: tick not published\n");
                              else if (!ec)
                                  std::printf("tick %llu\n",
                                              static_cast<unsigned long long>(pos.offset));
                          });
        tick.expires_after(std::chrono::seconds(1));
        tick.async_wait([&](std::error_code ec) {
            if (!ec) publish();
        });
    };
    publish();
    // end snippet

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        tick.cancel();
        server.stop([&] { io.stop(); });
    });
    std::printf("listening on 127.0.0.1:%u, Redis %s:%u\n", listen_port, redis.host.c_str(),
                redis.port);
    std::fflush(stdout);
    io.run();
}
