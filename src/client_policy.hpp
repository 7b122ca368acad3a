// client_policy.hpp: the clients' pure decisions: what a close code or an HTTP
// status means (PROTOCOL.md 3.4, 6), when to try again (backoff with jitter
// behind a circuit breaker, reset after a healthy connection), and the resume
// position of one subscription. No sockets, no timers; time comes in as `now`
// so the unit tests drive them with a manual clock.
#pragma once

#include <sluice/backoff.hpp>
#include <sluice/circuit_breaker.hpp>
#include <sluice/client_options.hpp>
#include <sluice/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::detail {

/// What the end of a connection or of an attempt calls for.
enum class disconnect_action {
    reconnect,       ///< try again after the next backoff delay
    reconnect_slow,  ///< try again after a longer backoff (4429, HTTP 429)
    fatal,           ///< stop: state `closed` with the error
};

/// The meaning of one ending.
struct disconnect_class {
    disconnect_action action = disconnect_action::reconnect;
    std::error_code error;
};

/// A close code sent by the server (PROTOCOL.md 3.4). Codes the table does
/// not name: 1xxx and 4000-4499 reconnect with backoff, 4500-4999 stop.
inline disconnect_class classify_close_code(std::uint16_t code) noexcept {
    using a = disconnect_action;
    switch (code) {
    case 1000:
    case 1002:
    case 1003:
    case 1007:
    case 1009:
    case 1010: return {a::fatal, make_error_code(client_errc::closed_by_server)};
    case 1008:
    case 4403:
    case 4503: return {a::fatal, make_error_code(errc::forbidden)};
    case 4401: return {a::fatal, make_error_code(errc::unauthorized)};
    case 4429: return {a::reconnect_slow, make_error_code(errc::rate_limited)};
    default: break;
    }
    if (code >= 4500 && code <= 4999)
        return {a::fatal, make_error_code(client_errc::closed_by_server)};
    return {a::reconnect, make_error_code(client_errc::connection_lost)};
}

/// A refused handshake: its HTTP status and, when the body had one, the wire
/// `code` of its JSON error.
inline disconnect_class classify_http_status(int status, std::string_view wire_code) noexcept {
    using a = disconnect_action;
    if (status == 401) return {a::fatal, make_error_code(errc::unauthorized)};
    if (status == 403) return {a::fatal, make_error_code(errc::forbidden)};
    if (status == 429) return {a::reconnect_slow, make_error_code(errc::rate_limited)};
    if (status == 408 || status >= 500) {
        if (status == 503) return {a::reconnect, make_error_code(errc::unavailable)};
        return {a::reconnect, make_error_code(client_errc::handshake_failed)};
    }
    if (status == 400 && !wire_code.empty()) {
        const errc e = errc_from_wire(wire_code);
        if (to_wire(e) == wire_code) return {a::fatal, make_error_code(e)};
    }
    return {a::fatal, make_error_code(client_errc::handshake_failed)};
}

/// The reconnection schedule of one client: a backoff, an optional circuit
/// breaker around attempts, and the backoff reset after a healthy connection.
///
/// Use: `begin_attempt(now)` before connecting (nullopt: go; else wait that
/// long, the breaker is open); then `attempt_succeeded(now)` or
/// `attempt_failed(now, action)`; `connection_lost(now)` when an established
/// connection ends; `next(now, action, at_least)` for the wait before the next
/// attempt.
template <class Clock = std::chrono::steady_clock, class URBG = std::minstd_rand>
class basic_reconnect_policy {
public:
    using duration = typename Clock::duration;
    using time_point = typename Clock::time_point;
    using breaker_type = basic_circuit_breaker<Clock, URBG>;

    /// What to do next.
    struct decision {
        enum kind_t { wait, circuit_open, give_up } kind = wait;
        duration delay{};           ///< the wait before the next attempt
        std::uint32_t attempt = 0;  ///< the retry number of that attempt
    };

    basic_reconnect_policy(const backoff_options& backoff,
                           const std::optional<circuit_breaker_options>& breaker,
                           std::chrono::nanoseconds healthy_after, URBG generator)
        : backoff_(backoff, generator), healthy_after_(healthy_after) {
        if (breaker) {
            generator.discard(7);  // a different stream than the backoff's
            breaker_.emplace(*breaker, generator);
        }
    }

    /// nullopt: an attempt may start now (a permit is held until its outcome
    /// is reported). Else the breaker is open: the time until it may grant.
    std::optional<duration> begin_attempt(time_point now) {
        if (!breaker_) return std::nullopt;
        permit_ = breaker_->try_acquire(now);
        if (permit_.granted()) return std::nullopt;
        duration wait = permit_.retry_after();
        if (wait <= duration::zero()) wait = duration(1);
        return wait;
    }

    /// The handshake completed: the breaker counts a success.
    void attempt_succeeded(time_point now) {
        if (breaker_) breaker_->record(permit_, call_outcome::success, duration::zero(), now);
        permit_ = {};
        connected_at_ = now;
    }

