#include "sluice/auth.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base64.hpp"

namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;
using sluice::action;
using sluice::auth_result;
using sluice::errc;

const std::string secret = "test-secret-0123456789abcdef0123456789";
constexpr std::int64_t t0 = 1'700'000'000;  // 2023-11-14, seconds since the Unix epoch

sys_clock::time_point at_seconds(std::int64_t s) {
    return sys_clock::time_point(std::chrono::seconds(s));
}

std::string sign(std::string_view claims) { return sluice::jwt_sign(secret, claims); }

// Every refusal of the JWT policy: 401 unauthorized, a message that does not
// repeat the token (nor any of its segments).
void require_unauthorized(const auth_result& r, std::string_view token) {
    INFO("message: " << r.message);
    REQUIRE_FALSE(r.ok());
    REQUIRE(r.error == errc::unauthorized);
    REQUIRE(r.http_status == 401);
    REQUIRE_FALSE(r.message.empty());
    std::size_t start = 0;
    while (start <= token.size()) {
        std::size_t end = token.find('.', start);
        if (end == std::string_view::npos) end = token.size();
        std::string_view segment = token.substr(start, end - start);
        if (segment.size() >= 4) REQUIRE(r.message.find(segment) == std::string::npos);
        start = end + 1;
    }
}

std::string b64(std::string_view bytes) { return sluice::detail::base64url_encode(bytes); }

// A token with the given segments joined by '.', signed over the first two.
std::string token_with(std::string_view header_json, std::string_view claims_json) {
    return sluice::jwt_sign(secret, claims_json, header_json);
}

std::vector<std::string> split(const std::string& token) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        std::size_t dot = token.find('.', start);
        parts.push_back(token.substr(start, dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return parts;
}

}  // namespace

TEST_CASE("auth_result factories carry status and code", "[auth]") {
    auto ok = auth_result::allow(sluice::principal{"alice", {"a"}, {}, std::nullopt, false, {}});
    REQUIRE(ok.ok());
    REQUIRE(static_cast<bool>(ok));
    REQUIRE(ok.http_status == 0);
    REQUIRE(ok.who.id == "alice");

    auto u = auth_result::unauthorized("missing token");
    REQUIRE_FALSE(u);
    REQUIRE(u.http_status == 401);
    REQUIRE(u.error == errc::unauthorized);
    REQUIRE(u.message == "missing token");

    auto f = auth_result::forbidden("banned");
    REQUIRE(f.http_status == 403);
    REQUIRE(f.error == errc::forbidden);

    auto l = auth_result::rate_limited(1500ms, "slow down");
    REQUIRE(l.http_status == 429);
    REQUIRE(l.error == errc::rate_limited);
    REQUIRE(l.retry_after == 1500ms);
}

TEST_CASE("bearer_token_from_header", "[auth]") {
    using sluice::bearer_token_from_header;
    REQUIRE(bearer_token_from_header("Bearer abc.def.ghi") == "abc.def.ghi");
    REQUIRE(bearer_token_from_header("bearer  x.y.z ") == "x.y.z");
    REQUIRE(bearer_token_from_header("BEARER\tt") == "t");
    REQUIRE(bearer_token_from_header(" Bearer t") == "t");
    REQUIRE(bearer_token_from_header("Bearer").empty());
    REQUIRE(bearer_token_from_header("Bearer   ").empty());
    REQUIRE(bearer_token_from_header("Bearerx.y.z").empty());
    REQUIRE(bearer_token_from_header("Basic dXNlcjpwYXNz").empty());
    REQUIRE(bearer_token_from_header("").empty());
    static_assert(sluice::bearer_token_from_header("Bearer k") == "k");
}

TEST_CASE("auth_request prefers the bearer token and looks headers up", "[auth]") {
    sluice::auth_request req;
    REQUIRE(req.token().empty());
    REQUIRE(req.header("Cookie").empty());  // no find_header: empty, no crash
    req.query_token = "q";
    REQUIRE(req.token() == "q");
    req.bearer_token = "b";
    REQUIRE(req.token() == "b");
    req.find_header = [](std::string_view name) -> std::string_view {
        return name == "X-Api-Key" ? "k-123" : "";
    };
    REQUIRE(req.header("X-Api-Key") == "k-123");
    REQUIRE(req.header("Cookie").empty());
}

