// Decoding and validating one client-to-server WebSocket message (PROTOCOL.md
// section 3), and the fields of a publish (WebSocket or `POST /publish` body).
//
// Everything a message can get wrong by itself is found here (not JSON, not an
// object, unknown type, mistyped field, bad topic, bad filter, `since` on a
// pattern…), so the hub only decides what depends on state (rights,
// subscriptions, history). Never throws; views point into the document.
//
// Thread-safety: pure functions.
#pragma once

#include <sluice/filter.hpp>
#include <sluice/publication.hpp>

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::detail {

enum class client_type { subscribe, unsubscribe, publish, refresh, ping };

/// The fields of a publish, checked: a concrete topic, data present, a valid
/// event name or none, an idempotency key of 1-64 bytes or none.
struct publish_fields {
    std::string_view topic;
    const rapidjson::Value* data = nullptr;
    std::string_view event;
    std::string_view idempotency_key;
};

struct client_request {
    client_type type = client_type::ping;
    std::string_view topic;  ///< subscribe, unsubscribe: a valid topic or pattern
    bool pattern = false;
    filter where;                          ///< subscribe: compiled, empty when none
    std::optional<stream_position> since;  ///< subscribe on an exact topic
    publish_fields publish;                ///< publish
    std::string_view token;                ///< refresh
};

/// A decoded message, or the error that answers it. `id` is the request's
/// `id` when it is a number or a string (to echo), else null.
struct decoded_message {
    std::error_code error;
    std::string message;
    const rapidjson::Value* id = nullptr;
    client_request request;
};

/// Parses `text` into `doc` and decodes it.
decoded_message decode_client_message(std::string_view text, rapidjson::Document& doc);

/// Checks the publish fields of a JSON object (a WebSocket `publish` or a
/// `POST /publish` body). On error, `message` says what is wrong.
std::error_code decode_publish_fields(const rapidjson::Value& object, publish_fields& out,
                                      std::string& message);

}  // namespace sluice::detail
