// What the hub keeps for one subscription, shared by the router entry and by
// every queued delivery (so an unsubscribe never frees bytes a write still
// uses).
#pragma once

#include <sluice/filter.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace sluice::detail {

struct subscription_state {
    /// The subscription string as the client gave it.
    std::string sub;
    /// `sub` as a JSON string, written between the shared head and tail of an
    /// event frame.
    std::string sub_json;
    /// The compiled filter; empty matches everything.
    filter where;
    /// True for an exact topic (not a pattern).
    bool exact = false;
    /// SSE: index of this topic in the stream's resume positions; -1 for none.
    int position_index = -1;
};

using subscription_ptr = std::shared_ptr<const subscription_state>;

}  // namespace sluice::detail
