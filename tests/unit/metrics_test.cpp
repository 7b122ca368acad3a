#include "metrics.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using sluice::detail::metrics;

TEST_CASE("every family of PROTOCOL.md section 7 has a TYPE line and its series", "[metrics]") {
    metrics m;
    auto text = m.render();
    for (const char* family :
         {"sluice_connections gauge", "sluice_messages_published_total counter",
          "sluice_messages_delivered_total counter", "sluice_messages_dropped_total counter",
          "sluice_send_queue_bytes gauge", "sluice_slow_consumer_disconnects_total counter",
          "sluice_rate_limited_total counter", "sluice_recoveries_total counter",
          "sluice_close_total counter", "sluice_backplane_up gauge",
          "sluice_publish_delivery_seconds histogram"}) {
        CHECK(text.find(std::string("# TYPE ") + family + "\n") != std::string::npos);
    }
    CHECK(text.find("sluice_connections{transport=\"ws\"} 0\n") != std::string::npos);
    CHECK(text.find("sluice_connections{transport=\"sse\"} 0\n") != std::string::npos);
    CHECK(text.find("sluice_messages_dropped_total{reason=\"slow_consumer\"} 0\n") !=
          std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_bucket{le=\"0.0005\"} 0\n") !=
          std::string::npos);
}

TEST_CASE("the delivery histogram is cumulative", "[metrics]") {
    metrics m;
    m.observe_delivery(std::chrono::microseconds(80));    // <= 0.0001
    m.observe_delivery(std::chrono::milliseconds(3), 2);  // <= 0.005
    m.count_close(1013);
    m.count_close(3999);
    auto text = m.render();
    CHECK(text.find("sluice_publish_delivery_seconds_bucket{le=\"0.0001\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_bucket{le=\"0.005\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_bucket{le=\"+Inf\"} 3\n") !=
          std::string::npos);
    CHECK(text.find("sluice_publish_delivery_seconds_count 3\n") != std::string::npos);
    CHECK(text.find("sluice_close_total{code=\"1013\"} 1\n") != std::string::npos);
    CHECK(text.find("sluice_close_total{code=\"other\"} 1\n") != std::string::npos);
}
