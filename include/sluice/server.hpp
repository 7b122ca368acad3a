// sluice/server.hpp: one listening port serving WebSocket (`/ws`), Server-Sent
// Events (`/events`), `POST /publish`, `/health`, `/metrics` and optional
// static files, for a hub (PROTOCOL.md sections 1-8).
//
// The server runs on the host's io_context: it owns one acceptor and the
// connections it accepts, and starts no thread. Run the io_context on one
// thread or on several; each connection has its own strand.
//
// Example (a complete embedding):
// @code
// asio::io_context io;
// sluice::hub hub(io.get_executor(), std::make_shared<sluice::anonymous_policy>(true));
// sluice::server server(io, hub);
// if (auto ec = server.listen("127.0.0.1", 8080)) return 1;
// io.run();
// @endcode
#pragma once

#include <sluice/hub.hpp>
#include <sluice/options.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>

namespace sluice {

/// A listening port. Thread-safety: every member function may be called from
/// any thread. Destroying a running server stops it abruptly (sockets closed
/// without close frames); call `stop()` and let it finish for a graceful end.
class server {
public:
    /// Throws std::invalid_argument for options out of range.
    server(asio::io_context& io, hub& hub, server_options options = {});
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds and starts accepting. Port 0 picks a free port (see
    /// `local_endpoint()`). Errors: address in use, bad address, permission.
    std::error_code listen(std::string_view host, std::uint16_t port);

    /// The bound address (port 0 resolved); unspecified before listen().
    asio::ip::tcp::endpoint local_endpoint() const;

    /// Stops accepting, closes WebSockets with 1001 (spread over
    /// `server_options::drain`), ends SSE streams, and calls `on_stopped` on
    /// the io_context once every connection is gone. Idempotent.
    void stop(std::function<void()> on_stopped = {});

    /// Open WebSocket and SSE connections of this server.
    std::size_t connection_count() const noexcept;

    /// Internal.
    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace sluice
