// sluice/filter.hpp: subscription filters (PROTOCOL.md section 3.1).
//
// Defines `filter` (a compiled, immutable predicate over an event's `data`),
// `compile_filter` (from a parsed RapidJSON value), `parse_filter` (from JSON
// text, e.g. the SSE `filter` query parameter) and their result `filter_result`.
//
// Guarantees: compiling validates the whole filter once, at subscribe time, and
// reports `errc::invalid_filter` with the offending key; it never throws on
// user input. `filter::matches` takes the event's already-parsed `data` (parse
// each event once per publish, not once per subscriber), never allocates and
// never throws. Needs RapidJSON only; builds with -fno-exceptions.
//
// Semantics (see docs/routing.md for every choice):
//   {"amount": 5}                       equality (no coercion: "5" is not 5)
//   {"amount": {"gte": 5, "lt": 10}}    operators: eq ne gt gte lt lte in nin exists contains
//   {"source.name": "x"}                a dotted path through object keys
//   {}                                  matches everything
// At most 16 conditions; each operator counts one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "sluice/detail/filter_program.hpp"
#include "sluice/error.hpp"

namespace sluice {

/// The most conditions one filter may hold (each operator counts one).
inline constexpr std::size_t max_filter_conditions = 16;

struct filter_result;
filter_result compile_filter(const rapidjson::Value& spec);

/// A compiled filter: an AND of up to 16 conditions on dotted paths of an
/// event's `data`. A default-constructed filter (or one compiled from `{}`)
/// matches everything.
///
/// Thread-safety: immutable after compilation; `matches` may run on any number
/// of threads at once. Copying allocates (a deep copy of the small program);
/// moving does not. Size: one pointer, plus one heap block for a non-empty
/// filter.
///
/// Example (from tests/unit/filter_test.cpp):
/// @code
/// auto r = sluice::parse_filter(R"({"amount": {"gte": 100}, "currency": "EUR"})");
/// rapidjson::Document data;
/// data.Parse(R"({"amount": 250, "currency": "EUR"})");
/// bool send = r && r.compiled.matches(data);  // true
/// @endcode
class filter {
public:
    /// The filter that matches everything.
    filter() noexcept = default;
    /// Moves `other`'s conditions; `other` then matches everything.
    filter(filter&&) noexcept = default;
    /// Moves `other`'s conditions; `other` then matches everything.
    filter& operator=(filter&&) noexcept = default;
    /// Copies `other`'s conditions.
    filter(const filter& other)
        : program_(other.program_ ? std::make_unique<detail::filter_program>(*other.program_)
                                  : nullptr) {}
    /// Copies `other`'s conditions.
    filter& operator=(const filter& other) {
        if (this != &other) filter(other).swap(*this);
        return *this;
    }
    ~filter() = default;

    /// True when every condition holds on `data` (the event's `data` member,
    /// already parsed). A path that is missing, or runs through a non-object,
    /// satisfies only `ne`, `nin` and `exists: false`. O(conditions × object
    /// members along each path); never allocates.
    bool matches(const rapidjson::Value& data) const noexcept {
        return !program_ || program_->matches(data);
    }

    /// True when the filter has no condition (it matches everything).
    bool empty() const noexcept { return !program_; }

    /// The number of conditions (0 to 16).
    std::size_t size() const noexcept { return program_ ? program_->conditions.size() : 0; }

    /// Exchanges the conditions with `other`'s. O(1), never allocates.
    void swap(filter& other) noexcept { program_.swap(other.program_); }

private:
    friend filter_result compile_filter(const rapidjson::Value& spec);
    std::unique_ptr<detail::filter_program> program_;
};

/// What `compile_filter` and `parse_filter` produce: the filter, or
/// `errc::invalid_filter` with the offending key and a message for people
/// (`filter key "amount": unknown operator "gtx"`).
struct filter_result {
    filter compiled;        ///< the filter; matches everything when `error` is set
    std::error_code error;  ///< empty, or errc::invalid_filter
    std::string key;        ///< the offending filter key; empty when the whole filter is bad
    std::string message;    ///< human-readable; names the key

