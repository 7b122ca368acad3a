// sluice/topic.hpp: topics, topic patterns and event names (PROTOCOL.md section 2).
//
// Defines the validators `check_topic`, `check_pattern` and `check_event_name`,
// the predicates `is_pattern`, `pattern_matches` and `pattern_contains`, and the
// small result type `name_check` they report through.
//
// Guarantees: nothing here allocates, throws or keeps state; every function is
// linear in the length of its arguments (at most 200 bytes for valid input), and
// safe to call from any thread.
//
// Grammar (PROTOCOL.md section 2):
//   topic    = segment *( ":" segment )            ; 1-200 bytes
//   segment  = 1*( ALPHA / DIGIT / "_" / "." / "-" / "@" / "=" / "+" )
//   pattern  = like a topic, but a whole segment may be "*" (exactly one
//              segment) and the last whole segment may be "#" (zero or more
//              trailing segments); 1-200 bytes
//   event    = 1*64( segment characters / ":" )
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "sluice/error.hpp"

namespace sluice {

/// The longest topic or pattern, in bytes.
inline constexpr std::size_t max_topic_bytes = 200;
/// The longest event name, in bytes.
inline constexpr std::size_t max_event_name_bytes = 64;

/// The outcome of validating a topic, a pattern or an event name.
///
/// `error` is empty for valid input, else `errc::invalid_topic` (topics and
/// patterns) or `errc::bad_request` (event names). `reason` is a static string
/// saying what is wrong ("empty segment", "character not allowed", ...) and
/// `position` the byte offset where the problem is. `message()` joins them
/// ("empty segment at byte 4"); it is the only member that allocates.
///
/// Example:
/// @code
/// auto r = sluice::check_topic("prices::AAPL");
/// // r.error == sluice::errc::invalid_topic, r.reason == "empty segment", r.position == 7
/// @endcode
struct name_check {
    std::error_code error;         ///< empty when the input is valid
    std::string_view reason = {};  ///< static text; empty when valid
    std::size_t position = 0;      ///< byte offset of the problem

    /// True when the input is valid.
    explicit operator bool() const noexcept { return !error; }
    /// True when the input is valid.
    bool ok() const noexcept { return !error; }
    /// "<reason> at byte <position>", or "" when valid. Allocates.
    std::string message() const {
        if (!error) return {};
        std::string out(reason);
        // Length problems concern the whole input, not one byte.
        if (reason == "empty" || reason.substr(0, 11) == "longer than") return out;
        out += " at byte ";
        out += std::to_string(position);
        return out;
    }
};

namespace detail {

constexpr bool topic_segment_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-' || c == '@' || c == '=' || c == '+';
}

inline name_check topic_fail(errc e, std::string_view reason, std::size_t at) noexcept {
    return {make_error_code(e), reason, at};
}

// Shared by check_topic and check_pattern: wildcards are allowed only in the
// latter.
inline name_check topic_check_impl(std::string_view s, bool allow_wildcards) noexcept {
    if (s.empty()) return topic_fail(errc::invalid_topic, "empty", 0);
    if (s.size() > max_topic_bytes) {
        return topic_fail(errc::invalid_topic, "longer than 200 bytes", max_topic_bytes);
    }
    std::size_t start = 0;
    for (;;) {
        std::size_t end = s.find(':', start);
        if (end == std::string_view::npos) end = s.size();
        std::string_view seg = s.substr(start, end - start);
        bool last = end == s.size();
        if (seg.empty()) return topic_fail(errc::invalid_topic, "empty segment", start);
        if (seg.size() == 1 && (seg[0] == '*' || seg[0] == '#')) {
            if (!allow_wildcards) {
                return topic_fail(errc::invalid_topic, "wildcard in a topic", start);
            }
            if (seg[0] == '#' && !last) {
                return topic_fail(errc::invalid_topic, "'#' not in the last segment", start);
            }
        } else {
            for (std::size_t i = 0; i < seg.size(); ++i) {
                char c = seg[i];
                if (topic_segment_char(c)) continue;
                if (c == '*' || c == '#') {
                    return topic_fail(errc::invalid_topic,
                                      allow_wildcards ? "wildcard mixed with other characters"
                                                      : "wildcard in a topic",
                                      start + i);
                }
                return topic_fail(errc::invalid_topic, "character not allowed", start + i);
            }
        }
        if (last) break;
        start = end + 1;
    }
    return {};
}

// Splits off the first segment of `s` (which is consumed).
constexpr std::string_view topic_next_segment(std::string_view& s) noexcept {
    std::size_t end = s.find(':');
    std::string_view seg = s.substr(0, end);
    s = end == std::string_view::npos ? std::string_view{} : s.substr(end + 1);
    return seg;
}

}  // namespace detail

/// Validates a concrete topic (a publish target): 1-200 bytes of non-empty
/// segments, no wildcards. Failure: `errc::invalid_topic` with a reason.
/// Never allocates or throws. Example: `check_topic("country:42").ok()`.
inline name_check check_topic(std::string_view topic) noexcept {
    return detail::topic_check_impl(topic, false);
}

