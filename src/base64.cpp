#include "base64.hpp"

#include <array>
#include <cstdint>

namespace sluice::detail {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table() {
    std::array<std::int8_t, 256> table{};
    for (auto& v : table) v = -1;
    for (int i = 0; i < 64; ++i)
        table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return table;
}

constexpr std::array<std::int8_t, 256> decode_table = make_decode_table();

}  // namespace

std::string base64url_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() * 4 + 2) / 3);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(in[k]));
    };
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    std::size_t rest = in.size() - i;
    if (rest == 1) {
        std::uint32_t v = byte(i) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
    } else if (rest == 2) {
        std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
    }
    return out;
}

bool base64url_decode(std::string_view in, std::string& out) {
    out.clear();
    if (in.size() % 4 == 1) return false;
    out.reserve(in.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        std::int8_t v = decode_table[static_cast<unsigned char>(c)];
        if (v < 0) return false;
        acc = ((acc << 6) | static_cast<std::uint32_t>(v)) & 0xFFFFu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    // Leftover bits (2 or 4) are padding inside the last character: a
    // canonical encoding leaves them zero.
    return (acc & ((1u << bits) - 1)) == 0;
}

}  // namespace sluice::detail
