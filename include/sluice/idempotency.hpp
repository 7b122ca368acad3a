// sluice/idempotency.hpp: the cache that makes a repeated publish with the
// same idempotency key a no-op (PROTOCOL.md section 3: "A repeated publish
// with the same idempotency_key on the same topic within 300 s is not
// published again; the reply repeats the first published answer").
//
// Defines `basic_idempotency_cache<Clock>` (alias `idempotency_cache`): a
// bounded map `(topic, key) -> stream_position` whose entries expire after a
// uniform TTL, oldest first. Pure: no threads, no timers, no exceptions on
// user input.
//
// Thread-safety: none; use from the strand that runs publishes.
#pragma once

#include <sluice/publication.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sluice {

/// Remembers the answer of recent publishes that carried an idempotency key.
/// Consult it before the history assigns an offset; remember the position
/// the publish got afterwards, in the same strand handler (so a duplicate
/// cannot slip in between):
///
///     if (const auto* first = cache.find(topic, key)) {
///         reply_published(topic, *first);                 // not published again
///     } else if (auto pub = hist.append(topic, data, name, ts_ms)) {
///         cache.remember(topic, key, pub->position());
///         reply_published(topic, pub->position());
///     }
///
/// An entry lives `ttl` (default 300 s) after `remember`: a repeat at age
/// `< ttl` finds it. At most `max_entries` (default 100 000) are kept; past
/// that the oldest goes, which with one TTL for all is also the next to
/// expire. Keys are 1–64 bytes by the protocol; checking that is the
/// server's job (any byte string works here; a topic over 65535 bytes is never
/// remembered). `find` and `remember` are O(1) average and drop a few expired
/// entries each (bounded work); `expire` drops all that are due.
///
/// Memory: about 240 bytes per entry with a short topic and key (longer ones
/// add their size).
template <class Clock = std::chrono::steady_clock>
class basic_idempotency_cache {
public:
    using clock_type = Clock;                       ///< the clock type
    using time_point = typename Clock::time_point;  ///< the clock's time point

    /// A cache of at most `max_entries` entries (0 disables it: nothing is
    /// remembered) living `ttl` each.
    explicit basic_idempotency_cache(std::size_t max_entries = 100'000,
                                     std::chrono::milliseconds ttl = std::chrono::seconds(300))
        : max_entries_(max_entries), ttl_(ttl) {}

    basic_idempotency_cache(const basic_idempotency_cache&) = delete;
    basic_idempotency_cache& operator=(const basic_idempotency_cache&) = delete;

    /// The position remembered for `(topic, key)` if it is younger than the
    /// TTL, else null. The pointer is valid until the next non-const call.
    const stream_position* find(std::string_view topic, std::string_view key,
                                time_point now = Clock::now()) {
        expire_some(now, bounded_work);
        if (!make_key(topic, key)) return nullptr;
        auto it = index_.find(std::string_view(scratch_));
        if (it == index_.end()) return nullptr;
        if (expired(*it->second, now)) {
            erase(it);
            return nullptr;
        }
        return &it->second->position;
    }

    /// Remembers that the publish of `(topic, key)` got `position`; replaces
    /// an entry already there. Evicts the oldest entry when full.
    void remember(std::string_view topic, std::string_view key, stream_position position,
                  time_point now = Clock::now()) {
        expire_some(now, bounded_work);
        if (max_entries_ == 0 || !make_key(topic, key)) return;
        auto it = index_.find(std::string_view(scratch_));
        if (it != index_.end()) erase(it);
        while (entries_.size() >= max_entries_) erase(index_.find(entries_.front().key));
        entries_.push_back(node{scratch_, std::move(position), now});
        index_.emplace(std::string_view(entries_.back().key), std::prev(entries_.end()));
    }

    /// Drops every expired entry; returns how many. For a periodic timer.
    std::size_t expire(time_point now = Clock::now()) { return expire_some(now, SIZE_MAX); }

    /// Entries held now (expired ones not yet dropped included).
    std::size_t size() const noexcept { return entries_.size(); }

private:
    static constexpr std::size_t bounded_work = 8;

    struct node {
        std::string key;  // 2-byte topic length, topic, idempotency key
        stream_position position;
        time_point at;
    };
    using iterator = typename std::list<node>::iterator;

    bool expired(const node& n, time_point now) const { return now - n.at >= ttl_; }

    bool make_key(std::string_view topic, std::string_view key) {
        if (topic.size() > 0xFFFF) return false;
        scratch_.clear();
        scratch_.push_back(static_cast<char>(topic.size() & 0xFF));
        scratch_.push_back(static_cast<char>(topic.size() >> 8));
        scratch_.append(topic).append(key);
        return true;
    }

    void erase(typename std::unordered_map<std::string_view, iterator>::iterator it) {
        iterator n = it->second;
        index_.erase(it);
        entries_.erase(n);
    }

    std::size_t expire_some(time_point now, std::size_t max_work) {
        std::size_t done = 0;
        while (done < max_work && !entries_.empty() && expired(entries_.front(), now)) {
            erase(index_.find(entries_.front().key));
            ++done;
        }
        return done;
    }

    std::size_t max_entries_;
    std::chrono::milliseconds ttl_;
    std::list<node> entries_;  // oldest first
    // Keys view the string inside their own list node, which never moves.
    std::unordered_map<std::string_view, iterator> index_;
    std::string scratch_;
};

/// The idempotency cache on the steady clock.
using idempotency_cache = basic_idempotency_cache<>;

}  // namespace sluice
