#include <sluice/hub.hpp>

#include "hub_impl.hpp"

#include <sluice/detail/throw.hpp>

#if SLUICE_WITH_REDIS
#include "redis/redis_backplane.hpp"
#endif

namespace sluice {

namespace {

void validate(const hub_options& o) {
    using detail::throw_invalid_argument;
    if (o.history_ttl.count() <= 0 || o.position_ttl.count() <= 0) {
        throw_invalid_argument("hub_options: history_ttl and position_ttl must be > 0");
    }
    if (o.max_topics == 0) throw_invalid_argument("hub_options: max_topics must be > 0");
    if (o.idempotency_ttl.count() <= 0)
        throw_invalid_argument("hub_options: idempotency_ttl must be > 0");
}

void validate(const redis_options& r) {
    using detail::throw_invalid_argument;
    if (r.host.empty()) throw_invalid_argument("redis_options: host is empty");
    if (r.port == 0) throw_invalid_argument("redis_options: port is 0");
    if (r.database < 0) throw_invalid_argument("redis_options: database must be >= 0");
    if (r.connect_timeout.count() <= 0 || r.command_timeout.count() <= 0 ||
        r.probe_interval.count() <= 0 || r.probe_timeout <= r.probe_interval) {
        throw_invalid_argument(
            "redis_options: timeouts must be > 0 and probe_timeout > probe_interval");
    }
    if (r.reconnect_initial_delay.count() <= 0 ||
        r.reconnect_max_delay < r.reconnect_initial_delay) {
        throw_invalid_argument("redis_options: reconnect delays out of range");
    }
    if (r.breaker_failures == 0 || r.breaker_open_duration.count() < 0) {
        throw_invalid_argument("redis_options: breaker settings out of range");
    }
}

}  // namespace

bool hub::redis_supported() noexcept {
#if SLUICE_WITH_REDIS
    return true;
#else
    return false;
#endif
}

hub::hub(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
         hub_options options, redis_options redis) {
    if (!policy) detail::throw_invalid_argument("hub: the auth policy must not be null");
    validate(options);
    validate(redis);
#if SLUICE_WITH_REDIS
    auto factory = [redis, options](asio::strand<asio::any_io_executor> strand,
                                    detail::backplane_delegate& delegate) {
        return detail::make_redis_backplane(std::move(strand), redis, options, delegate);
    };
    auto core = std::make_shared<detail::hub_core>(std::move(executor), std::move(policy), options,
                                                   factory);
    core->start();
    impl_ = std::make_shared<impl>(std::move(core));
#else
    (void)executor;
    detail::throw_invalid_argument(
        "hub: this build of sluice has no Redis backplane (CMake option SLUICE_WITH_REDIS)");
#endif
}

hub::hub(asio::any_io_executor executor, std::shared_ptr<const auth_policy> policy,
         hub_options options) {
    if (!policy) detail::throw_invalid_argument("hub: the auth policy must not be null");
    validate(options);
    auto core = std::make_shared<detail::hub_core>(std::move(executor), std::move(policy), options);
    core->start();
    impl_ = std::make_shared<impl>(std::move(core));
}

hub::~hub() = default;

asio::any_io_executor hub::get_executor() const noexcept { return impl_->core()->get_executor(); }

void hub::publish_erased(std::string topic, std::string data_json, publish_options options,
                         std::function<void(std::error_code, stream_position)> done) {
    impl_->core()->host_publish(std::move(topic), std::move(data_json), std::move(options),
                                std::move(done));
}

void hub::publish(std::string topic, std::string data_json, publish_options options) {
    impl_->core()->host_publish(std::move(topic), std::move(data_json), std::move(options), {});
}

std::string hub::metrics_text() const { return impl_->core()->metrics_text(); }

void hub::on_log(log_handler handler) { impl_->core()->set_logger(std::move(handler)); }

std::size_t hub::connection_count() const noexcept { return impl_->core()->connection_count(); }

bool hub::backplane_up() const noexcept { return impl_->core()->backplane_up(); }

std::string hub::health_json() const { return impl_->core()->health_json(); }

}  // namespace sluice
