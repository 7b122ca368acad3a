// sluice_resilience_example: retries a deliberately flaky operation on an
// asio::steady_timer, with sluice::backoff choosing the delays and a
// sluice::circuit_breaker refusing calls while the "upstream" looks down.
//
// The operation fails its first 6 calls, then works. Every decision is printed:
// the attempt, the breaker's state, the delay chosen, each refusal with its
// retry-in, and each state change. The delays are 10-50 ms, so the run is short
// (well under a second); the generator is seeded, so the backoff delays are the
// same every run (a refusal's retry-in depends on how late the timer fired).
// Exits 0 once 3 calls in a row have worked, 1 if it gives up.
#include <sluice/backoff.hpp>
#include <sluice/circuit_breaker.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <system_error>

using namespace std::chrono_literals;

namespace {

// The flaky upstream: fails its first `failures` calls, then works.
struct flaky_operation {
    int failures;
    int calls = 0;
    bool operator()() { return ++calls > failures; }
};

double to_ms(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

class retrier {
public:
    explicit retrier(asio::io_context& io)
        : timer_(io),
          backoff_(backoff_settings(), std::minstd_rand(31337)),
          breaker_(breaker_settings()) {
        breaker_.on_state_change([](sluice::circuit_state from, sluice::circuit_state to) {
            std::printf("    breaker: %s -> %s\n", sluice::to_string(from).data(),
                        sluice::to_string(to).data());
        });
    }

    void start() { attempt(); }
    int exit_code() const { return successes_ >= 3 ? 0 : 1; }

private:
    // snippet: example-settings (docs/resilience.md shows these lines)
    static sluice::backoff_options backoff_settings() {
        sluice::backoff_options o;
        o.initial_delay = 10ms;
        o.multiplier = 2.0;
        o.max_delay = 50ms;
        o.max_attempts = 10;
        o.jitter = sluice::jitter_mode::full;
        return o;
    }

    static sluice::circuit_breaker_options breaker_settings() {
        sluice::circuit_breaker_options o;
        o.mode = sluice::trip_mode::consecutive_failures;
        o.consecutive_failures = 3;
        o.open_duration = 40ms;
        o.half_open_trials = 1;
        return o;
    }
    // end snippet

    // snippet: example-attempt (docs/resilience.md shows these lines)
    // One decision: ask the breaker, call, record, then choose when to go again.
    void attempt() {
        ++attempts_;
        auto permit = breaker_.try_acquire();
        if (!permit) {
            std::printf("attempt %d: breaker %s, refused: retry in %.1f ms\n", attempts_,
                        sluice::to_string(breaker_.state()).data(), to_ms(permit.retry_after()));
            wait(permit.retry_after());
            return;
        }
        const auto started = std::chrono::steady_clock::now();
        const bool ok = operation_();
        breaker_.record(permit, ok ? sluice::call_outcome::success : sluice::call_outcome::failure,
                        std::chrono::steady_clock::now() - started);
        if (ok) {
            backoff_.reset();
            ++successes_;
            std::printf("attempt %d: call %d worked (%d in a row)\n", attempts_, operation_.calls,
                        successes_);
            if (successes_ < 3) wait(0ms);
            return;
        }
        successes_ = 0;
        if (auto delay = backoff_.next()) {
            std::printf(
                "attempt %d: call %d failed, breaker %s: retry in %.1f ms (backoff step %zu)\n",
                attempts_, operation_.calls, sluice::to_string(breaker_.state()).data(),
                to_ms(*delay), backoff_.attempts());
            wait(*delay);
        } else {
            std::printf("attempt %d: call %d failed: backoff exhausted, giving up\n", attempts_,
                        operation_.calls);
        }
    }

    void wait(std::chrono::steady_clock::duration d) {
        timer_.expires_after(d);
        timer_.async_wait([this](const std::error_code& ec) {
            if (!ec) attempt();
        });
    }
    // end snippet

    asio::steady_timer timer_;
    sluice::backoff backoff_;
    sluice::circuit_breaker breaker_;
    flaky_operation operation_{6};
    int attempts_ = 0;
    int successes_ = 0;
};

}  // namespace

int main() {
    asio::io_context io;
    retrier r(io);
    r.start();
    io.run();
    std::printf("%s\n", r.exit_code() == 0 ? "recovered" : "gave up");
    return r.exit_code();
}
