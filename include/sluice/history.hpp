// sluice/history.hpp: per-topic history, the single source of offsets, and
// recovery (the server side of PROTOCOL.md section 3.2).
//
// Defines `history_options`, `history_counters`, `recovery` and
// `basic_history<Clock>` (alias `history`). Every publish to a topic gets the
// next offset (1, 2, 3, …) within the topic's epoch, a 16-hex-digit string
// drawn from the OS's secure generator when the topic's metadata is created.
// The last N events of a topic are kept for a TTL, within a global byte
// budget; each topic's epoch and top offset are kept much longer (24 h after
// its last publish by default) and for at most `max_topics` topics.
//
// Guarantees: `recover` answers either exactly the events after
// `since.offset` up to the top, or "not recovered" with the current position;
// never a partial range. Nothing here throws on user input; bad options throw
// `std::invalid_argument` at construction (abort with -fno-exceptions).
//
// Thread-safety: a history is not thread-safe; call it from one strand. The
// publications it hands out are immutable and may cross threads.
#pragma once

#include <sluice/detail/history_epoch.hpp>
#include <sluice/detail/history_ring.hpp>
#include <sluice/detail/json_string.hpp>
#include <sluice/detail/throw.hpp>
#include <sluice/error.hpp>
#include <sluice/publication.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

/// Retention settings of a `basic_history`. Defaults are those of
/// PROTOCOL.md and of `sluice-hub`'s flags.
///
///     sluice::history_options o;
///     o.max_events_per_topic = 100;               // --history 100
///     o.event_ttl = std::chrono::seconds(60);     // --history-ttl 60
///     sluice::history h(o);
struct history_options {
    /// Events kept per topic (`--history`). 0 keeps no events: positions are
    /// still kept, and `since` equal to the top still recovers. At most 2^30.
    std::size_t max_events_per_topic = 1000;
    /// How long an event is kept after its publish (`--history-ttl`); an
    /// event appended at `t` is kept while `now < t + event_ttl`.
    std::chrono::milliseconds event_ttl = std::chrono::seconds(300);
    /// How long a topic's epoch and top offset are kept after its last
    /// publish (for a topic never published to: after the last `position` or
    /// `recover` that asked for it). Must be at least `event_ttl`.
    std::chrono::milliseconds metadata_ttl = std::chrono::hours(24);
    /// Global budget for retained events, in bytes as counted by
    /// `publication::memory_bytes()` plus the slot in the topic's ring. Past
    /// it, events of the least recently published topics go first.
    std::size_t max_bytes = std::size_t{256} * 1024 * 1024;
    /// Most topics with metadata (at least 1). Past it, the least recently
    /// used never-published topic goes first, then the least recently
    /// published one; an evicted topic gets a new epoch when next used.
    std::size_t max_topics = 1'000'000;
    /// Default most events one `recover` replays (`--replay-limit`).
    std::size_t replay_limit = 1000;
    /// Source of the 64 random bits of each new epoch. Empty (the default):
    /// the OS's cryptographically secure generator (getrandom() on Linux,
    /// else std::random_device). Tests inject a deterministic one; a
    /// production source must never repeat across restarts.
    std::function<std::uint64_t()> epoch_source;
};

/// What a history holds and what it has dropped, for metrics.
struct history_counters {
    std::uint64_t events_appended = 0;            ///< successful `append` calls
    std::uint64_t events_evicted_by_count = 0;    ///< over `max_events_per_topic`
    std::uint64_t events_evicted_by_ttl = 0;      ///< older than `event_ttl`
    std::uint64_t events_evicted_by_bytes = 0;    ///< over `max_bytes` (or alone larger)
    std::uint64_t events_evicted_with_topic = 0;  ///< dropped with a topic evicted by `max_topics`
    std::uint64_t topics_evicted_by_ttl = 0;      ///< metadata older than `metadata_ttl`
    std::uint64_t topics_evicted_by_max_topics = 0;  ///< over `max_topics`
    std::size_t topics = 0;                          ///< topics with metadata now
    std::size_t events = 0;                          ///< events retained now
    std::size_t bytes = 0;                           ///< bytes charged to `max_bytes` now
};

