// The two Lua scripts of the Redis backplane and their SHA-1 (for EVALSHA).
//
// publish  KEYS: meta, stream, idempotency key (or any key when none)
//          ARGV: channel, topic, data, event name, ts, epoch candidate,
//                history size, history TTL ms, position TTL ms,
//                idempotency TTL ms (0: no key)
//          -> {1, offset, epoch} for a new event, {0, "offset epoch"} for a
//             repeated idempotency key
// sync     KEYS: meta, stream
//          ARGV: local epoch ("" none), local top, since epoch ("" none),
//                since offset, replay limit, epoch candidate, position TTL ms
//          -> {epoch, top, from, entries}: the topic's position and the stream
//             entries after `from` (the lower of the local top, or 0 when the
//             local epoch is stale, and a usable `since`); from = -1: none
//
// Both create the topic's epoch when Redis has none (first use, or the
// position was lost), and drop a stream left from an older epoch.
//
// Thread-safety: immutable after static initialization.
#pragma once

#include <string>

namespace sluice::detail::redis::script {

struct text {
    std::string body;
    std::string sha1;  // lowercase hex
};

extern const text publish;
extern const text sync;

}  // namespace sluice::detail::redis::script
