#include <sluice/server.hpp>

#include "connection.hpp"
#include "hub_impl.hpp"
#include "server_context.hpp"

#include <sluice/detail/throw.hpp>

#include <asio/bind_executor.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

namespace sluice {
namespace {

void validate(const server_options& o) {
    using detail::throw_invalid_argument;
    if (o.max_message_bytes == 0)
        throw_invalid_argument("server_options: max_message_bytes must be > 0");
    if (o.client_rate == 0 || o.client_rate > 1'000'000) {
        throw_invalid_argument("server_options: client_rate must be in [1, 1000000]");
    }
    if (o.client_rate_window.count() <= 0)
        throw_invalid_argument("server_options: client_rate_window must be > 0");
    if (o.rate_refusals_before_close == 0 || o.rate_refusals_before_close > 1000) {
        throw_invalid_argument("server_options: rate_refusals_before_close must be in [1, 1000]");
    }
    if (o.max_queue_bytes == 0)
        throw_invalid_argument("server_options: max_queue_bytes must be > 0");
    if (o.send_timeout.count() <= 0)
        throw_invalid_argument("server_options: send_timeout must be > 0");
    if (o.ping_interval.count() <= 0 || o.pong_timeout.count() <= 0) {
        throw_invalid_argument("server_options: ping_interval and pong_timeout must be > 0");
    }
    if (o.sse_heartbeat.count() <= 0)
        throw_invalid_argument("server_options: sse_heartbeat must be > 0");
    if (o.sse_retry_min.count() < 0 || o.sse_retry_max < o.sse_retry_min) {
        throw_invalid_argument("server_options: need 0 <= sse_retry_min <= sse_retry_max");
    }
    if (o.handshake_rate == 0 || o.handshake_window.count() <= 0 || o.max_tracked_ips == 0) {
        throw_invalid_argument(
            "server_options: handshake_rate, handshake_window and max_tracked_ips must be > 0");
    }
    if (o.max_head_bytes < 16 || o.head_timeout.count() <= 0) {
        throw_invalid_argument("server_options: max_head_bytes must be >= 16 and head_timeout > 0");
    }
    if (o.token_grace.count() < 0 || o.drain.count() < 0) {
        throw_invalid_argument("server_options: token_grace and drain must be >= 0");
    }
}

}  // namespace

class server::impl : public std::enable_shared_from_this<server::impl> {
public:
    impl(asio::io_context& io, hub& h, server_options options)
        : io_(io),
          context_(std::make_shared<detail::server_context>(options, h.implementation().core(),
                                                            io.get_executor())),
          strand_(asio::make_strand(io.get_executor())),
          acceptor_(strand_) {}

    std::error_code listen(std::string_view host, std::uint16_t port) {
        std::error_code ec;
        auto address = asio::ip::make_address(std::string(host), ec);
        if (ec) return ec;
        asio::ip::tcp::endpoint endpoint(address, port);
        acceptor_.open(endpoint.protocol(), ec);
        if (ec) return ec;
        acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
        acceptor_.bind(endpoint, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            std::error_code ignored;
            acceptor_.close(ignored);
            return ec;
        }
        local_ = acceptor_.local_endpoint(ec);
        asio::post(strand_, [self = shared_from_this()] { self->accept(); });
        return {};
    }

    asio::ip::tcp::endpoint local_endpoint() const { return local_; }

    void stop(std::function<void()> on_stopped) {
        asio::post(strand_,
                   [self = shared_from_this(), on_stopped = std::move(on_stopped)]() mutable {
                       if (self->stopped_) {
                           // Already stopped: a later stop() completes at once.
                           if (on_stopped) on_stopped();
                           return;
                       }
                       if (on_stopped) self->on_stopped_.push_back(std::move(on_stopped));
                       if (self->context_->stopping.exchange(true)) return;
                       std::error_code ignored;
                       self->acceptor_.close(ignored);
                       auto connections = self->context_->snapshot();
                       auto now = std::chrono::steady_clock::now();
                       auto drain = self->context_->options.drain;
                       for (std::size_t i = 0; i < connections.size(); ++i) {
                           // Spread the 1001 closes over the drain time, so that clients do
                           // not all reconnect to the next hub at once.
                           auto offset = connections.size() > 1
                                             ? drain * static_cast<std::int64_t>(i) /
                                                   static_cast<std::int64_t>(connections.size() - 1)
                                             : drain * 0;
                           connections[i]->drain_at(now + offset);
                       }
                       self->wait_for_connections();
                   });
    }

    std::size_t connection_count() const noexcept { return context_->open_streams(); }

    void abort_all() {
        context_->stopping.store(true);
        std::error_code ignored;
        acceptor_.close(ignored);
        context_->timers->stop();
    }

private:
    void accept() {
        acceptor_.async_accept(
            asio::make_strand(io_.get_executor()),
            asio::bind_executor(strand_, [self = shared_from_this()](const std::error_code& ec,
                                                                     asio::ip::tcp::socket s) {
                self->on_accept(ec, std::move(s));
            }));
    }

    void on_accept(const std::error_code& ec, asio::ip::tcp::socket socket) {
        if (context_->stopping.load()) return;
        if (!ec) {
            std::make_shared<detail::connection>(context_, std::move(socket))->start();
        } else if (ec == asio::error::operation_aborted) {
            return;
        }
        // Other errors (EMFILE, ECONNABORTED…) are transient: keep accepting.
        accept();
    }

    void wait_for_connections() {
        if (context_->snapshot().empty()) {
            context_->timers->stop();
            stopped_ = true;
            auto callbacks = std::move(on_stopped_);
            for (auto& f : callbacks) f();
            return;
        }
        poll_.expires_after(std::chrono::milliseconds(20));
        poll_.async_wait(
            [self = shared_from_this()](const std::error_code&) { self->wait_for_connections(); });
    }

    asio::io_context& io_;
    std::shared_ptr<detail::server_context> context_;
    asio::strand<asio::any_io_executor> strand_;
    asio::ip::tcp::acceptor acceptor_;
    asio::steady_timer poll_{strand_};
    asio::ip::tcp::endpoint local_;
    std::vector<std::function<void()>> on_stopped_;
    bool stopped_ = false;  // on the strand
};

server::server(asio::io_context& io, hub& h, server_options options) {
    validate(options);
    impl_ = std::make_shared<impl>(io, h, std::move(options));
}

server::~server() {
    if (impl_) impl_->abort_all();
}

std::error_code server::listen(std::string_view host, std::uint16_t port) {
    return impl_->listen(host, port);
}

asio::ip::tcp::endpoint server::local_endpoint() const { return impl_->local_endpoint(); }

void server::stop(std::function<void()> on_stopped) { impl_->stop(std::move(on_stopped)); }

std::size_t server::connection_count() const noexcept { return impl_->connection_count(); }

}  // namespace sluice
