// A fault-injecting TCP proxy for the integration tests.
//
// Defines, in `sluice::test`:
// - `fault_proxy`: listens on 127.0.0.1, port 0, and forwards the bytes of
//   every accepted connection (a "link") to a target endpoint and back. Its
//   controls break the path between a client and a server the way networks
//   do: `cut()` closes every current link, `blackhole(true)` keeps links open
//   but drops every byte in both directions, `delay(d)` holds every chunk for
//   `d`, `refuse(true)` turns new connections away (closed at once, or not
//   listening at all), `set_target(e)` sends new links to another endpoint (a
//   server restarted on a new port). Counters and accept times tell what
//   clients did.
// - `io_thread`: an io_context run by one background thread, stopped and
//   joined on destruction, to host a proxy (or anything else) in a test.
//
// Guarantees: the proxy never blocks and owns no thread; it runs on the
// executor it is given, all its state on one strand. Every control may be
// called from any thread: it posts to that strand (flags take effect at once
// for the next chunk); `settle()` waits (bounded) until everything posted
// before it has been applied. Within a link, bytes keep their order in each
// direction, delayed or not. An EOF from one side is passed on as a
// half-close (shutdown of the send side) to the other; an error on either
// side closes both.
//
// Example:
//     io_thread net;
//     fault_proxy proxy(net.executor(), {asio::ip::make_address("127.0.0.1"), server_port});
//     client.connect(proxy.port());   // through the proxy
//     proxy.cut();                    // the client sees its connection drop
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/bind_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::test {

/// An io_context run by one background thread until destruction, which stops
/// it and joins the thread. Thread-safe like the io_context itself.
///
///     io_thread net;
///     asio::post(net.executor(), [] { /* runs on the background thread */ });
class io_thread {
public:
    io_thread() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
    io_thread(const io_thread&) = delete;
    io_thread& operator=(const io_thread&) = delete;
    ~io_thread() {
        work_.reset();
        io_.stop();
        thread_.join();
    }

    asio::io_context& io() noexcept { return io_; }
    asio::any_io_executor executor() { return io_.get_executor(); }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::thread thread_;
};

/// How `fault_proxy::refuse(true, …)` turns new connections away.
enum class refusal {
    close_at_once,  ///< accept, then close at once: the client sees EOF right after connecting
    not_listening,  ///< close the listening socket: connecting fails (ECONNREFUSED)
};

namespace detail {

class fault_proxy_impl : public std::enable_shared_from_this<fault_proxy_impl> {
public:
    using tcp = asio::ip::tcp;

    fault_proxy_impl(asio::any_io_executor executor, tcp::endpoint target)
        : strand_(asio::make_strand(executor)), acceptor_(strand_), target_(std::move(target)) {}

    void listen() {
        open_acceptor(0);
        port_ = acceptor_.local_endpoint().port();
    }

    void start() { accept_next(); }

    std::uint16_t port() const noexcept { return port_; }

    // Controls: flags are atomics read when a chunk arrives; the rest runs on
    // the strand.
    void cut(bool reset) {
        asio::post(strand_, [self = shared_from_this(), reset] { self->close_links(reset); });
    }
    void blackhole(bool on) noexcept { blackhole_.store(on); }
    void delay(std::chrono::milliseconds d) noexcept { delay_ms_.store(d.count()); }
    void refuse(bool on, refusal how) {
        asio::post(strand_, [self = shared_from_this(), on, how] { self->apply_refusal(on, how); });
    }
    void set_target(tcp::endpoint target) {
        asio::post(strand_, [self = shared_from_this(), target] { self->target_ = target; });
    }
    void stop() {
        asio::post(strand_, [self = shared_from_this()] {
            self->stopped_ = true;
            std::error_code ignored;
            self->acceptor_.close(ignored);
            self->close_links(false);
        });
    }
    bool settle(std::chrono::milliseconds timeout) {
        auto done = std::make_shared<std::promise<void>>();
        auto future = done->get_future();
        asio::post(strand_, [done] { done->set_value(); });
        return future.wait_for(timeout) == std::future_status::ready;
    }

    // Counters.
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> upstream_failures{0};
    std::atomic<std::uint64_t> bytes_forwarded{0};
    std::atomic<std::uint64_t> bytes_dropped{0};
    std::atomic<std::size_t> open_links{0};

    std::vector<std::chrono::steady_clock::time_point> accept_times() const {
        std::lock_guard<std::mutex> lock(times_mutex_);
        return accept_times_;
    }
    void clear_accept_times() {
        std::lock_guard<std::mutex> lock(times_mutex_);
        accept_times_.clear();
    }

private:
    using strand_type = asio::strand<asio::any_io_executor>;

    // One direction of a link (up: client to target; down: target to client).
    struct direction {
        std::array<char, 16 * 1024> buffer{};
        bool done = false;  // EOF seen and passed on
    };

    struct link {
        explicit link(strand_type& strand)
            : client(strand), upstream(strand), up_timer(strand), down_timer(strand) {}
        tcp::socket client;
        tcp::socket upstream;
        asio::steady_timer up_timer;    // client -> upstream delay
        asio::steady_timer down_timer;  // upstream -> client delay
        direction up;
        direction down;
        bool closed = false;
    };

    void open_acceptor(std::uint16_t port) {
        tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
        acceptor_ = tcp::acceptor(strand_);
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(asio::socket_base::max_listen_connections);
    }

    void accept_next() {
        if (stopped_ || !acceptor_.is_open()) return;
        acceptor_.async_accept(asio::bind_executor(
            strand_, [self = shared_from_this()](std::error_code ec, tcp::socket socket) {
                self->on_accept(ec, std::move(socket));
            }));
    }

    void on_accept(std::error_code ec, tcp::socket socket) {
        if (ec) {
            if (ec == asio::error::operation_aborted || stopped_ || !acceptor_.is_open()) return;
            accept_next();  // e.g. EMFILE: keep serving the others
            return;
        }
        accepted.fetch_add(1);
        {
            std::lock_guard<std::mutex> lock(times_mutex_);
            accept_times_.push_back(std::chrono::steady_clock::now());
        }
        if (refusing_ || stopped_) {
            refused.fetch_add(1);
            std::error_code ignored;
            socket.close(ignored);
        } else {
            auto l = std::make_shared<link>(strand_);
            l->client = std::move(socket);
            links_.push_back(l);
            open_links.fetch_add(1);
            connect_upstream(l);
        }
        accept_next();
    }

    void connect_upstream(const std::shared_ptr<link>& l) {
        l->upstream.async_connect(target_, asio::bind_executor(strand_, [self = shared_from_this(),
                                                                         l](std::error_code ec) {
                                      if (l->closed) return;
                                      if (ec) {
                                          self->close_link(*l, false);
                                          self->upstream_failures.fetch_add(1);
                                          return;
                                      }
                                      std::error_code ignored;
                                      l->client.set_option(tcp::no_delay(true), ignored);
                                      l->upstream.set_option(tcp::no_delay(true), ignored);
                                      self->pump(l, true);
                                      self->pump(l, false);
                                  }));
    }

    // Moves one chunk from one side to the other, then the next.
    void pump(const std::shared_ptr<link>& l, bool upward) {
        if (l->closed) return;
        tcp::socket& from = upward ? l->client : l->upstream;
        direction& p = upward ? l->up : l->down;
        from.async_read_some(asio::buffer(p.buffer),
                             asio::bind_executor(strand_, [self = shared_from_this(), l, upward](
                                                              std::error_code ec, std::size_t n) {
                                 self->on_read(l, upward, ec, n);
                             }));
    }

    void on_read(const std::shared_ptr<link>& l, bool upward, std::error_code ec, std::size_t n) {
        if (l->closed) return;
        if (ec) {
            if (ec == asio::error::eof) {
                pass_eof(l, upward);
            } else {
                close_link(*l, false);
            }
            return;
        }
        if (blackhole_.load()) {
            bytes_dropped.fetch_add(n);
            pump(l, upward);
            return;
        }
        auto d = std::chrono::milliseconds(delay_ms_.load());
        if (d.count() > 0) {
            asio::steady_timer& timer = upward ? l->up_timer : l->down_timer;
            timer.expires_after(d);
            timer.async_wait(asio::bind_executor(
                strand_, [self = shared_from_this(), l, upward, n](std::error_code) {
                    self->forward(l, upward, n);
                }));
            return;
        }
        forward(l, upward, n);
    }

    void forward(const std::shared_ptr<link>& l, bool upward, std::size_t n) {
        if (l->closed) return;
        // A blackhole switched on while the chunk was delayed swallows it too.
        if (blackhole_.load()) {
            bytes_dropped.fetch_add(n);
            pump(l, upward);
            return;
        }
        tcp::socket& to = upward ? l->upstream : l->client;
        direction& p = upward ? l->up : l->down;
        asio::async_write(to, asio::buffer(p.buffer.data(), n),
                          asio::bind_executor(strand_, [self = shared_from_this(), l, upward](
                                                           std::error_code ec, std::size_t k) {
                              if (l->closed) return;
                              if (ec) {
                                  self->close_link(*l, false);
                                  return;
                              }
                              self->bytes_forwarded.fetch_add(k);
                              self->pump(l, upward);
                          }));
    }

    void pass_eof(const std::shared_ptr<link>& l, bool upward) {
        direction& p = upward ? l->up : l->down;
        p.done = true;
        std::error_code ignored;
        (upward ? l->upstream : l->client).shutdown(tcp::socket::shutdown_send, ignored);
        if (l->up.done && l->down.done) close_link(*l, false);
    }

    void close_link(link& l, bool reset) {
        if (l.closed) return;
        l.closed = true;
        std::error_code ignored;
        for (tcp::socket* s : {&l.client, &l.upstream}) {
            if (!s->is_open()) continue;
            if (reset) s->set_option(asio::socket_base::linger(true, 0), ignored);
            s->close(ignored);
        }
        l.up_timer.cancel();
        l.down_timer.cancel();
        open_links.fetch_sub(1);
        // Forget closed links (their handlers hold their own references).
        links_.erase(std::remove_if(links_.begin(), links_.end(),
                                    [](const std::shared_ptr<link>& x) { return x->closed; }),
                     links_.end());
    }

    void close_links(bool reset) {
        auto links = links_;
        for (auto& l : links) close_link(*l, reset);
    }

    void apply_refusal(bool on, refusal how) {
        if (stopped_) return;
        refusing_ = on && how == refusal::close_at_once;
        std::error_code ignored;
        if (on && how == refusal::not_listening) {
            acceptor_.close(ignored);
        } else if (!acceptor_.is_open()) {
            // The same port, so that clients keep their URL.
            acceptor_ = tcp::acceptor(strand_);
            tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port_);
            acceptor_.open(endpoint.protocol(), ignored);
            acceptor_.set_option(tcp::acceptor::reuse_address(true), ignored);
            acceptor_.bind(endpoint, ignored);
            acceptor_.listen(asio::socket_base::max_listen_connections, ignored);
            accept_next();
        }
    }

    strand_type strand_;
    tcp::acceptor acceptor_;
    tcp::endpoint target_;
    std::uint16_t port_ = 0;
    std::vector<std::shared_ptr<link>> links_;
    bool refusing_ = false;
    bool stopped_ = false;
    std::atomic<bool> blackhole_{false};
    std::atomic<std::int64_t> delay_ms_{0};
    mutable std::mutex times_mutex_;
    std::vector<std::chrono::steady_clock::time_point> accept_times_;
};

}  // namespace detail