    /// The attempt failed. Fatal endings say nothing about the server's health.
    void attempt_failed(time_point now, disconnect_action action) {
        if (breaker_) {
            breaker_->record(
                permit_,
                action == disconnect_action::fatal ? call_outcome::ignored : call_outcome::failure,
                duration::zero(), now);
        }
        permit_ = {};
    }

    /// The attempt was abandoned for a reason of the client's own (a topic
    /// change): it counts nowhere.
    void attempt_abandoned(time_point now) {
        if (breaker_) breaker_->record(permit_, call_outcome::ignored, duration::zero(), now);
        permit_ = {};
    }

    /// An established connection ended at `now`: if it lasted `healthy_after`,
    /// the backoff starts over.
    void connection_lost(time_point now) {
        if (connected_at_ && now - *connected_at_ >= healthy_after_) backoff_.reset();
        connected_at_.reset();
    }

    /// The wait before the next attempt. `at_least` is a lower bound (an HTTP
    /// `Retry-After`). `reconnect_slow` takes three backoff steps at once.
    decision next(time_point now, disconnect_action action, duration at_least = duration::zero()) {
        decision d;
        if (action == disconnect_action::fatal) {
            d.kind = decision::give_up;
            return d;
        }
        std::optional<duration> delay = backoff_.next();
        if (action == disconnect_action::reconnect_slow) {
            for (int i = 0; i < 2 && delay; ++i) {
                if (auto more = backoff_.next()) delay = more;
            }
        }
        if (!delay) {
            d.kind = decision::give_up;
            return d;
        }
        d.delay = *delay < at_least ? at_least : *delay;
        d.attempt = static_cast<std::uint32_t>(backoff_.attempts());
        if (breaker_ && breaker_->refresh(now) == circuit_state::open) {
            const duration open_left = breaker_->open_until() - now;
            d.kind = decision::circuit_open;
            if (open_left > d.delay) d.delay = open_left;
        }
        return d;
    }

    /// Replaces the first delay (the SSE `retry:` hint), keeping the count of
    /// attempts made.
    void set_initial_delay(std::chrono::nanoseconds initial) {
        backoff_options o = backoff_.options();
        if (initial <= std::chrono::nanoseconds::zero() || initial == o.initial_delay) return;
        o.initial_delay = initial;
        if (o.max_delay < initial) o.max_delay = initial;
        const std::size_t made = backoff_.attempts();
        backoff_ = basic_backoff<Clock, URBG>(o, backoff_.generator());
        for (std::size_t i = 0; i < made; ++i) (void)backoff_.next();
    }

    /// Starts the schedule over (an explicit `connect()`).
    void reset(time_point now) {
        backoff_.reset();
        if (breaker_) breaker_->reset(now);
        permit_ = {};
        connected_at_.reset();
    }

    /// The retry number of the coming attempt.
    std::uint32_t attempts() const noexcept {
        return static_cast<std::uint32_t>(backoff_.attempts());
    }
    const breaker_type* breaker() const noexcept { return breaker_ ? &*breaker_ : nullptr; }
    const basic_backoff<Clock, URBG>& backoff() const noexcept { return backoff_; }

private:
    basic_backoff<Clock, URBG> backoff_;
    std::optional<breaker_type> breaker_;
    typename breaker_type::permit permit_{};
    std::chrono::nanoseconds healthy_after_;
    std::optional<time_point> connected_at_;
};

/// The position of the last event delivered to the application on one exact
/// topic; decides what to resume from and drops anything at or before it.
class resume_position {
public:
    /// Starts from a position the application stored (`subscribe_options::since`).
    void assign(std::uint64_t offset, std::string_view epoch) {
        known_ = true;
        offset_ = offset;
        epoch_.assign(epoch.data(), epoch.size());
    }

    /// True when there is a position to send as `since`.
    bool known() const noexcept { return known_; }
    std::uint64_t offset() const noexcept { return offset_; }
    const std::string& epoch() const noexcept { return epoch_; }

    /// An event at (offset, epoch): true to deliver it (and remember it),
    /// false for a duplicate (same epoch, not after the last one delivered).
    bool accept(std::uint64_t offset, std::string_view epoch) {
        if (known_ && offset <= offset_ && epoch == epoch_) return false;
        known_ = true;
        offset_ = offset;
        if (epoch != epoch_) epoch_.assign(epoch.data(), epoch.size());
        return true;
    }

    /// A `subscribed` answer with the topic's position. When the gap was
    /// filled (`recovered` after a `since`), the replay follows and the
    /// position stays; otherwise the stream continues from the answer's
    /// position.
    void on_subscribed(bool sent_since, bool recovered, std::uint64_t offset,
                       std::string_view epoch) {
        if (epoch.empty()) return;  // a pattern: no position
        if (sent_since && recovered) return;
        known_ = true;
        offset_ = offset;
        epoch_.assign(epoch.data(), epoch.size());
    }

private:
    bool known_ = false;
    std::uint64_t offset_ = 0;
    std::string epoch_;
};

}  // namespace sluice::detail
