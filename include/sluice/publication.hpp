// sluice/publication.hpp: the event envelope.
//
// Defines `stream_position` (a topic's offset and epoch) and `publication`,
// one published event: immutable, reference-counted (`publication_ptr`), and
// carrying, serialized once, the bytes that every subscriber's WebSocket
// `event` message and SSE block share (PROTOCOL.md sections 3 and 4). Fan-out
// copies pointers, never bytes, and never serializes per subscriber.
//
// Guarantees: a publication's `data()` is compact JSON on one line, whatever
// the publisher sent; `topic()`, `epoch()` and `event_name()` never need JSON
// escaping (they are checked against the grammar of section 2 at creation);
// creation never throws on user input (a result with an error instead).
//
// Thread-safety: a publication is immutable once created; share it freely
// across threads. Creation functions are reentrant.
#pragma once

#include <sluice/detail/json_string.hpp>
#include <sluice/error.hpp>

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice {

/// A position in a topic's stream (centrifuge's vocabulary): the `offset` of
/// the last event (0 before the first publish) within the topic's `epoch`.
/// Two positions are comparable only within one epoch; a different epoch
/// means the history of the topic was lost in between (PROTOCOL.md 3.2).
///
///     sluice::stream_position since{41, "3f9a0c1b2d4e5f60"};
struct stream_position {
    std::uint64_t offset = 0;  ///< offset of the last event; 0 for none
    std::string epoch;         ///< the topic's epoch; empty when unknown
};

/// Equal offsets and equal epochs.
inline bool operator==(const stream_position& a, const stream_position& b) noexcept {
    return a.offset == b.offset && a.epoch == b.epoch;
}
/// Not `a == b`.
inline bool operator!=(const stream_position& a, const stream_position& b) noexcept {
    return !(a == b);
}

class publication;

/// How publications are held and shared: by everyone who needs one (history,
/// send queues of the subscribers) for as long as they need it.
using publication_ptr = std::shared_ptr<const publication>;

/// The outcome of creating a publication: the publication, or the error that
/// prevented it (then `publication` is null).
struct publication_result {
    publication_ptr publication;  ///< null on error
    std::error_code error;        ///< `errc::invalid_topic` or `errc::bad_request`

    /// True on success.
    explicit operator bool() const noexcept { return !error; }
};

namespace detail {

/// Deepest nesting of arrays and objects accepted in `data`; deeper is
/// `bad_request`. Bounds the recursion when a parsed value is written.
inline constexpr int max_data_depth = 256;

/// Most bytes of a topic (PROTOCOL.md section 2).
inline constexpr std::size_t max_topic_size = 200;
/// Most bytes of an event name (PROTOCOL.md section 2).
inline constexpr std::size_t max_event_name_size = 64;
/// Most bytes of an epoch accepted by `publication::create`.
inline constexpr std::size_t max_epoch_size = 64;

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

// A writer for `rapidjson::Value` with a depth limit (Value::Accept recurses
// without one, so deep input would exhaust the stack).
inline bool write_json(const rapidjson::Value& v, json_writer& w, int depth) {
    switch (v.GetType()) {
    case rapidjson::kNullType: return w.Null();
    case rapidjson::kFalseType: return w.Bool(false);
    case rapidjson::kTrueType: return w.Bool(true);
    case rapidjson::kStringType: return w.String(v.GetString(), v.GetStringLength());
    case rapidjson::kNumberType:
        if (v.IsDouble()) return w.Double(v.GetDouble());
        if (v.IsInt()) return w.Int(v.GetInt());
        if (v.IsUint()) return w.Uint(v.GetUint());
        if (v.IsInt64()) return w.Int64(v.GetInt64());
        return w.Uint64(v.GetUint64());
    case rapidjson::kObjectType:
        if (depth >= max_data_depth || !w.StartObject()) return false;
        for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
            if (!w.Key(m->name.GetString(), m->name.GetStringLength())) return false;
            if (!write_json(m->value, w, depth + 1)) return false;
        }
        return w.EndObject(v.MemberCount());
    case rapidjson::kArrayType:
        if (depth >= max_data_depth || !w.StartArray()) return false;
        for (auto e = v.Begin(); e != v.End(); ++e) {
            if (!write_json(*e, w, depth + 1)) return false;
        }
        return w.EndArray(v.Size());
    }
    return false;
}

// SAX handler that forwards to a writer and enforces the depth limit. Numbers
// arrive as raw text (kParseNumbersAsStringsFlag) and are copied verbatim, so
// `12345678901234567890123` or `1.50` keep their spelling.
struct depth_limited_handler
    : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, depth_limited_handler> {
    json_writer* w;
    int depth = 0;
    explicit depth_limited_handler(json_writer& writer) : w(&writer) {}
    bool Null() { return w->Null(); }
    bool Bool(bool b) { return w->Bool(b); }
    bool Int(int i) { return w->Int(i); }
    bool Uint(unsigned u) { return w->Uint(u); }
    bool Int64(std::int64_t i) { return w->Int64(i); }
    bool Uint64(std::uint64_t u) { return w->Uint64(u); }
    bool Double(double d) { return w->Double(d); }
    // Writer::RawNumber of RapidJSON 1.1 quotes the number; RawValue does not.
    bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
        return w->RawValue(s, n, rapidjson::kNumberType);
    }
    bool String(const char* s, rapidjson::SizeType n, bool) { return w->String(s, n); }
    bool Key(const char* s, rapidjson::SizeType n, bool) { return w->Key(s, n); }
    bool StartObject() { return ++depth <= max_data_depth && w->StartObject(); }
    bool EndObject(rapidjson::SizeType n) {
        --depth;
        return w->EndObject(n);
    }
    bool StartArray() { return ++depth <= max_data_depth && w->StartArray(); }
    bool EndArray(rapidjson::SizeType n) {
        --depth;
        return w->EndArray(n);
    }
};