/// The answer of `basic_history::recover`.
struct recovery {
    /// True when `events` is exactly the events after `since.offset` up to
    /// the top (possibly none); false means "not recoverable": nothing to
    /// replay, the client starts live from `position`.
    bool recovered = false;
    /// The topic's current top: the first live event has offset
    /// `position.offset + 1` and this epoch.
    stream_position position;
    /// When recovered: offsets `since.offset + 1` … `position.offset`, in
    /// order, unfiltered. Empty otherwise.
    std::vector<publication_ptr> events;
};

/// Per-topic history and offsets. See the header comment and
/// docs/history.md.
///
/// Replay-then-live without gap or duplicate: the history assigns offsets,
/// and the server runs `append` + fan-out, and `recover` (or `position`) +
/// registering the subscription, as single handlers on one strand. Then no
/// publish can fall between the position read and the registration, and the
/// first live event the new subscription gets is `position.offset + 1`:
///
///     // on the hub's strand, handling `subscribe` with `since`:
///     auto r = hist.recover(topic, since);      // position and events, one step
///     subs.add(conn, topic);                    // same handler: nothing interleaves
///     reply_subscribed(r.recovered, r.position);
///     for (auto& e : r.events) if (filter.matches(e->data())) conn.send(e);
///
/// Filters: recovery returns unfiltered events; a filtered subscription
/// re-parses `data()` of each (no parsed form is kept).
///
/// Memory: see `history_options::max_bytes` (events) and `max_topics`
/// (roughly 200 bytes of metadata per topic, plus the name past 15 bytes).
///
/// Expiry is lazy (a topic is cleaned when it is used) plus `expire()`, which
/// the server calls from a timer with bounded work per call.
///
/// Thread-safety: none; use from one strand.
template <class Clock = std::chrono::steady_clock>
class basic_history {
public:
    using clock_type = Clock;                       ///< the clock type
    using time_point = typename Clock::time_point;  ///< the clock's time point

    /// A history with `options`. Throws `std::invalid_argument` (aborts with
    /// -fno-exceptions) when `max_topics` is 0, `metadata_ttl` is not
    /// positive or shorter than `event_ttl`, `event_ttl` is negative, or
    /// `max_events_per_topic > 2^30`.
    explicit basic_history(history_options options = {}) : options_(std::move(options)) {
        if (options_.max_topics == 0) detail::throw_invalid_argument("history: max_topics is 0");
        if (options_.event_ttl.count() < 0 || options_.metadata_ttl.count() <= 0) {
            detail::throw_invalid_argument("history: negative TTL or zero metadata_ttl");
        }
        if (options_.metadata_ttl < options_.event_ttl) {
            detail::throw_invalid_argument("history: metadata_ttl shorter than event_ttl");
        }
        if (options_.max_events_per_topic > (std::size_t{1} << 30)) {
            detail::throw_invalid_argument("history: max_events_per_topic above 2^30");
        }
    }

    basic_history(const basic_history&) = delete;
    basic_history& operator=(const basic_history&) = delete;
    /// Moves every topic; the source is left empty.
    basic_history(basic_history&& other) noexcept { move_from(other); }
    /// Replaces the content with `other`'s; `other` is left empty.
    basic_history& operator=(basic_history&& other) noexcept {
        if (this != &other) move_from(other);
        return *this;
    }
    ~basic_history() = default;

    /// The topic's current position: its top offset and epoch. For a topic
    /// never published to (or evicted), creates its metadata: offset 0 and the
    /// epoch its first publish will get. This is what `subscribed` reports for
    /// an exact topic; the first live event after it has offset
    /// `offset + 1`. For a string outside the topic grammar's characters,
    /// `{0, ""}` and nothing is created. O(1) average.
    ///
    ///     auto p = hist.position("prices:AAPL");   // {0, "9c0f…"} before any publish
    stream_position position(std::string_view topic, time_point now = Clock::now()) {
        topic_state* t = use(topic, now);
        if (t == nullptr) return {};
        return {t->top, std::string(epoch_of(*t))};
    }

