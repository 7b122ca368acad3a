// http_request.hpp: the server's HTTP/1.1 request reading (RFC 9112): a
// bounded, incremental request-head parser, a body reader for Content-Length
// and chunked framing, and the query-string and percent-decoding helpers.
//
// Private to the library (not installed). Guarantees: nothing here reads
// outside the bytes it is given, throws on input or allocates per byte; the
// head parser does O(n) work in total however the bytes are split across
// calls. What the parser accepts and rejects, with the HTTP status of each
// rejection, is listed in docs/http.md.
//
// Thread-safety: no shared state. One parser and one body reader per
// connection, used from that connection's strand.
#pragma once

#include <sluice/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::detail {

/// Where a parse stands: more bytes needed, done, or failed for good.
enum class http_parse_status : unsigned char { need_more, complete, error };

/// The outcome of `http_request_parser::parse` and `body_reader::read`.
struct http_parse_result {
    http_parse_status status = http_parse_status::need_more;
    /// `complete`: for the head parser, the size of the head (request line,
    /// header lines and the blank line, CRLFs included, plus any blank lines
    /// that preceded the request line); for the body reader, the bytes of the
    /// given data that belong to the body. The bytes after it are the next
    /// pipelined request. `need_more` from the body reader: all the data given.
    std::size_t consumed = 0;
    /// `error`: the status to answer (400, 413, 431, 501, 505), then close.
    int http_status = 0;
    /// `error`: a short static reason for people ("bare LF", …).
    std::string_view reason;

    bool need_more() const noexcept { return status == http_parse_status::need_more; }
    bool complete() const noexcept { return status == http_parse_status::complete; }
    bool failed() const noexcept { return status == http_parse_status::error; }
};

/// Limits of the head parser. Defaults from PROTOCOL.md section 1.
struct http_request_limits {
    /// The largest head, counted from the first byte given to `parse` (blank
    /// lines before the request line, request line, header lines, CRLFs). Past
    /// it: 431, detected as soon as that many bytes arrived without the end
    /// of the head. Must be in [16, 2^30].
    std::size_t max_head_bytes = 16384;
    /// The most header field lines (trailers are separate). Past it: 431.
    std::size_t max_header_fields = 100;
};

/// How the request body is delimited.
enum class body_framing : unsigned char {
    none,            ///< no body (neither Content-Length nor Transfer-Encoding)
    content_length,  ///< exactly `content_length()` bytes
    chunked,         ///< Transfer-Encoding: chunked
};

/// One header field line: name as sent, value without surrounding whitespace.
struct http_header {
    std::string_view name;
    std::string_view value;
};

/// Iterates a container that has `size()` and `operator[](std::size_t)`
/// returning by value.
template <class Owner, class Value>
class index_iterator {
public:
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    index_iterator(const Owner* owner, std::size_t index) : owner_(owner), index_(index) {}
    Value operator*() const { return (*owner_)[index_]; }
    index_iterator& operator++() {
        ++index_;
        return *this;
    }
    index_iterator operator++(int) {
        index_iterator copy = *this;
        ++index_;
        return copy;
    }
    bool operator==(const index_iterator& o) const { return index_ == o.index_; }
    bool operator!=(const index_iterator& o) const { return index_ != o.index_; }

private:
    const Owner* owner_;
    std::size_t index_;
};

/// A parsed request head. It owns a copy of the head's bytes, so every view it
/// returns stays valid until this object is destroyed, reset or assigned
/// (for the parser's head: until its next `reset()`), whatever happens to the
/// connection's buffer. Copyable and movable (views are rebuilt on access).
class http_request_head {
public:
    using const_iterator = index_iterator<http_request_head, http_header>;

    /// The method, case-sensitive as sent (`GET`).
    std::string_view method() const noexcept { return view(method_); }
    /// The request-target exactly as sent.
    std::string_view target() const noexcept { return view(target_); }
    /// The path of the target, raw (not percent-decoded, dot segments kept):
    /// `/events` for `/events?topic=a`, `/x` for `http://host/x`, `/` for
    /// `http://host`, `*` for `OPTIONS *`, empty for CONNECT's authority-form.
    /// Decode with `percent_decode` when a decoded path is wanted.
    std::string_view path() const noexcept { return view(path_); }
    /// The raw query after `?` (empty when none). Parse with `http_query`.
    std::string_view query() const noexcept { return view(query_); }
    /// The authority of an absolute-form (`http://a:1/x` → `a:1`) or
    /// authority-form target; empty for origin-form.
    std::string_view authority() const noexcept { return view(authority_); }
    /// 10 for HTTP/1.0, 11 for HTTP/1.1 (and 1.2–1.9, handled as 1.1).
    int version() const noexcept { return version_; }

    /// The host the request is for: the authority of an absolute-form target
    /// (RFC 9112 3.2.2), else the Host header (empty when absent: HTTP/1.0).
    std::string_view host() const noexcept;

