#include "metrics.hpp"

#include <cinttypes>
#include <cstdio>

namespace sluice::detail {
namespace {

template <class T>
std::uint64_t load(const std::atomic<T>& value) {
    auto v = value.load(std::memory_order_relaxed);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, const char* name, const char* labels, std::uint64_t value) {
    char line[256];
    std::snprintf(line, sizeof line, "%s%s %" PRIu64 "\n", name, labels, value);
    out += line;
}

}  // namespace

std::string metrics::render(const std::string& extra) const {
    std::string out;
    out.reserve(4096);
    family(out, "sluice_connections", "gauge", "Open streaming connections by transport.");
    sample(out, "sluice_connections", "{transport=\"ws\"}", load(ws_connections));
    sample(out, "sluice_connections", "{transport=\"sse\"}", load(sse_connections));

    family(out, "sluice_messages_published_total", "counter",
           "Events published (assigned an offset).");
    sample(out, "sluice_messages_published_total", "", load(published));
    family(out, "sluice_messages_delivered_total", "counter",
           "Events written to subscribers' sockets.");
    sample(out, "sluice_messages_delivered_total", "", load(delivered));
    family(out, "sluice_messages_dropped_total", "counter", "Queued events discarded, by reason.");
    sample(out, "sluice_messages_dropped_total", "{reason=\"slow_consumer\"}",
           load(dropped_slow_consumer));
    sample(out, "sluice_messages_dropped_total", "{reason=\"connection_closed\"}",
           load(dropped_closed));

    family(out, "sluice_send_queue_bytes", "gauge", "Bytes queued to clients, all connections.");
    sample(out, "sluice_send_queue_bytes", "", load(send_queue_bytes));
    family(out, "sluice_slow_consumer_disconnects_total", "counter",
           "Connections closed as slow consumers.");
    sample(out, "sluice_slow_consumer_disconnects_total", "", load(slow_consumer_disconnects));
    family(out, "sluice_rate_limited_total", "counter",
           "Requests and handshakes refused by a rate limit.");
    sample(out, "sluice_rate_limited_total", "", load(rate_limited));
    family(out, "sluice_recoveries_total", "counter",
           "Subscriptions that asked to resume, by result.");
    sample(out, "sluice_recoveries_total", "{result=\"recovered\"}", load(recovered));
    sample(out, "sluice_recoveries_total", "{result=\"not_recovered\"}", load(not_recovered));

    family(out, "sluice_close_total", "counter",
           "WebSocket closes sent or received, by close code.");
    for (std::size_t i = 0; i < tracked_close_codes.size(); ++i) {
        char labels[32];
        std::snprintf(labels, sizeof labels, "{code=\"%u\"}",
                      static_cast<unsigned>(tracked_close_codes[i]));
        sample(out, "sluice_close_total", labels, load(closes[i]));
    }
    sample(out, "sluice_close_total", "{code=\"other\"}", load(closes.back()));

    family(out, "sluice_backplane_up", "gauge", "1 when the backplane answers, 0 when it is down.");
    sample(out, "sluice_backplane_up", "", backplane_up.load(std::memory_order_relaxed) ? 1 : 0);

    family(out, "sluice_publish_delivery_seconds", "histogram",
           "Time from publish to the write of an event.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < delivery_buckets.size(); ++i) {
        cumulative += load(delivery_bucket_counts[i]);
        char labels[48];
        std::snprintf(labels, sizeof labels, "{le=\"%g\"}", delivery_buckets[i]);
        sample(out, "sluice_publish_delivery_seconds_bucket", labels, cumulative);
    }
    std::uint64_t count = load(delivery_count);
    sample(out, "sluice_publish_delivery_seconds_bucket", "{le=\"+Inf\"}", count);
    char sum[96];
    std::snprintf(sum, sizeof sum, "sluice_publish_delivery_seconds_sum %.9f\n",
                  static_cast<double>(load(delivery_sum_ns)) / 1e9);
    out += sum;
    sample(out, "sluice_publish_delivery_seconds_count", "", count);
    family(out, "sluice_history_topics", "gauge", "Topics whose position the history keeps.");
    sample(out, "sluice_history_topics", "", load(history_topics));
    family(out, "sluice_history_events", "gauge", "Events retained for recovery.");
    sample(out, "sluice_history_events", "", load(history_events));
    family(out, "sluice_history_bytes", "gauge", "Bytes of retained events.");
    sample(out, "sluice_history_bytes", "", load(history_bytes));
    out += extra;
    return out;
}

}  // namespace sluice::detail