    /// Publishes `data` to `topic`: assigns the next offset, creates the
    /// publication (see `publication::create`) with the topic's epoch and
    /// `ts_ms` (server wall-clock time, ms since the Unix epoch, for the
    /// `ts` field), and retains it under the retention rules. Returns null
    /// and consumes no offset when the topic, the event name or the data is
    /// invalid (the hub validates them first). O(1) amortized plus the size of
    /// `data`.
    ///
    ///     rapidjson::Document d; d.Parse(R"({"p":1})");
    ///     auto pub = hist.append("prices:AAPL", d, "", now_ms);
    publication_ptr append(std::string_view topic, const rapidjson::Value& data,
                           std::string_view event_name, std::int64_t ts_ms,
                           time_point now = Clock::now()) {
        std::error_code ignored;
        return append(topic, data, event_name, ts_ms, ignored, now);
    }

    /// As above; on failure also sets `ec` to `errc::invalid_topic` or
    /// `errc::bad_request` (cleared on success).
    publication_ptr append(std::string_view topic, const rapidjson::Value& data,
                           std::string_view event_name, std::int64_t ts_ms, std::error_code& ec,
                           time_point now = Clock::now()) {
        ec.clear();
        if (!detail::is_name(topic, 1, detail::max_topic_size)) {
            ec = make_error_code(errc::invalid_topic);
            return nullptr;
        }
        topic_state* t = find_or_create(topic, now);
        auto made = publication::create(topic, t->top + 1, epoch_of(*t), ts_ms, data, event_name);
        if (!made) {
            ec = made.error;
            return nullptr;
        }
        const bool first = t->top == 0;
        ++t->top;
        t->touched = now;
        unlink_meta(t, first ? unpublished_ : published_);
        push_meta(t, published_);
        ++counters_.events_appended;
        trim_expired(t, now);
        retain(t, made.publication, now);
        expire(now, 2);  // amortized background cleaning
        return std::move(made.publication);
    }

    /// Recovery for a subscription with `since` (PROTOCOL.md 3.2). Recovered
    /// when `since.epoch` is the topic's epoch and either `since.offset` is the
    /// top (no events, even with `max_events_per_topic == 0`), or every event
    /// after it is still retained and they are at most `limit`; then `events`
    /// holds exactly those. Otherwise not recovered, with no events. Either
    /// way `position` is the current top, which the first live event follows:
    /// register the subscription in the same strand handler (see the class
    /// comment). Creates the topic's metadata like `position`. O(1) to find
    /// the first event, plus one pointer copy per event returned.
    ///
    ///     auto r = hist.recover("prices:AAPL", {41, "9c0f…"}, 1000);
    recovery recover(std::string_view topic, const stream_position& since, std::size_t limit,
                     time_point now = Clock::now()) {
        recovery r;
        topic_state* t = use(topic, now);
        if (t == nullptr) return r;
        trim_expired(t, now);
        r.position = {t->top, std::string(epoch_of(*t))};
        if (since.epoch != epoch_of(*t) || since.offset > t->top) return r;
        const std::uint64_t missed = t->top - since.offset;
        if (missed > limit || missed > t->events.size()) return r;
        r.recovered = true;
        const std::size_t size = t->events.size();
        r.events.reserve(static_cast<std::size_t>(missed));
        for (std::size_t i = size - static_cast<std::size_t>(missed); i < size; ++i) {
            r.events.push_back(t->events[i].pub);
        }
        return r;
    }

    /// `recover` with `options().replay_limit` as the limit.
    recovery recover(std::string_view topic, const stream_position& since,
                     time_point now = Clock::now()) {
        return recover(topic, since, options_.replay_limit, now);
    }

