// RFC 6455 framing for the server side of a WebSocket connection.
//
// Inbound frames are decoded by websocketpp's hybi13 processor (masking,
// fragmentation, interleaved control frames, UTF-8 validation, size limit);
// websocketpp stays inside ws_codec.cpp, compiled as C++17. Outbound frames
// are written by sluice itself: a server frame is a 2-10 byte header in front
// of unmasked payload, which lets the writer gather shared event bytes without
// copying them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::detail {

/// WebSocket opcodes used by sluice.
enum class ws_opcode : std::uint8_t {
    continuation = 0,
    text = 1,
    binary = 2,
    close = 8,
    ping = 9,
    pong = 10
};

/// What a decoding failure means for the connection: the close code to send.
struct ws_decode_error {
    std::uint16_t close_code = 0;  ///< 0: no error; 1002, 1007, 1009 otherwise
    const char* reason = "";
};

/// One complete inbound message.
struct ws_message {
    ws_opcode opcode;
    std::string payload;
};

/// Decodes the client-to-server byte stream of one connection. Not
/// thread-safe: used from the connection's strand only.
class ws_decoder {
public:
    explicit ws_decoder(std::size_t max_message_bytes);
    ~ws_decoder();
    ws_decoder(const ws_decoder&) = delete;
    ws_decoder& operator=(const ws_decoder&) = delete;

    /// Feeds `size` bytes; calls `on_message(ws_message&&)` for every complete
    /// message, in order. Payload bytes are unmasked in place (the buffer is
    /// the caller's read buffer, consumed by this call). Stops and returns the
    /// error at the first protocol violation (the decoder is then unusable).
    template <class OnMessage>
    ws_decode_error feed(std::uint8_t* data, std::size_t size, OnMessage&& on_message) {
        while (size > 0) {
            ws_decode_error error;
            std::size_t used = consume(data, size, error);
            if (error.close_code != 0) return error;
            data += used;
            size -= used;
            ws_message message;
            while (take(message)) on_message(std::move(message));
            if (used == 0) break;
        }
        return {};
    }

private:
    std::size_t consume(std::uint8_t* data, std::size_t size, ws_decode_error& error);
    bool take(ws_message& out);

    struct impl;
    std::unique_ptr<impl> impl_;
};

/// The largest server frame header: 2 bytes, then 8 bytes of length.
inline constexpr std::size_t ws_max_header_bytes = 10;

/// Writes the header of an unmasked, final server frame carrying
/// `payload_size` bytes into `out` (at least ws_max_header_bytes long) and
/// returns its length.
std::size_t ws_write_frame_header(ws_opcode opcode, std::uint64_t payload_size,
                                  std::uint8_t* out) noexcept;

/// A complete server frame (header and payload) in one string; for replies and
/// control frames, not for events.
std::string ws_frame(ws_opcode opcode, std::string_view payload);

/// The payload of a close frame: the code in network order, then the reason.
std::string ws_close_payload(std::uint16_t code, std::string_view reason);

/// The code of a received close frame payload: 1005 when it has none, 0 when it
/// is malformed (one byte, or a code a peer may not send).
std::uint16_t ws_parse_close_code(std::string_view payload) noexcept;

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2).
std::string ws_accept_key(std::string_view client_key);

/// True when a Sec-WebSocket-Key is the base64 form of 16 bytes.
bool ws_valid_client_key(std::string_view client_key) noexcept;

}  // namespace sluice::detail
