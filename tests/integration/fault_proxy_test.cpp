// The fault-injecting proxy of tests/support against small echo servers:
// forwarding and counters, cut, blackhole, delay, both kinds of refusal,
// set_target, half-close and an unreachable target. Every wait is bounded.
#include "fault_proxy.hpp"

#include "test_client.hpp"

#include <catch2/catch.hpp>

#include <cctype>

using namespace sluice::test;
using asio::ip::tcp;

namespace {

/// Echoes every chunk back on each accepted connection, upper-cased when
/// `upper`, and closes its side after the peer's EOF. Runs on its own thread.
class echo_server {
public:
    explicit echo_server(bool upper = false)
        : acceptor_(net_.io(), tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0)),
          upper_(upper) {
        accept();
    }
    ~echo_server() {
        std::promise<void> closed;
        asio::post(net_.io(), [&] {
            std::error_code ignored;
            acceptor_.close(ignored);
            closed.set_value();
        });
        closed.get_future().wait_for(default_timeout);
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::size_t connections() const { return connections_.load(); }

private:
    struct session : std::enable_shared_from_this<session> {
        session(tcp::socket s, bool u) : socket(std::move(s)), upper(u) {}
        void read() {
            socket.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                             std::error_code ec, std::size_t n) {
                if (ec) {
                    std::error_code ignored;
                    self->socket.close(ignored);
                    return;
                }
                if (self->upper) {
                    for (std::size_t i = 0; i < n; ++i) {
                        self->buffer[i] = static_cast<char>(
                            std::toupper(static_cast<unsigned char>(self->buffer[i])));
                    }
                }
                asio::async_write(self->socket, asio::buffer(self->buffer.data(), n),
                                  [self](std::error_code e, std::size_t) {
                                      if (!e) self->read();
                                  });
            });
        }
        tcp::socket socket;
        bool upper;
        std::array<char, 4096> buffer{};
    };

    void accept() {
        acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
            if (ec) return;
            connections_.fetch_add(1);
            std::make_shared<session>(std::move(socket), upper_)->read();
            accept();
        });
    }

    io_thread net_;
    tcp::acceptor acceptor_;
    bool upper_;
    std::atomic<std::size_t> connections_{0};
};

/// Sends `text` and reads until `expected.size()` bytes came back (bounded).
std::string round_trip(tcp_client& c, const std::string& text, std::size_t expected_size,
                       std::chrono::milliseconds timeout = default_timeout) {
    c.buffer().clear();
    if (!c.send(text)) return "<send failed>";
    c.read_at_least(expected_size, steady::now() + timeout);
    return c.buffer();
}

/// True when nothing at all arrives on `c` within `window` (and it stays open).
bool silent_for(tcp_client& c, std::chrono::milliseconds window) {
    c.buffer().clear();
    return c.read_more(steady::now() + window) == io_status::timeout && c.buffer().empty();
}

}  // namespace

TEST_CASE("fault_proxy: forwards both ways and counts links and bytes", "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    REQUIRE(proxy.port() != 0);
    REQUIRE(proxy.port() != echo.port());

    tcp_client a;
    REQUIRE(a.connect(proxy.port()));
    CHECK(round_trip(a, "hello", 5) == "hello");
    tcp_client b;
    REQUIRE(b.connect(proxy.port()));
    CHECK(round_trip(b, "world!", 6) == "world!");
    CHECK(round_trip(a, "again", 5) == "again");

    CHECK(proxy.accepted() == 2);
    CHECK(proxy.open_links() == 2);
    CHECK(echo.connections() == 2);
    // Counted when the write completes, which may be after the echo arrived.
    CHECK(eventually([&] { return proxy.bytes_forwarded() == 2 * (5 + 6 + 5); }));
    CHECK(proxy.bytes_dropped() == 0);
    CHECK(proxy.accept_times().size() == 2);
}

TEST_CASE("fault_proxy: cut closes every current link, new ones still work", "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    tcp_client a;
    tcp_client b;
    REQUIRE(a.connect(proxy.port()));
    REQUIRE(b.connect(proxy.port()));
    REQUIRE(round_trip(a, "x", 1) == "x");
    REQUIRE(round_trip(b, "y", 1) == "y");

    SECTION("with FIN") { proxy.cut(); }
    SECTION("with RST") { proxy.cut(true); }
    CHECK(a.wait_closed(2000ms));
    CHECK(b.wait_closed(2000ms));
    CHECK(eventually([&] { return proxy.open_links() == 0; }));

    tcp_client c;
    REQUIRE(c.connect(proxy.port()));
    CHECK(round_trip(c, "after", 5) == "after");
    CHECK(proxy.accepted() == 3);
}

TEST_CASE("fault_proxy: blackhole keeps links open and drops bytes both ways", "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    tcp_client a;
    REQUIRE(a.connect(proxy.port()));
    REQUIRE(round_trip(a, "before", 6) == "before");
    REQUIRE(eventually([&] { return proxy.bytes_forwarded() == 12; }));
    std::uint64_t forwarded = 12;

    proxy.blackhole(true);
    REQUIRE(a.send("lost"));
    CHECK(silent_for(a, 300ms));
    CHECK(eventually([&] { return proxy.bytes_dropped() == 4; }));
    CHECK(proxy.bytes_forwarded() == forwarded);
    CHECK(proxy.open_links() == 1);
    CHECK(a.is_connected());

    proxy.blackhole(false);
    REQUIRE(round_trip(a, "up", 2) == "up");  // the dropped "lost" never shows up

    // The way back is dropped too: with a delay of 500 ms per chunk, "zz"
    // passes up at about 500 ms, its echo would pass down at about 1000 ms;
    // the blackhole starts in between.
    proxy.delay(500ms);
    REQUIRE(eventually([&] { return proxy.bytes_forwarded() == 16; }));  // "lost" is not in it
    forwarded = 16;
    auto dropped = proxy.bytes_dropped();
    a.buffer().clear();
    REQUIRE(a.send("zz"));
    std::this_thread::sleep_for(750ms);  // real latency is what is simulated here
    proxy.blackhole(true);
    CHECK(silent_for(a, 600ms));
    CHECK(eventually([&] { return proxy.bytes_forwarded() == forwarded + 2; }));  // up: passed
    CHECK(proxy.bytes_dropped() == dropped + 2);                                  // down: dropped
    proxy.delay(0ms);

    proxy.blackhole(false);
    CHECK(round_trip(a, "back", 4) == "back");
    CHECK(proxy.open_links() == 1);
    CHECK(proxy.accepted() == 1);
}

