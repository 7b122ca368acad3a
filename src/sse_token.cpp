#include "sse_token.hpp"

#include <charconv>

namespace sluice::detail {
namespace {

constexpr std::size_t max_token_bytes = 4096;

bool token_safe(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

void append_hex32(std::string& out, std::uint32_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    for (int shift = 28; shift >= 0; shift -= 4) out += digits[(v >> shift) & 0xF];
}

void append_decimal(std::string& out, std::uint64_t v) {
    char buffer[24];
    auto result = std::to_chars(buffer, buffer + sizeof buffer, v);
    out.append(buffer, result.ptr);
}

// Splits off the text before `separator`; false when it is absent.
bool take_until(std::string_view& rest, char separator, std::string_view& field) {
    auto at = rest.find(separator);
    if (at == std::string_view::npos) return false;
    field = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    return true;
}

template <class T>
bool parse_number(std::string_view text, T& value, int base = 10) {
    if (text.empty()) return false;
    auto result = std::from_chars(text.data(), text.data() + text.size(), value, base);
    return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

}  // namespace

std::uint32_t topic_tag(std::string_view topic) noexcept {
    std::uint32_t hash = 2166136261U;
    for (unsigned char c : topic) {
        hash ^= c;
        hash *= 16777619U;
    }
    return hash;
}

void append_resume_token(std::string& out, std::string_view generation,
                         const std::vector<token_position>& positions) {
    out += "1.";
    out += generation;
    for (const auto& p : positions) {
        if (p.epoch.empty()) continue;
        out += '.';
        append_hex32(out, p.tag);
        out += '~';
        out += p.epoch;
        out += '~';
        append_decimal(out, p.offset);
    }
}

std::vector<token_position> parse_resume_token(std::string_view token,
                                               std::string_view generation) {
    std::vector<token_position> positions;
    if (token.size() > max_token_bytes || token.substr(0, 2) != "1.") return positions;
    std::string_view rest = token.substr(2);
    std::string_view field;
    bool more = take_until(rest, '.', field);
    if (!more) field = rest;
    if (field != generation) return positions;
    while (more) {
        more = take_until(rest, '.', field);
        if (!more) field = rest;
        std::string_view tag_text, epoch, offset_text = field;
        token_position p;
        if (!take_until(offset_text, '~', tag_text) || !take_until(offset_text, '~', epoch) ||
            !parse_number(tag_text, p.tag, 16) || tag_text.size() != 8 || !token_safe(epoch) ||
            !parse_number(offset_text, p.offset)) {
            return {};
        }
        p.epoch = std::string(epoch);
        positions.push_back(std::move(p));
    }
    return positions;
}

}  // namespace sluice::detail
