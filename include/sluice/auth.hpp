// sluice/auth.hpp: authentication and authorization (PROTOCOL.md section 6).
//
// Defines the principal a connection acts as, the request view a server hands
// to authentication, the `auth_policy` interface through which a host plugs in
// its own rules, and three policies: `anonymous_policy` (a hub without a JWT
// secret), `jwt_policy` (the built-in HS256 JWT rules of section 6) and
// `callback_policy` (two lambdas). `jwt_sign` mints HS256 tokens for tests and
// demos.
//
// Guarantees: policies are immutable after construction, so one policy object
// may serve every connection from any thread. Refusals never contain the token.
// Nothing here throws on user input; only bad construction arguments throw
// (`std::invalid_argument`, or abort without exceptions). This header includes
// no OpenSSL: the JWT code is compiled in the sluice library (link
// `sluice::sluice`).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "sluice/detail/throw.hpp"
#include "sluice/error.hpp"
#include "sluice/topic.hpp"

namespace sluice {

/// What a principal asks to do with a topic or pattern.
enum class action {
    subscribe,  ///< subscribe to a topic or pattern (WebSocket `subscribe`, SSE `topic=`)
    publish,    ///< publish to a topic (WebSocket `publish`, `POST /publish`)
};

/// `"subscribe"` or `"publish"`. Never allocates.
constexpr std::string_view to_string(action a) noexcept {
    return a == action::publish ? "publish" : "subscribe";
}

/// Who a connection acts as, and what it may do.
///
/// The rights are patterns (PROTOCOL.md section 2) in which `{sub}` has already
/// been replaced by `id`; a request is allowed when its topic or pattern is
/// contained in one of them (see `allows`). A plain value: copy it, keep it per
/// connection, replace it on `refresh`.
///
/// Example:
/// @code
/// sluice::principal p;
/// p.id = "alice";
/// p.subscribe_patterns = {"user:alice:#", "country:*"};
/// bool ok = p.allows(sluice::action::subscribe, "country:42");  // true
/// @endcode
struct principal {
    /// The principal's name (the JWT `sub`); empty for an anonymous principal.
    std::string id;
    /// Patterns this principal may subscribe within.
    std::vector<std::string> subscribe_patterns;
    /// Patterns this principal may publish within.
    std::vector<std::string> publish_patterns;
    /// When the credentials expire (the JWT `exp`); empty: never. The server
    /// closes the connection with 4401 at `expires_at` plus its grace period
    /// (PROTOCOL.md section 3.3) unless a refresh moved it.
    std::optional<std::chrono::system_clock::time_point> expires_at;
    /// True for the principal of `anonymous_policy`.
    bool anonymous = false;
    /// Whatever a host policy wants to keep with the principal (a tenant, a
    /// session row); sluice never looks at it.
    std::shared_ptr<const void> user_data;

    /// True when `topic_or_pattern` is contained in one of the patterns granted
    /// for `a` (`pattern_contains`): `country:*` is inside `country:#`, `#` only
    /// inside `#` (or `*:#`), `user:alice:#` does not allow `user:*:inbox`. An
    /// invalid topic or pattern is never allowed. O(total length of the rights).
    bool allows(action a, std::string_view topic_or_pattern) const noexcept {
        if (!check_pattern(topic_or_pattern)) return false;
        const auto& rights = a == action::publish ? publish_patterns : subscribe_patterns;
        for (const auto& granted : rights) {
            if (pattern_contains(granted, topic_or_pattern)) return true;
        }
        return false;
    }
};

/// What a server knows about a connection request when it authenticates it.
///
/// Plain views into the request, valid for the duration of the call only: a
/// policy that keeps anything must copy it. `bearer_token` is the token of an
/// `Authorization: Bearer` header (see `bearer_token_from_header`),
/// `query_token` the URL-decoded `token` query parameter; either may be empty.
///
/// Example:
/// @code
/// sluice::auth_request req;
/// req.bearer_token = sluice::bearer_token_from_header("Bearer abc.def.ghi");
/// req.query_token = "jkl.mno.pqr";
/// // req.token() == "abc.def.ghi": the header wins
/// @endcode
struct auth_request {
    std::string_view bearer_token;    ///< from `Authorization: Bearer <token>`; empty if none
    std::string_view query_token;     ///< from the `token` query parameter; empty if none
    std::string_view remote_address;  ///< the peer's IP address, as text
    std::string_view origin;          ///< the `Origin` header; empty if none
    std::string_view path;            ///< the request path (`/ws`, `/events`, `/publish`)
    /// Looks a request header up by case-insensitive name and returns its value
    /// (empty when absent); for host policies that read cookies or API-key
    /// headers. May be left empty; call `header()` rather than this directly.
    std::function<std::string_view(std::string_view name)> find_header;

