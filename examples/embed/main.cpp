// The twenty-line embedding of docs/server.md: a hub and a server on the
// host's io_context, a timer publishing, and a graceful stop on SIGINT/SIGTERM.
// snippet: embed
#include <sluice/server.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <cstdio>
#include <functional>
#include <string>

int main() {
    asio::io_context io;  // the host's loop: run it on one thread or several
    sluice::hub hub(io.get_executor(),
                    std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/false));
    sluice::server server(io, hub);
    if (auto ec = server.listen("127.0.0.1", 8080))
        return std::fprintf(stderr, "%s\n", ec.message().c_str()), 2;

    // The host's own work publishes from anywhere, here a timer.
    asio::steady_timer tick(io);
    int n = 0;
    std::function<void()> publish = [&] {
        hub.publish("ticks:demo", "{\"n\":" + std::to_string(++n) + "}");
        tick.expires_after(std::chrono::seconds(1));
        tick.async_wait([&](std::error_code ec) {
            if (!ec) publish();
        });
    };
    publish();

    asio::signal_set signals(io, SIGINT, SIGTERM);  // graceful: 1001 to WebSockets, SSE streams end
    signals.async_wait([&](std::error_code, int) {
        tick.cancel();
        server.stop([&] { io.stop(); });
    });
    io.run();
}
// end snippet
