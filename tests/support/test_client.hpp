// Test clients and an in-process server fixture for the integration tests.
//
// Defines, in `sluice::test`:
// - `tcp_client`: a raw TCP connection to 127.0.0.1 whose every read and write
//   is bounded by a deadline (its own io_context, run until the deadline), so
//   no test can hang on a silent server;
// - `http_response` and `http_client`: raw HTTP/1.1 requests (bytes as given:
//   keep-alive reuse, chunked bodies, malformed heads) and response parsing
//   (Content-Length, chunked, or until close);
// - `json_msg`, `ws_frame` and `ws_client`: a WebSocket client (RFC 6455)
//   that sends masked frames of any kind (text, binary, ping, close,
//   fragments, invalid UTF-8, oversize), reads frames including control
//   frames, and answers pings only when `auto_pong` is on;
// - `sse_block` and `sse_client`: an EventSource-like reader of `id:`,
//   `event:`, `data:`, `retry:` and comment lines;
// - `test_server`: a hub and a server on 127.0.0.1:0 whose io_context runs on
//   1-N background threads, stopped gracefully (bounded) when destroyed.
//
// Every wait is bounded (`default_timeout`, 5 s). Failures of the transport
// are reported as values (empty optionals, status 0), never by blocking; the
// `expect_*` helpers throw `std::runtime_error` with a readable message, which
// Catch2 reports as the failure of the test case.
//
// Thread-safety: one client per thread; `test_server` members may be called
// from the test thread while the io_context runs on its own threads.
#pragma once

#include <sluice/auth.hpp>
#include <sluice/hub.hpp>
#include <sluice/options.hpp>
#include <sluice/server.hpp>

#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sluice::test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// The bound on every wait of these clients.
inline constexpr std::chrono::milliseconds default_timeout{5000};

/// ASCII case-insensitive equality (header names).
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) {
            return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes; returns
/// its last value. For state that the server updates asynchronously (metrics,
/// connection counts), never to let time pass.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = default_timeout) {
    auto deadline = steady::now() + timeout;
    while (!condition()) {
        if (steady::now() >= deadline) return condition();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

/// Percent-encodes `text` for a query string.
inline std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// ---------------------------------------------------------------------------
// TCP

/// How a bounded read ended.
enum class io_status { ok, timeout, eof, error };

/// One TCP connection to 127.0.0.1:port with deadline-bounded I/O.
class tcp_client {
public:
    tcp_client() = default;
    tcp_client(const tcp_client&) = delete;
    tcp_client& operator=(const tcp_client&) = delete;
    virtual ~tcp_client() { close(); }

    /// Connects; `receive_buffer` > 0 sets SO_RCVBUF first (a small one makes
    /// a client that stops reading back-pressure the server quickly).
    bool connect(std::uint16_t port, int receive_buffer = 0) {
        std::error_code ec;
        socket_.open(asio::ip::tcp::v4(), ec);
        if (ec) return false;
        if (receive_buffer > 0) {
            socket_.set_option(asio::socket_base::receive_buffer_size(receive_buffer), ec);
        }
        socket_.set_option(asio::ip::tcp::no_delay(true), ec);
        asio::ip::tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
        std::error_code result = asio::error::would_block;
        socket_.async_connect(endpoint, [&](const std::error_code& e) { result = e; });
        run_until(steady::now() + default_timeout, result);
        connected_ = !result;
        return connected_;
    }

    bool is_connected() const noexcept { return connected_; }

    /// Writes all of `bytes` (bounded); false on an error or the deadline.
    bool send(std::string_view bytes, std::chrono::milliseconds timeout = default_timeout) {
        if (!socket_.is_open()) return false;
        std::error_code result = asio::error::would_block;
        asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                          [&](const std::error_code& e, std::size_t) { result = e; });
        run_until(steady::now() + timeout, result);
        last_write_error_ = result;
        return !result;
    }

    /// Reads what is available (at least one byte) into `buffer()`, waiting
    /// until `deadline`.
    io_status read_more(steady::time_point deadline) {
        if (!socket_.is_open()) return io_status::error;
        std::error_code result = asio::error::would_block;
        std::size_t n = 0;
        socket_.async_read_some(asio::buffer(chunk_), [&](const std::error_code& e, std::size_t k) {
            result = e;
            n = k;
        });
        run_until(deadline, result);
        buffer_.append(chunk_.data(), n);
        if (!result) return io_status::ok;
        if (result == asio::error::operation_aborted) return io_status::timeout;
        if (result == asio::error::eof) return io_status::eof;
        last_read_error_ = result;
        return io_status::error;
    }

    /// Reads until `buffer()` holds at least `n` bytes; false if it could not.
    bool read_at_least(std::size_t n, steady::time_point deadline) {
        while (buffer_.size() < n) {
            if (read_more(deadline) != io_status::ok) return buffer_.size() >= n;
        }
        return true;
    }

    /// Reads until `marker` appears in `buffer()`; its position, or npos.
    std::size_t read_until(std::string_view marker, steady::time_point deadline,
                           std::size_t search_from = 0) {
        for (;;) {
            auto pos = buffer_.find(marker, search_from);
            if (pos != std::string::npos) return pos;
            if (read_more(deadline) != io_status::ok) return buffer_.find(marker, search_from);
        }
    }

    /// Reads and discards until the peer ends the connection (EOF or reset);
    /// true when it did within `timeout`, false on the deadline.
    bool wait_closed(std::chrono::milliseconds timeout = default_timeout) {
        auto deadline = steady::now() + timeout;
        for (;;) {
            auto s = read_more(deadline);
            if (s == io_status::eof || s == io_status::error) return true;
            if (s == io_status::timeout) return false;
            if (buffer_.size() > (1u << 20)) buffer_.clear();
        }
    }

    /// Half-closes the sending side (the server sees EOF).
    void shutdown_send() {
        std::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }

    void close() {
        std::error_code ignored;
        if (socket_.is_open()) socket_.close(ignored);
        connected_ = false;
    }

    /// Bytes received and not consumed yet.
    std::string& buffer() noexcept { return buffer_; }
    const std::string& buffer() const noexcept { return buffer_; }
    std::error_code last_read_error() const noexcept { return last_read_error_; }
    std::error_code last_write_error() const noexcept { return last_write_error_; }
    std::uint16_t local_port() const {
        std::error_code ec;
        return socket_.local_endpoint(ec).port();
    }

private:
    // Runs the private io_context until the operation wrote `result`, or
    // cancels it at `deadline` (the handler then reports operation_aborted).
    void run_until(steady::time_point deadline, std::error_code& result) {
        io_.restart();
        io_.run_until(deadline);
        if (result == asio::error::would_block) {
            std::error_code ignored;
            socket_.cancel(ignored);
            io_.restart();
            io_.run();
            if (result == asio::error::would_block) result = asio::error::operation_aborted;
        }
    }

    asio::io_context io_;
    asio::ip::tcp::socket socket_{io_};
    std::array<char, 64 * 1024> chunk_{};
    std::string buffer_;
    bool connected_ = false;
    std::error_code last_read_error_;
    std::error_code last_write_error_;
};

// ---------------------------------------------------------------------------
// HTTP

/// A parsed HTTP response. `status == 0`: nothing complete arrived.
struct http_response {
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string head_text;  ///< the raw head, CRLFs included

    /// The first header named `name` (case-insensitive).
    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (iequals(k, name)) return v;
        }
        return std::nullopt;
    }
    bool has_header(std::string_view name) const { return header(name).has_value(); }
    /// Number of headers named `name`.
    std::size_t header_count(std::string_view name) const {
        return static_cast<std::size_t>(std::count_if(
            headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); }));
    }
};

