// client_json.hpp: the clients' reading of the server's JSON messages without
// building a DOM: one pass over a top-level object yields the raw text of each
// member's value, so an event's `data` reaches the application as the bytes
// the server wrote, and delivering an event allocates nothing. Private to the
// library.
//
// Guarantees: nothing reads outside the given text; nesting is bounded by
// `json_max_depth`; a value is checked for balanced structure and well-formed
// strings, numbers and literals, not for full JSON validity of every nested
// detail (the server's output is JSON; a broken message is a protocol error).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::detail {

inline constexpr int json_max_depth = 128;

/// The raw text of one JSON value starting at `text[pos]` (after whitespace);
/// advances `pos` past it. Empty view on malformed input.
std::string_view json_skip_value(std::string_view text, std::size_t& pos);

/// Calls `on_member(key, raw_value)` for each member of the top-level object
/// `text`, in order (`key` is the raw text between the quotes: escapes are not
/// decoded, which the protocol's keys never need). False when `text` is not an
/// object.
template <class OnMember>
bool json_for_each_member(std::string_view text, OnMember&& on_member);

/// The decoded value of a raw JSON string (`"a\u00e9"` → `aé`). Returns a view
/// into `raw` when it has no escape, else into `scratch` (replaced). False
/// when `raw` is not a string.
bool json_string(std::string_view raw, std::string& scratch, std::string_view& out);

/// A raw JSON number that is a non-negative integer (no fraction, no
/// exponent) fitting in 64 bits.
bool json_u64(std::string_view raw, std::uint64_t& out) noexcept;

/// A raw JSON integer, possibly negative, fitting in 64 bits.
bool json_i64(std::string_view raw, std::int64_t& out) noexcept;

/// `true` or `false`.
bool json_bool(std::string_view raw, bool& out) noexcept;

// ---------------------------------------------------------------------------

namespace json_detail {
inline bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
inline void skip_ws(std::string_view t, std::size_t& p) noexcept {
    while (p < t.size() && is_ws(t[p])) ++p;
}
/// Skips a string starting at t[p] == '"'; false if unterminated or malformed.
bool skip_string(std::string_view t, std::size_t& p) noexcept;
}  // namespace json_detail

template <class OnMember>
bool json_for_each_member(std::string_view text, OnMember&& on_member) {
    using namespace json_detail;
    std::size_t p = 0;
    skip_ws(text, p);
    if (p >= text.size() || text[p] != '{') return false;
    ++p;
    skip_ws(text, p);
    if (p < text.size() && text[p] == '}') {
        ++p;
        skip_ws(text, p);
        return p == text.size();
    }
    for (;;) {
        skip_ws(text, p);
        if (p >= text.size() || text[p] != '"') return false;
        const std::size_t key_start = p + 1;
        if (!skip_string(text, p)) return false;
        const std::string_view key = text.substr(key_start, p - 1 - key_start);
        skip_ws(text, p);
        if (p >= text.size() || text[p] != ':') return false;
        ++p;
        const std::string_view value = json_skip_value(text, p);
        if (value.empty()) return false;
        on_member(key, value);
        skip_ws(text, p);
        if (p >= text.size()) return false;
        if (text[p] == ',') {
            ++p;
            continue;
        }
        if (text[p] != '}') return false;
        ++p;
        skip_ws(text, p);
        return p == text.size();
    }
}

}  // namespace sluice::detail
