// sluice/hub.hpp: the hub, the protocol state of a sluice server: the router,
// filters, per-topic history and idempotency, the auth policy and the metrics;
// alone (in memory) or as one member of a cluster of hubs joined by Redis.
//
// One hub serves any number of `sluice::server`s (listening ports). All of its
// state lives on one strand of the executor it is given; the host's threads
// call `async_publish` from anywhere. It starts no thread and owns no loop.
//
// Example:
// @code
// asio::io_context io;
// sluice::hub hub(io.get_executor(), std::make_shared<sluice::anonymous_policy>(true));
// hub.async_publish("prices:AAPL", R"({"bid":189.5})", {},
//                   [](std::error_code ec, sluice::stream_position pos) {
//                       // ec: invalid_topic, bad_request, unavailable…; else pos.offset
//                   });
// @endcode
#pragma once

#include <sluice/auth.hpp>
#include <sluice/error.hpp>
#include <sluice/history.hpp>
#include <sluice/options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace sluice {

class server;

/// How a host publish is made.
struct publish_options {
    /// The event name copied to SSE `event:` (PROTOCOL.md section 2); empty: none.
    std::string event;
    /// 1-64 bytes: a repeat on the same topic within the idempotency TTL is
    /// not published again and answers the first publish's position.
    std::string idempotency_key;
};

/// Severity of a hub log line.
enum class log_level { debug, info, warning, error };

/// Receives the hub's and servers' log lines. Never gets a token. Called from
/// the hub's or a connection's strand: it must be thread-safe.
using log_handler = std::function<void(log_level, std::string_view)>;

/// The protocol state shared by the servers of one process.
///
/// Thread-safety: every member function may be called from any thread.
/// Destroy it only after its servers and after the executor stopped running
/// its handlers (the usual Asio rule for objects handlers refer to).
class hub {
public:
    /// A hub whose state lives on a strand of `executor`. `policy` decides who
    /// may connect, subscribe and publish (`anonymous_policy`, `jwt_policy`, or
    /// the host's). Throws std::invalid_argument for a null policy or options
    /// out of range.
    hub(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
        hub_options options = {});
    /// A hub that joins the cluster of every hub using the same Redis
    /// (PROTOCOL.md section 9; see `redis_options`). It connects at once and
    /// keeps reconnecting; until Redis answers (`backplane_up()`), publishes
    /// fail with `unavailable`. Throws std::invalid_argument as above, for
    /// `redis` options out of range, and when sluice was built without Redis
    /// support (`redis_supported()` is false).
    ///
    ///     sluice::redis_options redis;
    ///     redis.port = 6380;
    ///     sluice::hub hub(io.get_executor(), policy, {}, redis);
    hub(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
        hub_options options, redis_options redis);
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    /// The executor given at construction.
    asio::any_io_executor get_executor() const noexcept;

    /// Publishes `data_json` (any JSON text) to `topic` as the host itself
    /// (no authorization). Completes once, never inside this call, with
    /// `void(std::error_code, stream_position)`: the position assigned, or
    /// `invalid_topic`, `bad_request` (data not JSON, bad event name or key),
    /// `unavailable` (the backplane is down; keep it and retry).
    template <class CompletionToken>
    auto async_publish(std::string topic, std::string data_json, publish_options options,
                       CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, void(std::error_code, stream_position)>(
            [this](auto handler, std::string t, std::string d, publish_options o) {
                auto work = std::make_shared<decltype(handler)>(std::move(handler));
                publish_erased(std::move(t), std::move(d), std::move(o),
                               [work](std::error_code ec, stream_position pos) {
                                   auto ex = asio::get_associated_executor(*work);
                                   asio::dispatch(ex, [work, ec, pos = std::move(pos)]() mutable {
                                       (*work)(ec, std::move(pos));
                                   });
                               });
            },
            token, std::move(topic), std::move(data_json), std::move(options));
    }

    /// Fire-and-forget publish; failures are logged.
    void publish(std::string topic, std::string data_json, publish_options options = {});

    /// The Prometheus exposition of PROTOCOL.md section 7 (what `/metrics`
    /// answers).
    std::string metrics_text() const;

    /// Plugs the host's logger in (replaces the previous one; none by default).
    void on_log(log_handler handler);

    /// Number of WebSocket and SSE connections currently open.
    std::size_t connection_count() const noexcept;

    /// True when the backplane answers: always for the in-memory hub; with
    /// Redis, when the hub's probes come back through its pub/sub
    /// subscription (what `/health` and `sluice_backplane_up` report).
    bool backplane_up() const noexcept;

    /// The `/health` answer (PROTOCOL.md section 1): status, backplane
    /// (`memory`, `up` or `down`) and the connection counts.
    std::string health_json() const;

    /// True when this build of sluice has the Redis backplane
    /// (CMake option SLUICE_WITH_REDIS).
    static bool redis_supported() noexcept;

    /// @cond internal
    // Internal: the implementation the servers use.
    class impl;
    impl& implementation() noexcept { return *impl_; }
    /// @endcond

private:
    void publish_erased(std::string topic, std::string data_json, publish_options options,
                        std::function<void(std::error_code, stream_position)> done);
    std::shared_ptr<impl> impl_;
};

}  // namespace sluice