// Reused serialization scratch (one per thread); a huge payload does not keep
// its capacity.
inline rapidjson::StringBuffer& data_scratch() {
    thread_local rapidjson::StringBuffer buffer;
    buffer.Clear();
    return buffer;
}
inline void release_scratch(rapidjson::StringBuffer& buffer) {
    if (buffer.GetSize() > 64 * 1024) {
        buffer.Clear();
        buffer.ShrinkToFit();
    }
}

}  // namespace detail

/// One published event: topic, offset, epoch, server timestamp, optional
/// event name and compact `data` JSON, plus the pre-serialized parts of the
/// messages that carry it to subscribers.
///
/// A WebSocket `event` message is `ws_event_head()` + the subscription's
/// `sub` as a JSON string (serialize it once per subscription with
/// `detail::json_string`) + `ws_event_tail()`: the server sends the three
/// parts as one gathered write. An SSE block is
/// `id: <token>\n` + `sse_event_field()` + `data: ` + the same three parts +
/// `\n\n`. `ws_message()` and `sse_block()` build those into one string for
/// tests and slow paths.
///
/// Memory: two allocations (the shared_ptr's control block with this object,
/// and one buffer holding the tail; every view points into it). No parsed
/// form is kept: the hub evaluates filters on the `rapidjson::Value` it holds
/// at publish time, and a replay with a filter re-parses `data()`.
///
/// Thread-safety: immutable; safe to read from any thread.
///
///     auto r = sluice::publication::create_from_json("prices:AAPL", 7, "3f9a0c1b2d4e5f60",
///                                                    1700000000000, R"({"p": 1.5})");
///     if (r) send(r.publication->ws_message(sluice::detail::json_string("prices:*")));
class publication {
    struct private_tag {};

public:
    /// The constant start of every WebSocket `event` message, up to the value
    /// of `sub`: `{"type":"event","sub":`.
    static constexpr std::string_view ws_event_head() noexcept {
        return R"({"type":"event","sub":)";
    }

    /// Creates a publication from an already parsed `data` value, written
    /// once, compactly, on one line.
    ///
    /// Errors (no throw): `errc::invalid_topic` when `topic` is not 1–200
    /// bytes of the characters of PROTOCOL.md section 2; `errc::bad_request`
    /// when `event_name` is not empty and not 1–64 such bytes, when `epoch`
    /// is not 1–64 of them, or when `data` cannot be written as JSON (NaN,
    /// nesting deeper than 256). Complexity: linear in the size of `data`.
    ///
    ///     rapidjson::Document d; d.Parse(R"({"p": 1.5})");
    ///     auto r = sluice::publication::create("prices:AAPL", 7, epoch, ts_ms, d, "quote");
    static publication_result create(std::string_view topic, std::uint64_t offset,
                                     std::string_view epoch, std::int64_t ts_ms,
                                     const rapidjson::Value& data,
                                     std::string_view event_name = {}) {
        auto& scratch = detail::data_scratch();
        detail::json_writer writer(scratch);
        const bool ok = detail::write_json(data, writer, 0) && writer.IsComplete();
        auto result = ok ? assemble(topic, offset, epoch, ts_ms, scratch, event_name)
                         : publication_result{nullptr, make_error_code(errc::bad_request)};
        detail::release_scratch(scratch);
        return result;
    }