    /// True when the filter compiled.
    explicit operator bool() const noexcept { return !error; }
};

namespace detail {

inline filter_result filter_fail(std::string key, std::string what) {
    filter_result r;
    r.error = make_error_code(errc::invalid_filter);
    if (key.empty() && what.rfind("filter", 0) == 0) {
        r.message = std::move(what);
    } else {
        r.message = "filter key \"" + key + "\": " + what;
    }
    r.key = std::move(key);
    return r;
}

inline bool filter_is_scalar(const rapidjson::Value& v) noexcept {
    return v.IsNull() || v.IsBool() || v.IsNumber() || v.IsString();
}

inline bool filter_op_from_name(std::string_view name, filter_op& op) noexcept {
    struct entry {
        std::string_view name;
        filter_op op;
    };
    static constexpr entry table[] = {
        {"eq", filter_op::eq},         {"ne", filter_op::ne},
        {"gt", filter_op::gt},         {"gte", filter_op::gte},
        {"lt", filter_op::lt},         {"lte", filter_op::lte},
        {"in", filter_op::in},         {"nin", filter_op::nin},
        {"exists", filter_op::exists}, {"contains", filter_op::contains},
    };
    for (const entry& e : table) {
        if (e.name == name) {
            op = e.op;
            return true;
        }
    }
    return false;
}

class filter_builder {
public:
    filter_program program;

    filter_scalar scalar(const rapidjson::Value& v) {
        filter_scalar s;
        if (v.IsNull()) {
            s.kind = filter_scalar::null_k;
        } else if (v.IsBool()) {
            s.kind = filter_scalar::bool_k;
            s.b = v.GetBool();
        } else if (v.IsInt64()) {
            s.kind = filter_scalar::int_k;
            s.i = v.GetInt64();
        } else if (v.IsUint64()) {
            s.kind = filter_scalar::uint_k;
            s.u = v.GetUint64();
        } else if (v.IsNumber()) {
            s.kind = filter_scalar::double_k;
            s.d = v.GetDouble();
        } else {
            s.kind = filter_scalar::string_k;
            s.off = static_cast<std::uint32_t>(program.bytes.size());
            s.len = static_cast<std::uint32_t>(v.GetStringLength());
            program.bytes.append(v.GetString(), v.GetStringLength());
        }
        return s;
    }

    // Checks the operand of `op`; returns nullptr when it fits, else what is
    // wrong.
    static const char* operand_error(filter_op op, const rapidjson::Value& v) noexcept {
        switch (op) {
        case filter_op::eq:
        case filter_op::ne:
        case filter_op::contains: return filter_is_scalar(v) ? nullptr : "needs a scalar operand";
        case filter_op::gt:
        case filter_op::gte:
        case filter_op::lt:
        case filter_op::lte:
            return v.IsNumber() || v.IsString() ? nullptr : "needs a number or a string";
        case filter_op::in:
        case filter_op::nin:
            if (!v.IsArray()) return "needs an array of scalars";
            for (auto e = v.Begin(); e != v.End(); ++e) {
                if (!filter_is_scalar(*e)) return "needs an array of scalars";
            }
            return nullptr;
        case filter_op::exists: return v.IsBool() ? nullptr : "needs true or false";
        }
        return "unknown operator";
    }

