#include "http_request.hpp"

#include <sluice/detail/throw.hpp>
#include <sluice/error.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace sluice::detail {

namespace {

enum char_class : unsigned char {
    cc_tchar = 1,     // RFC 9110 token character
    cc_field = 2,     // allowed in a field value: HTAB, SP, VCHAR, obs-text
    cc_target = 4,    // allowed in a request-target: VCHAR (visible ASCII)
    cc_host = 8,      // uri-host [":" port]: unreserved, sub-delims, %, :, [ ]
    cc_token68 = 16,  // RFC 9110 token68 without the trailing "="
};

constexpr std::array<unsigned char, 256> make_char_classes() {
    std::array<unsigned char, 256> t{};
    for (int c = 0; c < 256; ++c) {
        unsigned char v = 0;
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (alpha || digit) v |= cc_tchar | cc_host | cc_token68;
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) v |= cc_field;
        if (c > 0x20 && c < 0x7f) v |= cc_target;
        t[static_cast<std::size_t>(c)] = v;
    }
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
        t[static_cast<unsigned char>(c)] |= cc_tchar;
    }
    for (char c : std::string_view("-._~!$&'()*+,;=%:[]")) {
        t[static_cast<unsigned char>(c)] |= cc_host;
    }
    for (char c : std::string_view("-._~+/")) t[static_cast<unsigned char>(c)] |= cc_token68;
    return t;
}

constexpr std::array<unsigned char, 256> char_classes = make_char_classes();

inline bool has_class(char c, char_class cls) noexcept {
    return (char_classes[static_cast<unsigned char>(c)] & cls) != 0;
}

inline bool all_of_class(std::string_view s, char_class cls) noexcept {
    for (char c : s) {
        if (!has_class(c, cls)) return false;
    }
    return true;
}

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline char to_lower(char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Calls f(element) for each non-empty, OWS-trimmed element of a comma list;
// stops early when f returns false.
template <class F>
bool for_each_list_element(std::string_view list, F&& f) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && !f(element)) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

