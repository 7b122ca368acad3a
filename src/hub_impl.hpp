// The definition of `sluice::hub::impl`, shared by hub.cpp and server.cpp:
// a handle on the hub's core, which outlives the hub while connections use it.
#pragma once

#include "hub_core.hpp"

#include <sluice/hub.hpp>

#include <memory>

namespace sluice {

class hub::impl {
public:
    explicit impl(std::shared_ptr<detail::hub_core> core) : core_(std::move(core)) {}
    ~impl() {
        core_->shutdown();
        core_->stop_backplane();
        core_->release_connections();
    }
    const std::shared_ptr<detail::hub_core>& core() const noexcept { return core_; }

private:
    std::shared_ptr<detail::hub_core> core_;
};

}  // namespace sluice
