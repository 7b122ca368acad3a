// client_wire.hpp: the client side of the wire: masked WebSocket frames out,
// unmasked server frames in (RFC 6455), the HTTP/1.1 response head, chunked
// transfer decoding, and the Server-Sent Events stream parser (WHATWG).
// Private to the library; pure (no sockets), so the unit tests drive them
// byte by byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::detail {

// ---------------------------------------------------------------------------
// WebSocket

/// Appends one final, masked client frame carrying `payload` to `out`.
void ws_append_client_frame(std::string& out, std::uint8_t opcode, std::string_view payload,
                            std::uint32_t mask);

/// Standard base64 (RFC 4648 section 4, with padding): Sec-WebSocket-Key.
std::string base64_encode(std::string_view in);

/// One frame header read from the server.
struct ws_frame_header {
    bool fin = false;
    std::uint8_t opcode = 0;
    std::uint64_t payload_size = 0;
    std::size_t header_size = 0;
};

/// Reads a server frame header at the front of `data`. Returns 1 when a
/// header was read into `h`, 0 when more bytes are needed, -1 when it is
/// invalid (masked, reserved bits, bad control frame, 64-bit size with the
/// top bit set).
int ws_read_frame_header(const std::uint8_t* data, std::size_t size, ws_frame_header& h) noexcept;

/// Reassembles messages from server frames. `feed` calls
/// `on_message(opcode, payload_view)` for each complete data message and each
/// control frame; a single-frame message's view points into the given bytes
/// (no copy), a fragmented one into an internal buffer. Returns the bytes
/// consumed (a partial frame stays for the next call, with more bytes), or
/// sets `error` (1002 protocol, 1009 too big) and stops.
class ws_client_decoder {
public:
    explicit ws_client_decoder(std::size_t max_message_bytes) : max_(max_message_bytes) {}

    template <class OnMessage>
    std::size_t feed(const std::uint8_t* data, std::size_t size, std::uint16_t& error,
                     OnMessage&& on_message) {
        std::size_t used = 0;
        error = 0;
        while (used < size) {
            ws_frame_header h;
            const int r = ws_read_frame_header(data + used, size - used, h);
            if (r < 0) {
                error = 1002;
                return used;
            }
            if (r == 0) return used;
            if (h.payload_size > max_ ||
                (h.opcode < 8 && assembly_.size() + h.payload_size > max_)) {
                error = 1009;
                return used;
            }
            if (size - used - h.header_size < h.payload_size) {
                needed_ = h.header_size + static_cast<std::size_t>(h.payload_size);
                return used;
            }
            needed_ = 0;
            const std::string_view payload(
                reinterpret_cast<const char*>(data + used + h.header_size),
                static_cast<std::size_t>(h.payload_size));
            used += h.header_size + static_cast<std::size_t>(h.payload_size);
            if (h.opcode >= 8) {
                on_message(h.opcode, payload);
                continue;
            }
            if (h.opcode == 0) {
                if (!fragmented_) {
                    error = 1002;
                    return used;
                }
                assembly_.append(payload.data(), payload.size());
                if (h.fin) {
                    fragmented_ = false;
                    on_message(opcode_, std::string_view(assembly_));
                    assembly_.clear();
                }
                continue;
            }
            if (fragmented_) {
                error = 1002;
                return used;
            }
            if (h.fin) {
                on_message(h.opcode, payload);
            } else {
                fragmented_ = true;
                opcode_ = h.opcode;
                assembly_.assign(payload.data(), payload.size());
            }
        }
        return used;
    }

    /// Bytes the frame at the front needs in total (0: unknown), so the reader
    /// can grow its buffer.
    std::size_t needed() const noexcept { return needed_; }
    void reset() {
        assembly_.clear();
        fragmented_ = false;
        needed_ = 0;
    }

private:
    std::size_t max_;
    std::string assembly_;
    std::uint8_t opcode_ = 0;
    bool fragmented_ = false;
    std::size_t needed_ = 0;
};

// ---------------------------------------------------------------------------
// HTTP responses

/// A parsed response head.
struct http_response {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    /// The first value of header `name` (ASCII case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const;
    /// Whether the comma-separated values of `name` contain `token`
    /// (case-insensitive).
    bool has_token(std::string_view name, std::string_view token) const;
};

/// Parses a response head at the front of `data`. Returns the head's size
/// (through the blank line) when complete, 0 when more bytes are needed,
/// `npos` when malformed or larger than `max_bytes`.
std::size_t parse_http_response(std::string_view data, http_response& out,
                                std::size_t max_bytes = 16384);