    /// The token to verify: the bearer token when there is one, else the
    /// query token (PROTOCOL.md section 6: the header wins). Empty when neither.
    std::string_view token() const noexcept {
        return bearer_token.empty() ? query_token : bearer_token;
    }
    /// The value of header `name`, or an empty view when it is absent or the
    /// server gave no `find_header`.
    std::string_view header(std::string_view name) const {
        return find_header ? find_header(name) : std::string_view{};
    }
};

/// The token of an `Authorization` header value: `"Bearer <token>"` with the
/// scheme in any case and one or more spaces or tabs after it; surrounding
/// whitespace is trimmed. Empty for another scheme or no token. Never allocates.
/// Example: `bearer_token_from_header("bearer  x.y.z ") == "x.y.z"`.
constexpr std::string_view bearer_token_from_header(std::string_view value) noexcept {
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
    while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
    constexpr std::string_view scheme = "bearer";
    if (value.size() <= scheme.size() || !is_space(value[scheme.size()])) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        char c = value[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i]) return {};
    }
    value.remove_prefix(scheme.size());
    while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
    return value;
}

/// The outcome of authentication (or of a token refresh): a principal, or a
/// refusal with the HTTP status and the wire error code the server answers.
///
/// Build it with the factories: `allow(p)`; `unauthorized(msg)` (401,
/// `errc::unauthorized`: missing, bad or expired credentials);
/// `forbidden(msg)` (403, `errc::forbidden`: valid credentials that may not
/// connect); `rate_limited(retry_after, msg)` (429, `errc::rate_limited`, the
/// server sends `Retry-After`). `message` is for people and must never contain
/// the token.
///
/// Example:
/// @code
/// auto r = sluice::auth_result::unauthorized("missing token");
/// // !r, r.http_status == 401, r.error == sluice::errc::unauthorized
/// @endcode
struct auth_result {
    principal who;                            ///< the principal; meaningful when ok()
    std::error_code error;                    ///< empty on success
    int http_status = 0;                      ///< 401, 403 or 429 for a refusal; 0 on success
    std::string message;                      ///< why it was refused; empty on success
    std::chrono::milliseconds retry_after{};  ///< with a 429: when to try again

    /// True when authentication succeeded.
    bool ok() const noexcept { return !error; }
    /// True when authentication succeeded.
    explicit operator bool() const noexcept { return ok(); }

    /// Success as `p`.
    static auth_result allow(principal p) {
        auth_result r;
        r.who = std::move(p);
        return r;
    }
    /// 401 `unauthorized`: missing, malformed, badly signed or expired credentials.
    static auth_result unauthorized(std::string message) {
        return refusal(errc::unauthorized, 401, std::move(message), {});
    }
    /// 403 `forbidden`: credentials that are valid but may not connect.
    static auth_result forbidden(std::string message) {
        return refusal(errc::forbidden, 403, std::move(message), {});
    }
    /// 429 `rate_limited`, to be retried after `retry_after`.
    static auth_result rate_limited(std::chrono::milliseconds retry_after, std::string message) {
        return refusal(errc::rate_limited, 429, std::move(message), retry_after);
    }

private:
    static auth_result refusal(errc code, int status, std::string message,
                               std::chrono::milliseconds retry_after) {
        auth_result r;
        r.error = make_error_code(code);
        r.http_status = status;
        r.message = std::move(message);
        r.retry_after = retry_after;
        return r;
    }
};