/// A `GET` (or other method) request head with `Host`, the given extra header
/// lines (each ending in CRLF) and the final CRLF.
inline std::string http_request_text(std::string_view method, std::string_view target,
                                     std::string_view extra_headers = {},
                                     std::string_view body = {}) {
    std::string out;
    out += method;
    out += ' ';
    out += target;
    out += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    out += extra_headers;
    if (!body.empty()) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

/// A `POST /publish` request with a JSON body.
inline std::string publish_request_text(std::string_view body, std::string_view extra_headers = {},
                                        std::string_view content_type = "application/json") {
    std::string headers = "Content-Type: " + std::string(content_type) + "\r\n";
    headers += extra_headers;
    return http_request_text("POST", "/publish", headers, body);
}

/// An HTTP/1.1 connection: send raw requests, read responses.
class http_client : public tcp_client {
public:
    /// Reads one response head (up to the blank line) and leaves what follows
    /// in `buffer()`. Empty optional when none arrived before the deadline or
    /// the connection ended first.
    std::optional<http_response> read_head(std::chrono::milliseconds timeout = default_timeout) {
        auto deadline = steady::now() + timeout;
        auto end = read_until("\r\n\r\n", deadline);
        if (end == std::string::npos) return std::nullopt;
        http_response r;
        r.head_text = buffer().substr(0, end + 4);
        buffer().erase(0, end + 4);
        std::string_view head(r.head_text);
        auto line_end = head.find("\r\n");
        std::string_view status_line = head.substr(0, line_end);
        // "HTTP/1.1 200 OK"
        if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return std::nullopt;
        r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
        if (status_line.size() > 13) r.reason = std::string(status_line.substr(13));
        std::size_t pos = line_end + 2;
        while (pos < head.size()) {
            auto next = head.find("\r\n", pos);
            if (next == std::string_view::npos || next == pos) break;
            auto line = head.substr(pos, next - pos);
            auto colon = line.find(':');
            if (colon != std::string_view::npos) {
                auto value = line.substr(colon + 1);
                while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
                    value.remove_prefix(1);
                }
                while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
                    value.remove_suffix(1);
                }
                r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
            }
            pos = next + 2;
        }
        return r;
    }

    /// Reads one complete response: the body by Content-Length, chunked
    /// encoding, or until the connection closes. `head_request`: no body.
    std::optional<http_response> read_response(std::chrono::milliseconds timeout = default_timeout,
                                               bool head_request = false) {
        auto deadline = steady::now() + timeout;
        auto r = read_head(timeout);
        if (!r) return r;
        if (head_request || r->status == 204 || r->status == 304 || r->status / 100 == 1) return r;
        auto te = r->header("Transfer-Encoding");
        if (te && iequals(*te, "chunked")) {
            for (;;) {
                auto eol = read_until("\r\n", deadline);
                if (eol == std::string::npos) return std::nullopt;
                auto size = std::strtoul(buffer().substr(0, eol).c_str(), nullptr, 16);
                buffer().erase(0, eol + 2);
                if (!read_at_least(size + 2, deadline)) return std::nullopt;
                r->body += buffer().substr(0, size);
                buffer().erase(0, size + 2);
                if (size == 0) return r;
            }
        }
        if (auto length = r->header("Content-Length")) {
            auto n = static_cast<std::size_t>(std::strtoull(length->c_str(), nullptr, 10));
            if (!read_at_least(n, deadline)) return std::nullopt;
            r->body = buffer().substr(0, n);
            buffer().erase(0, n);
            return r;
        }
        while (read_more(deadline) == io_status::ok) {
        }
        r->body = std::move(buffer());
        buffer().clear();
        return r;
    }

    /// Sends `raw` and reads the response (status 0 if none came).
    http_response request(std::string_view raw, std::chrono::milliseconds timeout = default_timeout,
                          bool head_request = false) {
        if (!send(raw, timeout)) return {};
        auto r = read_response(timeout, head_request);
        return r ? *r : http_response{};
    }
};

