// sluice/error.hpp: the error codes of the sluice wire protocol as a
// std::error_code category.
//
// Every name of `sluice::errc` is a wire code of PROTOCOL.md section 3
// (`to_wire()` gives the exact string). Hot paths report them through
// `std::error_code`; nothing here allocates or throws.
//
// Thread-safety: everything here is stateless and safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace sluice {

/// The protocol's error codes (PROTOCOL.md section 3). Zero is never used so
/// that a default `std::error_code` means success.
enum class errc {
    bad_request = 1,         ///< not JSON, not an object, unknown type, missing or mistyped field
    invalid_topic,           ///< a topic or pattern outside the grammar of section 2
    invalid_filter,          ///< a filter outside section 3.1
    forbidden,               ///< outside the principal's rights
    rate_limited,            ///< over the inbound message rate
    too_many_subscriptions,  ///< over the per-connection subscription cap
    not_subscribed,          ///< unsubscribe of something not subscribed
    already_subscribed,      ///< the same subscriber subscribed to the same topic twice
    recovery_unsupported,    ///< `since` on a pattern
    unavailable,             ///< the backplane is down
    unauthorized,            ///< a missing, bad or expired token
    internal,                ///< an unexpected server failure
};

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::errc> : std::true_type {};

namespace sluice {

/// The wire spelling of `e` (`"bad_request"`, …); `"internal"` for a value
/// outside the enumeration. Never allocates.
constexpr std::string_view to_wire(errc e) noexcept {
    switch (e) {
    case errc::bad_request: return "bad_request";
    case errc::invalid_topic: return "invalid_topic";
    case errc::invalid_filter: return "invalid_filter";
    case errc::forbidden: return "forbidden";
    case errc::rate_limited: return "rate_limited";
    case errc::too_many_subscriptions: return "too_many_subscriptions";
    case errc::not_subscribed: return "not_subscribed";
    case errc::already_subscribed: return "already_subscribed";
    case errc::recovery_unsupported: return "recovery_unsupported";
    case errc::unavailable: return "unavailable";
    case errc::unauthorized: return "unauthorized";
    case errc::internal: return "internal";
    }
    return "internal";
}

/// The errc named by a wire string, or `errc::internal` for an unknown one.
constexpr errc errc_from_wire(std::string_view wire) noexcept {
    for (int i = static_cast<int>(errc::bad_request); i <= static_cast<int>(errc::internal); ++i) {
        if (to_wire(static_cast<errc>(i)) == wire) return static_cast<errc>(i);
    }
    return errc::internal;
}

namespace detail {
class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sluice"; }
    std::string message(int value) const override {
        return std::string(to_wire(static_cast<errc>(value)));
    }
};
}  // namespace detail

/// The category of `sluice::errc`; one instance per program.
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

/// Makes `std::error_code ec = sluice::errc::forbidden;` work.
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The wire spelling of a sluice error code, or `"internal"` for a code of
/// another category.
inline std::string_view to_wire(const std::error_code& ec) noexcept {
    if (ec.category() != error_category()) return "internal";
    return to_wire(static_cast<errc>(ec.value()));
}

}  // namespace sluice