// 1*DIGIT without overflow.
bool parse_decimal(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

// ---------------------------------------------------------------------------
// http_request_head

std::string_view http_request_head::host() const noexcept {
    if (authority_.len != 0) return view(authority_);
    return header("host").value_or(std::string_view());
}

std::optional<std::string_view> http_request_head::header(std::string_view name) const noexcept {
    for (const field& f : fields_) {
        if (iequals(view(f.name), name)) return view(f.value);
    }
    return std::nullopt;
}

std::vector<std::string_view> http_request_head::header_values(std::string_view name) const {
    std::vector<std::string_view> values;
    for (const field& f : fields_) {
        if (iequals(view(f.name), name)) values.push_back(view(f.value));
    }
    return values;
}

std::size_t http_request_head::header_count(std::string_view name) const noexcept {
    std::size_t n = 0;
    for (const field& f : fields_) n += iequals(view(f.name), name) ? 1 : 0;
    return n;
}

bool http_request_head::has_token(std::string_view name, std::string_view token) const noexcept {
    for (const field& f : fields_) {
        if (!iequals(view(f.name), name)) continue;
        const bool found = !for_each_list_element(
            view(f.value), [&](std::string_view element) { return !iequals(element, token); });
        if (found) return true;
    }
    return false;
}

bool http_request_head::keep_alive() const noexcept {
    if (has_token("connection", "close")) return false;
    if (version_ >= 11) return true;
    return has_token("connection", "keep-alive");
}

bool http_request_head::is_websocket_upgrade() const noexcept {
    return version_ >= 11 && method() == "GET" && has_token("connection", "upgrade") &&
           has_token("upgrade", "websocket");
}

std::optional<std::string_view> http_request_head::bearer_token() const noexcept {
    std::optional<std::string_view> value;
    for (const field& f : fields_) {
        if (!iequals(view(f.name), "authorization")) continue;
        if (value) return std::string_view();  // several: ambiguous
        value = view(f.value);
    }
    if (!value) return std::nullopt;
    std::string_view v = *value;
    const std::size_t sp = v.find(' ');
    if (!iequals(v.substr(0, sp), "bearer")) return std::nullopt;
    if (sp == std::string_view::npos) return std::string_view();
    v.remove_prefix(sp);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    std::size_t n = 0;
    while (n < v.size() && has_class(v[n], cc_token68)) ++n;
    if (n == 0) return std::string_view();
    std::size_t end = n;
    while (end < v.size() && v[end] == '=') ++end;
    if (end != v.size()) return std::string_view();
    return v;
}

bool http_request_head::expects_continue() const noexcept {
    const auto expect = header("expect");
    return expect && iequals(*expect, "100-continue");
}

void http_request_head::clear() noexcept {
    raw_.clear();
    fields_.clear();
    method_ = target_ = path_ = query_ = authority_ = span{};
    content_length_ = 0;
    framing_ = body_framing::none;
    version_ = 11;
}

// ---------------------------------------------------------------------------
// http_request_parser

http_request_parser::http_request_parser(http_request_limits limits) : limits_(limits) {
    if (limits_.max_head_bytes < 16 || limits_.max_head_bytes > (std::size_t{1} << 30)) {
        throw_invalid_argument("http_request_limits::max_head_bytes must be in [16, 2^30]");
    }
    if (limits_.max_header_fields == 0) {
        throw_invalid_argument("http_request_limits::max_header_fields must be positive");
    }
}

void http_request_parser::reset() noexcept {
    head_.clear();
    result_ = http_parse_result{};
    line_start_ = 0;
    search_from_ = 0;
    have_request_line_ = false;
}

http_parse_result http_request_parser::fail(int http_status, std::string_view reason) noexcept {
    result_.status = http_parse_status::error;
    result_.consumed = 0;
    result_.http_status = http_status;
    result_.reason = reason;
    return result_;
}

http_parse_result http_request_parser::parse(std::string_view buffer) {
    if (result_.status != http_parse_status::need_more) return result_;
    if (buffer.size() < search_from_) reset();  // misuse: the buffer shrank

    // The head must end within the first max_head_bytes bytes, so no LF
    // beyond them is ever looked at.
    const std::size_t window = std::min(buffer.size(), limits_.max_head_bytes);
    while (search_from_ < window) {
        const void* lf_ptr = std::memchr(buffer.data() + search_from_, '\n', window - search_from_);
        if (lf_ptr == nullptr) {
            search_from_ = window;
            break;
        }
        const auto lf = static_cast<std::size_t>(static_cast<const char*>(lf_ptr) - buffer.data());
        const std::size_t start = line_start_;
        search_from_ = line_start_ = lf + 1;
        // RFC 9112 2.2 lets a recipient accept a bare LF; sluice requires
        // CRLF, so that no two parsers on the path can disagree on a line end.
        if (lf == start || buffer[lf - 1] != '\r') return fail(400, "bare LF");
        const std::size_t len = lf - 1 - start;
        if (!have_request_line_) {
            if (len == 0) continue;  // RFC 9112 2.2: ignore blank lines before the request
            if (!on_request_line(buffer, start, len)) return result_;
            have_request_line_ = true;
        } else if (len == 0) {
            on_end_of_head(buffer, lf + 1);
            return result_;
        } else if (!on_header_line(buffer, start, len)) {
            return result_;
        }
    }
    if (buffer.size() >= limits_.max_head_bytes) return fail(431, "request head too large");
    return result_;
}

bool http_request_parser::on_request_line(std::string_view buffer, std::size_t off,
                                          std::size_t len) {
    const std::string_view line = buffer.substr(off, len);
    // request-line = method SP request-target SP HTTP-version, single spaces.
    const std::size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return fail(400, "malformed request line"), false;
    const std::size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return fail(400, "malformed request line"), false;
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (method.empty() || !all_of_class(method, cc_tchar)) {
        return fail(400, "invalid method"), false;
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive).
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
        version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9') {
        return fail(400, "malformed HTTP version"), false;
    }
    if (version[5] != '1') return fail(505, "HTTP version not supported"), false;
    head_.version_ = version[7] == '0' ? 10 : 11;
    if (target.empty() || !all_of_class(target, cc_target)) {
        return fail(400, "invalid request-target"), false;
    }
    if (target.find('#') != std::string_view::npos) {
        return fail(400, "fragment in request-target"), false;
    }

    const auto at = [&](std::string_view part) {
        return http_request_head::span{static_cast<std::uint32_t>(part.data() - buffer.data()),
                                       static_cast<std::uint32_t>(part.size())};
    };
    head_.method_ = at(method);
    head_.target_ = at(target);

    std::string_view path_and_query;
    if (method == "CONNECT") {
        // authority-form, the only form CONNECT takes (RFC 9112 3.2.3).
        if (!all_of_class(target, cc_host) || target.find('@') != std::string_view::npos) {
            return fail(400, "invalid request-target"), false;
        }
        head_.authority_ = at(target);
        return true;
    }
    if (target == "*") {
        if (method != "OPTIONS") return fail(400, "asterisk-form without OPTIONS"), false;
        head_.path_ = at(target);
        return true;
    }
    if (target.front() == '/') {
        path_and_query = target;
    } else {
        // absolute-form: a server MUST accept it (RFC 9112 3.2.2).
        std::string_view rest = target;
        if (starts_with_icase(rest, "http://")) {
            rest.remove_prefix(7);
        } else if (starts_with_icase(rest, "https://")) {
            rest.remove_prefix(8);
        } else {
            return fail(400, "invalid request-target"), false;
        }
        const std::size_t end = std::min(rest.find_first_of("/?"), rest.size());
        const std::string_view authority = rest.substr(0, end);
        if (authority.empty() || !all_of_class(authority, cc_host)) {
            return fail(400, "invalid request-target authority"), false;
        }
        head_.authority_ = at(authority);
        path_and_query = rest.substr(end);
    }
    const std::size_t q = path_and_query.find('?');
    const std::string_view path = path_and_query.substr(0, q);
    if (q != std::string_view::npos) head_.query_ = at(path_and_query.substr(q + 1));
    if (path.empty()) {
        // `http://host` or `http://host?x`: the path is "/" (RFC 9112 3.2.1);
        // borrow the "/" of "HTTP/1.x", which is in the head for sure.
        head_.path_ = at(version.substr(4, 1));
    } else {
        head_.path_ = at(path);
    }
    return true;
}

