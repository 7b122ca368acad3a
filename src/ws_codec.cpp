// The one translation unit that includes websocketpp (see ws_codec.hpp).
#ifndef _WEBSOCKETPP_CPP11_STL_
#define _WEBSOCKETPP_CPP11_STL_
#endif
#include "ws_codec.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <websocketpp/config/core.hpp>
#include <websocketpp/message_buffer/alloc.hpp>
#include <websocketpp/processors/hybi13.hpp>

namespace sluice::detail {
namespace {

using wspp_config = websocketpp::config::core;
using wspp_processor = websocketpp::processor::hybi13<wspp_config>;

// Stateless: the manager only allocates messages, and the server never masks,
// so the random source is never asked for a value. Shared by all connections.
std::shared_ptr<wspp_config::con_msg_manager_type> shared_message_manager() {
    static auto manager = std::make_shared<wspp_config::con_msg_manager_type>();
    return manager;
}
wspp_config::rng_type& shared_rng() {
    static wspp_config::rng_type rng;
    return rng;
}

ws_decode_error to_close(const std::error_code& ec) {
    namespace perr = websocketpp::processor::error;
    if (ec == perr::make_error_code(perr::invalid_utf8)) return {1007, "invalid UTF-8"};
    if (ec == perr::make_error_code(perr::message_too_big)) return {1009, "message too big"};
    return {1002, "protocol error"};
}

}  // namespace

struct ws_decoder::impl {
    explicit impl(std::size_t max_message_bytes)
        : processor(false, true, shared_message_manager(), shared_rng()) {
        processor.set_max_message_size(max_message_bytes);
    }
    wspp_processor processor;
};

ws_decoder::ws_decoder(std::size_t max_message_bytes)
    : impl_(std::make_unique<impl>(max_message_bytes)) {}
ws_decoder::~ws_decoder() = default;

std::size_t ws_decoder::consume(std::uint8_t* data, std::size_t size, ws_decode_error& error) {
    std::error_code ec;
    std::size_t used = impl_->processor.consume(data, size, ec);  // unmasks in place
    if (ec) error = to_close(ec);
    return used;
}

bool ws_decoder::take(ws_message& out) {
    if (!impl_->processor.ready()) return false;
    auto message = impl_->processor.get_message();
    out.opcode = static_cast<ws_opcode>(message->get_opcode());
    out.payload = std::move(message->get_raw_payload());
    return true;
}

std::size_t ws_write_frame_header(ws_opcode opcode, std::uint64_t payload_size,
                                  std::uint8_t* out) noexcept {
    out[0] = static_cast<std::uint8_t>(0x80U | static_cast<std::uint8_t>(opcode));
    if (payload_size < 126) {
        out[1] = static_cast<std::uint8_t>(payload_size);
        return 2;
    }
    if (payload_size <= 0xFFFF) {
        out[1] = 126;
        out[2] = static_cast<std::uint8_t>(payload_size >> 8);
        out[3] = static_cast<std::uint8_t>(payload_size);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i)
        out[2 + i] = static_cast<std::uint8_t>(payload_size >> (56 - 8 * i));
    return 10;
}

std::string ws_frame(ws_opcode opcode, std::string_view payload) {
    std::uint8_t header[ws_max_header_bytes];
    std::size_t header_size = ws_write_frame_header(opcode, payload.size(), header);
    std::string frame;
    frame.reserve(header_size + payload.size());
    frame.append(reinterpret_cast<const char*>(header), header_size);
    frame.append(payload);
    return frame;
}

std::string ws_close_payload(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload.append(reason.substr(0, 123));
    return payload;
}

std::uint16_t ws_parse_close_code(std::string_view payload) noexcept {
    if (payload.empty()) return 1005;
    if (payload.size() == 1) return 0;
    auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                           static_cast<unsigned char>(payload[1]));
    // RFC 6455 7.4 and the IANA registry: codes a peer may send in a close
    // frame (1004-1006 and 1015 are reserved for local use).
    bool allowed = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                   (code >= 3000 && code <= 4999);
    return allowed ? code : 0;
}

std::string ws_accept_key(std::string_view client_key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input;
    input.reserve(client_key.size() + guid.size());
    input.append(client_key).append(guid);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int length = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(length));
}

bool ws_valid_client_key(std::string_view client_key) noexcept {
    // 16 bytes in base64: 22 characters of the alphabet, then "==".
    if (client_key.size() != 24 || client_key.substr(22) != "==") return false;
    for (char c : client_key.substr(0, 22)) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) return false;
    }
    return true;
}

}  // namespace sluice::detail