    void add(filter_op op, std::uint32_t path_off, std::uint32_t path_len,
             const rapidjson::Value& operand) {
        filter_condition c;
        c.op = op;
        c.path_off = path_off;
        c.path_len = path_len;
        c.first = static_cast<std::uint32_t>(program.scalars.size());
        if (operand.IsArray()) {
            for (auto e = operand.Begin(); e != operand.End(); ++e) {
                program.scalars.push_back(scalar(*e));
            }
            c.count = static_cast<std::uint32_t>(operand.Size());
        } else {
            program.scalars.push_back(scalar(operand));
            c.count = 1;
        }
        program.conditions.push_back(c);
    }
};

inline const char* filter_path_error(std::string_view path) noexcept {
    if (path.empty()) return "empty path";
    if (path.front() == '.' || path.back() == '.' || path.find("..") != std::string_view::npos) {
        return "empty path segment";
    }
    return nullptr;
}

}  // namespace detail

/// Compiles a filter object (PROTOCOL.md section 3.1). On failure the result
/// carries `errc::invalid_filter`, the offending key and a message: a
/// non-object filter, an empty path or path segment (`""`, `"a..b"`, `".a"`),
/// an array value, an empty operator object, an unknown operator, an operand
/// of the wrong type, or more than 16 conditions. Allocates the program (one
/// block per vector); never throws on user input.
///
/// Example: `auto r = sluice::compile_filter(doc["filter"]); if (!r) reply(r.error, r.message);`
inline filter_result compile_filter(const rapidjson::Value& spec) {
    if (!spec.IsObject()) return detail::filter_fail({}, "filter is not a JSON object");
    detail::filter_builder b;
    for (auto m = spec.MemberBegin(); m != spec.MemberEnd(); ++m) {
        std::string_view key(m->name.GetString(), m->name.GetStringLength());
        if (const char* what = detail::filter_path_error(key)) {
            return detail::filter_fail(std::string(key), what);
        }
        auto path_off = static_cast<std::uint32_t>(b.program.bytes.size());
        auto path_len = static_cast<std::uint32_t>(key.size());
        b.program.bytes.append(key.data(), key.size());
        const rapidjson::Value& v = m->value;
        if (detail::filter_is_scalar(v)) {
            b.add(detail::filter_op::eq, path_off, path_len, v);
        } else if (v.IsArray()) {
            return detail::filter_fail(std::string(key),
                                       "an array is neither a scalar nor an operator object");
        } else {
            if (v.MemberCount() == 0) {
                return detail::filter_fail(std::string(key), "empty operator object");
            }
            for (auto o = v.MemberBegin(); o != v.MemberEnd(); ++o) {
                std::string_view name(o->name.GetString(), o->name.GetStringLength());
                detail::filter_op op{};
                if (!detail::filter_op_from_name(name, op)) {
                    return detail::filter_fail(std::string(key),
                                               "unknown operator \"" + std::string(name) + "\"");
                }
                if (const char* what = detail::filter_builder::operand_error(op, o->value)) {
                    return detail::filter_fail(std::string(key),
                                               "operator \"" + std::string(name) + "\" " + what);
                }
                b.add(op, path_off, path_len, o->value);
            }
        }
        if (b.program.conditions.size() > max_filter_conditions) {
            return detail::filter_fail(std::string(key), "more than 16 conditions in the filter");
        }
    }
    filter_result r;
    if (!b.program.conditions.empty()) {
        b.program.bytes.shrink_to_fit();
        b.program.scalars.shrink_to_fit();
        b.program.conditions.shrink_to_fit();
        r.compiled.program_ = std::make_unique<detail::filter_program>(std::move(b.program));
    }
    return r;
}

/// Compiles a filter given as JSON text (the SSE `filter` query parameter,
/// already URL-decoded). Text that is not one JSON value is `invalid_filter`
/// ("filter is not valid JSON: ..."); otherwise as `compile_filter`. Parses
/// iteratively, so deeply nested input cannot exhaust the stack.
inline filter_result parse_filter(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError()) {
        return detail::filter_fail({}, std::string("filter is not valid JSON: ") +
                                           rapidjson::GetParseError_En(doc.GetParseError()) +
                                           " at byte " + std::to_string(doc.GetErrorOffset()));
    }
    return compile_filter(doc);
}

}  // namespace sluice