bool http_request_parser::on_header_line(std::string_view buffer, std::size_t off,
                                         std::size_t len) {
    const std::string_view line = buffer.substr(off, len);
    if (is_ows(line.front())) return fail(400, "obsolete line folding"), false;
    std::size_t colon = 0;
    while (colon < line.size() && has_class(line[colon], cc_tchar)) ++colon;
    if (colon == line.size()) return fail(400, "header line without colon"), false;
    if (is_ows(line[colon])) return fail(400, "whitespace before colon"), false;
    if (colon == 0 || line[colon] != ':') return fail(400, "invalid field name"), false;
    const std::string_view raw_value = line.substr(colon + 1);
    if (!all_of_class(raw_value, cc_field)) return fail(400, "invalid field value"), false;
    if (head_.fields_.size() >= limits_.max_header_fields) {
        return fail(431, "too many header fields"), false;
    }
    const std::string_view value = trim_ows(raw_value);
    if (head_.fields_.capacity() == 0) head_.fields_.reserve(16);
    head_.fields_.push_back({{static_cast<std::uint32_t>(off), static_cast<std::uint32_t>(colon)},
                             {static_cast<std::uint32_t>(value.data() - buffer.data()),
                              static_cast<std::uint32_t>(value.size())}});
    return true;
}

void http_request_parser::on_end_of_head(std::string_view buffer, std::size_t end) {
    http_request_head& h = head_;
    h.raw_.assign(buffer.data(), end);

    // Host (RFC 9112 3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0.
    const std::size_t hosts = h.header_count("host");
    if (hosts > 1) return void(fail(400, "more than one Host"));
    if (hosts == 0 && h.version_ >= 11) return void(fail(400, "missing Host"));
    if (hosts == 1 && !all_of_class(*h.header("host"), cc_host)) {
        return void(fail(400, "invalid Host"));
    }

    // Content-Length (RFC 9110 8.6): a list of identical values is accepted.
    bool has_length = false;
    bool bad_length = false;
    std::uint64_t length = 0;
    bool has_te = false;
    for (const http_request_head::field& f : h.fields_) {
        const std::string_view name = h.view(f.name);
        if (iequals(name, "transfer-encoding")) has_te = true;
        if (!iequals(name, "content-length")) continue;
        std::size_t elements = 0;
        for_each_list_element(h.view(f.value), [&](std::string_view element) {
            std::uint64_t v = 0;
            if (!parse_decimal(element, v) || (has_length && v != length)) {
                bad_length = true;
                return false;
            }
            ++elements;
            has_length = true;
            length = v;
            return true;
        });
        if (elements == 0) bad_length = true;  // empty, or only commas
        if (bad_length) break;
    }
    if (bad_length) return void(fail(400, "invalid Content-Length"));

    if (has_te) {
        // RFC 9112 6.1 and 6.3: reject rather than guess.
        if (has_length) return void(fail(400, "both Transfer-Encoding and Content-Length"));
        if (h.version_ < 11) return void(fail(400, "Transfer-Encoding in HTTP/1.0"));
        std::size_t codings = 0;
        std::size_t chunked = 0;
        bool last_is_chunked = false;
        bool malformed = false;
        for (const http_request_head::field& f : h.fields_) {
            if (!iequals(h.view(f.name), "transfer-encoding")) continue;
            for_each_list_element(h.view(f.value), [&](std::string_view element) {
                std::size_t n = 0;
                while (n < element.size() && has_class(element[n], cc_tchar)) ++n;
                const std::string_view coding = element.substr(0, n);
                const std::string_view params = trim_ows(element.substr(n));
                const bool is_chunked = iequals(coding, "chunked");
                if (n == 0 || (!params.empty() && (params.front() != ';' || is_chunked))) {
                    malformed = true;
                    return false;
                }
                ++codings;
                chunked += is_chunked ? 1 : 0;
                last_is_chunked = is_chunked;
                return true;
            });
            if (malformed) break;
        }
        if (malformed || codings == 0) return void(fail(400, "invalid Transfer-Encoding"));
        if (!last_is_chunked || chunked != 1) {
            return void(fail(400, "chunked is not the final transfer coding"));
        }
        if (codings != 1) return void(fail(501, "unsupported transfer coding"));
        h.framing_ = body_framing::chunked;
    } else if (has_length) {
        h.framing_ = body_framing::content_length;
        h.content_length_ = length;
    }

    result_.status = http_parse_status::complete;
    result_.consumed = end;
}