/// One request on a new connection.
inline http_response http_fetch(std::uint16_t port, std::string_view raw,
                                std::chrono::milliseconds timeout = default_timeout) {
    http_client c;
    if (!c.connect(port)) return {};
    return c.request(raw, timeout);
}

/// `GET target` on a new connection, with extra header lines.
inline http_response http_get(std::uint16_t port, std::string_view target,
                              std::string_view extra_headers = {}) {
    return http_fetch(port, http_request_text("GET", target, extra_headers));
}

// ---------------------------------------------------------------------------
// JSON

/// A parsed JSON message with small accessors; `text` keeps the raw text.
class json_msg {
public:
    json_msg() : doc_(std::make_shared<rapidjson::Document>()) {}
    explicit json_msg(std::string text)
        : doc_(std::make_shared<rapidjson::Document>()), text_(std::move(text)) {
        doc_->Parse(text_.data(), text_.size());
    }

    bool valid() const { return !doc_->HasParseError(); }
    bool is_object() const { return valid() && doc_->IsObject(); }
    const std::string& text() const noexcept { return text_; }
    const rapidjson::Value& root() const { return *doc_; }

    bool has(const char* key) const { return is_object() && doc_->HasMember(key); }
    /// The member, or nullptr.
    const rapidjson::Value* get(const char* key) const {
        // HasMember, not FindMember: comparing RapidJSON 1.1 member iterators
        // is ambiguous in C++20 (clang -Wambiguous-reversed-operator).
        if (!is_object() || !doc_->HasMember(key)) return nullptr;
        const rapidjson::Value& root = *doc_;
        return &root[key];
    }
    /// A string member, or "" when absent or not a string.
    std::string str(const char* key) const {
        auto* v = get(key);
        return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength())
                                  : std::string{};
    }
    std::string type() const { return str("type"); }
    /// An unsigned integer member, or `fallback`.
    std::uint64_t u64(const char* key, std::uint64_t fallback = ~std::uint64_t{0}) const {
        auto* v = get(key);
        return v && v->IsUint64() ? v->GetUint64() : fallback;
    }
    std::int64_t i64(const char* key, std::int64_t fallback = -1) const {
        auto* v = get(key);
        return v && v->IsInt64() ? v->GetInt64() : fallback;
    }
    /// A boolean member; empty when absent or not a boolean.
    std::optional<bool> boolean(const char* key) const {
        auto* v = get(key);
        if (!v || !v->IsBool()) return std::nullopt;
        return v->GetBool();
    }
    /// The member re-serialized as compact JSON ("" when absent): `7`,
    /// `"abc"`, `{"a":1}`.
    std::string json_of(const char* key) const {
        auto* v = get(key);
        return v ? to_json(*v) : std::string{};
    }
    static std::string to_json(const rapidjson::Value& v) {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
        v.Accept(w);
        return std::string(buffer.GetString(), buffer.GetSize());
    }

private:
    std::shared_ptr<rapidjson::Document> doc_;
    std::string text_;
};

/// The text of a JSON string literal for `s` (quotes and escapes).
inline std::string json_quote(std::string_view s) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return std::string(buffer.GetString(), buffer.GetSize());
}