/// Validates a subscription: a topic, or a pattern with whole-segment `*` and a
/// trailing `#`. Failure: `errc::invalid_topic` with a reason ("'#' not in the
/// last segment", "wildcard mixed with other characters", ...).
/// Example: `check_pattern("country:*:gdp").ok()`.
inline name_check check_pattern(std::string_view pattern) noexcept {
    return detail::topic_check_impl(pattern, true);
}

/// Validates an event name: 1-64 bytes of segment characters and `:` (empty
/// segments are allowed, `"a::b"` is a valid name). Failure: `errc::bad_request`.
/// Example: `check_event_name("analysis:start").ok()`.
inline name_check check_event_name(std::string_view name) noexcept {
    if (name.empty()) return detail::topic_fail(errc::bad_request, "empty", 0);
    if (name.size() > max_event_name_bytes) {
        return detail::topic_fail(errc::bad_request, "longer than 64 bytes", max_event_name_bytes);
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (!detail::topic_segment_char(name[i]) && name[i] != ':') {
            return detail::topic_fail(errc::bad_request, "character not allowed", i);
        }
    }
    return {};
}

/// True when some whole segment of `s` is `*` or `#` (so a valid `s` is a
/// pattern rather than a topic). Example: `is_pattern("a:*")`, `!is_pattern("a*")`.
inline bool is_pattern(std::string_view s) noexcept {
    for (;;) {
        std::string_view seg = detail::topic_next_segment(s);
        if (seg == "*" || seg == "#") return true;
        if (s.data() == nullptr) return false;  // that was the last segment
    }
}

/// True when the valid pattern (or topic) `pattern` matches the valid topic
/// `topic`: segment by segment, `*` matches exactly one segment and a trailing
/// `#` matches zero or more. `country:#` matches `country`, `country:42` and
/// `country:42:gdp`; `country:*` only the second. A topic matches itself.
/// O(length); this is the reference matcher the router is tested against.
inline bool pattern_matches(std::string_view pattern, std::string_view topic) noexcept {
    std::string_view p = pattern;
    std::string_view t = topic;
    bool topic_done = false;  // all of `topic` consumed
    for (;;) {
        std::string_view ps = detail::topic_next_segment(p);
        bool pattern_last = p.data() == nullptr;
        if (ps == "#" && pattern_last) return true;
        if (topic_done) return false;
        std::string_view ts = detail::topic_next_segment(t);
        topic_done = t.data() == nullptr;
        if (ps != "*" && ps != ts) return false;
        if (pattern_last) return topic_done;
    }
}

/// True when every topic that `inner` matches is also matched by `outer`
/// (both valid patterns or topics): the authorization test of PROTOCOL.md
/// section 6. `country:*` is inside `country:#`; `a:#` is not inside `a:*`;
/// `user:alice:#` does not contain `user:*:inbox`; a topic is inside every
/// pattern that matches it; `x:#` is not inside `x:*:#` (it matches `x`).
///
/// This is exact set containment over valid topics (which have at least one
/// segment), so `*:#` and `#` match the same topics and contain each other.
/// O(length of both).
inline bool pattern_contains(std::string_view outer, std::string_view inner) noexcept {
    // Walk the non-'#' segments of `outer`; each must be matched by the
    // segment of `inner` at the same position, for every topic of `inner`.
    std::string_view o = outer;
    std::string_view in = inner;
    bool inner_done = false;   // every segment of `inner` consumed
    bool inner_tail = false;   // `inner` reached its trailing '#'
    std::size_t position = 0;  // index of the outer segment under test
    for (;;) {
        std::string_view os = detail::topic_next_segment(o);
        bool outer_last = o.data() == nullptr;
        if (os == "#" && outer_last) {
            // The rest of every inner topic is accepted. `inner` still needs
            // at least `position` segments in each of its topics, which holds
            // unless it reached '#' early; its '#' alone at position 0 still
            // yields at least one segment, and position 0 means nothing was
            // required yet.
            return true;
        }
        // `outer` requires a segment here.
        std::string_view is;
        if (!inner_tail) {
            if (inner_done) return false;  // inner's topics end before outer's
            is = detail::topic_next_segment(in);
            inner_done = in.data() == nullptr;
            if (is == "#" && inner_done) inner_tail = true;
        }
        if (inner_tail) {
            // Inner's topics may stop here (zero trailing segments) unless this
            // is the first segment: a topic has at least one segment.
            if (position != 0) return false;
            // Position 0 of `#`: any single segment, so outer needs '*'; and
            // inner may have more segments, so outer must end with '#' next.
            if (os != "*") return false;
            if (outer_last) return false;
            std::string_view next = detail::topic_next_segment(o);
            return next == "#" && o.data() == nullptr;
        }
        if (os != "*" && os != is) return false;
        if (outer_last) return inner_done;  // same segment count, no tail
        ++position;
    }
}

}  // namespace sluice
