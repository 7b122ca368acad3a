// test_package of the Conan recipe: a copy of examples/consumer/main.cpp (the
// package.recipes test keeps the two identical below this header).
// A hub and a server on port 0, one publish, a graceful stop; exit 0 on success.
//
#include <sluice/server.hpp>
#include <sluice/version.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <system_error>

int main() {
    asio::io_context io;
    sluice::hub hub(io.get_executor(),
                    std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/false));
    sluice::server server(io, hub);
    if (auto ec = server.listen("127.0.0.1", 0)) {
        std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
        return 2;
    }
    const unsigned port = server.local_endpoint().port();

    bool published = false;
    bool stopped = false;
    asio::steady_timer watchdog(io, std::chrono::seconds(10));
    watchdog.async_wait([&](std::error_code ec) {
        if (!ec) io.stop();  // something hung: give up, main reports it
    });

    hub.async_publish("demo:consumer", R"({"hello":"world"})", {},
                      [&](std::error_code ec, sluice::stream_position pos) {
                          published = !ec && pos.offset == 1;
                          if (ec) std::fprintf(stderr, "publish: %s\n", ec.message().c_str());
                          server.stop([&] {
                              stopped = true;
                              io.stop();  // the hub may keep timers; the host ends its loop
                          });
                      });
    io.run();

    std::printf("sluice %s (protocol %d): served on port %u, published=%d, stopped=%d\n",
                SLUICE_VERSION_STRING, sluice::protocol_version, port, published, stopped);
    return published && stopped ? 0 : 1;
}