// ---------------------------------------------------------------------------
// WebSocket

/// WebSocket opcodes (RFC 6455 5.2).
enum class ws_op : std::uint8_t {
    continuation = 0,
    text = 1,
    binary = 2,
    close = 8,
    ping = 9,
    pong = 10
};

/// One received frame.
struct ws_frame {
    bool fin = true;
    std::uint8_t rsv = 0;
    ws_op opcode = ws_op::text;
    bool masked = false;
    std::string payload;

    /// A close frame's status code (0 when it has none).
    std::uint16_t close_code() const {
        if (payload.size() < 2) return 0;
        return static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                          static_cast<std::uint8_t>(payload[1]));
    }
    std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

/// How a WebSocket connection ended, as seen by `ws_client::wait_close`.
struct ws_close_result {
    bool close_frame = false;  ///< a close frame arrived
    std::uint16_t code = 0;    ///< its code (0 without one)
    std::string reason;
    bool tcp_closed = false;  ///< the TCP connection ended (with or without a close frame)
    bool timed_out = false;
};

/// The RFC 6455 sample key and the accept value the server must answer.
inline constexpr std::string_view ws_sample_key = "dGhlIHNhbXBsZSBub25jZQ==";
inline constexpr std::string_view ws_sample_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The header lines of a WebSocket upgrade request (RFC 6455 sample key).
inline std::string ws_upgrade_headers() {
    return "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
           std::string(ws_sample_key) + "\r\nSec-WebSocket-Version: 13\r\n";
}

/// A WebSocket client with deadline-bounded reads.
///
/// Example:
/// @code
/// ws_client ws;
/// REQUIRE(ws.open(server.port()));            // handshake + welcome
/// ws.send_json(R"({"type":"ping","id":1})");
/// auto pong = ws.expect("pong");
/// @endcode
class ws_client : public http_client {
public:
    /// Answer server pings with pongs while reading (as browsers do).
    bool auto_pong = true;
    /// Pings received so far.
    std::size_t pings_received = 0;
    /// The handshake's HTTP response (whatever its status).
    http_response handshake_response;
    /// The welcome message, after `open()`.
    json_msg welcome;
    /// Set once a close frame arrived.
    std::optional<ws_frame> close_received;

    /// Connects, upgrades `target` (default `/ws`) with the extra header lines,
    /// and reads the welcome frame. False when any step failed (the answer is
    /// in `handshake_response`).
    bool open(std::uint16_t port, std::string_view target = "/ws",
              std::string_view extra_headers = {}, int receive_buffer = 0) {
        if (!handshake(port, target, extra_headers, receive_buffer)) return false;
        auto w = next_message();
        if (!w || w->type() != "welcome") return false;
        welcome = *w;
        return true;
    }

    /// Connects and upgrades without reading the welcome frame.
    bool handshake(std::uint16_t port, std::string_view target = "/ws",
                   std::string_view extra_headers = {}, int receive_buffer = 0) {
        if (!connect(port, receive_buffer)) return false;
        std::string headers = ws_upgrade_headers();
        headers += extra_headers;
        if (!send(http_request_text("GET", target, headers))) return false;
        auto r = read_head();
        if (!r) return false;
        handshake_response = *r;
        if (r->status != 101) {
            // Read the error body too, for the test to look at.
            if (auto length = r->header("Content-Length")) {
                auto n = static_cast<std::size_t>(std::strtoull(length->c_str(), nullptr, 10));
                if (read_at_least(n, steady::now() + default_timeout)) {
                    handshake_response.body = buffer().substr(0, n);
                    buffer().erase(0, n);
                }
            }
            return false;
        }
        auto accept = r->header("Sec-WebSocket-Accept");
        return accept && *accept == ws_sample_accept;
    }

    /// Sends one frame, masked unless `masked` is false.
    bool send_frame(ws_op opcode, std::string_view payload, bool fin = true, bool masked = true,
                    std::uint8_t rsv = 0) {
        std::string frame;
        frame += static_cast<char>((fin ? 0x80 : 0) | ((rsv & 7) << 4) |
                                   static_cast<std::uint8_t>(opcode));
        const std::uint8_t mask_bit = masked ? 0x80 : 0;
        const std::uint64_t n = payload.size();
        if (n < 126) {
            frame += static_cast<char>(mask_bit | n);
        } else if (n <= 0xFFFF) {
            frame += static_cast<char>(mask_bit | 126);
            frame += static_cast<char>((n >> 8) & 0xFF);
            frame += static_cast<char>(n & 0xFF);
        } else {
            frame += static_cast<char>(mask_bit | 127);
            for (int shift = 56; shift >= 0; shift -= 8) {
                frame += static_cast<char>((n >> shift) & 0xFF);
            }
        }
        std::array<std::uint8_t, 4> key{0x37, 0xfa, 0x21, 0x3d};
        key[3] = static_cast<std::uint8_t>(key[3] + (mask_counter_++));
        std::size_t start = frame.size();
        if (masked) {
            for (auto b : key) frame += static_cast<char>(b);
            start = frame.size();
        }
        frame.append(payload.data(), payload.size());
        if (masked) {
            for (std::size_t i = 0; i < payload.size(); ++i) {
                frame[start + i] =
                    static_cast<char>(static_cast<std::uint8_t>(frame[start + i]) ^ key[i % 4]);
            }
        }
        return send(frame);
    }