TEST_CASE("fault_proxy: delay holds every chunk, order is kept", "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    tcp_client a;
    REQUIRE(a.connect(proxy.port()));

    auto t0 = steady::now();
    REQUIRE(round_trip(a, "fast", 4) == "fast");
    auto fast = steady::now() - t0;
    CHECK(fast < 150ms);

    proxy.delay(150ms);
    t0 = steady::now();
    REQUIRE(round_trip(a, "slow", 4) == "slow");
    auto slow = steady::now() - t0;
    CHECK(slow >= 300ms);  // 150 ms on the way up, 150 ms on the way down
    CHECK(slow < 3000ms);

    // Several chunks sent in a row come back complete and in order.
    a.buffer().clear();
    for (const char* part : {"one-", "two-", "three"}) REQUIRE(a.send(part));
    REQUIRE(a.read_at_least(13, steady::now() + default_timeout));
    CHECK(a.buffer() == "one-two-three");

    proxy.delay(0ms);
    t0 = steady::now();
    REQUIRE(round_trip(a, "fast", 4) == "fast");
    CHECK(steady::now() - t0 < 150ms);
}

TEST_CASE("fault_proxy: refuse closes new connections at once, current ones live on",
          "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    tcp_client before;
    REQUIRE(before.connect(proxy.port()));
    REQUIRE(round_trip(before, "a", 1) == "a");

    proxy.refuse(true);
    REQUIRE(proxy.settle());
    for (int i = 0; i < 3; ++i) {
        tcp_client refused;
        REQUIRE(refused.connect(proxy.port()));  // the handshake completes...
        CHECK(refused.wait_closed(2000ms));      // ...then the proxy hangs up
    }
    CHECK(eventually([&] { return proxy.refused() == 3; }));
    CHECK(echo.connections() == 1);
    CHECK(round_trip(before, "still", 5) == "still");

    proxy.refuse(false);
    REQUIRE(proxy.settle());
    tcp_client after;
    REQUIRE(after.connect(proxy.port()));
    CHECK(round_trip(after, "ok", 2) == "ok");
    CHECK(proxy.accepted() == 5);
    CHECK(proxy.refused() == 3);
}

TEST_CASE("fault_proxy: refuse not_listening makes connecting fail, same port after",
          "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    auto port = proxy.port();

    proxy.refuse(true, refusal::not_listening);
    REQUIRE(proxy.settle());
    tcp_client refused;
    CHECK_FALSE(refused.connect(port));
    CHECK(proxy.accepted() == 0);

    proxy.refuse(false, refusal::not_listening);
    REQUIRE(proxy.settle());
    CHECK(proxy.port() == port);
    tcp_client after;
    REQUIRE(after.connect(port));
    CHECK(round_trip(after, "back", 4) == "back");
    CHECK(proxy.accepted() == 1);
}

TEST_CASE("fault_proxy: set_target moves new links, old ones stay", "[fault_proxy]") {
    echo_server plain;
    echo_server upper(true);
    io_thread net;
    fault_proxy proxy(net.executor(), plain.port());
    tcp_client old_link;
    REQUIRE(old_link.connect(proxy.port()));
    REQUIRE(round_trip(old_link, "abc", 3) == "abc");

    proxy.set_target(upper.port());
    REQUIRE(proxy.settle());
    tcp_client new_link;
    REQUIRE(new_link.connect(proxy.port()));
    CHECK(round_trip(new_link, "abc", 3) == "ABC");
    CHECK(round_trip(old_link, "def", 3) == "def");
    CHECK(plain.connections() == 1);
    CHECK(upper.connections() == 1);
}

TEST_CASE("fault_proxy: an EOF is passed on as a half-close", "[fault_proxy]") {
    echo_server echo;
    io_thread net;
    fault_proxy proxy(net.executor(), echo.port());
    tcp_client a;
    REQUIRE(a.connect(proxy.port()));
    REQUIRE(round_trip(a, "bye", 3) == "bye");
    a.shutdown_send();  // the echo server sees EOF, closes; the client sees EOF
    CHECK(a.wait_closed(2000ms));
    CHECK(eventually([&] { return proxy.open_links() == 0; }));
}

TEST_CASE("fault_proxy: an unreachable target closes the client's link", "[fault_proxy]") {
    std::uint16_t dead_port = 0;
    {
        echo_server gone;  // a port that was free a moment ago and is closed now
        dead_port = gone.port();
    }
    io_thread net;
    fault_proxy proxy(net.executor(), dead_port);
    tcp_client a;
    REQUIRE(a.connect(proxy.port()));
    CHECK(a.wait_closed(2000ms));
    CHECK(eventually([&] { return proxy.upstream_failures() == 1; }));
    CHECK(eventually([&] { return proxy.open_links() == 0; }));
}