/// `Retry-After` in seconds (delta form only), when present and valid.
std::optional<std::uint64_t> retry_after_seconds(const http_response& r);

/// Decodes `Transfer-Encoding: chunked` incrementally, in place.
class chunked_decoder {
public:
    /// Decodes `data[0, size)` in place: the decoded bytes are moved to the
    /// front of `data` and their count returned. False (and stop) on malformed
    /// framing; `done()` after the last chunk.
    bool decode(char* data, std::size_t size, std::size_t& decoded);
    bool done() const noexcept { return state_ == state::done; }

private:
    enum class state { size, ext, size_lf, data, data_cr, data_lf, trailer, done };
    state state_ = state::size;
    std::uint64_t remaining_ = 0;
    int digits_ = 0;
    std::size_t trailer_line_ = 0;
};

// ---------------------------------------------------------------------------
// Server-Sent Events

/// One dispatched SSE block. The views are valid during the callback.
struct sse_event_view {
    std::string_view event;  ///< the `event:` field (empty: none)
    std::string_view data;   ///< the `data:` lines joined with LF
    bool has_data = false;   ///< at least one `data:` line
    bool has_id = false;     ///< the block had an `id:` line
    std::string_view id;     ///< the last `id:` of the block
};

/// The WHATWG event-stream parser: lines end with CRLF, LF or CR; `:` lines
/// are comments; `retry:` with digits only sets the reconnection time.
class sse_parser {
public:
    explicit sse_parser(std::size_t max_block_bytes) : max_(max_block_bytes) {}

    /// Feeds bytes. Calls `on_block(const sse_event_view&)` for every block
    /// that has data or an id, and `on_retry(ms)` for every valid `retry:`.
    /// False when a block grows over the limit.
    template <class OnBlock, class OnRetry>
    bool feed(std::string_view bytes, OnBlock&& on_block, OnRetry&& on_retry) {
        std::size_t i = 0;
        if (skip_lf_ && !bytes.empty() && bytes[0] == '\n') ++i;
        skip_lf_ = false;
        while (i < bytes.size()) {
            const std::size_t start = i;
            while (i < bytes.size() && bytes[i] != '\n' && bytes[i] != '\r') ++i;
            if (i == bytes.size()) {
                line_.append(bytes.data() + start, i - start);
                if (line_.size() > max_) return false;
                break;
            }
            std::string_view line;
            if (line_.empty()) {
                line = bytes.substr(start, i - start);
            } else {
                line_.append(bytes.data() + start, i - start);
                line = line_;
            }
            if (bytes[i] == '\r') {
                if (i + 1 < bytes.size()) {
                    if (bytes[i + 1] == '\n') ++i;
                } else {
                    skip_lf_ = true;
                }
            }
            ++i;
            if (!on_line(line, on_block, on_retry)) return false;
            line_.clear();
        }
        return true;
    }

    /// Forgets a partial block (a new stream starts).
    void reset() {
        line_.clear();
        data_.clear();
        event_.clear();
        id_.clear();
        has_data_ = has_id_ = skip_lf_ = false;
    }

private:
    template <class OnBlock, class OnRetry>
    bool on_line(std::string_view line, OnBlock& on_block, OnRetry& on_retry) {
        if (line.empty()) {
            if (has_data_ || has_id_) {
                sse_event_view v;
                v.event = event_;
                v.data = data_;
                v.has_data = has_data_;
                v.has_id = has_id_;
                v.id = id_;
                on_block(v);
            }
            data_.clear();
            event_.clear();
            has_data_ = has_id_ = false;
            return true;
        }
        if (line[0] == ':') return true;
        const auto colon = line.find(':');
        std::string_view field = line.substr(0, colon);
        std::string_view value;
        if (colon != std::string_view::npos) {
            value = line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
        }
        if (field == "data") {
            if (has_data_) data_ += '\n';
            data_.append(value.data(), value.size());
            has_data_ = true;
            if (data_.size() > max_) return false;
        } else if (field == "event") {
            event_.assign(value.data(), value.size());
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) {
                id_.assign(value.data(), value.size());
                has_id_ = true;
            }
        } else if (field == "retry") {
            std::uint64_t ms = 0;
            bool ok = !value.empty() && value.size() <= 12;
            for (char c : value) {
                if (c < '0' || c > '9') ok = false;
                ms = ms * 10 + static_cast<std::uint64_t>(c - '0');
            }
            if (ok) on_retry(ms);
        }
        return true;
    }

    std::size_t max_;
    std::string line_;  // a line split across reads
    std::string data_, event_, id_;
    bool has_data_ = false, has_id_ = false, skip_lf_ = false;
};

}  // namespace sluice::detail
