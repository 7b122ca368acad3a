#include "client_json.hpp"

#include <cstring>
#include <limits>

namespace sluice::detail {

namespace json_detail {

bool skip_string(std::string_view t, std::size_t& p) noexcept {
    ++p;  // opening quote
    while (p < t.size()) {
        const auto c = static_cast<unsigned char>(t[p]);
        if (c == '"') {
            ++p;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (++p >= t.size()) return false;
            const char e = t[p];
            if (e == 'u') {
                if (p + 4 >= t.size()) return false;
                for (int i = 1; i <= 4; ++i) {
                    const char h = t[p + static_cast<std::size_t>(i)];
                    const bool hex =
                        (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
                    if (!hex) return false;
                }
                p += 4;
            } else if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') {
                return false;
            }
        }
        ++p;
    }
    return false;
}

namespace {

bool skip_number(std::string_view t, std::size_t& p) noexcept {
    const std::size_t start = p;
    if (p < t.size() && t[p] == '-') ++p;
    if (p >= t.size()) return false;
    if (t[p] == '0') {
        ++p;
    } else if (t[p] >= '1' && t[p] <= '9') {
        while (p < t.size() && t[p] >= '0' && t[p] <= '9') ++p;
    } else {
        return false;
    }
    if (p < t.size() && t[p] == '.') {
        ++p;
        const std::size_t d = p;
        while (p < t.size() && t[p] >= '0' && t[p] <= '9') ++p;
        if (p == d) return false;
    }
    if (p < t.size() && (t[p] == 'e' || t[p] == 'E')) {
        ++p;
        if (p < t.size() && (t[p] == '+' || t[p] == '-')) ++p;
        const std::size_t d = p;
        while (p < t.size() && t[p] >= '0' && t[p] <= '9') ++p;
        if (p == d) return false;
    }
    return p > start;
}

bool skip_literal(std::string_view t, std::size_t& p, std::string_view word) noexcept {
    if (t.substr(p, word.size()) != word) return false;
    p += word.size();
    return true;
}

}  // namespace
}  // namespace json_detail

std::string_view json_skip_value(std::string_view text, std::size_t& pos) {
    using namespace json_detail;
    skip_ws(text, pos);
    if (pos >= text.size()) return {};
    const std::size_t start = pos;
    const char c = text[pos];
    bool ok = false;
    if (c == '"') {
        ok = skip_string(text, pos);
    } else if (c == '{' || c == '[') {
        // Balanced brackets with strings skipped; scalars inside are checked
        // only for their characters, which is all a client needs to cut the
        // value out.
        char stack[json_max_depth];
        int depth = 0;
        while (pos < text.size()) {
            const char d = text[pos];
            if (d == '"') {
                if (!skip_string(text, pos)) return {};
                continue;
            }
            if (d == '{' || d == '[') {
                if (depth == json_max_depth) return {};
                stack[depth++] = d == '{' ? '}' : ']';
            } else if (d == '}' || d == ']') {
                if (depth == 0 || stack[depth - 1] != d) return {};
                if (--depth == 0) {
                    ++pos;
                    ok = true;
                    break;
                }
            } else if (!(is_ws(d) || d == ',' || d == ':' || d == '-' || d == '+' || d == '.' ||
                         (d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') ||
                         (d >= 'A' && d <= 'Z'))) {
                return {};
            }
            ++pos;
        }
    } else if (c == 't') {
        ok = skip_literal(text, pos, "true");
    } else if (c == 'f') {
        ok = skip_literal(text, pos, "false");
    } else if (c == 'n') {
        ok = skip_literal(text, pos, "null");
    } else {
        ok = skip_number(text, pos);
    }
    if (!ok) return {};
    return text.substr(start, pos - start);
}

namespace {

int hex_value(char h) noexcept {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    return h - 'A' + 10;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace

bool json_string(std::string_view raw, std::string& scratch, std::string_view& out) {
    if (raw.size() < 2 || raw.front() != '"' || raw.back() != '"') return false;
    const std::string_view body = raw.substr(1, raw.size() - 2);
    if (body.find('\\') == std::string_view::npos) {
        out = body;
        return true;
    }
    scratch.clear();
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c != '\\') {
            scratch += c;
            continue;
        }
        if (++i >= body.size()) return false;
        switch (body[i]) {
        case '"': scratch += '"'; break;
        case '\\': scratch += '\\'; break;
        case '/': scratch += '/'; break;
        case 'b': scratch += '\b'; break;
        case 'f': scratch += '\f'; break;
        case 'n': scratch += '\n'; break;
        case 'r': scratch += '\r'; break;
        case 't': scratch += '\t'; break;
        case 'u': {
            auto read4 = [&](std::size_t at, std::uint32_t& v) {
                if (at + 4 > body.size()) return false;
                v = 0;
                for (std::size_t k = 0; k < 4; ++k) v = v * 16 + hex_value(body[at + k]);
                return true;
            };
            std::uint32_t cp = 0;
            if (!read4(i + 1, cp)) return false;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                std::uint32_t lo = 0;
                if (i + 2 < body.size() && body[i + 1] == '\\' && body[i + 2] == 'u' &&
                    read4(i + 3, lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            append_utf8(scratch, cp);
            break;
        }
        default: return false;
        }
    }
    out = scratch;
    return true;
}

bool json_u64(std::string_view raw, std::uint64_t& out) noexcept {
    if (raw.empty() || raw.size() > 20) return false;
    if (raw.size() > 1 && raw[0] == '0') return false;
    std::uint64_t v = 0;
    for (char c : raw) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

bool json_i64(std::string_view raw, std::int64_t& out) noexcept {
    const bool negative = !raw.empty() && raw[0] == '-';
    std::uint64_t magnitude = 0;
    if (!json_u64(negative ? raw.substr(1) : raw, magnitude)) return false;
    const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (magnitude > limit + (negative ? 1 : 0)) return false;
    out =
        negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
    return true;
}

bool json_bool(std::string_view raw, bool& out) noexcept {
    if (raw == "true") {
        out = true;
        return true;
    }
    if (raw == "false") {
        out = false;
        return true;
    }
    return false;
}

}  // namespace sluice::detail
