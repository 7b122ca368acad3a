// The hub's protocol state and logic (PROTOCOL.md sections 3-5), on one strand.
//
// Everything that touches the router, the history, the idempotency cache or a
// connection's subscriptions runs on `strand_`: a subscribe takes the topic's
// position, replays and registers in one handler, so no publish can fall
// between replay and live (no gap, no duplicate). Connections post their
// requests here in the order they arrive, so replies keep that order.
//
// Thread-safety: the public members post to the strand and may be called from
// any thread; `stats()`, `metrics_text()` and `health_json()` read atomics.
#pragma once

#include "client_message.hpp"
#include "connection.hpp"
#include "metrics.hpp"
#include "subscription_state.hpp"

#include <sluice/auth.hpp>
#include <sluice/history.hpp>
#include <sluice/hub.hpp>
#include <sluice/idempotency.hpp>
#include <sluice/router.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <rapidjson/document.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::detail {

/// What an SSE request asks for, checked by the request router.
struct sse_request {
    std::vector<std::string> topics;  ///< valid, deduplicated, in query order
    std::string filter_json;          ///< empty: no filter (already known to compile)
    std::string last_event_id;        ///< the resume token, if any
    principal who;
    std::string extra_headers;  ///< CORS header lines for the 200 answer
    std::chrono::milliseconds retry{};
};

/// An HTTP publish request, checked for framing and content type.
struct http_publish_request {
    principal who;
    std::string body;
    std::string extra_headers;  ///< CORS header lines
    bool keep_alive = true;
};

/// Outcome of one publish, whatever its source.
struct publish_outcome {
    std::error_code error;
    std::string message;  ///< for people, with errors
    stream_position position;
};

class hub_core : public std::enable_shared_from_this<hub_core> {
public:
    using clock = std::chrono::steady_clock;

    hub_core(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
             hub_options options);

    /// Starts the periodic history sweep. Call once after construction.
    void start();
    /// Stops the sweep timer (the hub is going away).
    void shutdown();

    const auth_policy& policy() const noexcept { return *policy_; }
    metrics& stats() noexcept { return stats_; }
    const std::string& generation() const noexcept { return generation_; }
    asio::any_io_executor get_executor() const noexcept { return executor_; }

    void attach_websocket(std::shared_ptr<connection> c, principal who);
    void on_ws_texts(std::shared_ptr<connection> c, std::vector<connection::inbound_text> texts);
    /// Drops every connection and subscription at once, breaking the
    /// hub -> connection -> server -> hub ownership cycle. Only when no handler
    /// runs any more (the hub is being destroyed).
    void release_connections();
    void start_sse(std::shared_ptr<connection> c, sse_request request);
    void http_publish(std::shared_ptr<connection> c, http_publish_request request);
    void detach(std::shared_ptr<connection> c);
    void host_publish(std::string topic, std::string data_json, publish_options options,
                      std::function<void(std::error_code, stream_position)> done);

    std::string metrics_text() const;
    std::string health_json() const;
    std::size_t connection_count() const noexcept;

    void set_logger(log_handler handler);
    void log(log_level level, std::string_view message) const;

private:
    // All below run on strand_.
    publish_outcome publish(const principal* who, const publish_fields& fields);
    void fan_out(const publication_ptr& pub, const rapidjson::Value& data);
    void handle_ws(const std::shared_ptr<connection>& c, const std::string& text,
                   connection::rate_decision rate);
    void ws_subscribe(connection& c, client_request& r, const rapidjson::Value* id);
    void ws_unsubscribe(connection& c, const client_request& r, const rapidjson::Value* id);
    void ws_publish(connection& c, const client_request& r, const rapidjson::Value* id);
    void ws_refresh(connection& c, const client_request& r, const rapidjson::Value* id);
    void replay(connection& c, const subscription_ptr& sub, const filter& where,
                const std::vector<publication_ptr>& events);
    void sweep();

    const asio::any_io_executor executor_;
    asio::strand<asio::any_io_executor> strand_;
    asio::steady_timer sweep_timer_;
    const std::shared_ptr<const auth_policy> policy_;
    const hub_options options_;
    const std::string generation_;
    metrics stats_;

    history history_;
    idempotency_cache idempotency_;
    basic_router<connection*, subscription_ptr> router_;
    std::unordered_map<connection*, std::shared_ptr<connection>> connections_;

    mutable std::mutex log_mutex_;
    log_handler logger_;
};

}  // namespace sluice::detail
