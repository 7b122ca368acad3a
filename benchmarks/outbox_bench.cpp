// Cost of the client outbox per message: push, hand out (next_to_send) and
// acknowledge, against a baseline of the same message through a plain
// std::deque (push_back + pop_front) measured in the same run.
//
// Two figures per case: the harness's best wall-clock round, and the average
// process CPU time per message over all rounds (std::clock), which a shared,
// overloaded machine disturbs less because time spent descheduled is not counted.
#include <sluice/outbox.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <random>
#include <string>

#include "bench.hpp"

namespace {

struct figures {
    double wall_ns;  // best round, per message
    double cpu_ns;   // average over all rounds, per message
};

/// Measures `body`, which handles `per_call` messages per call.
template <class Body>
figures run(const sluice::bench::settings& s, std::size_t per_call, Body&& body) {
    std::size_t calls = 0;
    const std::clock_t start = std::clock();
    const double wall = sluice::bench::measure(s, [&](std::size_t i) {
        ++calls;
        body(i);
    });
    const double cpu_ns =
        1e9 * static_cast<double>(std::clock() - start) / static_cast<double>(CLOCKS_PER_SEC);
    const double messages = static_cast<double>(calls * per_call);
    return {wall / static_cast<double>(per_call), cpu_ns / messages};
}

sluice::outbox_message make_message() {
    return {"prices:AAPL", R"({"symbol":"AAPL","price":187.42,"volume":1200,"ts":1700000000000})",
            ""};
}

sluice::outbox make_outbox(std::size_t max_messages) {
    sluice::outbox_options o;
    o.max_messages = max_messages;
    o.max_bytes = 64 * 1024 * 1024;
    return sluice::outbox(o, std::mt19937_64(1));
}

}  // namespace

int main(int argc, char** argv) {
    const auto settings = sluice::bench::parse_args(argc, argv);
    const sluice::outbox_message prototype = make_message();
    constexpr std::size_t batch = 100;

    // Baseline: copy the message into a deque and take it out again.
    std::deque<sluice::outbox_message> deque;
    const figures baseline = run(settings, 1, [&](std::size_t) {
        deque.push_back(prototype);
        sluice::bench::do_not_optimize(deque.front().data_json.size());
        deque.pop_front();
    });

    // One message at a time: push, next_to_send, acknowledge (generated key).
    auto one = make_outbox(1000);
    const figures single = run(settings, 1, [&](std::size_t) {
        one.push(prototype);
        const auto* e = one.next_to_send();
        sluice::bench::do_not_optimize(e->idempotency_key().data());
        one.acknowledge(e->id(), {e->id(), "E"});
    });

    // The same, reading the clock once per message and passing it as `now`
    // (the calls above read it in push and in next_to_send).
    auto timed = make_outbox(1000);
    const figures single_now = run(settings, 1, [&](std::size_t) {
        const auto now = std::chrono::steady_clock::now();
        timed.push(prototype, {}, now);
        const auto* e = timed.next_to_send(now);
        timed.acknowledge(e->id(), {e->id(), "E"});
    });

    // The same with the app's own idempotency key.
    auto keyed = make_outbox(1000);
    sluice::outbox_push_options with_key;
    with_key.idempotency_key = "client-7f3a9c-000000000042";
    const figures single_keyed = run(settings, 1, [&](std::size_t) {
        keyed.push(prototype, with_key);
        const auto* e = keyed.next_to_send();
        keyed.acknowledge(e->id(), {e->id(), "E"});
    });

    // Offline then flush: 100 queued, then sent and acknowledged in order.
    auto offline = make_outbox(1000);
    const figures flush = run(settings, batch, [&](std::size_t) {
        for (std::size_t i = 0; i < batch; ++i) offline.push(prototype);
        while (const auto* e = offline.next_to_send()) offline.acknowledge(e->id(), {e->id(), "E"});
    });

    // A lost connection: 100 sent, dropped, re-sent, acknowledged.
    auto resend = make_outbox(1000);
    const figures reconnect = run(settings, batch, [&](std::size_t) {
        for (std::size_t i = 0; i < batch; ++i) resend.push(prototype);
        while (resend.next_to_send() != nullptr) {
        }
        resend.on_disconnect();
        while (const auto* e = resend.next_to_send()) resend.acknowledge(e->id(), {e->id(), "E"});
    });

    // A full outbox under drop_oldest: every push evicts the oldest entry.
    auto full = make_outbox(1000);
    for (int i = 0; i < 1000; ++i) full.push(prototype);
    const figures overflow = run(settings, 1, [&](std::size_t) {
        auto r = full.push(prototype);
        sluice::bench::do_not_optimize(r.evicted);
    });

    std::printf("| case (per message) | wall ns (best) | ratio | CPU ns (avg) | ratio |\n");
    std::printf("|---|---:|---:|---:|---:|\n");
    const auto row = [&](const char* name, const figures& f) {
        std::printf("| %s | %.1f | %.2f | %.1f | %.2f |\n", name, f.wall_ns,
                    f.wall_ns / baseline.wall_ns, f.cpu_ns, f.cpu_ns / baseline.cpu_ns);
    };
    row("baseline: std::deque push_back + pop_front of a copy", baseline);
    row("push + next_to_send + acknowledge (generated key)", single);
    row("same, one clock read per message passed as `now`", single_now);
    row("push + next_to_send + acknowledge (app key)", single_keyed);
    row("100 pushed offline, then flushed and acknowledged", flush);
    row("100 sent, disconnect, re-sent and acknowledged", reconnect);
    row("push into a full outbox (drop_oldest evicts one)", overflow);
    std::printf("\nentries left (expected 0 0 0 0 0 1000): %zu %zu %zu %zu %zu %zu\n", one.size(),
                timed.size(), keyed.size(), offline.size(), resend.size(), full.size());
    return 0;
}
