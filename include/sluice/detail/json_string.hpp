// sluice/detail/json_string.hpp: JSON string quoting for pre-serialized
// message parts, and the character check that lets topics, epochs and event
// names be written into JSON without escaping.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::detail {

/// Appends `text` to `out` as a JSON string literal (quotes included).
/// Escapes `"`, `\` and the control characters below 0x20; every other byte,
/// UTF-8 included, is copied as is. Used by the server to serialize a
/// subscription's `sub` once, at subscribe time.
inline void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + text.size() + 2);
    out.push_back('"');
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20) {
                out += "\\u00";
                out.push_back(hex[u >> 4]);
                out.push_back(hex[u & 0xF]);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
}

/// `text` as a JSON string literal: `json_string("a\"b")` is `"a\"b"` with
/// the quote escaped.
inline std::string json_string(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

/// True when `c` is one of the characters PROTOCOL.md section 2 allows in a
/// topic or an event name (`A-Z a-z 0-9 _ . - @ = +` and `:`). None of them
/// needs escaping in JSON, nor is a line break in an SSE field.
constexpr bool is_name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '@' || c == '=' || c == '+' || c == ':';
}

/// True when `text` is `min_size` to `max_size` bytes, all `is_name_char`.
constexpr bool is_name(std::string_view text, std::size_t min_size, std::size_t max_size) noexcept {
    if (text.size() < min_size || text.size() > max_size) return false;
    for (char c : text) {
        if (!is_name_char(c)) return false;
    }
    return true;
}

}  // namespace sluice::detail