/// A TCP proxy on 127.0.0.1:port() that forwards to a target endpoint and
/// injects faults on command. Runs on the executor it is given (which some
/// thread must run); every member is callable from any thread. Destruction
/// stops it: the listening socket and every link are closed on its strand.
///
///     io_thread net;
///     fault_proxy proxy(net.executor(), server_endpoint);
///     proxy.blackhole(true);   // links stay open, nothing gets through
///     proxy.blackhole(false);
///     proxy.cut();             // every current link is closed
class fault_proxy {
public:
    using endpoint = asio::ip::tcp::endpoint;

    /// Listens on 127.0.0.1, a free port, at once (throws std::system_error
    /// if it cannot) and starts accepting on `executor`.
    fault_proxy(asio::any_io_executor executor, endpoint target)
        : impl_(
              std::make_shared<detail::fault_proxy_impl>(std::move(executor), std::move(target))) {
        impl_->listen();
        impl_->start();
    }
    /// Forwards to 127.0.0.1:target_port.
    fault_proxy(asio::any_io_executor executor, std::uint16_t target_port)
        : fault_proxy(std::move(executor), loopback(target_port)) {}

    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;
    ~fault_proxy() { impl_->stop(); }

    /// 127.0.0.1:port; the port never changes (refusals reopen the same one).
    std::uint16_t port() const noexcept { return impl_->port(); }

