// The code of docs/clients.md that is not part of sluice-follow. Compiled in CI
// (an object library, never run) so that every snippet stays true to the API.
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include <asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

namespace snippets {

// snippet: quick-start
void quick_start() {
    asio::io_context io;  // the host's loop; the client starts no thread
    sluice::ws_client client(io.get_executor(), "ws://127.0.0.1:8080/ws");
    client.on_state([](const sluice::client_state& s) {
        std::fprintf(stderr, "%s\n", sluice::to_string(s.kind).data());
    });
    sluice::subscription sub = client.subscribe("prices:AAPL", [](const sluice::client_event& e) {
        // Each event once, in offset order, across reconnections.
        std::printf("%llu %.*s\n", static_cast<unsigned long long>(e.offset),
                    static_cast<int>(e.data.size()), e.data.data());
    });
    client.connect();
    io.run();
}
// end snippet

// snippet: options
sluice::ws_client_options tuned_options() {
    sluice::ws_client_options o;
    o.token = "eyJhbGciOiJIUzI1NiJ9...";   // Authorization: Bearer …
    o.connect_timeout = 5s;                // resolve + TCP + TLS + welcome
    o.reconnect.initial_delay = 500ms;     // backoff: 0.5 s, 1 s, 2 s, … 15 s
    o.reconnect.max_delay = 15s;           // full jitter by default
    o.healthy_after = 30s;                 // a connection up 30 s resets the backoff
    o.breaker->consecutive_failures = 10;  // open after 10 failed attempts in a row
    o.ping_interval = 10s;                 // heartbeat: ping after 10 s of silence,
    o.pong_timeout = 5s;                   // a dead link after 5 s more
    o.outbox.max_messages = 10'000;        // publishes kept while offline
    o.outbox.ttl = 5min;
    return o;
}
// end snippet

// snippet: tls
sluice::sse_client_options tls_options() {
    sluice::sse_client_options o;
    o.tls.ca_file = "/etc/myapp/ca.pem";       // trust this CA (default: the system store)
    o.tls.server_name = "stream.example.com";  // SNI and the name checked (default: URL host)
    // o.tls.verify_peer = false;            // never in production
    return o;
}
// end snippet

// snippet: publish
void publish_order(sluice::ws_client& client) {
    // Connected or not: kept in the outbox while offline, sent in order after
    // the next connection, re-sent with the same idempotency key after a cut,
    // so it is published once and the callback runs exactly once.
    client.publish("orders:42", R"({"status":"paid"})",
                   [](std::error_code ec, const sluice::stream_position& at) {
                       if (ec) {
                           std::fprintf(stderr, "not published: %s\n", ec.message().c_str());
                       } else {
                           std::printf("published at %llu\n",
                                       static_cast<unsigned long long>(at.offset));
                       }
                   });
}
// end snippet

// snippet: resume-stored
void resume_from_storage(sluice::ws_client& client, std::uint64_t stored_offset,
                         const std::string& stored_epoch) {
    sluice::subscribe_options o;
    o.since = sluice::stream_position{stored_offset, stored_epoch};  // from the last run
    o.on_status = [](const sluice::subscription_status& st) {
        if (!st.error && !st.recovered) {
            // The gap since `since` could not be filled (history trimmed, new
            // epoch): reload the state from the source of truth.
        }
    };
    client.subscribe("orders:42", std::move(o), [](const sluice::client_event& e) {
        // store e.offset and e.epoch with the effect of the event
        (void)e;
    });
}
// end snippet

}  // namespace snippets
