// The SSE resume token (the `id:` of every block, PROTOCOL.md section 4).
//
// It records, for every exact topic of a stream, the position the client has
// reached: `1.<generation>` then `.<tag>~<epoch>~<offset>` per topic, where the
// tag is a 32-bit hash of the topic so that a reconnection whose URL lists the
// topics in another order, or adds one, still resumes the others. Opaque to
// clients; at most 64 topics × 48 bytes, well under the 4 KiB limit.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::detail {

struct token_position {
    std::uint32_t tag = 0;
    std::string epoch;
    std::uint64_t offset = 0;
};

/// FNV-1a of the topic, the tag of its entry in a token.
std::uint32_t topic_tag(std::string_view topic) noexcept;

/// Appends the token for `positions` to `out`. Entries with an empty epoch
/// (a topic whose position is unknown) are left out.
void append_resume_token(std::string& out, std::string_view generation,
                         const std::vector<token_position>& positions);

/// The positions a token records, or an empty vector when it cannot be read,
/// is longer than 4 KiB, or was written by another hub generation.
std::vector<token_position> parse_resume_token(std::string_view token, std::string_view generation);

}  // namespace sluice::detail