/// The rules a server asks before it lets a request in: authentication
/// (request to principal or refusal), authorization (principal, action, topic
/// to allow or `errc::forbidden`) and token refresh (a new token for a live
/// connection).
///
/// One interface rather than a pair of `std::function`s because the three
/// answers must come from the same rules: rights are interpreted by the policy
/// that granted them, and a refresh must verify a token exactly as the
/// connection's token was verified. Hosts that prefer lambdas use
/// `callback_policy`. The public functions are non-virtual and forward to the
/// protected `do_*` hooks (so `now` has one default and derived classes hide
/// nothing).
///
/// A server holds a `std::shared_ptr<const auth_policy>` and calls it from any
/// thread: implementations must be safe to call concurrently (the built-ins are
/// immutable).
///
/// Example: a host policy that accepts one API key from a header.
/// @code
/// class api_key_policy final : public sluice::auth_policy {
///     sluice::auth_result do_authenticate(const sluice::auth_request& req,
///                                         time_point) const override {
///         if (req.header("X-Api-Key") != "k-123") return sluice::auth_result::unauthorized("bad
///         key"); sluice::principal p; p.id = "service"; p.subscribe_patterns = {"#"}; return
///         sluice::auth_result::allow(std::move(p));
///     }
/// };
/// @endcode
class auth_policy {
public:
    using time_point = std::chrono::system_clock::time_point;  ///< wall-clock time

    virtual ~auth_policy() = default;
    auth_policy(const auth_policy&) = delete;
    auth_policy& operator=(const auth_policy&) = delete;

    /// Authenticates a connection or HTTP request at wall-clock time `now`.
    auth_result authenticate(const auth_request& request,
                             time_point now = std::chrono::system_clock::now()) const {
        return do_authenticate(request, now);
    }

    /// Allows (empty error) or refuses (`errc::forbidden`) action `a` on
    /// `topic_or_pattern` (already validated by the server) for `who`.
    std::error_code authorize(const principal& who, action a,
                              std::string_view topic_or_pattern) const {
        return do_authorize(who, a, topic_or_pattern);
    }

    /// Verifies `token`, sent by the connection currently acting as `current`
    /// (the WebSocket `refresh` request). Success gives the principal that
    /// replaces `current`: its rights and `expires_at` are the new token's. A
    /// refusal (`errc::unauthorized` for a bad token) leaves the connection
    /// as it was, and it still expires at the old `expires_at`.
    auth_result refresh(const principal& current, std::string_view token,
                        time_point now = std::chrono::system_clock::now()) const {
        return do_refresh(current, token, now);
    }

protected:
    auth_policy() = default;

    /// Required: authentication.
    virtual auth_result do_authenticate(const auth_request& request, time_point now) const = 0;

    /// Default: `who.allows(a, topic_or_pattern)`, else `errc::forbidden`.
    virtual std::error_code do_authorize(const principal& who, action a,
                                         std::string_view topic_or_pattern) const {
        if (who.allows(a, topic_or_pattern)) return {};
        return make_error_code(errc::forbidden);
    }

    /// Default: refuses every refresh (`unauthorized`, "token refresh is not
    /// supported").
    virtual auth_result do_refresh(const principal& current, std::string_view token,
                                   time_point now) const {
        static_cast<void>(current);
        static_cast<void>(token);
        static_cast<void>(now);
        return auth_result::unauthorized("token refresh is not supported");
    }
};

