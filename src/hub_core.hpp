// The hub's protocol state and logic (PROTOCOL.md sections 3-5), on one strand.
//
// Everything that touches the router, the history, the idempotency cache or a
// connection's subscriptions runs on `strand_`: a subscribe takes the topic's
// position, replays and registers in one handler, so no publish can fall
// between replay and live (no gap, no duplicate). Connections post their
// requests here in the order they arrive, so replies keep that order.
//
// With a backplane (Redis, src/redis/), publishes and the positions of topics
// this hub does not follow yet need a round trip: the backplane completes them
// on the strand at the point where registering keeps replay-then-live gap
// free, and a WebSocket connection's later requests wait meanwhile (`hold` /
// `release`), so that its replies still keep the request order. Events reach
// local subscribers only through the backplane's `deliver`, in offset order.
//
// Thread-safety: the public members post to the strand and may be called from
// any thread; `stats()`, `metrics_text()` and `health_json()` read atomics.
#pragma once

#include "backplane.hpp"
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

#include <deque>
#include <functional>
#include <memory>
#include <optional>
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

/// Makes the backplane of a clustered hub, on the hub's strand.
using backplane_factory = std::function<std::shared_ptr<backplane>(
    asio::strand<asio::any_io_executor>, backplane_delegate&)>;

/// The `id` echoed in a reply: the request's value (answering in the same
/// handler) or its JSON text (answering later). Empty: no `id`.
struct reply_id {
    reply_id(const rapidjson::Value* v) : value(v) {}  // NOLINT: implicit on purpose
    reply_id(const std::string& text) : raw(text) {}   // NOLINT
    const rapidjson::Value* value = nullptr;
    std::string_view raw;
};

class hub_core : public std::enable_shared_from_this<hub_core>, public backplane_delegate {
public:
    using clock = std::chrono::steady_clock;

    /// A hub in memory, or clustered through the backplane `factory` makes.
    hub_core(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
             hub_options options, const backplane_factory& factory = {});

    /// Starts the periodic history sweep (and the backplane). Call once
    /// after construction.
    void start();
    /// Stops the sweep timer and the backplane (the hub is going away).
    void shutdown();
    /// Drops the backplane's connections now. Only when no handler runs any
    /// more (the hub is being destroyed).
    void stop_backplane();
    /// True when publishes can be made (always without a backplane).
    bool backplane_up() const noexcept {
        return stats_.backplane_up.load(std::memory_order_relaxed);
    }

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

    // backplane_delegate, on strand_.
    void deliver(const publication_ptr& pub, const rapidjson::Value& data) override;
    bool interested(std::string_view topic) override;
    void backplane_changed(bool up) override;
    void backplane_log(bool error, std::string_view message) override;

private:
    using publish_done = std::function<void(publish_outcome)>;

    // All below run on strand_.
    publish_outcome publish(const principal* who, const publish_fields& fields);
    /// `publish`, through the backplane when there is one; `done` may run
    /// inside this call.
    void publish_async(const principal* who, const publish_fields& fields, publish_done done);
    void fan_out(const publication_ptr& pub, const rapidjson::Value& data);
    void handle_ws(const std::shared_ptr<connection>& c, const std::string& text,
                   connection::rate_decision rate);
    void ws_subscribe(const std::shared_ptr<connection>& c, client_request& r,
                      const rapidjson::Value* id);
    void finish_subscribe(connection& c, const subscription_ptr& sub, filter where,
                          const reply_id& id, bool resuming, const std::optional<recovery>& rec);
    void ws_unsubscribe(connection& c, const client_request& r, const rapidjson::Value* id);
    void ws_publish(const std::shared_ptr<connection>& c, const client_request& r,
                    const rapidjson::Value* id);
    void ws_refresh(connection& c, const client_request& r, const rapidjson::Value* id);
    void open_sse(const std::shared_ptr<connection>& c, sse_request& request, bool resuming,
                  const std::vector<backplane_subscription>& wanted,
                  const std::vector<std::optional<recovery>>& results);
    /// A WebSocket request is waiting for the backplane: the connection's
    /// next messages wait too, so that replies keep the order of requests.
    void hold(const std::shared_ptr<connection>& c);
    /// Handles the messages that waited for `c`'s pending request.
    void release(const std::shared_ptr<connection>& c);
    /// The backplane answered `c`'s publish number `seq`: sends every answer
    /// now due in request order; when none is left, releases what waited.
    void publish_answered(const std::shared_ptr<connection>& c, std::uint64_t seq,
                          std::string reply);
    void replay(connection& c, const subscription_ptr& sub, const filter& where,
                const std::vector<publication_ptr>& events);
    void sweep();

    const asio::any_io_executor executor_;
    asio::strand<asio::any_io_executor> strand_;
    asio::steady_timer sweep_timer_;
    const std::shared_ptr<const auth_policy> policy_;
    const hub_options options_;
    std::string generation_;      // of SSE resume tokens: per hub, or per cluster
    std::string session_prefix_;  // of WebSocket session ids: per hub
    metrics stats_;
    std::shared_ptr<backplane> backplane_;
    std::unordered_map<connection*, std::deque<connection::inbound_text>> waiting_;
    /// A connection's publishes in flight to the backplane (they are
    /// pipelined): the answers not yet sent, in request order, numbered from
    /// `first`. Its other requests wait (in waiting_) until all are answered.
    struct publish_pipeline {
        std::uint64_t first = 0;
        std::deque<std::optional<std::string>> replies;
    };
    std::unordered_map<connection*, publish_pipeline> publishing_;

    history history_;
    idempotency_cache idempotency_;
    basic_router<connection*, subscription_ptr> router_;
    std::unordered_map<connection*, std::shared_ptr<connection>> connections_;

    mutable std::mutex log_mutex_;
    log_handler logger_;
};

}  // namespace sluice::detail