TEST_CASE("principal::allows uses pattern containment", "[auth]") {
    sluice::principal p;
    p.subscribe_patterns = {"country:#", "user:alice:#"};
    p.publish_patterns = {"news:*"};

    REQUIRE(p.allows(action::subscribe, "country:*"));  // country:* inside country:#
    REQUIRE(p.allows(action::subscribe, "country"));
    REQUIRE(p.allows(action::subscribe, "country:42:gdp"));
    REQUIRE(p.allows(action::subscribe, "user:alice:inbox"));
    REQUIRE_FALSE(p.allows(action::subscribe, "#"));  // # only inside #
    REQUIRE_FALSE(p.allows(action::subscribe, "*:#"));
    REQUIRE_FALSE(p.allows(action::subscribe, "user:*:inbox"));
    REQUIRE_FALSE(p.allows(action::subscribe, "user:bob:inbox"));
    REQUIRE_FALSE(p.allows(action::subscribe, "news:1"));  // only a publish right

    REQUIRE(p.allows(action::publish, "news:1"));
    REQUIRE_FALSE(p.allows(action::publish, "news:1:x"));
    REQUIRE_FALSE(p.allows(action::publish, "country:42"));  // only a subscribe right

    // Invalid input is never allowed, even under '#'.
    sluice::principal all;
    all.subscribe_patterns = {"#"};
    REQUIRE(all.allows(action::subscribe, "#"));
    REQUIRE(all.allows(action::subscribe, "a:b:*"));
    REQUIRE_FALSE(all.allows(action::subscribe, ""));
    REQUIRE_FALSE(all.allows(action::subscribe, "a b"));
    REQUIRE_FALSE(all.allows(action::subscribe, "a::b"));
}

TEST_CASE("anonymous_policy without allow_publish", "[auth][anonymous]") {
    sluice::anonymous_policy policy;
    REQUIRE_FALSE(policy.allow_publish());

    sluice::auth_request req;
    req.bearer_token = "not.a.token";  // ignored: everyone is anonymous
    auto r = policy.authenticate(req);
    REQUIRE(r.ok());
    REQUIRE(r.who.anonymous);
    REQUIRE(r.who.id.empty());
    REQUIRE_FALSE(r.who.expires_at.has_value());

    REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "#"));
    REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "prices:AAPL"));
    REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "*:entity:7"));
    REQUIRE(policy.authorize(r.who, action::publish, "prices:AAPL") == errc::forbidden);

    auto refreshed = policy.refresh(r.who, "any.token.at-all");
    REQUIRE(refreshed.error == errc::unauthorized);
    REQUIRE(refreshed.http_status == 401);
}

TEST_CASE("anonymous_policy with allow_publish", "[auth][anonymous]") {
    sluice::anonymous_policy policy{true};
    REQUIRE(policy.allow_publish());
    auto r = policy.authenticate({});
    REQUIRE(r.ok());
    REQUIRE(r.who.anonymous);
    REQUIRE_FALSE(policy.authorize(r.who, action::publish, "prices:AAPL"));
    REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "prices:#"));
    REQUIRE(policy.authorize(r.who, action::publish, "bad topic") == errc::forbidden);
}

TEST_CASE("jwt_policy accepts a valid token", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string token =
        sign(R"({"sub":"alice","exp":1700000600,"subscribe":["user:{sub}:#","country:*"],)"
             R"("publish":["user:{sub}:outbox"]})");
    auto r = policy.verify(token, at_seconds(t0));
    REQUIRE(r.ok());
    REQUIRE(r.http_status == 0);
    REQUIRE(r.message.empty());
    REQUIRE(r.who.id == "alice");
    REQUIRE_FALSE(r.who.anonymous);
    REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"user:alice:#", "country:*"});
    REQUIRE(r.who.publish_patterns == std::vector<std::string>{"user:alice:outbox"});
    REQUIRE(r.who.expires_at == at_seconds(t0 + 600));

    // authenticate() reads the same token from a request.
    sluice::auth_request req;
    req.query_token = token;
    auto a = policy.authenticate(req, at_seconds(t0));
    REQUIRE(a.ok());
    REQUIRE(a.who.id == "alice");
    REQUIRE_FALSE(policy.authorize(a.who, action::subscribe, "user:alice:inbox"));
    REQUIRE_FALSE(policy.authorize(a.who, action::publish, "user:alice:outbox"));
    REQUIRE(policy.authorize(a.who, action::publish, "user:alice:inbox") == errc::forbidden);
}

TEST_CASE("jwt_policy verifies a token signed by another implementation", "[auth][jwt]") {
    // Made with Python 3.11's hmac, hashlib and base64 (header and claims with
    // spaces, members in another order than jwt_sign writes them).
    const std::string kat_secret = "known-answer-secret-0123456789abcdef";
    const std::string kat_token =
        "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9."
        "eyJzdWIiOiAia2F0LXVzZXIiLCAiZXhwIjogNDEwMjQ0NDgwMCwgInN1YnNjcmliZSI6IFsidXNlcjp7c3Vi"
        "fTojIiwgIm5ld3M6KiJdLCAicHVibGlzaCI6IFsidXNlcjp7c3VifTpvdXRib3giXX0."
        "WyWg6bFz8xstAW8CaSBdtUyiuGr4PsFQHCPEgNIgGgw";
    sluice::jwt_policy policy{kat_secret};
    auto r = policy.verify(kat_token, at_seconds(t0));
    REQUIRE(r.ok());
    REQUIRE(r.who.id == "kat-user");
    REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"user:kat-user:#", "news:*"});
    REQUIRE(r.who.publish_patterns == std::vector<std::string>{"user:kat-user:outbox"});
    REQUIRE(r.who.expires_at == at_seconds(4102444800));  // 2100-01-01

    // The same key under another secret is refused.
    require_unauthorized(sluice::jwt_policy{secret}.verify(kat_token, at_seconds(t0)), kat_token);

    // jwt_sign writes exactly what Python writes for the same bytes.
    REQUIRE(sluice::jwt_sign("secret", R"({"sub":"alice"})") ==
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9."
            "c3brGQkxoiCgrl5LGiV0go9qgN0MtrdnDBCCfJ45f_Q");
}

