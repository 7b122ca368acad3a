// The HS256 JWT policy of PROTOCOL.md section 6 and `jwt_sign`. OpenSSL is
// used here only, so that sluice/auth.hpp stays free of it.
#include "sluice/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

// RapidJSON 1.1.0's internal Stack adds to a null pointer on the first push of
// every parse (fixed upstream after 1.1.0); Clang's UBSan reports that as
// pointer-overflow and the fuzz build makes it fatal. Exempt RapidJSON's
// functions from that one check only. The standard headers RapidJSON uses
// come first so that the attribute does not reach their functions.
#include <cassert>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("pointer-overflow"))), apply_to = function)
#endif
#include <rapidjson/document.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif

#include <algorithm>
#include <climits>
#include <string_view>
#include <vector>

#include "base64.hpp"
#include "sluice/detail/throw.hpp"

namespace sluice {
namespace {

constexpr std::size_t mac_bytes = 32;

bool hmac_sha256(std::string_view key, std::string_view data, unsigned char (&out)[mac_bytes]) {
    // OpenSSL wants non-null pointers even for empty input.
    static const unsigned char empty = 0;
    if (key.size() > static_cast<std::size_t>(INT_MAX)) return false;
    const void* k = key.empty() ? static_cast<const void*>(&empty) : key.data();
    const unsigned char* d =
        data.empty() ? &empty : reinterpret_cast<const unsigned char*>(data.data());
    unsigned int len = 0;
    return HMAC(EVP_sha256(), k, static_cast<int>(key.size()), d, data.size(), out, &len) !=
               nullptr &&
           len == mac_bytes;
}

// Parses a JSON object, refusing what RapidJSON would otherwise let through:
// bytes after a NUL (it stops there) and duplicate member names (which a
// different parser could resolve differently).
bool parse_object(const std::string& json, rapidjson::Document& doc) {
    if (json.find('\0') != std::string::npos) return false;
    // Iterative parsing: nesting depth cannot exhaust the stack.
    doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(json.data(),
                                                                                      json.size());
    if (doc.HasParseError() || !doc.IsObject()) return false;
    std::vector<std::string_view> names;
    names.reserve(doc.MemberCount());
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
        names.emplace_back(it->name.GetString(), it->name.GetStringLength());
    }
    std::sort(names.begin(), names.end());
    return std::adjacent_find(names.begin(), names.end()) == names.end();
}

// Claim times are kept within a year of what system_clock can represent, so a
// server may add its grace period to `expires_at` without overflow (with
// libstdc++ that caps them at about the year 2261).
std::int64_t time_limit_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::duration::max()).count() -
           duration_cast<milliseconds>(hours(24 * 366)).count();
}

enum class claim { absent, ok, bad };

// A NumericDate claim (seconds since the Unix epoch, fractions allowed) in
// milliseconds, rounded down and clamped to time_limit_ms().
claim read_time_ms(const rapidjson::Document& doc, const char* name, std::int64_t& ms) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return claim::absent;
    const rapidjson::Value& v = it->value;
    const std::int64_t limit = time_limit_ms();
    if (v.IsInt64()) {
        const std::int64_t limit_s = limit / 1000;
        ms = std::clamp(v.GetInt64(), -limit_s, limit_s) * 1000;
    } else if (v.IsUint64()) {
        ms = limit;  // above INT64_MAX seconds
    } else if (v.IsDouble()) {
        double d = v.GetDouble();
        if (!std::isfinite(d)) return claim::bad;
        double m = std::floor(d * 1000.0);
        if (m >= static_cast<double>(limit)) {
            ms = limit;
        } else if (m <= -static_cast<double>(limit)) {
            ms = -limit;
        } else {
            ms = static_cast<std::int64_t>(m);
        }
    } else {
        return claim::bad;
    }
    return claim::ok;
}

std::string replace_all(std::string_view text, std::string_view what, std::string_view with) {
    std::string out;
    for (;;) {
        std::size_t at = text.find(what);
        if (at == std::string_view::npos) break;
        out.append(text.substr(0, at));
        out.append(with);
        text.remove_prefix(at + what.size());
    }
    out.append(text);
    return out;
}

// Reads the pattern array `name` into `out` with `{sub}` replaced. False when
// the claim is present but not an array of strings.
bool read_patterns(const rapidjson::Document& doc, const char* name, std::string_view sub,
                   bool sub_is_segment, std::vector<std::string>& out) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return true;
    if (!it->value.IsArray()) return false;
    for (const rapidjson::Value& e : it->value.GetArray()) {
        if (!e.IsString()) return false;
        std::string_view raw(e.GetString(), e.GetStringLength());
        std::string pattern;
        if (raw.find("{sub}") != std::string_view::npos) {
            if (!sub_is_segment) continue;
            pattern = replace_all(raw, "{sub}", sub);
        } else {
            pattern.assign(raw);
        }
        if (!check_pattern(pattern)) continue;
        out.push_back(std::move(pattern));
    }
    return true;
}

bool is_topic_segment(std::string_view s) noexcept {
    return check_topic(s).ok() && s.find(':') == std::string_view::npos;
}

}  // namespace