// ---------------------------------------------------------------------------
// body_reader

body_reader::body_reader(body_limits limits) : limits_(limits) {
    if (limits_.max_body_bytes == 0 || limits_.max_trailer_bytes == 0 ||
        limits_.max_chunk_line_bytes == 0) {
        throw_invalid_argument("body_limits: every limit must be positive");
    }
}

http_parse_result body_reader::fail(int http_status, std::string_view reason) noexcept {
    state_ = state::failed;
    result_.status = http_parse_status::error;
    result_.consumed = 0;
    result_.http_status = http_status;
    result_.reason = reason;
    return result_;
}

http_parse_result body_reader::start(const http_request_head& head) noexcept {
    return start(head.framing(), head.content_length());
}

http_parse_result body_reader::start(body_framing framing, std::uint64_t content_length) noexcept {
    result_ = http_parse_result{};
    total_ = 0;
    line_bytes_ = 0;
    remaining_ = 0;
    switch (framing) {
    case body_framing::none: state_ = state::done; break;
    case body_framing::content_length:
        if (content_length > limits_.max_body_bytes) return fail(413, "body too large");
        remaining_ = content_length;
        state_ = content_length == 0 ? state::done : state::fixed;
        break;
    case body_framing::chunked: state_ = state::size_start; break;
    }
    if (state_ == state::done) result_.status = http_parse_status::complete;
    return result_;
}

http_parse_result body_reader::read(std::string_view data, std::string& out) {
    if (state_ == state::failed) return result_;
    if (state_ == state::done) {
        result_.status = http_parse_status::complete;
        result_.consumed = 0;
        return result_;
    }
    if (state_ == state::fixed) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size()));
        out.append(data.data(), n);
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) state_ = state::done;
        result_.status =
            remaining_ == 0 ? http_parse_status::complete : http_parse_status::need_more;
        result_.consumed = n;
        return result_;
    }
    return read_chunked(data, out);
}