TEST_CASE("jwt_policy refuses a missing or oversized token", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    auto r = policy.authenticate({}, at_seconds(t0));
    require_unauthorized(r, "");
    REQUIRE(r.message == "missing token");

    sluice::jwt_policy small{sluice::jwt_options{secret, 64}};
    const std::string token = sign(R"({"sub":"alice","subscribe":["a:#","b:#","c:#"]})");
    REQUIRE(token.size() > 64);
    require_unauthorized(small.verify(token, at_seconds(t0)), token);
    REQUIRE(policy.verify(token, at_seconds(t0)).ok());
}

TEST_CASE("jwt_policy refuses any flipped bit and a wrong secret", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string token = sign(R"({"sub":"alice","subscribe":["#"]})");
    REQUIRE(policy.verify(token, at_seconds(t0)).ok());

    const std::vector<std::string> parts = split(token);
    REQUIRE(parts.size() == 3);
    int checked = 0;
    for (std::size_t seg = 0; seg < 3; ++seg) {
        // Flip each bit of the decoded segment and encode it again, so the
        // token stays well-formed and only the signature can catch it.
        std::string bytes;
        REQUIRE(sluice::detail::base64url_decode(parts[seg], bytes));
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            for (int bit = 0; bit < 8; ++bit) {
                std::string flipped = bytes;
                flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
                std::vector<std::string> p = parts;
                p[seg] = b64(flipped);
                const std::string bad = p[0] + "." + p[1] + "." + p[2];
                auto r = policy.verify(bad, at_seconds(t0));
                INFO("segment " << seg << " byte " << i << " bit " << bit);
                require_unauthorized(r, bad);
                ++checked;
            }
        }
        // And each bit of the last character of the encoded segment: either
        // a different value or non-canonical base64url.
        for (int bit = 0; bit < 6; ++bit) {
            std::vector<std::string> p = parts;
            std::string& s = p[seg];
            static const std::string alphabet =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            std::size_t v = alphabet.find(s.back());
            s.back() = alphabet[v ^ (std::size_t{1} << bit)];
            const std::string bad = p[0] + "." + p[1] + "." + p[2];
            require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
            ++checked;
        }
    }
    REQUIRE(checked > 8 * 32);

    // Truncated or extended signature.
    require_unauthorized(policy.verify(token.substr(0, token.size() - 2), at_seconds(t0)), token);
    require_unauthorized(
        policy.verify(parts[0] + "." + parts[1] + "." + b64(std::string(33, 'x')), at_seconds(t0)),
        token);
    // Signed with another secret.
    const std::string other =
        sluice::jwt_sign("another-secret-0123456789abcdef0123", R"({"sub":"alice"})");
    require_unauthorized(policy.verify(other, at_seconds(t0)), other);
}

TEST_CASE("jwt_policy accepts only alg HS256", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string claims = R"({"sub":"alice","subscribe":["#"]})";
    REQUIRE(policy.verify(token_with(R"({"alg":"HS256"})", claims), at_seconds(t0)).ok());

    // Correctly HMAC-signed, but announcing something else.
    for (std::string_view header :
         {R"({"alg":"none","typ":"JWT"})", R"({"alg":"HS384","typ":"JWT"})",
          R"({"alg":"RS256","typ":"JWT"})", R"({"alg":"hs256"})", R"({"alg":"HS256 "})",
          R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":["HS256"]})",
          R"({"alg":"HS256","crit":["exp"]})", R"({"alg":"HS256","alg":"HS256"})",
          R"({"alg":"none","alg":"HS256"})"}) {
        const std::string token = token_with(header, claims);
        INFO(header);
        auto r = policy.verify(token, at_seconds(t0));
        require_unauthorized(r, token);
    }

    // The classic "alg":"none" forgery: no signature at all.
    const std::string none = b64(R"({"alg":"none","typ":"JWT"})") + "." + b64(claims) + ".";
    require_unauthorized(policy.verify(none, at_seconds(t0)), none);
    const std::string none_no_dot = b64(R"({"alg":"none"})") + "." + b64(claims);
    require_unauthorized(policy.verify(none_no_dot, at_seconds(t0)), none_no_dot);
}

TEST_CASE("jwt_policy refuses malformed tokens", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string good = sign(R"({"sub":"alice"})");
    const auto parts = split(good);
    const std::string h = parts[0], p = parts[1], s = parts[2];
    REQUIRE(policy.verify(h + "." + p + "." + s, at_seconds(t0)).ok());

    SECTION("wrong segment counts") {
        for (const std::string& bad :
             {h, h + "." + p, h + "." + p + "." + s + "." + s, h + "." + p + "." + s + ".",
              "." + h + "." + p + "." + s, h + ".." + s, std::string(".."), std::string("."),
              std::string("a.b.c.d.e")}) {
            require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
        }
    }
    SECTION("bad base64url") {
        for (const std::string& bad : {
                 h + "." + p + "." + s + "=",      // padding
                 h + "=." + p + "." + s,           // padding
                 h + "." + p + "." + s.substr(1),  // a shorter signature
                 h + "." + p + "+." + s,           // base64 (not url) alphabet
                 h + "." + p + "/." + s,           //
                 h + "." + p + " ." + s,           // whitespace
                 h + "\n." + p + "." + s,          //
                 h + "." + p + "." + s + "\x80",   // non-ASCII
                 h + "." + p + std::string(1, '\0') + "." + s,
             }) {
            require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
        }
        // A segment whose length is 4n+1 can never be base64.
        std::string five = "AAAAA";
        const std::string bad = five + "." + p + "." + s;
        require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
    }
    SECTION("header or payload not a JSON object, though signed") {
        for (auto [header, claims] : std::vector<std::pair<std::string, std::string>>{
                 {"not json", R"({"sub":"alice"})"},
                 {R"(["alg","HS256"])", R"({"sub":"alice"})"},
                 {R"("HS256")", R"({"sub":"alice"})"},
                 {"", R"({"sub":"alice"})"},
                 {R"({"alg":"HS256"})", "not json"},
                 {R"({"alg":"HS256"})", ""},
                 {R"({"alg":"HS256"})", R"(["sub","alice"])"},
                 {R"({"alg":"HS256"})", R"("alice")"},
                 {R"({"alg":"HS256"})", "42"},
                 {R"({"alg":"HS256"})", "null"},
                 {R"({"alg":"HS256"})", R"({"sub":"alice"} x)"},   // trailing garbage
                 {R"({"alg":"HS256"})", R"({"sub":"alice"},{})"},  // two values
                 {R"({"alg":"HS256"})", R"({"sub":"alice")"},      // truncated
                 {R"({"alg":"HS256"})", std::string(R"({"sub":"alice"})") + '\0' + "junk"},
                 {R"({"alg":"HS256"})", R"({"sub":"alice","sub":"bob"})"},  // duplicate
                 {R"({"alg":"HS256"})",
                  "{\"sub\":\"al\xff"
                  "ice\"}"},                                     // invalid UTF-8
                 {R"({"alg":"HS256"})", R"({"sub":"alice",})"},  // trailing comma
             }) {
            const std::string token = token_with(header, claims);
            INFO(header << " / " << claims);
            require_unauthorized(policy.verify(token, at_seconds(t0)), token);
        }
    }
    SECTION("deep nesting is refused without exhausting the stack") {
        std::string claims = R"({"sub":"alice","x":)";
        claims += std::string(6000, '[');
        claims += std::string(6000, ']');
        claims += "}";
        sluice::jwt_policy big{sluice::jwt_options{secret, 1 << 20}};
        const std::string token = token_with(R"({"alg":"HS256"})", claims);
        REQUIRE(big.verify(token, at_seconds(t0)).ok());  // valid JSON, ignored claim
        claims.pop_back();
        const std::string broken = token_with(R"({"alg":"HS256"})", claims);
        require_unauthorized(big.verify(broken, at_seconds(t0)), broken);
    }
}

TEST_CASE("jwt_policy exp: expired at exp, no leeway", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string token = sign(R"({"sub":"alice","exp":1700000000})");

    auto before = policy.verify(token, at_seconds(t0) - 1ms);
    REQUIRE(before.ok());
    REQUIRE(before.who.expires_at == at_seconds(t0));
    REQUIRE(policy.verify(token, at_seconds(t0) - 1ns).ok());

    auto at = policy.verify(token, at_seconds(t0));
    require_unauthorized(at, token);
    REQUIRE(at.message == "token expired");
    require_unauthorized(policy.verify(token, at_seconds(t0) + 1ms), token);
    require_unauthorized(policy.verify(token, at_seconds(t0 + 3600)), token);

    SECTION("fractional exp, compared in milliseconds") {
        const std::string frac = sign(R"({"sub":"alice","exp":1700000000.5})");
        auto r = policy.verify(frac, at_seconds(t0) + 499ms);
        REQUIRE(r.ok());
        REQUIRE(r.who.expires_at == at_seconds(t0) + 500ms);
        require_unauthorized(policy.verify(frac, at_seconds(t0) + 500ms), frac);
        const std::string exp_notation = sign(R"({"sub":"alice","exp":1.7e9})");
        REQUIRE(policy.verify(exp_notation, at_seconds(t0) - 1ms).ok());
        require_unauthorized(policy.verify(exp_notation, at_seconds(t0)), exp_notation);
    }
    SECTION("exp must be a number") {
        for (std::string_view claims :
             {R"({"sub":"alice","exp":"1800000000"})", R"({"sub":"alice","exp":true})",
              R"({"sub":"alice","exp":null})", R"({"sub":"alice","exp":{}})",
              R"({"sub":"alice","exp":[1800000000]})"}) {
            const std::string bad = sign(claims);
            auto r = policy.verify(bad, at_seconds(t0));
            require_unauthorized(r, bad);
            REQUIRE(r.message == "token exp is not a number");
        }
    }
    SECTION("far-future and negative exp") {
        for (std::string_view claims :
             {R"({"sub":"alice","exp":1e300})", R"({"sub":"alice","exp":99999999999999999999})",
              R"({"sub":"alice","exp":9223372036854775807})",
              R"({"sub":"alice","exp":9999999999})"}) {
            INFO(claims);
            auto r = policy.verify(sign(claims), at_seconds(t0));
            REQUIRE(r.ok());
            REQUIRE(r.who.expires_at.has_value());
            REQUIRE(*r.who.expires_at > at_seconds(t0) + 24h * 365 * 200);
            // A server may add its grace period without overflow.
            REQUIRE(*r.who.expires_at + 25s > *r.who.expires_at);
        }
        for (std::string_view claims :
             {R"({"sub":"alice","exp":-1})", R"({"sub":"alice","exp":-1e300})",
              R"({"sub":"alice","exp":0})"}) {
            const std::string bad = sign(claims);
            require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
        }
    }
}

TEST_CASE("jwt_policy nbf: valid from nbf on", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string token = sign(R"({"sub":"alice","nbf":1700000000,"exp":1700000060})");
    auto early = policy.verify(token, at_seconds(t0) - 1ms);
    require_unauthorized(early, token);
    REQUIRE(early.message == "token not yet valid");
    REQUIRE(policy.verify(token, at_seconds(t0)).ok());
    REQUIRE(policy.verify(token, at_seconds(t0 + 59)).ok());
    require_unauthorized(policy.verify(token, at_seconds(t0 + 60)), token);

    for (std::string_view claims : {R"({"sub":"alice","nbf":"0"})", R"({"sub":"alice","nbf":null})",
                                    R"({"sub":"alice","nbf":false})"}) {
        const std::string bad = sign(claims);
        require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
    }
    REQUIRE(policy.verify(sign(R"({"sub":"alice","nbf":-5})"), at_seconds(t0)).ok());
}

TEST_CASE("jwt_policy: a token without exp never expires", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string token = sign(R"({"sub":"alice"})");
    for (auto now : {at_seconds(0), at_seconds(t0), at_seconds(4102444800) /* 2100 */,
                     at_seconds(t0) + 24h * 365 * 150}) {
        auto r = policy.verify(token, now);
        REQUIRE(r.ok());
        REQUIRE_FALSE(r.who.expires_at.has_value());
    }
}

TEST_CASE("jwt_policy requires a non-empty string sub", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    for (std::string_view claims :
         {R"({})", R"({"subscribe":["#"]})", R"({"sub":""})", R"({"sub":42})", R"({"sub":null})",
          R"({"sub":["alice"]})", R"({"sub":{"id":"alice"}})", R"({"sub":true})",
          R"({"Sub":"alice"})"}) {
        const std::string bad = sign(claims);
        INFO(claims);
        auto r = policy.verify(bad, at_seconds(t0));
        require_unauthorized(r, bad);
        REQUIRE(r.message == "token sub is missing or not a non-empty string");
    }
    // Any non-empty string names the principal, even one that is no topic segment.
    auto r = policy.verify(sign(R"({"sub":"x y"})"), at_seconds(t0));
    REQUIRE(r.ok());
    REQUIRE(r.who.id == "x y");
}

TEST_CASE("jwt_policy subscribe and publish claims", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};

    SECTION("absent claims grant nothing") {
        auto r = policy.verify(sign(R"({"sub":"alice"})"), at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE(r.who.subscribe_patterns.empty());
        REQUIRE(r.who.publish_patterns.empty());
        REQUIRE(policy.authorize(r.who, action::subscribe, "a") == errc::forbidden);
        REQUIRE(policy.authorize(r.who, action::publish, "a") == errc::forbidden);
    }
    SECTION("claims of the wrong type make the token invalid") {
        for (std::string_view claims :
             {R"({"sub":"alice","subscribe":"#"})", R"({"sub":"alice","subscribe":null})",
              R"({"sub":"alice","subscribe":{"0":"#"}})", R"({"sub":"alice","subscribe":["a",1]})",
              R"({"sub":"alice","subscribe":[["#"]]})", R"({"sub":"alice","publish":"#"})",
              R"({"sub":"alice","publish":["a",null]})"}) {
            const std::string bad = sign(claims);
            INFO(claims);
            require_unauthorized(policy.verify(bad, at_seconds(t0)), bad);
        }
    }
    SECTION("invalid patterns are dropped, the rest kept") {
        auto r =
            policy.verify(sign(R"({"sub":"alice","subscribe":["bad topic","a:#:b","","x*","ok:*",)"
                               R"("{SUB}:#","user:{sub","a::b","#"],"publish":["p:#","p q"]})"),
                          at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"ok:*", "#"});
        REQUIRE(r.who.publish_patterns == std::vector<std::string>{"p:#"});
    }
    SECTION("the publish claim alone decides who may publish") {
        auto r = policy.verify(sign(R"({"sub":"alice","subscribe":["#"],"publish":["news:*"]})"),
                               at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE_FALSE(policy.authorize(r.who, action::publish, "news:1"));
        REQUIRE(policy.authorize(r.who, action::publish, "news:1:x") == errc::forbidden);
        REQUIRE(policy.authorize(r.who, action::publish, "sports:1") == errc::forbidden);
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "sports:1"));

        auto sub_only = policy.verify(sign(R"({"sub":"bob","subscribe":["#"]})"), at_seconds(t0));
        REQUIRE(sub_only.ok());
        REQUIRE(policy.authorize(sub_only.who, action::publish, "news:1") == errc::forbidden);

        auto pub_only = policy.verify(sign(R"({"sub":"carol","publish":["#"]})"), at_seconds(t0));
        REQUIRE(pub_only.ok());
        REQUIRE_FALSE(policy.authorize(pub_only.who, action::publish, "news:1"));
        REQUIRE(policy.authorize(pub_only.who, action::subscribe, "news:1") == errc::forbidden);
    }
    SECTION("authorization follows pattern containment") {
        auto r = policy.verify(sign(R"({"sub":"alice","subscribe":["country:#","user:{sub}:#"]})"),
                               at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "country:*"));
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "country:42"));
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "user:alice:inbox"));
        REQUIRE(policy.authorize(r.who, action::subscribe, "#") == errc::forbidden);
        REQUIRE(policy.authorize(r.who, action::subscribe, "user:*:inbox") == errc::forbidden);
        REQUIRE(policy.authorize(r.who, action::subscribe, "user:bob:inbox") == errc::forbidden);

        auto all = policy.verify(sign(R"({"sub":"root","subscribe":["#"]})"), at_seconds(t0));
        REQUIRE_FALSE(policy.authorize(all.who, action::subscribe, "#"));
        REQUIRE_FALSE(policy.authorize(all.who, action::subscribe, "user:*:inbox"));
    }
}

TEST_CASE("jwt_policy {sub} substitution", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string rights =
        R"("subscribe":["user:{sub}:#","room:{sub}-{sub}:*","inbox-{sub}","public:#"],)"
        R"("publish":["user:{sub}:outbox"])";

    SECTION("a sub that is a topic segment is substituted everywhere") {
        auto r = policy.verify(sign(R"({"sub":"a.b-c_d@e=f+9",)" + rights + "}"), at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE(r.who.subscribe_patterns ==
                std::vector<std::string>{"user:a.b-c_d@e=f+9:#",
                                         "room:a.b-c_d@e=f+9-a.b-c_d@e=f+9:*",
                                         "inbox-a.b-c_d@e=f+9", "public:#"});
        REQUIRE(r.who.publish_patterns == std::vector<std::string>{"user:a.b-c_d@e=f+9:outbox"});
    }
    SECTION("any other sub drops every pattern with {sub}") {
        for (std::string_view sub : {"a:#", "*", "#", "x y", "a:b", "alice:*", "{sub}",
                                     "al\\u0000ice", "\\u00e9l\\u00e8ve", "a/b", "a\\nb"}) {
            const std::string claims =
                std::string(R"({"sub":")") + std::string(sub) + "\"," + rights + "}";
            INFO(claims);
            auto r = policy.verify(sign(claims), at_seconds(t0));
            REQUIRE(r.ok());
            REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"public:#"});
            REQUIRE(r.who.publish_patterns.empty());
        }
    }
    SECTION("a malicious sub cannot widen its rights") {
        auto r = policy.verify(sign(R"({"sub":"a:#","subscribe":["user:{sub}"],)"
                                    R"("publish":["user:{sub}"]})"),
                               at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE(r.who.id == "a:#");
        for (std::string_view topic : {"user:a:#", "user:a:b", "user:a", "user:#", "user:*"}) {
            REQUIRE(policy.authorize(r.who, action::subscribe, topic) == errc::forbidden);
            REQUIRE(policy.authorize(r.who, action::publish, topic) == errc::forbidden);
        }
        auto star =
            policy.verify(sign(R"({"sub":"*","subscribe":["user:{sub}:inbox"]})"), at_seconds(t0));
        REQUIRE(star.ok());
        REQUIRE(policy.authorize(star.who, action::subscribe, "user:bob:inbox") == errc::forbidden);
        REQUIRE(policy.authorize(star.who, action::subscribe, "user:*:inbox") == errc::forbidden);
    }
    SECTION("a substitution that makes the pattern too long is dropped") {
        const std::string long_sub(195, 'x');  // "user:" + 195 + ":#" > 200 bytes
        auto r = policy.verify(
            sign(R"({"sub":")" + long_sub + R"(","subscribe":["user:{sub}:#","u:{sub}"]})"),
            at_seconds(t0));
        REQUIRE(r.ok());
        REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"u:" + long_sub});
    }
}

TEST_CASE("jwt_policy: the bearer token wins over the query token", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    const std::string alice = sign(R"({"sub":"alice"})");
    const std::string bob = sign(R"({"sub":"bob"})");

    sluice::auth_request req;
    req.bearer_token = alice;
    req.query_token = bob;
    auto r = policy.authenticate(req, at_seconds(t0));
    REQUIRE(r.ok());
    REQUIRE(r.who.id == "alice");

    // No fallback to the query token when the header's token is bad.
    const std::string broken =
        alice.substr(0, alice.size() - 1) + (alice.back() == 'A' ? "B" : "A");
    req.bearer_token = broken;
    require_unauthorized(policy.authenticate(req, at_seconds(t0)), broken);

    req.bearer_token = {};
    r = policy.authenticate(req, at_seconds(t0));
    REQUIRE(r.ok());
    REQUIRE(r.who.id == "bob");

    req.query_token = {};
    require_unauthorized(policy.authenticate(req, at_seconds(t0)), "");
}

TEST_CASE("jwt_policy refresh", "[auth][jwt]") {
    sluice::jwt_policy policy{secret};
    auto first = policy.verify(
        sign(R"({"sub":"alice","exp":1700000060,"subscribe":["a:#"],"publish":["a:x"]})"),
        at_seconds(t0));
    REQUIRE(first.ok());
    const sluice::principal current = first.who;

    SECTION("a valid token for the same sub replaces expiry and rights") {
        auto r =
            policy.refresh(current, sign(R"({"sub":"alice","exp":1700003600,"subscribe":["b:#"]})"),
                           at_seconds(t0 + 30));
        REQUIRE(r.ok());
        REQUIRE(r.who.id == "alice");
        REQUIRE(r.who.expires_at == at_seconds(t0 + 3600));
        REQUIRE(r.who.subscribe_patterns == std::vector<std::string>{"b:#"});
        REQUIRE(r.who.publish_patterns.empty());
        REQUIRE(policy.authorize(r.who, action::subscribe, "a:1") == errc::forbidden);
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "b:1"));
    }
    SECTION("a token without exp makes the connection not expire") {
        auto r = policy.refresh(current, sign(R"({"sub":"alice"})"), at_seconds(t0 + 30));
        REQUIRE(r.ok());
        REQUIRE_FALSE(r.who.expires_at.has_value());
    }
    SECTION("a token for another sub is refused") {
        const std::string bob = sign(R"({"sub":"bob","exp":1700003600,"subscribe":["#"]})");
        auto r = policy.refresh(current, bob, at_seconds(t0 + 30));
        require_unauthorized(r, bob);
        REQUIRE(r.message == "token names another principal");
    }
    SECTION("bad, expired or missing tokens are refused") {
        const std::string expired = sign(R"({"sub":"alice","exp":1700000010})");
        require_unauthorized(policy.refresh(current, expired, at_seconds(t0 + 30)), expired);
        const std::string forged =
            sluice::jwt_sign("wrong-secret-0123456789abcdef0123456", R"({"sub":"alice"})");
        require_unauthorized(policy.refresh(current, forged, at_seconds(t0 + 30)), forged);
        require_unauthorized(policy.refresh(current, "", at_seconds(t0 + 30)), "");
        require_unauthorized(policy.refresh(current, "garbage", at_seconds(t0 + 30)), "garbage");
    }
}

TEST_CASE("jwt_policy and jwt_sign refuse an empty secret", "[auth][jwt]") {
    REQUIRE_THROWS_AS(sluice::jwt_policy{std::string{}}, std::invalid_argument);
    REQUIRE_THROWS_AS(sluice::jwt_policy(sluice::jwt_options{secret, 0}), std::invalid_argument);
    REQUIRE_THROWS_AS(sluice::jwt_sign("", "{}"), std::invalid_argument);
    sluice::jwt_policy policy{sluice::jwt_options{secret, 100}};
    REQUIRE(policy.options().secret == secret);
    REQUIRE(policy.options().max_token_bytes == 100);
}

TEST_CASE("callback_policy", "[auth][callback]") {
    REQUIRE_THROWS_AS(sluice::callback_policy{sluice::authenticator{}}, std::invalid_argument);

    auto authenticate = [](const sluice::auth_request& req) {
        if (req.token().empty()) return auth_result::unauthorized("no key");
        if (req.token() == "banned") return auth_result::forbidden("banned");
        if (req.token() == "busy") return auth_result::rate_limited(2s, "busy");
        sluice::principal p;
        p.id = std::string(req.token());
        p.subscribe_patterns = {"feed:#"};
        return auth_result::allow(std::move(p));
    };

    SECTION("default authorization uses the principal's rights") {
        sluice::callback_policy policy{authenticate};
        sluice::auth_request req;
        req.query_token = "alice";
        auto r = policy.authenticate(req);
        REQUIRE(r.ok());
        REQUIRE(r.who.id == "alice");
        REQUIRE_FALSE(policy.authorize(r.who, action::subscribe, "feed:1"));
        REQUIRE(policy.authorize(r.who, action::publish, "feed:1") == errc::forbidden);

        req.query_token = "banned";
        REQUIRE(policy.authenticate(req).http_status == 403);
        req.query_token = "busy";
        auto busy = policy.authenticate(req);
        REQUIRE(busy.http_status == 429);
        REQUIRE(busy.retry_after == 2s);
        req.query_token = {};
        REQUIRE(policy.authenticate(req).http_status == 401);
    }
    SECTION("a custom authorizer decides") {
        sluice::callback_policy policy{
            authenticate,
            [](const sluice::principal& who, action a, std::string_view topic) -> std::error_code {
                if (a == action::publish && topic == "chat:" + who.id) return {};
                return errc::forbidden;
            }};
        auto r = policy.authenticate(sluice::auth_request{"bob", {}, {}, {}, {}, {}});
        REQUIRE(r.ok());
        REQUIRE_FALSE(policy.authorize(r.who, action::publish, "chat:bob"));
        REQUIRE(policy.authorize(r.who, action::publish, "chat:eve") == errc::forbidden);
        REQUIRE(policy.authorize(r.who, action::subscribe, "feed:1") == errc::forbidden);
    }
    SECTION("refresh runs the authenticator and keeps the principal") {
        sluice::callback_policy policy{authenticate};
        auto r = policy.authenticate(sluice::auth_request{"bob", {}, {}, {}, {}, {}});
        REQUIRE(policy.refresh(r.who, "bob").ok());
        auto other = policy.refresh(r.who, "eve");
        REQUIRE(other.error == errc::unauthorized);
        REQUIRE(policy.refresh(r.who, "").error == errc::unauthorized);
        REQUIRE(policy.refresh(r.who, "banned").error == errc::forbidden);
    }
}

// The snippet of docs/auth.md ("Plugging in your own policy"); keep the two
// identical.
// snippet: auth
class api_key_policy final : public sluice::auth_policy {
protected:
    // Accepts one API key from a header; the key's holder may read `metrics:#`
    // and publish to `jobs:*`.
    sluice::auth_result do_authenticate(const sluice::auth_request& req,
                                        time_point /*now*/) const override {
        if (req.header("X-Api-Key") != "k-123") {
            return sluice::auth_result::unauthorized("bad API key");  // never echo the key
        }
        sluice::principal p;
        p.id = "batch-service";
        p.subscribe_patterns = {"metrics:#"};
        p.publish_patterns = {"jobs:*"};
        return sluice::auth_result::allow(std::move(p));
    }
    // do_authorize: the default (pattern containment) is kept.
    // do_refresh: the default refuses refreshes (no expiring tokens here).
};

std::shared_ptr<const sluice::auth_policy> make_policy(const std::string& jwt_secret,
                                                       bool allow_publish, bool use_api_keys) {
    if (use_api_keys) return std::make_shared<api_key_policy>();
    if (jwt_secret.empty()) return std::make_shared<sluice::anonymous_policy>(allow_publish);
    return std::make_shared<sluice::jwt_policy>(jwt_secret);
}
// end snippet

TEST_CASE("docs/auth.md snippet: a host policy", "[auth][docs]") {
    auto policy = make_policy("", false, true);
    sluice::auth_request req;
    req.find_header = [](std::string_view name) -> std::string_view {
        return name == "X-Api-Key" ? "k-123" : "";
    };
    auto r = policy->authenticate(req);
    REQUIRE(r.ok());
    REQUIRE(r.who.id == "batch-service");
    REQUIRE_FALSE(policy->authorize(r.who, action::subscribe, "metrics:cpu:0"));
    REQUIRE_FALSE(policy->authorize(r.who, action::publish, "jobs:42"));
    REQUIRE(policy->authorize(r.who, action::publish, "metrics:cpu") == errc::forbidden);
    REQUIRE(policy->refresh(r.who, "x").error == errc::unauthorized);

    req.find_header = {};
    REQUIRE(policy->authenticate(req).http_status == 401);

    auto anonymous = make_policy("", false, false);
    REQUIRE(anonymous->authenticate({}).who.anonymous);
    auto jwt = make_policy(secret, false, false);
    sluice::auth_request with_token;
    const std::string token = sign(R"({"sub":"alice"})");
    with_token.bearer_token = token;
    REQUIRE(jwt->authenticate(with_token).who.id == "alice");
}

TEST_CASE("base64url encoding round-trips and decoding is strict", "[auth][base64]") {
    using sluice::detail::base64url_decode;
    using sluice::detail::base64url_encode;
    REQUIRE(base64url_encode("") == "");
    REQUIRE(base64url_encode("f") == "Zg");
    REQUIRE(base64url_encode("fo") == "Zm8");
    REQUIRE(base64url_encode("foo") == "Zm9v");
    REQUIRE(base64url_encode("foob") == "Zm9vYg");
    REQUIRE(base64url_encode("\xfb\xff") == "-_8");

    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += (n < 10 ? 1 : 37)) {
        std::string in = all.substr(all.size() - n);
        std::string out = "stale";
        REQUIRE(base64url_decode(base64url_encode(in), out));
        REQUIRE(out == in);
    }

    std::string out;
    REQUIRE(base64url_decode("", out));
    REQUIRE(out.empty());
    REQUIRE_FALSE(base64url_decode("Zg==", out));  // padding
    REQUIRE_FALSE(base64url_decode("Z", out));     // 4n+1
    REQUIRE_FALSE(base64url_decode("Zh", out));    // non-zero unused bits
    REQUIRE_FALSE(base64url_decode("Zm9", out));   // non-zero unused bits
    REQUIRE_FALSE(base64url_decode("+/8", out));   // standard alphabet
    REQUIRE_FALSE(base64url_decode("Zm 9v", out));
    REQUIRE(base64url_decode("Zm8", out));
    REQUIRE(out == "fo");
}
