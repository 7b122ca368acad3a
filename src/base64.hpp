// base64url (RFC 4648 section 5) without padding, as JWTs use it. Private to
// the sluice library.
#pragma once

#include <string>
#include <string_view>

namespace sluice::detail {

// Encodes `in` as base64url without '=' padding.
std::string base64url_encode(std::string_view in);

// Decodes canonical base64url without padding into `out` (replaced). Refuses
// '=' and any character outside A-Z a-z 0-9 '-' '_', a length of 4n+1, and
// non-zero unused bits in the last character, so that every byte string has
// exactly one accepted encoding (a flipped bit can never go unnoticed).
bool base64url_decode(std::string_view in, std::string& out);

}  // namespace sluice::detail