    bool send_json(std::string_view text) { return send_frame(ws_op::text, text); }
    bool send_binary(std::string_view data) { return send_frame(ws_op::binary, data); }
    bool send_ping(std::string_view payload = {}) { return send_frame(ws_op::ping, payload); }
    /// A close frame with `code` (0: no payload) and `reason`.
    bool send_close(std::uint16_t code = 1000, std::string_view reason = {}) {
        std::string payload;
        if (code != 0) {
            payload += static_cast<char>(code >> 8);
            payload += static_cast<char>(code & 0xFF);
            payload += reason;
        }
        return send_frame(ws_op::close, payload);
    }
    /// `text` as a fragmented message of `parts` frames (pings may be
    /// interleaved with `ping_between`).
    bool send_fragmented(std::string_view text, std::size_t parts, bool ping_between = false,
                         ws_op first = ws_op::text) {
        parts = std::max<std::size_t>(1, std::min(parts, std::max<std::size_t>(1, text.size())));
        std::size_t step = (text.size() + parts - 1) / parts;
        std::size_t pos = 0;
        for (std::size_t i = 0; i < parts; ++i) {
            auto piece = text.substr(std::min(pos, text.size()), step);
            pos += step;
            bool last = i + 1 == parts;
            if (!send_frame(i == 0 ? first : ws_op::continuation, piece, last)) return false;
            if (ping_between && !last && !send_ping("mid")) return false;
        }
        return true;
    }

