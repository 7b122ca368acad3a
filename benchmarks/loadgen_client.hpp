// The load generator's client: one raw Asio TCP socket speaking just enough
// WebSocket (RFC 6455, client side) or Server-Sent Events to drive a server.
//
// Built to stay out of the measurement: a client reads into its own buffer
// (64 KiB by default, smaller for the idle run), parses frames in place and
// keeps only an incomplete tail. Messages are handed over as string_views into that buffer;
// the JSON of events is never parsed, only scanned for the fields the checks
// need (`field_u64`).
//
// Thread-safety: a client and its callbacks run on the thread running its
// io_context (one thread).
#pragma once

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::bench::loadgen {

/// The unsigned integer after `key` in `text` (e.g. key `"offset":`), or
/// `fallback` when absent. O(length) scan, no allocation.
inline std::uint64_t field_u64(std::string_view text, std::string_view key,
                               std::uint64_t fallback = 0) {
    auto at = text.find(key);
    if (at == std::string_view::npos) return fallback;
    std::uint64_t v = 0;
    bool any = false;
    for (std::size_t i = at + key.size(); i < text.size() && text[i] >= '0' && text[i] <= '9';
         ++i) {
        v = v * 10 + static_cast<std::uint64_t>(text[i] - '0');
        any = true;
    }
    return any ? v : fallback;
}

/// The `type` of a server message: events are recognised by their fixed
/// prefix without a scan.
inline std::string_view message_type(std::string_view json) {
    constexpr std::string_view event_prefix = R"({"type":"event")";
    if (json.substr(0, event_prefix.size()) == event_prefix) return "event";
    constexpr std::string_view key = R"("type":")";
    auto at = json.find(key);
    if (at == std::string_view::npos) return {};
    auto start = at + key.size();
    auto end = json.find('"', start);
    return end == std::string_view::npos ? std::string_view{} : json.substr(start, end - start);
}

/// Appends a masked client frame (FIN set) carrying `payload`.
inline void append_client_frame(std::string& out, std::string_view payload,
                                std::uint8_t opcode = 0x1) {
    static constexpr std::uint8_t mask[4] = {0x5a, 0x13, 0xc7, 0x2e};
    out.push_back(static_cast<char>(0x80 | opcode));
    const std::uint64_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
        out.push_back(static_cast<char>(0x80 | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xff));
    } else {
        out.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((n >> shift) & 0xff));
    }
    out.append(reinterpret_cast<const char*>(mask), 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        out.push_back(static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ mask[i & 3]));
    }
}

/// One client connection (WebSocket or SSE).
class client : public std::enable_shared_from_this<client> {
public:
    enum class transport : std::uint8_t { websocket, sse };

    /// Called once the upgrade (101) or the SSE head (200) arrived.
    std::function<void(client&)> on_open;
    /// A WebSocket text message, or the payload of an SSE `data:` line.
    std::function<void(client&, std::string_view)> on_message;
    /// The connection failed or the server closed it (not called after close()).
    std::function<void(client&, std::string_view why)> on_failure;

    /// `target`: the request target (`/ws`, `/events?topic=bench`);
    /// `read_buffer_size`: this client's read buffer (allocated on connect).
    client(asio::io_context& io, transport t, std::string target,
           std::size_t read_buffer_size = 64 * 1024)
        : socket_(io),
          transport_(t),
          target_(std::move(target)),
          read_buffer_size_(read_buffer_size) {}

    /// Connects, sends the request and starts reading.
    void start(const asio::ip::tcp::endpoint& server) {
        socket_.async_connect(server, [self = shared_from_this()](const std::error_code& ec) {
            if (self->closed_) return;
            if (ec) return self->fail("connect: " + ec.message());
            std::error_code ignored;
            self->socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
            self->socket_.non_blocking(true, ignored);
            std::string request = "GET " + self->target_ + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
            if (self->transport_ == transport::websocket) {
                request +=
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
                    "13\r\n\r\n";
            } else {
                request += "Accept: text/event-stream\r\n\r\n";
            }
            self->write_raw(request);
            self->read_more();
        });
    }

    /// Sends a WebSocket text message.
    void send_text(std::string_view json) {
        std::string frame;
        frame.reserve(json.size() + 14);
        append_client_frame(frame, json);
        write_raw(frame);
    }

    /// Closes the socket (no close handshake: the run is over).
    void close() {
        closed_ = true;
        std::error_code ignored;
        socket_.close(ignored);
    }

    bool is_open() const noexcept { return open_ && !closed_; }

    /// Free for the owner of the client (an index, a role).
    std::size_t tag = 0;

private:
    void fail(std::string why) {
        if (closed_) return;
        closed_ = true;
        std::error_code ignored;
        socket_.close(ignored);
        if (on_failure) on_failure(*this, why);
    }

    // Everything a handler sends goes out in one write: the write is posted,
    // not started, so messages queued in the same turn are coalesced (as a
    // client library with a write queue would do).
    void write_raw(std::string_view bytes) {
        outbox_.append(bytes);
        if (writing_ || write_posted_) return;
        write_posted_ = true;
        asio::post(socket_.get_executor(), [self = shared_from_this()] {
            self->write_posted_ = false;
            self->write_some();
        });
    }

