// Internals of sluice/filter.hpp: the compiled form of a filter and its
// allocation-free evaluation against a RapidJSON value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace sluice::detail {

enum class filter_op : std::uint8_t { eq, ne, gt, gte, lt, lte, in, nin, exists, contains };

// A JSON scalar operand. Strings live in the program's byte pool.
struct filter_scalar {
    enum kind_t : std::uint8_t { null_k, bool_k, int_k, uint_k, double_k, string_k };
    kind_t kind = null_k;
    bool b = false;
    std::uint32_t off = 0;  // string: offset into the byte pool
    std::uint32_t len = 0;  // string: length
    union {
        std::int64_t i;
        std::uint64_t u;
        double d;
    };
    filter_scalar() noexcept : i(0) {}
};

struct filter_condition {
    filter_op op = filter_op::eq;
    std::uint32_t path_off = 0;  // dotted path in the byte pool
    std::uint32_t path_len = 0;
    std::uint32_t first = 0;  // operand(s): index range into `scalars`
    std::uint32_t count = 0;
};

// A JSON number, classified the way RapidJSON stores it so that comparisons
// can be exact: int64 when it fits, else uint64, else double.
struct filter_number {
    enum kind_t : std::uint8_t { int_k, uint_k, double_k };
    kind_t kind;
    union {
        std::int64_t i;
        std::uint64_t u;
        double d;
    };
};

template <class V>
inline filter_number filter_number_of(const V& v) noexcept {
    filter_number n;
    if (v.IsInt64()) {
        n.kind = filter_number::int_k;
        n.i = v.GetInt64();
    } else if (v.IsUint64()) {
        n.kind = filter_number::uint_k;
        n.u = v.GetUint64();
    } else {
        n.kind = filter_number::double_k;
        n.d = v.GetDouble();
    }
    return n;
}

inline filter_number filter_number_of(const filter_scalar& s) noexcept {
    filter_number n;
    switch (s.kind) {
    case filter_scalar::int_k:
        n.kind = filter_number::int_k;
        n.i = s.i;
        break;
    case filter_scalar::uint_k:
        n.kind = filter_number::uint_k;
        n.u = s.u;
        break;
    default:
        n.kind = filter_number::double_k;
        n.d = s.d;
        break;
    }
    return n;
}

template <class T>
constexpr int filter_three_way(T a, T b) noexcept {
    return a < b ? -1 : (b < a ? 1 : 0);
}