http_parse_result body_reader::read_chunked(std::string_view data, std::string& out) {
    // chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 7.1)
    std::size_t i = 0;
    const std::size_t n = data.size();
    while (i < n) {
        const char c = data[i];
        switch (state_) {
        case state::size_start:
        case state::size: {
            const int d = hex_value(c);
            if (d >= 0) {
                // The size only grows with more digits: over the limit is
                // final, and checking before multiplying rules out overflow.
                const std::uint64_t room = limits_.max_body_bytes - total_;
                if (remaining_ > room / 16 ||
                    static_cast<std::uint64_t>(d) > room - remaining_ * 16) {
                    return fail(413, "body too large");
                }
                remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(d);
                state_ = state::size;
            } else if (state_ == state::size_start) {
                return fail(400, "invalid chunk size");
            } else if (c == ';') {
                state_ = state::extension;
            } else if (is_ows(c)) {
                state_ = state::size_ws;
            } else if (c == '\r') {
                state_ = state::size_lf;
            } else {
                return fail(400, "invalid chunk size");
            }
            break;
        }
        case state::size_ws:
            // BWS before ";" only.
            if (c == ';') {
                state_ = state::extension;
            } else if (!is_ows(c)) {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::extension:
            // Extensions are skipped: any field-value bytes, no CTLs.
            if (c == '\r') {
                state_ = state::size_lf;
            } else if (!has_class(c, cc_field)) {
                return fail(400, "invalid chunk extension");
            }
            break;
        case state::size_lf:
            if (c != '\n') return fail(400, "chunk size line without CRLF");
            line_bytes_ = 0;
            state_ = remaining_ == 0 ? state::trailer_line_start : state::data;
            ++i;
            continue;
        case state::data: {
            const std::size_t take =
                static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
            out.append(data.data() + i, take);
            remaining_ -= take;
            total_ += take;
            i += take;
            if (remaining_ == 0) state_ = state::data_cr;
            continue;
        }
        case state::data_cr:
            if (c != '\r') return fail(400, "chunk data without CRLF");
            state_ = state::data_lf;
            ++i;
            continue;
        case state::data_lf:
            if (c != '\n') return fail(400, "chunk data without CRLF");
            state_ = state::size_start;
            line_bytes_ = 0;
            ++i;
            continue;
        case state::trailer_line_start:
            if (c == '\r') {
                state_ = state::final_lf;
            } else if (has_class(c, cc_tchar)) {
                state_ = state::trailer_name;
            } else {
                return fail(400, "invalid trailer field");
            }
            break;
        case state::trailer_name:
            if (c == ':') {
                state_ = state::trailer_value;
            } else if (!has_class(c, cc_tchar)) {
                return fail(400, "invalid trailer field");
            }
            break;
        case state::trailer_value:
            if (c == '\r') {
                state_ = state::trailer_lf;
            } else if (!has_class(c, cc_field)) {
                return fail(400, "invalid trailer field");
            }
            break;
        case state::trailer_lf:
            if (c != '\n') return fail(400, "trailer line without CRLF");
            state_ = state::trailer_line_start;
            break;
        case state::final_lf:
            if (c != '\n') return fail(400, "chunked body without final CRLF");
            state_ = state::done;
            result_.status = http_parse_status::complete;
            result_.consumed = i + 1;
            return result_;
        case state::fixed:
        case state::done:
        case state::failed: return result_;  // not reached: handled by read()
        }
        // One byte of a size line or of the trailer section was consumed.
        ++i;
        ++line_bytes_;
        const bool in_trailers = state_ >= state::trailer_line_start;
        if (in_trailers && line_bytes_ > limits_.max_trailer_bytes) {
            return fail(431, "trailer section too large");
        }
        if (!in_trailers && line_bytes_ > limits_.max_chunk_line_bytes) {
            return fail(400, "chunk size line too long");
        }
    }
    result_.status = http_parse_status::need_more;
    result_.consumed = n;
    return result_;
}

// ---------------------------------------------------------------------------
// percent decoding and queries

bool percent_decode(std::string_view in, std::string& out, bool plus_as_space) {
    const std::size_t old_size = out.size();
    out.reserve(old_size + in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            const int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
            const int lo = hi >= 0 ? hex_value(in[i + 2]) : -1;
            if (lo < 0) {
                out.resize(old_size);
                return false;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_as_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

std::error_code http_query::parse(std::string_view raw) {
    decoded_.clear();
    entries_.clear();
    decoded_.reserve(raw.size());  // decoding never grows the text
    while (true) {
        const std::size_t amp = raw.find('&');
        const std::string_view pair = raw.substr(0, amp);
        if (!pair.empty()) {
            const std::size_t eq = pair.find('=');
            entry e{};
            e.key_off = decoded_.size();
            bool ok = percent_decode(pair.substr(0, eq), decoded_, true);
            e.key_len = decoded_.size() - e.key_off;
            e.value_off = decoded_.size();
            if (ok && eq != std::string_view::npos) {
                ok = percent_decode(pair.substr(eq + 1), decoded_, true);
            }
            e.value_len = decoded_.size() - e.value_off;
            if (!ok) {
                decoded_.clear();
                entries_.clear();
                return make_error_code(errc::bad_request);
            }
            entries_.push_back(e);
        }
        if (amp == std::string_view::npos) return {};
        raw.remove_prefix(amp + 1);
    }
}

query_param http_query::operator[](std::size_t i) const noexcept {
    const entry& e = entries_[i];
    return {std::string_view(decoded_).substr(e.key_off, e.key_len),
            std::string_view(decoded_).substr(e.value_off, e.value_len)};
}

std::optional<std::string_view> http_query::value(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const query_param p = (*this)[i];
        if (p.key == key) return p.value;
    }
    return std::nullopt;
}

std::vector<std::string_view> http_query::values(std::string_view key) const {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        const query_param p = (*this)[i];
        if (p.key == key) out.push_back(p.value);
    }
    return out;
}

}  // namespace sluice::detail
