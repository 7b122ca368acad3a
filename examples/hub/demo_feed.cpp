#include "demo_feed.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

namespace sluice_hub {
namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

demo_feed::demo_feed(asio::io_context& io, sluice::hub& hub, std::chrono::milliseconds period)
    : hub_(hub),
      timer_(io),
      period_(period),
      prices_{{"AAPL", 189.5}, {"MSFT", 411.2}, {"NVDA", 121.8}} {}

void demo_feed::start() { tick(); }

void demo_feed::stop() {
    stopped_ = true;
    timer_.cancel();
}

void demo_feed::tick() {
    if (stopped_) return;
    std::normal_distribution<double> step(0.0, 0.004);
    char json[256];
    for (auto& s : prices_) {
        double change = s.price * step(rng_);
        s.price += change;
        std::snprintf(json, sizeof json,
                      R"({"symbol":"%s","price":%.2f,"change":%.3f,"sent_at":%lld})", s.symbol,
                      s.price, change, static_cast<long long>(now_ms()));
        hub_.publish(std::string("prices:") + s.symbol, json, {"price", {}});
    }
    if (ticks_ % 5 == 0) {
        sentiment_ =
            std::clamp(sentiment_ + std::normal_distribution<double>(0.0, 0.05)(rng_), -1.0, 1.0);
        std::snprintf(json, sizeof json, R"({"score":%.3f,"sent_at":%lld})", sentiment_,
                      static_cast<long long>(now_ms()));
        hub_.publish("sentiment:market", json, {"sentiment", {}});
    }
    if (std::uniform_int_distribution<int>(0, 14)(rng_) == 0) {
        static const char* const severities[] = {"info", "warning", "critical"};
        static const char* const messages[] = {
            "Volume spike", "Spread widening", "Feed latency above 50 ms",
            "Circuit breaker tripped on venue B", "New session high"};
        const char* severity = severities[std::uniform_int_distribution<int>(0, 2)(rng_)];
        const auto& s =
            prices_[std::uniform_int_distribution<std::size_t>(0, prices_.size() - 1)(rng_)];
        std::snprintf(json, sizeof json,
                      R"({"severity":"%s","symbol":"%s","message":"%s","sent_at":%lld})", severity,
                      s.symbol, messages[std::uniform_int_distribution<int>(0, 4)(rng_)],
                      static_cast<long long>(now_ms()));
        hub_.publish(std::string("alerts:") + severity, json, {"alert", {}});
    }
    ++ticks_;
    timer_.expires_after(period_);
    timer_.async_wait([this](const std::error_code& ec) {
        if (!ec) tick();
    });
}

}  // namespace sluice_hub