// Exact comparison of an int64 with a double (neither converted lossily).
inline int filter_cmp_int_double(std::int64_t i, double d) noexcept {
    if (d != d) return 2;                       // NaN: unordered (never from JSON)
    if (d < -9223372036854775808.0) return 1;   // below every int64
    if (d >= 9223372036854775808.0) return -1;  // above every int64
    auto t = static_cast<std::int64_t>(d);      // exact: |d| < 2^63, truncated
    if (i != t) return i < t ? -1 : 1;
    double frac = d - static_cast<double>(t);  // exact
    return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

inline int filter_cmp_uint_double(std::uint64_t u, double d) noexcept {
    if (d != d) return 2;
    if (d < 0) return 1;
    if (d >= 18446744073709551616.0) return -1;
    auto t = static_cast<std::uint64_t>(d);
    if (u != t) return u < t ? -1 : 1;
    double frac = d - static_cast<double>(t);
    return frac > 0 ? -1 : 0;
}

// -1, 0, 1; 2 for unordered.
inline int filter_compare(const filter_number& a, const filter_number& b) noexcept {
    using k = filter_number;
    switch (a.kind) {
    case k::int_k:
        switch (b.kind) {
        case k::int_k: return filter_three_way(a.i, b.i);
        case k::uint_k:
            return a.i < 0 ? -1 : filter_three_way(static_cast<std::uint64_t>(a.i), b.u);
        case k::double_k: return filter_cmp_int_double(a.i, b.d);
        }
        break;
    case k::uint_k:
        switch (b.kind) {
        case k::int_k: return b.i < 0 ? 1 : filter_three_way(a.u, static_cast<std::uint64_t>(b.i));
        case k::uint_k: return filter_three_way(a.u, b.u);
        case k::double_k: return filter_cmp_uint_double(a.u, b.d);
        }
        break;
    case k::double_k:
        switch (b.kind) {
        case k::int_k: {
            int r = filter_cmp_int_double(b.i, a.d);
            return r == 2 ? 2 : -r;
        }
        case k::uint_k: {
            int r = filter_cmp_uint_double(b.u, a.d);
            return r == 2 ? 2 : -r;
        }
        case k::double_k: return a.d < b.d ? -1 : (b.d < a.d ? 1 : (a.d == b.d ? 0 : 2));
        }
        break;
    }
    return 2;
}

inline int filter_compare_bytes(std::string_view a, std::string_view b) noexcept {
    int r = a.compare(b);  // bytewise (char_traits<char>::compare is memcmp-like)
    return r < 0 ? -1 : (r > 0 ? 1 : 0);
}

struct filter_program {
    std::string bytes;  // paths and string operands
    std::vector<filter_scalar> scalars;
    std::vector<filter_condition> conditions;

    std::string_view text(std::uint32_t off, std::uint32_t len) const noexcept {
        return std::string_view(bytes.data() + off, len);
    }

    template <class V>
    static std::string_view string_of(const V& v) noexcept {
        return std::string_view(v.GetString(), v.GetStringLength());
    }

    template <class V>
    bool equal(const V& v, const filter_scalar& s) const noexcept {
        switch (s.kind) {
        case filter_scalar::null_k: return v.IsNull();
        case filter_scalar::bool_k: return v.IsBool() && v.GetBool() == s.b;
        case filter_scalar::string_k: return v.IsString() && string_of(v) == text(s.off, s.len);
        default:
            return v.IsNumber() && filter_compare(filter_number_of(v), filter_number_of(s)) == 0;
        }
    }

    // -1, 0, 1, or 2 when the two are not comparable (different types).
    template <class V>
    int order(const V& v, const filter_scalar& s) const noexcept {
        if (s.kind == filter_scalar::string_k) {
            return v.IsString() ? filter_compare_bytes(string_of(v), text(s.off, s.len)) : 2;
        }
        if (!v.IsNumber()) return 2;
        return filter_compare(filter_number_of(v), filter_number_of(s));
    }

    // Follows a dotted path of object keys; nullptr when any step is missing
    // or not an object.
    template <class V>
    static const V* resolve(const V& root, std::string_view path) noexcept {
        const V* cur = &root;
        for (;;) {
            std::size_t dot = path.find('.');
            std::string_view key = path.substr(0, dot);
            if (!cur->IsObject()) return nullptr;
            const V* next = nullptr;
            for (auto m = cur->MemberBegin(); m != cur->MemberEnd(); ++m) {
                if (m->name.IsString() && string_of(m->name) == key) {
                    next = &m->value;
                    break;
                }
            }
            if (next == nullptr) return nullptr;
            cur = next;
            if (dot == std::string_view::npos) return cur;
            path.remove_prefix(dot + 1);
        }
    }

    template <class V>
    bool holds(const filter_condition& c, const V* v) const noexcept {
        const filter_scalar* first = scalars.data() + c.first;
        switch (c.op) {
        case filter_op::eq: return v != nullptr && equal(*v, *first);
        case filter_op::ne: return v == nullptr || !equal(*v, *first);
        case filter_op::gt: return v != nullptr && order(*v, *first) == 1;
        case filter_op::gte: {
            if (v == nullptr) return false;
            int r = order(*v, *first);
            return r == 1 || r == 0;
        }
        case filter_op::lt: return v != nullptr && order(*v, *first) == -1;
        case filter_op::lte: {
            if (v == nullptr) return false;
            int r = order(*v, *first);
            return r == -1 || r == 0;
        }
        case filter_op::in:
        case filter_op::nin: {
            bool found = false;
            if (v != nullptr) {
                for (std::uint32_t i = 0; i < c.count && !found; ++i) found = equal(*v, first[i]);
            }
            return c.op == filter_op::in ? found : !found;
        }
        case filter_op::exists: return (v != nullptr) == first->b;
        case filter_op::contains: {
            if (v == nullptr) return false;
            if (v->IsString() && first->kind == filter_scalar::string_k) {
                return string_of(*v).find(text(first->off, first->len)) != std::string_view::npos;
            }
            if (v->IsArray()) {
                for (auto e = v->Begin(); e != v->End(); ++e) {
                    if (equal(*e, *first)) return true;
                }
            }
            return false;
        }
        }
        return false;
    }

    template <class V>
    bool matches(const V& data) const noexcept {
        for (const filter_condition& c : conditions) {
            if (!holds(c, resolve(data, text(c.path_off, c.path_len)))) return false;
        }
        return true;
    }
};

}  // namespace sluice::detail
