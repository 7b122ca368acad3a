// The seam between the hub and a cluster backplane (PROTOCOL.md section 9).
//
// The in-memory hub has none: it assigns offsets with its own `history`. A
// hub with a backplane hands every publish to it and delivers to its local
// subscribers only what the backplane gives back through `deliver`, in offset
// order per topic, so that every hub of the cluster sees the same sequence.
//
// Gap-free registration: `subscribe` completes by calling `ready` at the one
// point where the new subscriptions must enter the router: everything before
// `position` has been delivered to the existing subscribers, and the next
// `deliver` for that topic has offset `position.offset + 1`.
//
// Thread-safety: every member is called on the hub strand, and every callback
// (`deliver`, `ready`, publish completions) runs on it.
#pragma once

#include <sluice/history.hpp>
#include <sluice/publication.hpp>

#include <rapidjson/document.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::detail {

/// What the hub does for the backplane (implemented by hub_core).
class backplane_delegate {
public:
    virtual ~backplane_delegate() = default;
    /// Fans `pub` out to the local subscriptions of its topic; `data` is the
    /// parsed `pub->data()` (for the filters).
    virtual void deliver(const publication_ptr& pub, const rapidjson::Value& data) = 0;
    /// True when a local subscription (exact or pattern) matches `topic`.
    virtual bool interested(std::string_view topic) = 0;
    /// The backplane went up or down.
    virtual void backplane_changed(bool up) = 0;
    /// A log line for the host.
    virtual void backplane_log(bool error, std::string_view message) = 0;
};

/// One exact topic a subscription wants, with the position to resume from.
struct backplane_subscription {
    std::string topic;
    std::optional<stream_position> since;
};

class backplane {
public:
    /// Completion of a publish: the position, or `unavailable`/`internal`.
    using publish_handler = std::function<void(std::error_code, stream_position)>;
    /// Completion of a subscribe: one entry per requested topic, in order;
    /// empty when that topic's position could not be had (Redis down).
    using ready_handler = std::function<void(std::vector<std::optional<recovery>>)>;

    virtual ~backplane() = default;
    /// Starts connecting. Once.
    virtual void start() = 0;
    /// Drops the connections and completes nothing more (the hub is going
    /// away). Idempotent.
    virtual void stop() = 0;
    /// True when publishes can be made.
    virtual bool up() const noexcept = 0;
    /// Publishes `data` (compact JSON text) to `topic`. The event comes back
    /// through `deliver` like any other; `done` gets the position (or the
    /// position of the first publish with the same idempotency key).
    virtual void publish(std::string_view topic, std::string data, std::string_view event,
                         std::string_view idempotency_key, publish_handler done) = 0;
    /// Positions (and replays, where `since` is given) of exact topics; see
    /// the header comment. `ready` may run inside this call.
    virtual void subscribe(std::vector<backplane_subscription> topics, std::size_t replay_limit,
                           ready_handler ready) = 0;
    /// Periodic housekeeping (forgets topics nobody here follows).
    virtual void sweep() = 0;
    /// The SSE resume-token generation shared by every hub of the cluster.
    virtual std::string generation() const = 0;
};

}  // namespace sluice::detail
