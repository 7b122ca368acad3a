// Fuzzes the decoder of client WebSocket messages (src/client_message.cpp):
// any bytes must decode to a request or to an error with a wire code, never
// crash, and a decoded request must satisfy what the hub relies on.
#include "client_message.hpp"

#include <sluice/topic.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    rapidjson::Document doc;
    auto decoded = sluice::detail::decode_client_message(text, doc);
    if (decoded.id && !decoded.id->IsNumber() && !decoded.id->IsString()) std::abort();
    if (decoded.error) {
        if (decoded.error.category() != sluice::error_category() || decoded.message.empty())
            std::abort();
        return 0;
    }
    const auto& r = decoded.request;
    using sluice::detail::client_type;
    switch (r.type) {
    case client_type::subscribe:
    case client_type::unsubscribe:
        if (!sluice::check_pattern(r.topic)) std::abort();
        if (r.since && r.pattern) std::abort();
        break;
    case client_type::publish:
        if (!sluice::check_topic(r.publish.topic) || !r.publish.data) std::abort();
        if (!r.publish.event.empty() && !sluice::check_event_name(r.publish.event)) std::abort();
        if (r.publish.idempotency_key.size() > 64) std::abort();
        break;
    case client_type::refresh:
    case client_type::ping: break;
    }
    return 0;
}
