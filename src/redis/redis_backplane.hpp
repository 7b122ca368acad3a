// The Redis backplane (PROTOCOL.md section 9): several hubs, one cluster.
//
// Keys (P is `redis_options::key_prefix`):
//   P m:<topic>   hash {e: epoch, o: top offset}, TTL hub_options::position_ttl
//   P s:<topic>   stream of the topic's last `history_size` events, entry id
//                 `<offset>-0`, fields e (epoch), t (ts ms), n (event name),
//                 d (data); TTL hub_options::history_ttl
//   P i:<topic>\n<key>  "offset epoch" of the first publish with an
//                 idempotency key, TTL hub_options::idempotency_ttl
// Channels: P events (every event of the cluster), P probe:<hub id> (this
// hub's liveness probes).
//
// A publish is one Lua script (EVALSHA, EVAL on NOSCRIPT): idempotency
// lookup, epoch get-or-set, offset increment, XADD with the offset as id,
// trim and TTLs, PUBLISH, remember the key. Offsets and epochs are therefore
// the same on every hub. A second script reads a topic's position and the
// stream after a given offset, atomically (the "sync").
//
// Per topic this hub follows, it keeps the epoch and the last offset it has
// delivered. A live event with the next offset is delivered; an older or
// repeated one is skipped; a jump (or another epoch) holds the topic: live
// events are buffered while a sync fetches the missing ones from the stream,
// then everything goes out in order. Subscriptions that need Redis (a topic
// not followed yet, or a `since`) hold their topics the same way, and are
// registered (`ready`) when the sync result has been applied, so replay and
// live events meet without gap or duplicate.
//
// Liveness: a probe is published every `probe_interval` on the command
// connection and must come back through the pub/sub connection within
// `probe_timeout`; otherwise both connections are dropped and re-established
// with backoff. When probes come back again, every followed topic is synced.
//
// Thread-safety: everything runs on the hub strand.
#pragma once

#include "backplane.hpp"

#include <sluice/hub.hpp>
#include <sluice/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/strand.hpp>

#include <memory>

namespace sluice::detail {

/// A Redis backplane for the hub whose strand is `strand`.
std::shared_ptr<backplane> make_redis_backplane(asio::strand<asio::any_io_executor> strand,
                                                const redis_options& redis,
                                                const hub_options& options,
                                                backplane_delegate& delegate);

}  // namespace sluice::detail
