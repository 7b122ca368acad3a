// One timer for every connection deadline of a server.
//
// A connection keeps a single "next wake" deadline (the earliest of its
// handshake, ping, pong, send-age and token deadlines) in this queue instead of
// owning an asio timer, so an idle connection costs no timer and no wakeup of
// its own. Deadlines are rounded up to a coarse tick so that connections due at
// nearly the same time wake in one batch.
//
// Thread-safety: schedule() may be called from any thread; the queue's own
// timer runs on its strand.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <queue>
#include <vector>

namespace sluice::detail {

/// Something woken by the timer queue. `on_wake` is called by posting to the
/// target's own executor; it re-schedules itself if it still has a deadline.
class timed_target {
public:
    virtual ~timed_target() = default;
    virtual void wake() = 0;
};

class timer_queue : public std::enable_shared_from_this<timer_queue> {
public:
    using clock = std::chrono::steady_clock;

    timer_queue(asio::any_io_executor executor, clock::duration tick)
        : strand_(asio::make_strand(executor)), timer_(strand_), tick_(tick) {}

    /// Wakes `target` at or shortly after `deadline` (at most one tick late),
    /// unless it has been destroyed by then.
    void schedule(const std::weak_ptr<timed_target>& target, clock::time_point deadline) {
        deadline = round_up(deadline);
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopped_) return;
        entries_.push(entry{deadline, target});
        if (!armed_ || deadline < armed_for_) {
            armed_ = true;
            armed_for_ = deadline;
            asio::post(strand_, [self = shared_from_this(), deadline] { self->arm(deadline); });
        }
    }

    /// Cancels the timer and forgets every entry; schedule() is a no-op after.
    void stop() {
        std::lock_guard<std::mutex> lock(mutex_);
        stopped_ = true;
        entries_ = {};
        asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
    }

    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return entries_.size();
    }

private:
    struct entry {
        clock::time_point deadline;
        std::weak_ptr<timed_target> target;
        bool operator>(const entry& other) const { return deadline > other.deadline; }
    };

    clock::time_point round_up(clock::time_point t) const {
        auto ticks = (t.time_since_epoch() + tick_ - clock::duration(1)) / tick_;
        return clock::time_point(ticks * tick_);
    }

    // On the strand.
    void arm(clock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
            if (!ec) self->fire();
        });
    }

    // On the strand.
    void fire() {
        std::vector<std::shared_ptr<timed_target>> due;
        clock::time_point next{};
        bool more = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            auto now = clock::now();
            while (!entries_.empty() && entries_.top().deadline <= now) {
                if (auto target = entries_.top().target.lock()) due.push_back(std::move(target));
                entries_.pop();
            }
            armed_ = !entries_.empty() && !stopped_;
            if (armed_) {
                next = armed_for_ = entries_.top().deadline;
                more = true;
            }
        }
        if (more) arm(next);
        for (auto& target : due) target->wake();
    }

    asio::strand<asio::any_io_executor> strand_;
    asio::steady_timer timer_;
    const clock::duration tick_;
    mutable std::mutex mutex_;
    std::priority_queue<entry, std::vector<entry>, std::greater<entry>> entries_;
    bool armed_ = false;
    bool stopped_ = false;
    clock::time_point armed_for_{};
};

}  // namespace sluice::detail
