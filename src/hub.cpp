#include <sluice/hub.hpp>

#include "hub_impl.hpp"

#include <sluice/detail/throw.hpp>

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

}  // namespace

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

}  // namespace sluice