/// The policy of a hub without a JWT secret (PROTOCOL.md section 8): every
/// request is accepted as the anonymous principal (any token is ignored), which
/// may subscribe to anything (`#`) and publish only when `allow_publish` (the
/// hub's `--allow-publish`). Refreshes are refused with `unauthorized`: there is
/// no token to refresh, and the anonymous principal never expires.
///
/// Thread-safety: immutable; call from any thread. Example:
/// @code
/// sluice::anonymous_policy policy{/*allow_publish=*/false};
/// auto r = policy.authenticate({});
/// // r.ok(), r.who.anonymous, !policy.authorize(r.who, sluice::action::subscribe, "a:#")
/// @endcode
class anonymous_policy final : public auth_policy {
public:
    /// `allow_publish`: whether the anonymous principal may publish (default: no).
    explicit anonymous_policy(bool allow_publish = false) noexcept
        : allow_publish_(allow_publish) {}

    /// Whether the anonymous principal may publish.
    bool allow_publish() const noexcept { return allow_publish_; }

    /// The principal every request gets: anonymous, empty `id`, subscribe
    /// `{"#"}`, publish `{"#"}` or nothing, no expiry.
    principal anonymous_principal() const {
        principal p;
        p.anonymous = true;
        p.subscribe_patterns.emplace_back("#");
        if (allow_publish_) p.publish_patterns.emplace_back("#");
        return p;
    }

private:
    auth_result do_authenticate(const auth_request&, time_point) const override {
        return auth_result::allow(anonymous_principal());
    }

    bool allow_publish_;
};

/// Options of `jwt_policy`.
struct jwt_options {
    /// The HS256 key: the bytes of the secret (no base64 decoding). Required
    /// (non-empty); use at least 32 random bytes (RFC 7518 section 3.2), and a
    /// secret dedicated to sluice, since `aud` and `iss` are not checked.
    std::string secret;
    /// Longer tokens are refused without being parsed (401). Default 16384,
    /// the request-head limit of PROTOCOL.md section 1.
    std::size_t max_token_bytes = 16384;
};

/// The built-in JWT policy (PROTOCOL.md section 6): HS256 only, signature,
/// `exp` and `nbf` checked with no clock leeway, `sub` names the principal,
/// `subscribe` and `publish` claims grant patterns with `{sub}` replaced.
///
/// A token is accepted when all of these hold, else 401 `unauthorized`:
/// - it has at most `max_token_bytes` bytes, exactly three segments
///   `header.payload.signature`, each canonical base64url without padding;
/// - the signature is the 32-byte HMAC-SHA256 of `header.payload` under the
///   secret (constant-time comparison; checked before any JSON is parsed);
/// - header and payload are JSON objects without duplicate member names; the
///   header's `alg` is exactly `"HS256"` and it has no `crit`;
/// - `exp`, if present, is a number (seconds since the Unix epoch, fractions
///   allowed) and `now < exp`; `nbf`, if present, is a number and `now >= nbf`
///   (compared in milliseconds);
/// - `sub` is a non-empty string;
/// - `subscribe` and `publish`, if present, are arrays of strings.
///
/// Then every pattern containing `{sub}` has each `{sub}` replaced by `sub` when
/// `sub` is a valid topic segment, and is dropped otherwise (so a `sub` like
/// `a:#` cannot widen its rights); a pattern that is then not a valid pattern
/// is dropped (never widens rights, and leaves room for future syntax). A
/// token without `exp` never expires. Authorization is `principal::allows`;
/// the `publish` claim alone decides who may publish. A refresh token must
/// pass the same checks and carry the same `sub` as the connection (as in
/// Centrifugo); its rights and expiry then replace the old ones.
///
/// Thread-safety: immutable after construction; call from any thread.
/// Complexity: linear in the token's length (plus sorting member names).
///
/// Example:
/// @code
/// sluice::jwt_policy policy{"a-secret-of-at-least-32-bytes...."};
/// std::string token = sluice::jwt_sign("a-secret-of-at-least-32-bytes....",
///                                      R"({"sub":"alice","subscribe":["user:{sub}:#"]})");
/// auto r = policy.verify(token);
/// // r.ok(), r.who.id == "alice", r.who.subscribe_patterns == {"user:alice:#"}
/// @endcode
class jwt_policy final : public auth_policy {
public:
    /// A policy with `secret` and default options. Throws
    /// `std::invalid_argument` (aborts without exceptions) on an empty secret.
    explicit jwt_policy(std::string secret);
    /// A policy with `options`. Throws `std::invalid_argument` (aborts without
    /// exceptions) on an empty secret or a zero `max_token_bytes`.
    explicit jwt_policy(jwt_options options);
    /// Overwrites the policy's copy of the secret.
    ~jwt_policy() override;