jwt_policy::jwt_policy(std::string secret) : jwt_policy(jwt_options{std::move(secret)}) {}

jwt_policy::jwt_policy(jwt_options options) : options_(std::move(options)) {
    if (options_.secret.empty()) detail::throw_invalid_argument("jwt_policy: empty secret");
    if (options_.max_token_bytes == 0) {
        detail::throw_invalid_argument("jwt_policy: max_token_bytes is 0");
    }
}

jwt_policy::~jwt_policy() { OPENSSL_cleanse(options_.secret.data(), options_.secret.size()); }

auth_result jwt_policy::verify(std::string_view token, time_point now) const {
    if (token.empty()) return auth_result::unauthorized("missing token");
    if (token.size() > options_.max_token_bytes) return auth_result::unauthorized("token too long");

    const std::size_t dot1 = token.find('.');
    const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        return auth_result::unauthorized("malformed token: not three segments");
    }
    std::string header, payload, signature;
    if (!detail::base64url_decode(token.substr(0, dot1), header) ||
        !detail::base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), payload) ||
        !detail::base64url_decode(token.substr(dot2 + 1), signature)) {
        return auth_result::unauthorized("malformed token: bad base64url");
    }

    // The signature first: no JSON parser sees bytes the secret did not sign.
    unsigned char mac[mac_bytes];
    if (!hmac_sha256(options_.secret, token.substr(0, dot2), mac)) {
        return auth_result::unauthorized("cannot check the token signature");
    }
    if (signature.size() != mac_bytes || CRYPTO_memcmp(mac, signature.data(), mac_bytes) != 0) {
        return auth_result::unauthorized("bad token signature");
    }

    rapidjson::Document head;
    if (!parse_object(header, head)) {
        return auth_result::unauthorized("malformed token: header is not a JSON object");
    }
    auto alg = head.FindMember("alg");
    if (alg == head.MemberEnd() || !alg->value.IsString() ||
        std::string_view(alg->value.GetString(), alg->value.GetStringLength()) != "HS256") {
        return auth_result::unauthorized("unsupported token alg (only HS256)");
    }
    if (head.HasMember("crit")) return auth_result::unauthorized("unsupported token crit header");

    rapidjson::Document claims;
    if (!parse_object(payload, claims)) {
        return auth_result::unauthorized("malformed token: payload is not a JSON object");
    }

    using std::chrono::milliseconds;
    const std::int64_t now_ms = std::chrono::floor<milliseconds>(now.time_since_epoch()).count();
    std::int64_t exp_ms = 0;
    const claim exp = read_time_ms(claims, "exp", exp_ms);
    if (exp == claim::bad) return auth_result::unauthorized("token exp is not a number");
    if (exp == claim::ok && now_ms >= exp_ms) return auth_result::unauthorized("token expired");
    std::int64_t nbf_ms = 0;
    const claim nbf = read_time_ms(claims, "nbf", nbf_ms);
    if (nbf == claim::bad) return auth_result::unauthorized("token nbf is not a number");
    if (nbf == claim::ok && now_ms < nbf_ms)
        return auth_result::unauthorized("token not yet valid");

    auto sub = claims.FindMember("sub");
    if (sub == claims.MemberEnd() || !sub->value.IsString() || sub->value.GetStringLength() == 0) {
        return auth_result::unauthorized("token sub is missing or not a non-empty string");
    }

    principal p;
    p.id.assign(sub->value.GetString(), sub->value.GetStringLength());
    const bool sub_is_segment = is_topic_segment(p.id);
    if (!read_patterns(claims, "subscribe", p.id, sub_is_segment, p.subscribe_patterns)) {
        return auth_result::unauthorized("token subscribe claim is not an array of strings");
    }
    if (!read_patterns(claims, "publish", p.id, sub_is_segment, p.publish_patterns)) {
        return auth_result::unauthorized("token publish claim is not an array of strings");
    }
    if (exp == claim::ok) {
        p.expires_at =
            time_point(std::chrono::duration_cast<time_point::duration>(milliseconds(exp_ms)));
    }
    return auth_result::allow(std::move(p));
}

auth_result jwt_policy::do_authenticate(const auth_request& request, time_point now) const {
    return verify(request.token(), now);
}

auth_result jwt_policy::do_refresh(const principal& current, std::string_view token,
                                   time_point now) const {
    auth_result r = verify(token, now);
    if (r && r.who.id != current.id) {
        return auth_result::unauthorized("token names another principal");
    }
    return r;
}

std::string jwt_sign(std::string_view secret, std::string_view claims_json,
                     std::string_view header_json) {
    if (secret.empty()) detail::throw_invalid_argument("jwt_sign: empty secret");
    std::string token = detail::base64url_encode(header_json);
    token += '.';
    token += detail::base64url_encode(claims_json);
    unsigned char mac[mac_bytes];
    if (!hmac_sha256(secret, token, mac)) return {};
    token += '.';
    token +=
        detail::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_bytes));
    return token;
}

}  // namespace sluice
