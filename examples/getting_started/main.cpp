// The program of docs/getting-started.md: an Asio service that already exists
// (a TCP endpoint greeting its clients, on an io_context it runs itself) gains
// live updates over WebSocket and Server-Sent Events, with one host thread
// publishing prices. The tutorial quotes the regions between the snippet
// markers; keep them short and self-explanatory.
//
//   sluice_getting_started [PORT [STATIC_DIR]]   (PORT 8080; STATIC_DIR e.g.
//                                                  examples/dashboard)
#include <sluice/server.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

namespace {

// snippet: host
// The service you already have: it greets every TCP client with "hello".
void greet_forever(asio::ip::tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
        if (ec) return;  // the acceptor was closed: the service is stopping
        auto s = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
        asio::async_write(*s, asio::buffer("hello\n", 6), [s](std::error_code, std::size_t) {});
        greet_forever(acceptor);
    });
}
// end snippet

// A stand-in for the host's data source: a price that moves a little.
double next_price(double price, int n) { return price + ((n * 7919) % 21 - 10) * 0.01; }

// The event's JSON; `sent_at` (ms since the epoch) lets the dashboard show latency.
std::string price_json(double price) {
    using namespace std::chrono;
    const auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    return "{\"price\":" + std::to_string(price) + ",\"sent_at\":" + std::to_string(ms) + "}";
}

}  // namespace

int main(int argc, char** argv) {
    const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 8080);
    sluice::server_options options;
    if (argc > 2) options.static_dir = argv[2];  // e.g. examples/dashboard

    // snippet: host-main
    asio::io_context io;
    asio::ip::tcp::acceptor greeter(io, {asio::ip::make_address("127.0.0.1"), 0});
    greet_forever(greeter);
    // end snippet

    // snippet: embed
    // 1. A hub (the protocol state) and a server (one port: /ws, /events,
    //    /publish, /health, /metrics) on the io_context the host already runs.
    sluice::hub hub(io.get_executor(),
                    std::make_shared<sluice::anonymous_policy>(/*allow_publish=*/true));
    sluice::server server(io, hub, options);
    if (auto ec = server.listen("127.0.0.1", port))
        return std::fprintf(stderr, "listen: %s\n", ec.message().c_str()), 2;

    // 2. A host thread publishes; hub.publish may be called from any thread.
    std::atomic<bool> running{true};
    std::thread producer([&] {
        double price = 189.5;
        for (int n = 1; running; ++n) {
            price = next_price(price, n);
            hub.publish("prices:AAPL", price_json(price),
                        {/*event=*/"price", /*idempotency_key=*/{}});
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    });

    // 3. Stop gracefully: WebSockets get 1001, SSE streams end, the loop returns.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) {
        running = false;
        greeter.close();
        server.stop([&] { io.stop(); });
    });
    // end snippet

    std::printf("listening on 127.0.0.1:%u\n",
                static_cast<unsigned>(server.local_endpoint().port()));
    std::fflush(stdout);
    // snippet: run
    io.run();  // the host's loop, as before: on this thread (or on several)
    producer.join();
    // end snippet
}