    /// The next frame of any kind (no automatic answers), or empty on the
    /// deadline or end of the connection.
    std::optional<ws_frame> read_frame(std::chrono::milliseconds timeout = default_timeout) {
        auto deadline = steady::now() + timeout;
        if (!read_at_least(2, deadline)) return std::nullopt;
        auto b0 = static_cast<std::uint8_t>(buffer()[0]);
        auto b1 = static_cast<std::uint8_t>(buffer()[1]);
        std::size_t header = 2;
        std::uint64_t length = b1 & 0x7F;
        if (length == 126) {
            header = 4;
        } else if (length == 127) {
            header = 10;
        }
        const bool masked = (b1 & 0x80) != 0;
        if (masked) header += 4;
        if (!read_at_least(header, deadline)) return std::nullopt;
        if (length == 126) {
            length = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(buffer()[2])) << 8) |
                     static_cast<std::uint8_t>(buffer()[3]);
        } else if (length == 127) {
            length = 0;
            for (int i = 0; i < 8; ++i) {
                length = (length << 8) | static_cast<std::uint8_t>(buffer()[2 + i]);
            }
        }
        if (!read_at_least(header + length, deadline)) return std::nullopt;
        ws_frame f;
        f.fin = (b0 & 0x80) != 0;
        f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 7);
        f.opcode = static_cast<ws_op>(b0 & 0x0F);
        f.masked = masked;
        f.payload = buffer().substr(header, static_cast<std::size_t>(length));
        if (masked) {
            for (std::size_t i = 0; i < f.payload.size(); ++i) {
                f.payload[i] =
                    static_cast<char>(static_cast<std::uint8_t>(f.payload[i]) ^
                                      static_cast<std::uint8_t>(buffer()[header - 4 + (i % 4)]));
            }
        }
        buffer().erase(0, header + static_cast<std::size_t>(length));
        return f;
    }

    /// The next text message as JSON: control frames are handled on the way
    /// (pings counted and answered when `auto_pong`; a close frame recorded in
    /// `close_received`, which ends the read). Empty on the deadline, a close,
    /// or the end of the connection. Fragmented text messages are reassembled.
    std::optional<json_msg> next_message(std::chrono::milliseconds timeout = default_timeout) {
        if (!stash_.empty()) {
            auto m = std::move(stash_.front());
            stash_.pop_front();
            return m;
        }
        auto deadline = steady::now() + timeout;
        std::string assembling;
        bool in_message = false;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (left.count() <= 0) return std::nullopt;
            auto f = read_frame(left);
            if (!f) return std::nullopt;
            switch (f->opcode) {
            case ws_op::ping:
                ++pings_received;
                if (auto_pong) send_frame(ws_op::pong, f->payload);
                continue;
            case ws_op::pong: ++pongs_received; continue;
            case ws_op::close: close_received = *f; return std::nullopt;
            case ws_op::binary: binary_received.push_back(f->payload); continue;
            case ws_op::text:
                if (f->fin) return json_msg(std::move(f->payload));
                assembling = std::move(f->payload);
                in_message = true;
                continue;
            case ws_op::continuation:
                if (!in_message) continue;
                assembling += f->payload;
                if (f->fin) return json_msg(std::move(assembling));
                continue;
            }
            return std::nullopt;
        }
    }

    /// The next message of any type; throws (naming `wanted`) when none came.
    json_msg expect_any(std::chrono::milliseconds timeout, std::string_view wanted) {
        auto m = next_message(timeout);
        if (!m) {
            throw std::runtime_error(
                "expected a '" + std::string(wanted) + "' message, got nothing" +
                (close_received
                     ? " (closed with " + std::to_string(close_received->close_code()) + ")"
                     : ""));
        }
        return *m;
    }

    /// The next message, which must have `"type": type`; throws otherwise.
    json_msg expect(std::string_view type, std::chrono::milliseconds timeout = default_timeout) {
        auto m = next_message(timeout);
        if (!m) {
            throw std::runtime_error(
                "expected a '" + std::string(type) + "' message, got nothing" +
                (close_received
                     ? " (closed with " + std::to_string(close_received->close_code()) + ")"
                     : ""));
        }
        if (m->type() != type) {
            throw std::runtime_error("expected a '" + std::string(type) + "' message, got " +
                                     m->text());
        }
        return *m;
    }

    /// Sends `request` and returns its reply, which must have type
    /// `reply_type`. Events that arrive first (from earlier subscriptions) are
    /// kept, in order, for the next reads.
    json_msg call(std::string_view request, std::string_view reply_type,
                  std::chrono::milliseconds timeout = default_timeout) {
        if (!send_json(request)) throw std::runtime_error("cannot send " + std::string(request));
        if (reply_type == "event") return expect(reply_type, timeout);
        std::vector<json_msg> events;
        auto deadline = steady::now() + timeout;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            json_msg m =
                expect_any(left.count() > 0 ? left : std::chrono::milliseconds(1), reply_type);
            if (m.type() != "event") {
                for (auto it = events.rbegin(); it != events.rend(); ++it) {
                    stash_.push_front(std::move(*it));
                }
                if (m.type() != reply_type) {
                    throw std::runtime_error("expected a '" + std::string(reply_type) +
                                             "' message, got " + m.text());
                }
                return m;
            }
            events.push_back(std::move(m));
        }
    }

    /// Subscribes (with extra JSON members, e.g. `,"since":{...}`) and returns
    /// the `subscribed` reply; throws on anything else.
    json_msg subscribe(std::string_view topic, std::string_view extra_members = {}) {
        std::string request = R"({"type":"subscribe","topic":)" + json_quote(topic) +
                              std::string(extra_members) + "}";
        return call(request, "subscribed");
    }

    /// Publishes over this connection; returns the `published` reply.
    json_msg publish(std::string_view topic, std::string_view data_json,
                     std::string_view extra_members = {}) {
        std::string request = R"({"type":"publish","topic":)" + json_quote(topic) +
                              ",\"data\":" + std::string(data_json) + std::string(extra_members) +
                              "}";
        return call(request, "published");
    }

    /// A barrier: sends a `ping` with a fresh string id and returns every
    /// message that arrived before its `pong` (throws if none came). Replies
    /// come in request order and the hub queues an event before it handles a
    /// later request, so after an acknowledged publish its events are here.
    std::vector<json_msg> sync(std::chrono::milliseconds timeout = default_timeout) {
        std::string id = "sync-" + std::to_string(++sync_counter_);
        if (!send_json(R"({"type":"ping","id":")" + id + "\"}")) {
            throw std::runtime_error("sync: cannot send");
        }
        std::vector<json_msg> before;
        auto m =
            wait_for([&](const json_msg& x) { return x.type() == "pong" && x.str("id") == id; },
                     timeout, &before);
        if (!m) throw std::runtime_error("sync: no pong");
        return before;
    }

    /// Reads messages until one satisfies `predicate` (the others are appended
    /// to `skipped` when given); empty on the deadline or a close.
    std::optional<json_msg> wait_for(const std::function<bool(const json_msg&)>& predicate,
                                     std::chrono::milliseconds timeout = default_timeout,
                                     std::vector<json_msg>* skipped = nullptr) {
        auto deadline = steady::now() + timeout;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (left.count() <= 0) return std::nullopt;
            auto m = next_message(left);
            if (!m) return std::nullopt;
            if (predicate(*m)) return m;
            if (skipped) skipped->push_back(*m);
        }
    }

    /// Reads (and drops) messages until a close frame or the end of the TCP
    /// connection. Replies to a close frame with a close frame, as RFC 6455
    /// asks, when `echo` is set.
    ws_close_result wait_close(std::chrono::milliseconds timeout = default_timeout,
                               bool echo = true) {
        ws_close_result r;
        auto deadline = steady::now() + timeout;
        if (!close_received) {
            for (;;) {
                auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
                if (left.count() <= 0) break;
                auto f = read_frame(left);
                if (!f) break;
                if (f->opcode == ws_op::close) {
                    close_received = *f;
                    break;
                }
                if (f->opcode == ws_op::ping) {
                    ++pings_received;
                    if (auto_pong) send_frame(ws_op::pong, f->payload);
                }
                if (f->opcode == ws_op::text) ++messages_dropped_in_wait;
            }
        }
        if (close_received) {
            r.close_frame = true;
            r.code = close_received->close_code();
            r.reason = close_received->close_reason();
            if (echo) send_close(r.code == 0 ? std::uint16_t{1000} : r.code);
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        r.tcp_closed = left.count() > 0 && wait_closed(left);
        r.timed_out = !r.close_frame && !r.tcp_closed;
        return r;
    }

    std::size_t pongs_received = 0;
    std::size_t messages_dropped_in_wait = 0;
    std::vector<std::string> binary_received;

private:
    std::uint8_t mask_counter_ = 0;
    std::uint64_t sync_counter_ = 0;
    std::deque<json_msg> stash_;  // events read early by call()
};