    /// Number of header field lines.
    std::size_t size() const noexcept { return fields_.size(); }
    /// The i-th header field line, in order received (i < size()).
    http_header operator[](std::size_t i) const noexcept {
        return {view(fields_[i].name), view(fields_[i].value)};
    }
    const_iterator begin() const noexcept { return {this, 0}; }
    const_iterator end() const noexcept { return {this, fields_.size()}; }

    /// The value of the first field named `name` (ASCII case-insensitive).
    /// Complexity: O(fields).
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// The values of every field named `name`, in order.
    std::vector<std::string_view> header_values(std::string_view name) const;
    /// How many fields are named `name`.
    std::size_t header_count(std::string_view name) const noexcept;
    /// Whether the comma-separated lists of every field named `name` contain
    /// `token` (ASCII case-insensitive, surrounding whitespace ignored):
    /// `has_token("connection", "upgrade")` for `Connection: keep-alive, Upgrade`.
    bool has_token(std::string_view name, std::string_view token) const noexcept;

    /// Whether the connection may serve another request after this one:
    /// HTTP/1.1 unless a `close` connection option; HTTP/1.0 only with a
    /// `keep-alive` option and no `close`.
    bool keep_alive() const noexcept;
    /// A WebSocket opening handshake (RFC 6455 4.1): GET, HTTP/1.1, an
    /// `Upgrade` list containing `websocket` and a `Connection` list
    /// containing `upgrade` (case-insensitive). The Sec-WebSocket-* fields are
    /// left to the server.
    bool is_websocket_upgrade() const noexcept;
    /// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
    /// No Authorization field, or another scheme: nullopt. A Bearer field
    /// whose token is missing or not token68, or several Authorization
    /// fields: an empty view (present but unusable: answer 401).
    std::optional<std::string_view> bearer_token() const noexcept;
    /// `Expect: 100-continue` was sent (curl does for bodies over 1 KiB): the
    /// server should answer `100 Continue` (or the final error) before
    /// reading the body.
    bool expects_continue() const noexcept;

    /// How the body is delimited (validated by the parser).
    body_framing framing() const noexcept { return framing_; }
    /// The Content-Length (0 unless framing() is content_length).
    std::uint64_t content_length() const noexcept { return content_length_; }

    /// The bytes of the head as received.
    std::string_view raw() const noexcept { return raw_; }

    /// Forgets everything; keeps the allocated capacity.
    void clear() noexcept;

private:
    friend class http_request_parser;
    struct span {
        std::uint32_t off = 0;
        std::uint32_t len = 0;
    };
    struct field {
        span name;
        span value;
    };
    std::string_view view(span s) const noexcept {
        return s.len == 0 ? std::string_view() : std::string_view(raw_.data() + s.off, s.len);
    }

    std::string raw_;
    std::vector<field> fields_;
    span method_, target_, path_, query_, authority_;
    std::uint64_t content_length_ = 0;
    body_framing framing_ = body_framing::none;
    unsigned char version_ = 11;
};

/// The incremental, bounded request-head parser. The server appends what it
/// reads to a per-connection buffer and calls `parse(buffer)` with the whole
/// unconsumed buffer each time; the parser remembers how far it scanned, so
/// each byte is examined once. Once `complete`, `head()` holds the head and
/// `consumed` bytes of the buffer are the head; the rest is body or the next
/// pipelined request. After `complete` or `error`, `parse` repeats that result
/// until `reset()`.
///
/// Example:
///     http_request_parser p;
///     auto r = p.parse(buf);           // buf: everything read so far
///     if (r.need_more()) read_more();
///     else if (r.failed()) answer(r.http_status), close();
///     else { handle(p.head()); buf.erase(0, r.consumed); p.reset(); }
///
/// Thread-safety: one per connection. Allocation: the head copy and the field
/// table, whose capacity is kept across `reset()`.
class http_request_parser {
public:
    /// Throws std::invalid_argument (aborts without exceptions) on limits
    /// outside their documented ranges.
    explicit http_request_parser(http_request_limits limits = {});

    /// Parses `buffer`, which must begin with the bytes given to the previous
    /// call since `reset()` (the server appends; it may move in memory). A
    /// buffer shorter than the bytes already scanned restarts the parse.
    http_parse_result parse(std::string_view buffer);

    /// Prepares for the next request; keeps capacity. Invalidates `head()`.
    void reset() noexcept;

    /// The parsed head; meaningful after `parse` returned `complete`.
    const http_request_head& head() const noexcept { return head_; }
    /// The head, for moving it out (`auto h = std::move(p.head_for_move())`).
    http_request_head& head_for_move() noexcept { return head_; }

    const http_request_limits& limits() const noexcept { return limits_; }

private:
    http_parse_result fail(int http_status, std::string_view reason) noexcept;
    bool on_request_line(std::string_view buffer, std::size_t off, std::size_t len);
    bool on_header_line(std::string_view buffer, std::size_t off, std::size_t len);
    void on_end_of_head(std::string_view buffer, std::size_t end);

