// libFuzzer target for the server's HTTP/1.1 request reading (src/http_request.hpp).
//
// Each input is a byte stream as a client could send it on one connection.
// The head parser gets it in one piece, split at a point derived from the
// data, and trickled in small steps; all three must agree exactly (abort
// otherwise). Then the body reader reads the body in one piece and in two,
// which must agree too, and the next pipelined request is parsed the same
// way. Heads are also parsed with small limits so that 431 paths are reached.
#include "http_request.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace sluice::detail;

namespace {

void check(bool ok, const char* what) {
    if (ok) return;
    std::fprintf(stderr, "http_request_fuzz: %s\n", what);
    std::abort();
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 14695981039346656037ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
}

// Everything observable about one head parse.
std::string describe(const http_parse_result& r, const http_request_head& h) {
    std::string s(1, static_cast<char>('0' + static_cast<int>(r.status)));
    s += std::to_string(r.consumed) + "/" + std::to_string(r.http_status) + "/";
    s += r.reason;
    if (!r.complete()) return s;
    s += "|";
    s += h.method();
    s += "|";
    s += h.target();
    s += "|";
    s += h.path();
    s += "|";
    s += h.query();
    s += "|";
    s += h.authority();
    s += "|" + std::to_string(h.version()) + std::to_string(static_cast<int>(h.framing())) +
         std::to_string(h.content_length()) + (h.keep_alive() ? "k" : "c") +
         (h.is_websocket_upgrade() ? "w" : "-") + (h.expects_continue() ? "e" : "-");
    const auto token = h.bearer_token();
    if (token) {
        s += "|b";
        s += *token;
    }
    for (const auto& f : h) {
        s += "|";
        s += f.name;
        s += ":";
        s += f.value;
    }
    return s;
}

// Exercises the helpers on a complete head and checks its invariants.
void inspect(const http_request_head& h, std::string_view input, std::size_t consumed) {
    check(h.raw() == input.substr(0, consumed), "raw head differs from the input");
    check(h.version() == 10 || h.version() == 11, "bad version");
    for (const auto& f : h) {
        check(!f.name.empty(), "empty field name");
        check(f.value.find_first_of("\r\n", 0) == std::string_view::npos, "CR or LF in a value");
        check(f.value.find('\0') == std::string_view::npos, "NUL in a value");
    }
    if (h.version() == 11) check(h.header_count("host") == 1, "HTTP/1.1 without one Host");
    http_query q;
    if (!q.parse(h.query())) {
        for (const auto& p : q) check(q.value(p.key).has_value(), "query key not found");
    }
    std::string decoded;
    (void)percent_decode(h.path(), decoded);
}

http_parse_result parse_trickled(http_request_parser& p, std::string_view input, std::size_t step) {
    http_parse_result r;
    for (std::size_t end = 0;; end += step) {
        r = p.parse(input.substr(0, end));
        if (!r.need_more() || end >= input.size()) return r;
    }
}

// Parses one head three ways; returns the one-piece result (parser `p`).
http_parse_result parse_head(http_request_parser& p, std::string_view input,
                             http_request_limits limits) {
    const std::uint64_t h = fnv1a(input);
    p.reset();
    const auto whole = p.parse(input);
    const std::string expected = describe(whole, p.head());
    check(whole.consumed <= input.size(), "consumed past the input");
    if (whole.complete()) {
        check(whole.consumed <= limits.max_head_bytes, "head over the limit accepted");
        inspect(p.head(), input, whole.consumed);
    }
    if (whole.failed()) {
        const int s = whole.http_status;
        check(s == 400 || s == 431 || s == 501 || s == 505, "unexpected status");
    }

    http_request_parser split(limits);
    const std::size_t k = static_cast<std::size_t>(h % (input.size() + 1));
    auto r = split.parse(input.substr(0, k));
    if (r.need_more()) r = split.parse(input);
    check(describe(r, split.head()) == expected, "split parse differs");

    http_request_parser trickle(limits);
    const std::size_t step = 1 + static_cast<std::size_t>((h >> 32) % 7);
    r = parse_trickled(trickle, input, step);
    check(describe(r, trickle.head()) == expected, "trickled parse differs");
    return whole;
}

// Reads the body in one piece and in two; returns the consumed count.
std::size_t read_body(const http_request_head& head, std::string_view rest) {
    body_limits limits;
    limits.max_body_bytes = 4096;
    limits.max_trailer_bytes = 256;
    limits.max_chunk_line_bytes = 64;

    body_reader one(limits);
    std::string out1;
    auto r1 = one.start(head);
    if (r1.need_more()) r1 = one.read(rest, out1);
    check(r1.consumed <= rest.size(), "body consumed past the input");
    if (r1.need_more()) check(r1.consumed == rest.size(), "need_more without consuming all");
    if (r1.complete()) check(out1.size() == one.body_bytes(), "body size mismatch");
    if (head.framing() == body_framing::content_length && r1.complete()) {
        check(out1 == rest.substr(0, head.content_length()), "fixed body differs");
    }

    body_reader two(limits);
    std::string out2;
    auto r2 = two.start(head);
    std::size_t used = 0;
    const std::size_t k = static_cast<std::size_t>(fnv1a(rest) % (rest.size() + 1));
    if (r2.need_more()) {
        r2 = two.read(rest.substr(0, k), out2);
        used = r2.consumed;
        if (r2.need_more()) {
            r2 = two.read(rest.substr(k), out2);
            used += r2.consumed;
        }
    }
    check(r1.status == r2.status && r1.http_status == r2.http_status, "split body differs");
    if (r1.complete()) check(r1.consumed == used && out1 == out2, "split body differs");
    if (r1.need_more()) check(out1 == out2, "split partial body differs");
    return r1.complete() ? r1.consumed : rest.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    http_request_limits small;
    small.max_head_bytes = 256;
    small.max_header_fields = 8;
    http_request_parser small_parser(small);
    (void)parse_head(small_parser, input, small);

    http_request_parser p;
    std::string_view rest = input;
    for (int requests = 0; requests < 4 && !rest.empty(); ++requests) {
        const auto r = parse_head(p, rest, p.limits());
        if (!r.complete()) break;
        rest.remove_prefix(r.consumed);
        rest.remove_prefix(read_body(p.head(), rest));
    }
    return 0;
}
