#include "client_wire.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sluice::detail {

void ws_append_client_frame(std::string& out, std::uint8_t opcode, std::string_view payload,
                            std::uint32_t mask) {
    const std::size_t n = payload.size();
    out += static_cast<char>(0x80 | (opcode & 0x0F));
    if (n < 126) {
        out += static_cast<char>(0x80 | n);
    } else if (n <= 0xFFFF) {
        out += static_cast<char>(0x80 | 126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    } else {
        out += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8)
            out += static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF);
    }
    const char key[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                         static_cast<char>(mask >> 8), static_cast<char>(mask)};
    out.append(key, 4);
    const std::size_t at = out.size();
    out.append(payload.data(), n);
    char* p = &out[at];
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

std::string base64_encode(std::string_view in) {
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (static_cast<std::uint8_t>(in[i]) << 16) |
                                (static_cast<std::uint8_t>(in[i + 1]) << 8) |
                                static_cast<std::uint8_t>(in[i + 2]);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += table[(v >> 6) & 63];
        out += table[v & 63];
    }
    const std::size_t rest = in.size() - i;
    if (rest > 0) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i]) << 16);
        if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(in[i + 1]) << 8);
        out += table[(v >> 18) & 63];
        out += table[(v >> 12) & 63];
        out += rest == 2 ? table[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

int ws_read_frame_header(const std::uint8_t* data, std::size_t size, ws_frame_header& h) noexcept {
    if (size < 2) return 0;
    const std::uint8_t b0 = data[0], b1 = data[1];
    if ((b0 & 0x70) != 0) return -1;  // reserved bits: no extension negotiated
    if ((b1 & 0x80) != 0) return -1;  // a server never masks
    h.fin = (b0 & 0x80) != 0;
    h.opcode = b0 & 0x0F;
    if (!(h.opcode <= 2 || (h.opcode >= 8 && h.opcode <= 10))) return -1;
    std::uint64_t len = b1 & 0x7F;
    std::size_t header = 2;
    if (len == 126) {
        if (size < 4) return 0;
        len = (static_cast<std::uint64_t>(data[2]) << 8) | data[3];
        if (len < 126) return -1;
        header = 4;
    } else if (len == 127) {
        if (size < 10) return 0;
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | data[i];
        if ((len >> 63) != 0 || len <= 0xFFFF) return -1;
        header = 10;
    }
    if (h.opcode >= 8 && (!h.fin || len > 125)) return -1;
    h.payload_size = len;
    h.header_size = header;
    return 1;
}

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    }
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<std::string_view> http_response::header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
        if (iequals(k, name)) return std::string_view(v);
    }
    return std::nullopt;
}

bool http_response::has_token(std::string_view name, std::string_view token) const {
    for (const auto& [k, v] : headers) {
        if (!iequals(k, name)) continue;
        std::string_view rest = v;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            if (iequals(trim(rest.substr(0, comma)), token)) return true;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return false;
}

std::size_t parse_http_response(std::string_view data, http_response& out, std::size_t max_bytes) {
    constexpr std::size_t npos = static_cast<std::size_t>(-1);
    auto end = data.find("\r\n\r\n");
    std::size_t sep = 4;
    if (end == std::string_view::npos) {
        end = data.find("\n\n");
        sep = 2;
    }
    if (end == std::string_view::npos) return data.size() > max_bytes ? npos : 0;
    if (end + sep > max_bytes) return npos;
    out = http_response{};
    std::string_view head = data.substr(0, end);
    bool first = true;
    while (!head.empty() || first) {
        const auto eol = head.find('\n');
        std::string_view line = head.substr(0, eol);
        head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (first) {
            first = false;
            // HTTP/1.x SP 3DIGIT [SP reason]
            if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return npos;
            int status = 0;
            for (int i = 9; i < 12; ++i) {
                if (!std::isdigit(static_cast<unsigned char>(line[i]))) return npos;
                status = status * 10 + (line[i] - '0');
            }
            if (line.size() > 12 && line[12] != ' ') return npos;
            out.status = status;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return npos;
        out.headers.emplace_back(std::string(line.substr(0, colon)),
                                 std::string(trim(line.substr(colon + 1))));
    }
    return end + sep;
}

std::optional<std::uint64_t> retry_after_seconds(const http_response& r) {
    auto v = r.header("retry-after");
    if (!v || v->empty() || v->size() > 9) return std::nullopt;
    std::uint64_t s = 0;
    for (char c : *v) {
        if (c < '0' || c > '9') return std::nullopt;
        s = s * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return s;
}

bool chunked_decoder::decode(char* data, std::size_t size, std::size_t& decoded) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < size;) {
        const char c = data[i];
        switch (state_) {
        case state::size: {
            int v = -1;
            if (c >= '0' && c <= '9') v = c - '0';
            if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
            if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
            if (v >= 0) {
                if (++digits_ > 15) return false;
                remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(v);
            } else if (digits_ == 0) {
                return false;
            } else if (c == ';' || c == ' ' || c == '\t') {
                state_ = state::ext;
            } else if (c == '\r') {
                state_ = state::size_lf;
            } else if (c == '\n') {
                state_ = remaining_ == 0 ? state::trailer : state::data;
                trailer_line_ = 0;
            } else {
                return false;
            }
            ++i;
            break;
        }
        case state::ext:
            if (c == '\r') state_ = state::size_lf;
            if (c == '\n') state_ = remaining_ == 0 ? state::trailer : state::data;
            trailer_line_ = 0;
            ++i;
            break;
        case state::size_lf:
            if (c != '\n') return false;
            state_ = remaining_ == 0 ? state::trailer : state::data;
            trailer_line_ = 0;
            ++i;
            break;
        case state::data: {
            const std::size_t n =
                static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size - i));
            std::memmove(data + w, data + i, n);
            w += n;
            i += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::data_cr;
            break;
        }
        case state::data_cr:
            if (c == '\r') {
                state_ = state::data_lf;
            } else if (c == '\n') {
                state_ = state::size;
                digits_ = 0;
            } else {
                return false;
            }
            ++i;
            break;
        case state::data_lf:
            if (c != '\n') return false;
            state_ = state::size;
            digits_ = 0;
            ++i;
            break;
        case state::trailer:
            // Trailer lines until an empty one.
            if (c == '\n') {
                if (trailer_line_ == 0) {
                    state_ = state::done;
                }
                trailer_line_ = 0;
            } else if (c != '\r') {
                ++trailer_line_;
            }
            ++i;
            break;
        case state::done: i = size; break;
        }
    }
    decoded = w;
    return true;
}

}  // namespace sluice::detail