    /// Background expiry, for a periodic timer: drops topics whose metadata
    /// outlived `metadata_ttl`, then expired events of the least recently
    /// published topics, doing at most about `max_work` units (one per event
    /// or topic dropped). Returns the units done; less than `max_work` means
    /// nothing more was due. An expired event that this leaves behind (in a
    /// topic published within the TTL) is dropped at the topic's next use and
    /// never recovered; it is reclaimed at most one TTL late.
    ///
    ///     timer handler: hist.expire(std::chrono::steady_clock::now(), 10000);
    std::size_t expire(time_point now = Clock::now(), std::size_t max_work = 10000) {
        std::size_t work = 0;
        while (work < max_work) {
            topic_state* t = nullptr;
            if (unpublished_.head && meta_expired(*unpublished_.head, now)) {
                t = unpublished_.head;
            } else if (published_.head && meta_expired(*published_.head, now)) {
                t = published_.head;
            } else {
                break;
            }
            work += 1 + t->events.size();
            counters_.topics_evicted_by_ttl += 1;
            remove_topic(t, counters_.events_evicted_by_ttl);
        }
        while (work < max_work && with_events_.head != nullptr) {
            topic_state* t = with_events_.head;
            while (work < max_work && !t->events.empty() && event_expired(t->events.front(), now)) {
                pop_event(t);
                ++counters_.events_evicted_by_ttl;
                ++work;
            }
            if (!t->events.empty()) break;
        }
        return work;
    }

    /// Counters for metrics; `topics`, `events` and `bytes` are current.
    const history_counters& counters() const noexcept { return counters_; }
    /// The options this history was built with.
    const history_options& options() const noexcept { return options_; }

private:
    struct entry {
        publication_ptr pub;
        time_point at{};
    };

    struct topic_state {
        std::string name;
        char epoch[detail::epoch_size];
        std::uint64_t top = 0;
        time_point touched{};  // last publish, or last use before the first
        topic_state* meta_prev = nullptr;
        topic_state* meta_next = nullptr;
        topic_state* ev_prev = nullptr;
        topic_state* ev_next = nullptr;
        bool in_events_list = false;
        detail::history_ring<entry> events;
    };

    struct list {
        topic_state* head = nullptr;
        topic_state* tail = nullptr;
    };

    static std::string_view epoch_of(const topic_state& t) noexcept {
        return {t.epoch, detail::epoch_size};
    }

    bool meta_expired(const topic_state& t, time_point now) const {
        return now - t.touched >= options_.metadata_ttl;
    }
    bool event_expired(const entry& e, time_point now) const {
        return now - e.at >= options_.event_ttl;
    }
    static std::size_t charge(const publication_ptr& p) noexcept {
        return p->memory_bytes() + sizeof(entry);
    }

    // Intrusive lists: `meta` links (published_ or unpublished_, ordered by
    // `touched`) and `ev` links (with_events_, ordered by last publish).
    static void push_meta(topic_state* t, list& l) noexcept {
        t->meta_prev = l.tail;
        t->meta_next = nullptr;
        (l.tail ? l.tail->meta_next : l.head) = t;
        l.tail = t;
    }
    static void unlink_meta(topic_state* t, list& l) noexcept {
        (t->meta_prev ? t->meta_prev->meta_next : l.head) = t->meta_next;
        (t->meta_next ? t->meta_next->meta_prev : l.tail) = t->meta_prev;
        t->meta_prev = t->meta_next = nullptr;
    }
    void push_events(topic_state* t) noexcept {
        t->ev_prev = with_events_.tail;
        t->ev_next = nullptr;
        (with_events_.tail ? with_events_.tail->ev_next : with_events_.head) = t;
        with_events_.tail = t;
        t->in_events_list = true;
    }
    void unlink_events(topic_state* t) noexcept {
        if (!t->in_events_list) return;
        (t->ev_prev ? t->ev_prev->ev_next : with_events_.head) = t->ev_next;
        (t->ev_next ? t->ev_next->ev_prev : with_events_.tail) = t->ev_prev;
        t->ev_prev = t->ev_next = nullptr;
        t->in_events_list = false;
    }

    std::uint64_t next_epoch_bits() {
        return options_.epoch_source ? options_.epoch_source() : secure_();
    }