    http_request_limits limits_;
    http_request_head head_;
    http_parse_result result_;
    std::size_t line_start_ = 0;   // first byte of the line not yet complete
    std::size_t search_from_ = 0;  // where the search for the next LF resumes
    bool have_request_line_ = false;
};

/// Limits of the body reader. Defaults from PROTOCOL.md sections 3.3 and 5.
struct body_limits {
    /// The largest body (decoded bytes for chunked). Past it: 413, for
    /// Content-Length at `start`, for chunked as soon as a chunk size makes
    /// the total exceed it.
    std::size_t max_body_bytes = 1024 * 1024;
    /// The largest trailer section (after the last chunk). Past it: 431.
    std::size_t max_trailer_bytes = 16384;
    /// The longest chunk-size line (size and extensions). Past it: 400.
    std::size_t max_chunk_line_bytes = 4096;
};

/// Reads one request body incrementally, appending the decoded bytes to a
/// caller-provided string. Unlike the head parser it is given only bytes it
/// has not seen: `read` consumes what belongs to the body and says how many.
///
/// Example:
///     body_reader body;
///     auto r = body.start(p.head());          // 413 before reading anything
///     while (r.need_more()) r = body.read(next_bytes(), out);
///     // r.complete(): out is the body; unconsumed bytes start the next request
///
/// Thread-safety: one per connection. Complexity: O(bytes); chunk data is
/// copied in bulk.
class body_reader {
public:
    /// Throws std::invalid_argument (aborts without exceptions) when a limit
    /// is zero.
    explicit body_reader(body_limits limits = {});

    /// Starts reading the body `head` announces. Returns `complete` for no
    /// body or Content-Length 0, `error` 413 for a Content-Length over the
    /// limit, else `need_more` (consumed is 0).
    http_parse_result start(const http_request_head& head) noexcept;
    /// Starts reading a body of the given framing.
    http_parse_result start(body_framing framing, std::uint64_t content_length = 0) noexcept;

    /// Consumes the bytes of `data` that belong to the body, appends their
    /// decoded content to `out`. `need_more`: all of `data` was consumed.
    /// `complete`: the first `consumed` bytes finished the body. `error`: 400
    /// (chunk syntax), 413 (over the limit), 431 (trailers too large); sticky.
    http_parse_result read(std::string_view data, std::string& out);

    /// Decoded body bytes so far.
    std::uint64_t body_bytes() const noexcept { return total_; }
    const body_limits& limits() const noexcept { return limits_; }

private:
    enum class state : unsigned char {
        fixed,
        size_start,
        size,
        size_ws,
        extension,
        size_lf,
        data,
        data_cr,
        data_lf,
        trailer_line_start,
        trailer_name,
        trailer_value,
        trailer_lf,
        final_lf,
        done,
        failed,
    };
    http_parse_result fail(int http_status, std::string_view reason) noexcept;
    http_parse_result read_chunked(std::string_view data, std::string& out);

    body_limits limits_;
    http_parse_result result_;
    std::uint64_t remaining_ = 0;  // of the fixed body or of the current chunk
    std::uint64_t total_ = 0;
    std::size_t line_bytes_ = 0;  // of the current chunk-size line, or of the trailers
    state state_ = state::done;
};

/// Appends the percent-decoding of `in` to `out` (`%41` → `A`; with
/// `plus_as_space`, `+` → space as in HTML form encoding). Returns false, with
/// `out` unchanged, when a `%` is not followed by two hex digits. Decoded
/// bytes are not validated (`%00` gives a NUL).
bool percent_decode(std::string_view in, std::string& out, bool plus_as_space = false);

/// One decoded query parameter.
struct query_param {
    std::string_view key;
    std::string_view value;
};

/// A parsed `application/x-www-form-urlencoded` query string: `&`-separated
/// `key=value` pairs, keys and values percent-decoded with `+` as space,
/// repeated keys kept in order, empty pairs skipped, a pair without `=` has
/// an empty value. Views stay valid until the next `parse` or destruction.
///
/// Example:
///     http_query q;
///     if (q.parse(head.query())) return answer(400);   // bad escape
///     for (auto topic : q.values("topic")) …
class http_query {
public:
    using const_iterator = index_iterator<http_query, query_param>;

    /// Replaces the contents with the parse of `raw` (without the `?`).
    /// `errc::bad_request` on an invalid percent escape (then empty).
    std::error_code parse(std::string_view raw);

    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }
    query_param operator[](std::size_t i) const noexcept;
    const_iterator begin() const noexcept { return {this, 0}; }
    const_iterator end() const noexcept { return {this, entries_.size()}; }

    /// The value of the first parameter named `key` (exact match).
    std::optional<std::string_view> value(std::string_view key) const noexcept;
    /// The values of every parameter named `key`, in order.
    std::vector<std::string_view> values(std::string_view key) const;
    bool contains(std::string_view key) const noexcept { return value(key).has_value(); }

private:
    struct entry {
        std::size_t key_off, key_len, value_off, value_len;
    };
    std::string decoded_;
    std::vector<entry> entries_;
};

/// ASCII case-insensitive equality.
bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace sluice::detail