    /// Creates a publication from `data` given as JSON text (pretty-printed or
    /// not), which is validated (UTF-8 included) and compacted; numbers keep
    /// their spelling. Invalid JSON is `errc::bad_request`; the other errors
    /// are those of `create`.
    ///
    ///     auto r = sluice::publication::create_from_json("t", 1, epoch, ts_ms, "{\n \"a\": 1\n}");
    ///     assert(r.publication->data() == R"({"a":1})");
    static publication_result create_from_json(std::string_view topic, std::uint64_t offset,
                                               std::string_view epoch, std::int64_t ts_ms,
                                               std::string_view data_json,
                                               std::string_view event_name = {}) {
        auto& scratch = detail::data_scratch();
        detail::json_writer writer(scratch);
        detail::depth_limited_handler handler(writer);
        rapidjson::Reader reader;
        rapidjson::MemoryStream memory(data_json.data(), data_json.size());
        rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(memory);
        constexpr unsigned flags = rapidjson::kParseIterativeFlag |
                                   rapidjson::kParseNumbersAsStringsFlag |
                                   rapidjson::kParseValidateEncodingFlag;
        const bool ok = !reader.Parse<flags>(stream, handler).IsError() && writer.IsComplete();
        auto result = ok ? assemble(topic, offset, epoch, ts_ms, scratch, event_name)
                         : publication_result{nullptr, make_error_code(errc::bad_request)};
        detail::release_scratch(scratch);
        return result;
    }

    /// The concrete topic. Never needs JSON escaping.
    std::string_view topic() const noexcept { return {buf_.get() + topic_pos, topic_len_}; }
    /// The offset within the topic's epoch (1, 2, 3, …).
    std::uint64_t offset() const noexcept { return offset_; }
    /// The topic's epoch when this was published.
    std::string_view epoch() const noexcept { return {buf_.get() + epoch_pos_, epoch_len_}; }
    /// `{offset(), epoch()}`.
    stream_position position() const { return {offset_, std::string(epoch())}; }
    /// Server time of the publish, ms since the Unix epoch (the `ts` field).
    std::int64_t ts() const noexcept { return ts_; }
    /// The publisher's event name; empty when none was given.
    std::string_view event_name() const noexcept { return {buf_.get() + name_pos_, name_len_}; }
    /// True when the publisher gave an event name.
    bool has_event_name() const noexcept { return name_len_ != 0; }
    /// The `data` JSON, compact, on one line. Parse it again when needed
    /// (a replay through a filter): no parsed form is kept.
    std::string_view data() const noexcept { return {buf_.get() + data_pos_, data_len_}; }

    /// Everything of the WebSocket `event` message after the value of `sub`:
    /// `,"topic":"T","offset":N,"epoch":"E","ts":MS,"data":DATA,"event":"NAME"}`
    /// (the `event` member only with an event name). Shared by every
    /// subscriber.
    std::string_view ws_event_tail() const noexcept { return {buf_.get(), tail_len_}; }

    /// The SSE `event:` line with its line feed: `event: NAME\n`, or
    /// `event: message\n` without an event name.
    std::string_view sse_event_field() const noexcept {
        if (name_len_ == 0) return "event: message\n";
        return {buf_.get() + tail_len_, sse_len_};
    }

    /// The complete WebSocket `event` message for a subscription whose `sub`
    /// JSON string is `sub_json` (as made by `detail::json_string`). For tests
    /// and slow paths; the hot path writes head, sub and tail without copying.
    std::string ws_message(std::string_view sub_json) const {
        std::string out;
        out.reserve(ws_event_head().size() + sub_json.size() + tail_len_);
        out.append(ws_event_head()).append(sub_json).append(ws_event_tail());
        return out;
    }

    /// The complete SSE block: `id: ID\n`, `sse_event_field()`, `data: ` and
    /// `ws_message(sub_json)`, then a blank line. For tests and slow paths.
    std::string sse_block(std::string_view id, std::string_view sub_json) const {
        std::string out;
        out.reserve(id.size() + sub_json.size() + tail_len_ + 64);
        out.append("id: ").append(id).append("\n").append(sse_event_field()).append("data: ");
        out.append(ws_event_head()).append(sub_json).append(ws_event_tail()).append("\n\n");
        return out;
    }

    /// Approximate heap bytes owned by this publication (both allocations,
    /// with the allocator's per-block overhead). What the history charges to
    /// its byte budget.
    std::size_t memory_bytes() const noexcept {
        constexpr std::size_t control_block = 2 * sizeof(void*);
        constexpr std::size_t per_allocation = 2 * sizeof(void*);
        return control_block + sizeof(publication) + tail_len_ + sse_len_ + 2 * per_allocation;
    }

    publication(const publication&) = delete;
    publication& operator=(const publication&) = delete;