    /// Closes both sides of every current link (FIN; `reset` = true sends an
    /// RST instead). New connections are still forwarded.
    void cut(bool reset = false) { impl_->cut(reset); }

    /// On: links stay open but every byte read from either side is dropped
    /// (a dead route: no FIN, no RST). Off: bytes flow again (what was
    /// dropped stays lost).
    void blackhole(bool on) noexcept { impl_->blackhole(on); }

    /// Holds every chunk for `d` before passing it on (0: no delay); order is
    /// kept within each direction.
    void delay(std::chrono::milliseconds d) noexcept { impl_->delay(d); }

    /// On: new connections are turned away as `how` says; current links are
    /// left alone (call `cut()` too for a server that died). Off: accepting
    /// and forwarding again, on the same port.
    void refuse(bool on, refusal how = refusal::close_at_once) { impl_->refuse(on, how); }

    /// New links connect to `target` (current ones stay where they are).
    void set_target(endpoint target) { impl_->set_target(std::move(target)); }
    void set_target(std::uint16_t target_port) { set_target(loopback(target_port)); }

    /// Waits until every control posted before this call has been applied;
    /// false after `timeout`. Do not call from the thread running the
    /// proxy's executor.
    bool settle(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return impl_->settle(timeout);
    }

    /// TCP connections accepted (refused ones included).
    std::uint64_t accepted() const noexcept { return impl_->accepted.load(); }
    /// Connections closed at once under `refuse(true, refusal::close_at_once)`.
    std::uint64_t refused() const noexcept { return impl_->refused.load(); }
    /// Links whose connection to the target failed (then closed).
    std::uint64_t upstream_failures() const noexcept { return impl_->upstream_failures.load(); }
    /// Links currently open.
    std::size_t open_links() const noexcept { return impl_->open_links.load(); }
    /// Bytes written to either side.
    std::uint64_t bytes_forwarded() const noexcept { return impl_->bytes_forwarded.load(); }
    /// Bytes swallowed by the blackhole.
    std::uint64_t bytes_dropped() const noexcept { return impl_->bytes_dropped.load(); }
    /// When each connection was accepted, in order (refused ones included).
    std::vector<std::chrono::steady_clock::time_point> accept_times() const {
        return impl_->accept_times();
    }
    void clear_accept_times() { impl_->clear_accept_times(); }

private:
    static endpoint loopback(std::uint16_t port) {
        return endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
    }

    std::shared_ptr<detail::fault_proxy_impl> impl_;
};

}  // namespace sluice::test