    void write_some() {
        if (outbox_.empty() || closed_ || writing_) return;
        writing_ = true;
        inflight_.swap(outbox_);
        outbox_.clear();
        asio::async_write(socket_, asio::buffer(inflight_),
                          [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                              self->writing_ = false;
                              self->inflight_.clear();
                              if (self->closed_) return;
                              if (ec) return self->fail("write: " + ec.message());
                              self->write_some();
                          });
    }

    // async_read_some rather than async_wait + read_some: Asio re-arms epoll
    // (epoll_ctl) on every async_wait, but not for a read that finds the
    // socket empty, so the load generator spends less time in the kernel.
    void read_more() {
        if (read_buffer_.empty()) read_buffer_.resize(read_buffer_size_);
        socket_.async_read_some(
            asio::buffer(read_buffer_),
            [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            });
    }

    void on_read(const std::error_code& ec, std::size_t n) {
        if (closed_) return;
        if (ec) return fail(ec == asio::error::eof ? "closed by server" : "read: " + ec.message());
        consume(read_buffer_.data(), n);
        if (closed_) return;
        read_more();
    }

    void consume(const char* data, std::size_t size) {
        if (rest_.empty()) {
            std::size_t used = parse(data, size);
            if (!closed_ && used < size) rest_.assign(data + used, size - used);
        } else {
            rest_.append(data, size);
            std::size_t used = parse(rest_.data(), rest_.size());
            if (!closed_) rest_.erase(0, used);
        }
    }

    // Returns how many bytes were consumed; the rest is an incomplete unit.
    std::size_t parse(const char* data, std::size_t size) {
        std::size_t used = 0;
        if (!open_) {
            std::string_view view(data, size);
            auto end = view.find("\r\n\r\n");
            if (end == std::string_view::npos) return 0;
            std::string_view head = view.substr(0, end);
            if (transport_ == transport::websocket) {
                if (head.substr(0, 12) != "HTTP/1.1 101" ||
                    head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string_view::npos) {
                    fail("bad upgrade answer: " + std::string(head.substr(0, head.find('\r'))));
                    return size;
                }
            } else if (head.substr(0, 12) != "HTTP/1.1 200") {
                fail("bad SSE answer: " + std::string(head.substr(0, head.find('\r'))));
                return size;
            }
            open_ = true;
            used = end + 4;
            if (on_open) on_open(*this);
            if (closed_) return size;
        }
        return used + (transport_ == transport::websocket ? parse_frames(data + used, size - used)
                                                          : parse_lines(data + used, size - used));
    }

    std::size_t parse_frames(const char* data, std::size_t size) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(data);
        std::size_t at = 0;
        while (size - at >= 2) {
            const std::uint8_t b0 = p[at], b1 = p[at + 1];
            if (b1 & 0x80) {
                fail("masked server frame");
                return size;
            }
            std::uint64_t len = b1 & 0x7f;
            std::size_t header = 2;
            if (len == 126) {
                if (size - at < 4) break;
                len = (std::uint64_t{p[at + 2]} << 8) | p[at + 3];
                header = 4;
            } else if (len == 127) {
                if (size - at < 10) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | p[at + 2 + i];
                header = 10;
            }
            if (size - at - header < len) break;
            std::string_view payload(data + at + header, static_cast<std::size_t>(len));
            at += header + static_cast<std::size_t>(len);
            const std::uint8_t opcode = b0 & 0x0f;
            if (!(b0 & 0x80) || opcode == 0x0) {
                fail("fragmented server message");  // neither server sends them
                return size;
            }
            if (opcode == 0x1) {
                if (on_message) on_message(*this, payload);
            } else if (opcode == 0x9) {
                std::string pong;
                append_client_frame(pong, payload, 0xA);
                write_raw(pong);
            } else if (opcode == 0x8) {
                unsigned code =
                    payload.size() >= 2
                        ? (static_cast<unsigned>(static_cast<std::uint8_t>(payload[0])) << 8) |
                              static_cast<std::uint8_t>(payload[1])
                        : 0;
                fail("close frame " + std::to_string(code));
                return size;
            } else if (opcode != 0xA) {
                fail("unexpected opcode " + std::to_string(opcode));
                return size;
            }
            if (closed_) return size;
        }
        return at;
    }

    std::size_t parse_lines(const char* data, std::size_t size) {
        std::size_t at = 0;
        while (at < size) {
            const void* nl = std::memchr(data + at, '\n', size - at);
            if (!nl) break;
            std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - data);
            std::string_view line(data + at, end - at);
            at = end + 1;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.size() > 6 && line.substr(0, 6) == "data: ") {
                if (on_message) on_message(*this, line.substr(6));
                if (closed_) return size;
            }
        }
        return at;
    }

    asio::ip::tcp::socket socket_;
    transport transport_;
    std::string target_;
    std::size_t read_buffer_size_;
    std::vector<char> read_buffer_;
    std::string rest_;
    std::string outbox_;
    std::string inflight_;
    bool open_ = false;
    bool writing_ = false;
    bool write_posted_ = false;
    bool closed_ = false;
};

}  // namespace sluice::bench::loadgen
