// The simulated data of `sluice-hub --demo`: a few price series (random walks),
// a market sentiment score and occasional alerts, published at a steady rate
// so the dashboard streams by itself.
#pragma once

#include <sluice/hub.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <random>
#include <vector>

namespace sluice_hub {

class demo_feed {
public:
    demo_feed(asio::io_context& io, sluice::hub& hub, std::chrono::milliseconds period);
    void start();
    void stop();

private:
    void tick();

    sluice::hub& hub_;
    asio::steady_timer timer_;
    std::chrono::milliseconds period_;
    std::mt19937_64 rng_{42};
    struct series {
        const char* symbol;
        double price;
    };
    std::vector<series> prices_;
    double sentiment_ = 0.1;
    std::uint64_t ticks_ = 0;
    bool stopped_ = false;
};

}  // namespace sluice_hub