    /// Verifies `token` at `now`: the principal it names, or a 401 refusal
    /// whose message says which rule failed (never the token or its claims).
    auth_result verify(std::string_view token,
                       time_point now = std::chrono::system_clock::now()) const;

    /// The options the policy was built with.
    const jwt_options& options() const noexcept { return options_; }

private:
    auth_result do_authenticate(const auth_request& request, time_point now) const override;
    auth_result do_refresh(const principal& current, std::string_view token,
                           time_point now) const override;

    jwt_options options_;
};

/// An authentication hook: a request to a principal or a refusal.
using authenticator = std::function<auth_result(const auth_request&)>;
/// An authorization hook: empty error to allow, `errc::forbidden` to refuse.
using authorizer = std::function<std::error_code(const principal&, action, std::string_view)>;

/// A policy made of two callables, for hosts that prefer lambdas to a class.
///
/// Authentication calls `authenticate`. Authorization calls `authorize` when
/// given, else `principal::allows`. A refresh calls `authenticate` with a
/// request whose only field is `bearer_token = token`, and refuses
/// (`unauthorized`) a principal whose `id` differs from the connection's.
/// Thread-safety: as safe as the callables (they are called concurrently).
///
/// Example:
/// @code
/// sluice::callback_policy policy{[](const sluice::auth_request& req) {
///     if (req.remote_address != "127.0.0.1") return sluice::auth_result::forbidden("local only");
///     sluice::principal p;
///     p.id = "local";
///     p.subscribe_patterns = {"#"};
///     p.publish_patterns = {"#"};
///     return sluice::auth_result::allow(std::move(p));
/// }};
/// @endcode
class callback_policy final : public auth_policy {
public:
    /// Throws `std::invalid_argument` (aborts without exceptions) when
    /// `authenticate` is empty.
    explicit callback_policy(authenticator authenticate, authorizer authorize = {})
        : authenticate_(std::move(authenticate)), authorize_(std::move(authorize)) {
        if (!authenticate_) detail::throw_invalid_argument("callback_policy: empty authenticator");
    }

private:
    auth_result do_authenticate(const auth_request& request, time_point) const override {
        return authenticate_(request);
    }
    std::error_code do_authorize(const principal& who, action a,
                                 std::string_view topic_or_pattern) const override {
        if (authorize_) return authorize_(who, a, topic_or_pattern);
        return auth_policy::do_authorize(who, a, topic_or_pattern);
    }
    auth_result do_refresh(const principal& current, std::string_view token,
                           time_point) const override {
        auth_request request;
        request.bearer_token = token;
        auth_result r = authenticate_(request);
        if (r && r.who.id != current.id) {
            return auth_result::unauthorized("token names another principal");
        }
        return r;
    }

    authenticator authenticate_;
    authorizer authorize_;
};

/// Mints an HS256 JWT: `base64url(header_json).base64url(claims_json).
/// base64url(HMAC-SHA256(secret, those two joined by '.'))`, without padding.
/// The JSON texts are encoded as given, not checked (tests use that to build
/// malformed tokens). For tests, demos and hosts that issue their own tokens.
/// Returns an empty string only if OpenSSL fails. Throws
/// `std::invalid_argument` (aborts without exceptions) on an empty secret.
///
/// Example:
/// @code
/// std::string t = sluice::jwt_sign("secret", R"({"sub":"alice","exp":1900000000})");
/// @endcode
std::string jwt_sign(std::string_view secret, std::string_view claims_json,
                     std::string_view header_json = R"({"alg":"HS256","typ":"JWT"})");

}  // namespace sluice