    /// @cond internal
    // Public for std::make_shared only; use create() or create_from_json().
    publication(private_tag, std::unique_ptr<char[]> buf, std::uint64_t offset, std::int64_t ts)
        : buf_(std::move(buf)), offset_(offset), ts_(ts) {}
    /// @endcond

private:
    static constexpr std::uint32_t topic_pos = 10;  // after `,"topic":"`

    static publication_result assemble(std::string_view topic, std::uint64_t offset,
                                       std::string_view epoch, std::int64_t ts_ms,
                                       const rapidjson::StringBuffer& data,
                                       std::string_view event_name) {
        if (!detail::is_name(topic, 1, detail::max_topic_size)) {
            return {nullptr, make_error_code(errc::invalid_topic)};
        }
        if (!detail::is_name(epoch, 1, detail::max_epoch_size) ||
            !detail::is_name(event_name, 0, detail::max_event_name_size)) {
            return {nullptr, make_error_code(errc::bad_request)};
        }
        const std::string_view data_text(data.GetString(), data.GetSize());
        char offset_text[24];
        char ts_text[24];
        const auto offset_end = std::to_chars(offset_text, offset_text + 24, offset).ptr;
        const auto ts_end = std::to_chars(ts_text, ts_text + 24, ts_ms).ptr;
        const std::string_view offset_sv(offset_text,
                                         static_cast<std::size_t>(offset_end - offset_text));
        const std::string_view ts_sv(ts_text, static_cast<std::size_t>(ts_end - ts_text));

        constexpr std::string_view k_topic = R"(,"topic":")";
        constexpr std::string_view k_offset = R"(","offset":)";
        constexpr std::string_view k_epoch = R"(,"epoch":")";
        constexpr std::string_view k_ts = R"(","ts":)";
        constexpr std::string_view k_data = R"(,"data":)";
        constexpr std::string_view k_event = R"(,"event":")";
        constexpr std::string_view k_sse = "event: ";
        static_assert(k_topic.size() == topic_pos);

        const bool named = !event_name.empty();
        const std::size_t tail = k_topic.size() + topic.size() + k_offset.size() +
                                 offset_sv.size() + k_epoch.size() + epoch.size() + k_ts.size() +
                                 ts_sv.size() + k_data.size() + data_text.size() +
                                 (named ? k_event.size() + event_name.size() + 2 : 1);
        const std::size_t sse = named ? k_sse.size() + event_name.size() + 1 : 0;
        if (tail + sse > std::numeric_limits<std::uint32_t>::max()) {
            return {nullptr, make_error_code(errc::bad_request)};
        }
        std::unique_ptr<char[]> buf(new char[tail + sse]);
        char* p = buf.get();
        auto put = [&p](std::string_view s) {
            std::memcpy(p, s.data(), s.size());
            p += s.size();
        };
        put(k_topic);
        put(topic);
        put(k_offset);
        put(offset_sv);
        put(k_epoch);
        const auto epoch_pos = static_cast<std::uint32_t>(p - buf.get());
        put(epoch);
        put(k_ts);
        put(ts_sv);
        put(k_data);
        const auto data_pos = static_cast<std::uint32_t>(p - buf.get());
        put(data_text);
        std::uint32_t name_pos = 0;
        if (named) {
            put(k_event);
            name_pos = static_cast<std::uint32_t>(p - buf.get());
            put(event_name);
            put("\"}");
            put(k_sse);
            put(event_name);
            put("\n");
        } else {
            put("}");
        }

        auto pub = std::make_shared<publication>(private_tag{}, std::move(buf), offset, ts_ms);
        pub->tail_len_ = static_cast<std::uint32_t>(tail);
        pub->epoch_pos_ = epoch_pos;
        pub->data_pos_ = data_pos;
        pub->data_len_ = static_cast<std::uint32_t>(data_text.size());
        pub->name_pos_ = name_pos;
        pub->sse_len_ = static_cast<std::uint32_t>(sse);
        pub->topic_len_ = static_cast<std::uint8_t>(topic.size());
        pub->epoch_len_ = static_cast<std::uint8_t>(epoch.size());
        pub->name_len_ = static_cast<std::uint8_t>(event_name.size());
        return {std::move(pub), {}};
    }

    std::unique_ptr<char[]> buf_;
    std::uint64_t offset_;
    std::int64_t ts_;
    std::uint32_t tail_len_ = 0;
    std::uint32_t epoch_pos_ = 0;
    std::uint32_t data_pos_ = 0;
    std::uint32_t data_len_ = 0;
    std::uint32_t name_pos_ = 0;
    std::uint32_t sse_len_ = 0;
    std::uint8_t topic_len_ = 0;
    std::uint8_t epoch_len_ = 0;
    std::uint8_t name_len_ = 0;
};

}  // namespace sluice