// ---------------------------------------------------------------------------
// SSE

/// One SSE block (the lines up to a blank line).
struct sse_block {
    std::optional<std::string> id;  ///< the last `id:` field, if any
    std::string event;              ///< the `event:` field ("" when absent)
    std::string data;               ///< `data:` fields joined with '\n'
    bool has_data = false;
    std::optional<long long> retry;
    std::vector<std::string> comments;  ///< comment lines without the ':'
    std::string raw;                    ///< the block as received

    bool is_comment_only() const {
        return !id && event.empty() && !has_data && !retry && !comments.empty();
    }
    bool is_id_only() const {
        return id && event.empty() && !has_data && !retry && comments.empty();
    }
};

/// An SSE stream reader.
class sse_client : public http_client {
public:
    /// The response head of `open()`.
    http_response response;

    /// Connects and sends `GET target`; true when the answer is a 200 stream
    /// (the answer is in `response`; an error answer's body is read too).
    bool open(std::uint16_t port, std::string_view target, std::string_view extra_headers = {},
              int receive_buffer = 0) {
        if (!connect(port, receive_buffer)) return false;
        if (!send(http_request_text("GET", target, extra_headers))) return false;
        auto r = read_head();
        if (!r) return false;
        response = *r;
        if (r->status != 200) {
            if (auto length = r->header("Content-Length")) {
                auto n = static_cast<std::size_t>(std::strtoull(length->c_str(), nullptr, 10));
                if (read_at_least(n, steady::now() + default_timeout)) {
                    response.body = buffer().substr(0, n);
                    buffer().erase(0, n);
                }
            }
            return false;
        }
        return true;
    }

    /// The next block, or empty on the deadline or the end of the stream
    /// (`ended` then tells which).
    std::optional<sse_block> next(std::chrono::milliseconds timeout = default_timeout) {
        auto deadline = steady::now() + timeout;
        for (;;) {
            auto end = find_block_end();
            if (end.first != std::string::npos) {
                std::string raw = buffer().substr(0, end.first);
                buffer().erase(0, end.first + end.second);
                return parse(raw);
            }
            auto s = read_more(deadline);
            if (s == io_status::eof || s == io_status::error) {
                ended = true;
                return std::nullopt;
            }
            if (s == io_status::timeout) return std::nullopt;
        }
    }

    /// The next block that is not a comment-only heartbeat.
    std::optional<sse_block> next_non_comment(std::chrono::milliseconds timeout = default_timeout) {
        auto deadline = steady::now() + timeout;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            if (left.count() <= 0) return std::nullopt;
            auto b = next(left);
            if (!b || !b->is_comment_only()) return b;
        }
    }

    bool ended = false;

private:
    // The end of the first block: position of the blank line and its length.
    std::pair<std::size_t, std::size_t> find_block_end() const {
        const auto& b = buffer();
        for (std::size_t i = 0; i + 1 < b.size(); ++i) {
            if (b[i] == '\n' && b[i + 1] == '\n') return {i + 1, 1};
            if (b[i] == '\r' && b[i + 1] == '\n' && i + 3 < b.size() && b[i + 2] == '\r' &&
                b[i + 3] == '\n') {
                return {i + 2, 2};
            }
        }
        return {std::string::npos, 0};
    }

    static sse_block parse(const std::string& raw) {
        sse_block b;
        b.raw = raw;
        std::size_t pos = 0;
        while (pos < raw.size()) {
            auto eol = raw.find('\n', pos);
            if (eol == std::string::npos) eol = raw.size();
            std::string line = raw.substr(pos, eol - pos);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            pos = eol + 1;
            if (line.empty()) continue;
            if (line[0] == ':') {
                std::string c = line.substr(1);
                if (!c.empty() && c[0] == ' ') c.erase(0, 1);
                b.comments.push_back(c);
                continue;
            }
            auto colon = line.find(':');
            std::string field = line.substr(0, colon);
            std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.erase(0, 1);
            if (field == "id") {
                b.id = value;
            } else if (field == "event") {
                b.event = value;
            } else if (field == "data") {
                if (b.has_data) b.data += '\n';
                b.data += value;
                b.has_data = true;
            } else if (field == "retry") {
                b.retry = std::atoll(value.c_str());
            }
        }
        return b;
    }
};

