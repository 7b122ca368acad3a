// Fuzz target for the HS256 JWT policy (sluice/auth.hpp, src/jwt.cpp).
//
// Each input is tried three ways: as a whole token; as the payload and
// signature after a valid header segment; and as the claims JSON of a token
// that is correctly signed, so the JSON parser and the claim rules behind the
// signature check are reached too. Whatever the input, verification must not
// crash, must refuse with 401 or accept a principal whose rights are valid
// patterns, and must never repeat the token in its message.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sluice/auth.hpp"

namespace {

constexpr std::string_view secret = "fuzz-secret-0123456789abcdef01234";

void check(const sluice::auth_result& r) {
    if (r.ok()) {
        if (r.who.id.empty() || r.who.anonymous) std::abort();
        for (const auto* rights : {&r.who.subscribe_patterns, &r.who.publish_patterns}) {
            for (const std::string& p : *rights) {
                if (!sluice::check_pattern(p)) std::abort();
                if (p.find("{sub}") != std::string::npos) std::abort();
            }
        }
        return;
    }
    if (r.http_status != 401 || r.error != sluice::errc::unauthorized) std::abort();
    // Refusal messages are short fixed texts: they cannot carry the token.
    if (r.message.empty() || r.message.size() > 64) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const sluice::jwt_policy policy{sluice::jwt_options{std::string(secret), 1 << 16}};
    static const std::string header_segment = [] {
        std::string t = sluice::jwt_sign(secret, "{}");
        return t.substr(0, t.find('.') + 1);
    }();
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    check(policy.verify(input, now));

    const std::string prefixed = header_segment + std::string(input);
    check(policy.verify(prefixed, now));

    if (size <= 8192) {
        const std::string signed_claims = sluice::jwt_sign(secret, input);
        check(policy.verify(signed_claims, now));
        sluice::principal current;
        current.id = "alice";
        check(policy.refresh(current, signed_claims, now));
        const std::string signed_header = sluice::jwt_sign(secret, R"({"sub":"alice"})", input);
        check(policy.verify(signed_header, now));
    }
    return 0;
}