    topic_state* find_live(std::string_view topic, time_point now) {
        auto it = topics_.find(topic);
        if (it == topics_.end()) return nullptr;
        topic_state* t = it->second.get();
        if (meta_expired(*t, now)) {
            counters_.topics_evicted_by_ttl += 1;
            remove_topic(t, counters_.events_evicted_by_ttl);
            return nullptr;
        }
        return t;
    }

    topic_state* find_or_create(std::string_view topic, time_point now) {
        if (topic_state* t = find_live(topic, now)) return t;
        if (topics_.size() >= options_.max_topics) {
            topic_state* victim = unpublished_.head ? unpublished_.head : published_.head;
            counters_.topics_evicted_by_max_topics += 1;
            remove_topic(victim, counters_.events_evicted_with_topic);
        }
        auto state = std::make_unique<topic_state>();
        state->name.assign(topic.data(), topic.size());
        detail::format_epoch(next_epoch_bits(), state->epoch);
        state->touched = now;
        topic_state* t = state.get();
        push_meta(t, unpublished_);
        topics_.emplace(std::string_view(t->name), std::move(state));
        counters_.topics = topics_.size();
        return t;
    }

    // find_or_create for readers: refreshes a never-published topic's TTL.
    topic_state* use(std::string_view topic, time_point now) {
        if (!detail::is_name(topic, 1, detail::max_topic_size)) return nullptr;
        topic_state* t = find_or_create(topic, now);
        if (t->top == 0) {
            t->touched = now;
            unlink_meta(t, unpublished_);
            push_meta(t, unpublished_);
        }
        return t;
    }

    void pop_event(topic_state* t) {
        counters_.bytes -= charge(t->events.front().pub);
        --counters_.events;
        t->events.pop_front();
        if (t->events.empty()) unlink_events(t);
    }

    void trim_expired(topic_state* t, time_point now) {
        while (!t->events.empty() && event_expired(t->events.front(), now)) {
            pop_event(t);
            ++counters_.events_evicted_by_ttl;
        }
    }

    void retain(topic_state* t, const publication_ptr& pub, time_point now) {
        if (options_.max_events_per_topic == 0) return;
        const std::size_t bytes = charge(pub);
        if (bytes > options_.max_bytes) {
            // It can never fit; older events of the topic would precede a gap.
            counters_.events_evicted_by_bytes += t->events.size() + 1;
            while (!t->events.empty()) pop_event(t);
            return;
        }
        if (t->events.size() >= options_.max_events_per_topic) {
            pop_event(t);
            ++counters_.events_evicted_by_count;
        }
        t->events.push_back(entry{pub, now});
        counters_.bytes += bytes;
        ++counters_.events;
        unlink_events(t);
        push_events(t);
        while (counters_.bytes > options_.max_bytes) {
            pop_event(with_events_.head);
            ++counters_.events_evicted_by_bytes;
        }
    }

    void remove_topic(topic_state* t, std::uint64_t& events_counter) {
        events_counter += t->events.size();
        while (!t->events.empty()) pop_event(t);
        unlink_meta(t, t->top == 0 ? unpublished_ : published_);
        topics_.erase(topics_.find(std::string_view(t->name)));
        counters_.topics = topics_.size();
    }

    void move_from(basic_history& other) noexcept {
        options_ = std::move(other.options_);
        topics_ = std::move(other.topics_);
        published_ = std::exchange(other.published_, list{});
        unpublished_ = std::exchange(other.unpublished_, list{});
        with_events_ = std::exchange(other.with_events_, list{});
        counters_ = std::exchange(other.counters_, history_counters{});
        other.topics_.clear();
    }

    history_options options_;
    // Keys view the name inside their own topic_state, which never moves.
    std::unordered_map<std::string_view, std::unique_ptr<topic_state>> topics_;
    list published_;    // published topics, least recently published first
    list unpublished_;  // never-published topics, least recently used first
    list with_events_;  // topics retaining events, least recently published first
    history_counters counters_;
    detail::secure_random_source secure_;
};

/// The history on the steady clock.
using history = basic_history<>;

}  // namespace sluice