// ---------------------------------------------------------------------------
// The in-process server

/// A hub and a server listening on 127.0.0.1 (a free port), their io_context
/// run by `threads` background threads. Destruction stops the server
/// gracefully (bounded by 5 s), then the threads.
///
/// Example:
/// @code
/// sluice::server_options o;
/// o.ping_interval = 200ms;
/// test_server s(o);
/// ws_client ws;
/// REQUIRE(ws.open(s.port()));
/// @endcode
class test_server {
public:
    /// With `redis`, the hub is a member of that Redis cluster.
    explicit test_server(server_options options = {}, hub_options hub_opts = {},
                         std::shared_ptr<const auth_policy> policy = nullptr,
                         std::size_t threads = 1, std::optional<redis_options> redis = {})
        : work_(asio::make_work_guard(io_)) {
        if (!policy) policy = std::make_shared<anonymous_policy>(true);
        if (redis) {
            hub_.emplace(io_.get_executor(), std::move(policy), hub_opts, std::move(*redis));
        } else {
            hub_.emplace(io_.get_executor(), std::move(policy), hub_opts);
        }
        server_.emplace(io_, *hub_, std::move(options));
        if (auto ec = server_->listen("127.0.0.1", 0)) {
            throw std::runtime_error("test_server: listen failed: " + ec.message());
        }
        port_ = server_->local_endpoint().port();
        for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i) {
            threads_.emplace_back([this] { io_.run(); });
        }
    }
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;

    ~test_server() {
        if (!stop_requested_) stop(default_timeout);
        work_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        hub_.reset();
    }

    std::uint16_t port() const noexcept { return port_; }
    sluice::hub& hub() { return *hub_; }
    sluice::server& server() { return *server_; }
    asio::io_context& io() noexcept { return io_; }

    /// `server.stop()`; waits (bounded) for its callback. True when it fired.
    bool stop(std::chrono::milliseconds timeout = default_timeout) {
        stop_requested_ = true;
        auto fired = std::make_shared<std::promise<void>>();
        auto future = fired->get_future();
        server_->stop([fired] { fired->set_value(); });
        stopped_ = future.wait_for(timeout) == std::future_status::ready;
        return stopped_;
    }

    /// Starts `server.stop()` without waiting; `stopped()` tells when its
    /// callback has fired.
    void stop_async() {
        stop_requested_ = true;
        auto flag = stopped_flag_;
        server_->stop([flag] { flag->store(true); });
    }
    bool stopped() const { return stopped_flag_->load(); }

    /// A host publish, waited for (bounded): the error and the position.
    std::pair<std::error_code, stream_position> publish(std::string topic, std::string data_json,
                                                        publish_options options = {}) {
        auto p = std::make_shared<std::promise<std::pair<std::error_code, stream_position>>>();
        auto f = p->get_future();
        hub_->async_publish(std::move(topic), std::move(data_json), std::move(options),
                            [p](std::error_code ec, stream_position pos) {
                                p->set_value({ec, std::move(pos)});
                            });
        if (f.wait_for(default_timeout) != std::future_status::ready) {
            throw std::runtime_error("test_server: publish did not complete");
        }
        return f.get();
    }

    /// The exposition text of `/metrics`.
    std::string metrics_text() const { return hub_->metrics_text(); }

    /// The value of the series `name` (with its labels exactly as exposed,
    /// e.g. `sluice_connections{transport="ws"}`), or NaN when absent.
    double metric(std::string_view series) const { return metric_in(metrics_text(), series); }

    static double metric_in(const std::string& text, std::string_view series) {
        std::size_t pos = 0;
        while (pos < text.size()) {
            auto eol = text.find('\n', pos);
            if (eol == std::string::npos) eol = text.size();
            std::string_view line(text.data() + pos, eol - pos);
            pos = eol + 1;
            if (line.size() > series.size() && line.substr(0, series.size()) == series &&
                line[series.size()] == ' ') {
                return std::strtod(std::string(line.substr(series.size() + 1)).c_str(), nullptr);
            }
        }
        return std::nan("");
    }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    std::optional<sluice::hub> hub_;
    std::optional<sluice::server> server_;
    std::vector<std::thread> threads_;
    std::uint16_t port_ = 0;
    bool stop_requested_ = false;
    bool stopped_ = false;
    std::shared_ptr<std::atomic<bool>> stopped_flag_ = std::make_shared<std::atomic<bool>>(false);
};

/// Options with short timers, for tests that do not test them.
inline server_options quick_options() {
    server_options o;
    o.head_timeout = 2s;
    o.close_timeout = 500ms;
    return o;
}

}  // namespace sluice::test
