// sluice/outbox.hpp: the client-side offline outbox, a bounded queue of
// publishes waiting to be sent or acknowledged, as a pure state machine.
//
// Defines `sluice::overflow_policy`, `sluice::outbox_priority`,
// `sluice::outbox_outcome`, `sluice::outbox_options`, `sluice::outbox_push_options`,
// `sluice::outbox_push_result`, `sluice::outbox_counters`, `sluice::outbox_ack`,
// `sluice::outbox_message`, `sluice::basic_outbox_completion` and
// `sluice::basic_outbox<Message, Clock, URBG, Ack>` with its alias `sluice::outbox`.
//
// Guarantees: capacity by count and by bytes is never exceeded; entries are
// handed out for sending in push order, and entries put back by `on_disconnect()`
// go out again, in their original order, before any newer entry, with the same
// idempotency key; every accepted message gets exactly one outcome (sent, failed,
// expired, dropped, cancelled) through the completion handler, and every refused
// push is reported by its return value, so nothing is lost silently; a `critical`
// message is never evicted by the overflow policy, and an entry in flight is
// never evicted nor expired while it is in flight. No threads, no timers, no
// locks, no exceptions on user input (only bad options at construction throw).
//
// Thread-safety: none; call every member from one strand.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <sluice/detail/throw.hpp>
#include <sluice/error.hpp>

namespace sluice {

/// What a push does when the message does not fit (count or bytes). In every
/// policy only *pending normal* entries can be evicted: a `critical` entry and an
/// entry in flight are never evicted, and nothing is evicted unless the eviction
/// makes the new message fit (otherwise the push is refused and the outbox is
/// left unchanged).
///
/// | policy        | normal push, no room                  | critical push, no room |
/// |---------------|---------------------------------------|------------------------|
/// | `drop_oldest` | evict the oldest pending normal ones  | same                   |
/// | `drop_newest` | refused (the newest message is lost)  | evict the newest pending normal ones |
/// | `reject`      | refused                               | refused                |
///
/// Evicted entries complete with `outbox_outcome::dropped`; a refused push
/// returns `std::errc::no_buffer_space` and never reaches the handler.
///
/// Thread-safety: a plain enumeration.
enum class overflow_policy {
    drop_oldest,  ///< make room by dropping the oldest pending normal entries
    drop_newest,  ///< refuse a normal newcomer; a critical one evicts the newest normal ones
    reject,       ///< refuse every newcomer that does not fit; never evict
};

/// The priority of one message. `critical` messages are never evicted by the
/// overflow policy (they still expire at their TTL).
enum class outbox_priority : std::uint8_t {
    normal,    ///< may be evicted by `drop_oldest`, and by a critical push under `drop_newest`
    critical,  ///< never evicted; refused when only critical and in-flight entries fill the outbox
};

/// How an accepted message left the outbox. Delivered exactly once per accepted
/// message through the completion handler.
enum class outbox_outcome : std::uint8_t {
    sent,       ///< acknowledged by the server (`acknowledge()`); carries the ack
    failed,     ///< the server answered with an error (`fail()`); carries it
    expired,    ///< its TTL passed while it was pending (see `basic_outbox` on in-flight entries)
    dropped,    ///< evicted by the overflow policy to make room for a newer message
    cancelled,  ///< removed by `clear()`
};

/// The lower-case name of `p` (`"drop_oldest"`, …), for logs and metric labels.
constexpr std::string_view to_string(overflow_policy p) noexcept {
    switch (p) {
    case overflow_policy::drop_oldest: return "drop_oldest";
    case overflow_policy::drop_newest: return "drop_newest";
    case overflow_policy::reject: return "reject";
    }
    return "unknown";
}

/// The lower-case name of `o` (`"sent"`, `"expired"`, …), for logs and metric labels.
constexpr std::string_view to_string(outbox_outcome o) noexcept {
    switch (o) {
    case outbox_outcome::sent: return "sent";
    case outbox_outcome::failed: return "failed";
    case outbox_outcome::expired: return "expired";
    case outbox_outcome::dropped: return "dropped";
    case outbox_outcome::cancelled: return "cancelled";
    }
    return "unknown";
}

/// The settings of a `basic_outbox`. A plain struct; the constructor rejects
/// (throws `std::invalid_argument`) a zero capacity or a TTL that is not positive.
///
/// Example: `sluice::outbox_options o; o.max_messages = 100; o.ttl = std::chrono::seconds(30);`
struct outbox_options {
    /// Most entries held at once, pending and in flight together. Default 1000.
    std::size_t max_messages = 1000;
    /// Most bytes held at once (the sum of the sizes given at push). Default 1 MiB,
    /// the protocol's inbound message limit: one maximal publish always fits.
    std::size_t max_bytes = 1024 * 1024;
    /// Default time to live of a message, from its push. Default 60 s. Keep it at
    /// or below 300 s, the server's idempotency window (PROTOCOL.md section 3):
    /// an entry is only ever re-sent before its deadline, so a TTL within that
    /// window means a re-send is always recognised as a duplicate.
    /// `std::chrono::nanoseconds::max()` means "never expires".
    std::chrono::nanoseconds ttl = std::chrono::seconds(60);
    /// What a push that does not fit does. Default `overflow_policy::drop_oldest`.
    overflow_policy overflow = overflow_policy::drop_oldest;
};

/// Per-message settings of a push. All optional.
///
/// Example: `sluice::outbox_push_options p; p.priority = sluice::outbox_priority::critical;`
struct outbox_push_options {
    /// The idempotency key the app chose: 1–64 bytes of valid UTF-8 (else the push
    /// is refused with `errc::bad_request`). Unset: the outbox generates 32
    /// lower-case hex characters. The view is copied during the push.
    std::optional<std::string_view> idempotency_key{};
    /// Default `outbox_priority::normal`.
    outbox_priority priority = outbox_priority::normal;
    /// This message's time to live; zero (the default) means `outbox_options::ttl`.
    /// Negative: refused with `errc::bad_request`.
    std::chrono::nanoseconds ttl{0};
};

/// The identifier of an accepted message: 1, 2, 3, … in push order, never 0,
/// never reused by one outbox. A client can send it as the request `id`.
using outbox_id = std::uint64_t;

/// What `basic_outbox::push` did. Accepted iff `id != 0`; otherwise `error` says
/// why and the message was not kept (the completion handler is not called for it):
/// - `sluice::errc::bad_request`: a bad idempotency key or a negative TTL;
/// - `std::errc::message_size`: the message alone is larger than `max_bytes`;
/// - `std::errc::no_buffer_space`: no room, and the overflow policy refused it.
///
/// `evicted` counts the older entries dropped to make room for an accepted one
/// (each also completes with `outbox_outcome::dropped`).
struct outbox_push_result {
    outbox_id id = 0;         ///< the new entry's id; 0 when refused
    std::error_code error{};  ///< empty iff accepted
    std::size_t evicted = 0;  ///< entries dropped to make room for this one
    /// True iff the message was accepted.
    bool accepted() const noexcept { return id != 0; }
    /// Same as `accepted()`.
    explicit operator bool() const noexcept { return accepted(); }
};

/// Monotonic counters and current levels of one outbox, for metrics. Invariant:
/// `pushed == sent + failed + expired + dropped + cancelled + messages`.
struct outbox_counters {
    std::uint64_t pushed = 0;         ///< pushes accepted
    std::uint64_t rejected = 0;       ///< pushes refused (any reason)
    std::uint64_t sent = 0;           ///< completed `sent`
    std::uint64_t failed = 0;         ///< completed `failed`
    std::uint64_t expired = 0;        ///< completed `expired`
    std::uint64_t dropped = 0;        ///< completed `dropped` (evicted)
    std::uint64_t cancelled = 0;      ///< completed `cancelled`
    std::uint64_t transmissions = 0;  ///< entries handed out by `next_to_send` (re-sends included)
    std::uint64_t retransmissions = 0;  ///< of which re-sends after `on_disconnect`
    std::size_t messages = 0;           ///< entries held now (pending + in flight)
    std::size_t bytes = 0;              ///< bytes held now
    std::size_t in_flight = 0;          ///< entries sent and awaiting their answer now
};

/// The default acknowledgement payload: the position the server gave the
/// publish (the `offset` and `epoch` of a `published` reply).
struct outbox_ack {
    std::uint64_t offset = 0;  ///< the topic offset of the publication
    std::string epoch;         ///< the topic epoch of the publication
};

/// The message of the convenience alias `sluice::outbox`: one WebSocket publish.
struct outbox_message {
    std::string topic;      ///< the topic to publish to
    std::string data_json;  ///< the `data` value, as JSON text
    std::string event;      ///< the optional event name (empty: none)
};

/// The byte size `basic_outbox::push` charges for an `outbox_message` when no
/// size is given: the sum of its three strings. Overload `outbox_size` for your
/// own message type (found by argument-dependent lookup) to get the same
/// convenience, or pass the size to `push` explicitly.
inline std::size_t outbox_size(const outbox_message& m) noexcept {
    return m.topic.size() + m.data_json.size() + m.event.size();
}

/// What the completion handler receives, once per accepted message.
///
/// `error` is empty iff `outcome == sent`; otherwise it is the server's error
/// (`failed`), `std::errc::timed_out` (`expired`), `std::errc::no_buffer_space`
/// (`dropped`) or `std::errc::operation_canceled` (`cancelled`), so a client can
/// forward it as `void(std::error_code, …)`. `ack` points to the ack for `sent`
/// and is null otherwise. `message` is no longer in the outbox: the handler may
/// move from it. `attempts` is how many times it was handed out for sending: an
/// `expired`, `dropped` or `cancelled` entry with `attempts > 0` may have been
/// published. The references are valid during the call only.
template <class Message, class Ack = outbox_ack>
struct basic_outbox_completion {
    outbox_id id;                      ///< the id `push` returned
    outbox_outcome outcome;            ///< how it ended
    std::error_code error;             ///< empty iff `sent`
    const Ack* ack;                    ///< the ack for `sent`, else null
    Message& message;                  ///< the message (may be moved from)
    std::string_view idempotency_key;  ///< the key it was (or would have been) sent with
    outbox_priority priority;          ///< its priority
    std::uint32_t attempts;            ///< times handed out by `next_to_send`
};

namespace detail {

inline constexpr char outbox_hex_digits[] = "0123456789abcdef";

/// Whether `s` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at
/// most U+10FFFF). A key that is not would make the server close the
/// connection (1007) on every re-send.
inline bool outbox_valid_utf8(std::string_view s) noexcept {
    std::size_t i = 0;
    while (i < s.size()) {
        if (s.size() - i >= 8) {  // eight ASCII bytes at a time
            std::uint64_t word;
            std::memcpy(&word, s.data() + i, 8);
            if ((word & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
            if (d < min || d > max) return false;
        }
        i += len;
    }
    return true;
}

/// How many whole bits one draw of URBG provides: the largest b with
/// 2^b - 1 <= max - min.
template <class URBG>
constexpr int outbox_bits_per_draw() noexcept {
    const auto range =
        static_cast<std::uint64_t>((URBG::max)()) - static_cast<std::uint64_t>((URBG::min)());
    int bits = 0;
    while (bits < 64 && (range >> bits) != 0 &&
           ((bits + 1 == 64) || (std::uint64_t{1} << (bits + 1)) - 1 <= range)) {
        ++bits;
    }
    return bits;
}

/// Fills `out` with 32 lower-case hex digits taken from the generator's raw
/// output: each draw gives floor(bits / 4) hex digits, most significant first
/// (two draws of a 64-bit generator: the key is their hex, high digits first).
template <class URBG>
void outbox_generate_key(URBG& gen, char* out) {
    static_assert(std::is_unsigned<typename URBG::result_type>::value,
                  "URBG::result_type must be an unsigned integer type");
    constexpr int digits_per_draw = outbox_bits_per_draw<URBG>() / 4;
    static_assert(digits_per_draw >= 1, "URBG must produce at least 4 bits per draw");
    if constexpr (digits_per_draw >= 16) {
        // The common 64-bit case: two draws, two hex digits per byte.
        for (int half = 0; half < 2; ++half) {
            const std::uint64_t raw =
                static_cast<std::uint64_t>(gen()) - static_cast<std::uint64_t>((URBG::min)());
            for (int byte = 7; byte >= 0; --byte) {
                const auto b = static_cast<unsigned>(raw >> (8 * byte)) & 0xFFu;
                *out++ = outbox_hex_digits[b >> 4];
                *out++ = outbox_hex_digits[b & 0xFu];
            }
        }
    } else {
        int produced = 0;
        while (produced < 32) {
            const std::uint64_t raw =
                static_cast<std::uint64_t>(gen()) - static_cast<std::uint64_t>((URBG::min)());
            for (int d = digits_per_draw - 1; d >= 0 && produced < 32; --d) {
                out[produced++] = outbox_hex_digits[(raw >> (4 * d)) & 0xF];
            }
        }
    }
}

/// A generator seeded with 256 bits from std::random_device when it takes a
/// seed sequence (so that two clients practically never share a key stream),
/// else default-constructed.
template <class URBG>
URBG outbox_seeded_generator() {
    if constexpr (std::is_constructible<URBG, std::seed_seq&>::value) {
        std::random_device device;
        std::array<std::uint32_t, 8> words{};
        for (auto& w : words) w = static_cast<std::uint32_t>(device());
        std::seed_seq seq(words.begin(), words.end());
        return URBG(seq);
    } else {
        return URBG();
    }
}

enum class outbox_state : std::uint8_t { pending, in_flight, done };

/// A growable ring of default-constructed slots that are reused, not destroyed:
/// std::deque would allocate a block every couple of (large) entries. Capacity
/// is a power of two and grows by doubling. `release_memory` gives memory back
/// with hysteresis, so that bursts of a steady size never reallocate.
template <class T>
class outbox_ring {
public:
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::size_t capacity() const noexcept { return slots_.size(); }
    T& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask_]; }
    const T& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & mask_]; }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }
    const T& back() const noexcept { return (*this)[size_ - 1]; }
    /// Appends a recycled slot (holding whatever it held last); the caller sets it.
    T& push_back() {
        if (size_ == slots_.size()) reallocate(slots_.empty() ? min_capacity : 2 * slots_.size());
        T& slot = (*this)[size_++];
        if (size_ > peak_) peak_ = size_;
        return slot;
    }
    /// Forgets the first slot (the caller has emptied it).
    void pop_front() noexcept {
        head_ = (head_ + 1) & mask_;
        --size_;
    }
    /// Forgets the slots from `n` on (the caller has emptied them).
    void truncate(std::size_t n) noexcept { size_ = n; }
    /// Called after removals. Shrinks to `idle_capacity` when empty and larger,
    /// and to twice the peak size when the ring stayed at most a quarter full
    /// over as many calls as it has slots. Amortized O(1).
    void release_memory() {
        if (size_ == 0 && slots_.size() > idle_capacity) {
            reallocate(idle_capacity);
        } else if (++calls_ >= slots_.size()) {
            if (slots_.size() > min_capacity && peak_ * 4 <= slots_.size()) {
                std::size_t capacity = min_capacity;
                while (capacity < 2 * peak_) capacity *= 2;
                reallocate(capacity);
            }
            calls_ = 0;
            peak_ = size_;
        }
    }

private:
    static constexpr std::size_t min_capacity = 16;
    static constexpr std::size_t idle_capacity = 256;

    void reallocate(std::size_t capacity) {
        std::vector<T> next(capacity);
        for (std::size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
        slots_.swap(next);
        head_ = 0;
        mask_ = capacity - 1;
        calls_ = 0;
        peak_ = size_;
    }

    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
    std::size_t mask_ = 0;
    std::size_t calls_ = 0;  // release_memory calls since the last check
    std::size_t peak_ = 0;   // largest size since the last check
};

}  // namespace detail

/// A bounded outbox of messages waiting to be published: the client's queue of
/// unacknowledged publishes, which also holds them while the connection is down.
///
/// Lifecycle of one message: `push` (pending) → `next_to_send` hands it out (in
/// flight) → `acknowledge` (outcome `sent`, with the server's ack) or `fail`
/// (outcome `failed`, with the server's error). `on_disconnect` puts every in-flight
/// entry back to pending; they are handed out again first, in their original
/// order, with the same idempotency key (the server answers a repeated key with
/// its first answer, so a re-send after a lost ack never publishes twice).
///
/// Capacity: at most `max_messages` entries and `max_bytes` bytes, counting
/// pending and in-flight ones. A push that does not fit follows the
/// `overflow_policy`; a message larger than `max_bytes` is always refused.
///
/// TTL: each message has a deadline (push time + TTL). A *pending* entry past its
/// deadline completes `expired` at the next call that takes a `now`
/// (`push`, `next_to_send`, `expire`, `on_disconnect`) — before a push considers
/// evicting anything. An entry *in flight* is not expired while in flight (the
/// server may already have published it; its answer decides); if the connection
/// drops first, `on_disconnect` expires it instead of re-sending it. So an entry
/// is never handed out after its deadline.
///
/// Outcomes go to one handler per outbox (`on_complete`), which keeps per-entry
/// memory small: the message, its size, its deadline, id, a 64-byte inline key
/// and a few bytes of state in a reused slot, plus a 16-byte deadline record — no
/// per-entry allocation besides the message's own. The handler runs
/// synchronously inside the call that completed the entry, after the outbox is
/// consistent again, so it may call any member (push a replacement, send more);
/// it must not destroy the outbox or throw. Without a handler, outcomes are only
/// counted. The destructor completes nothing: call `clear()` first to deliver
/// `cancelled` to what is left.
///
/// Complexity: `push`, `next_to_send`, `acknowledge`, `fail` are O(log n)
/// amortized (n = entries held); an eviction is O(1) amortized under
/// `drop_oldest` (under `drop_newest`, a critical push scans back from the newest
/// entry past critical ones); `on_disconnect` is O(in flight) amortized.
///
/// Thread-safety: none; call from one strand. The generator: the constructor
/// without one seeds `URBG` from std::random_device; pass a seeded generator for
/// reproducible keys in tests (never a fixed seed in production: two clients with
/// the same keys on the same topic would be deduplicated against each other).
///
/// Example:
/// ```
/// sluice::outbox box;
/// box.on_complete([](const sluice::outbox_completion& c) { /* c.outcome, c.error, c.ack */ });
/// box.push({"prices:AAPL", R"({"p":1})", ""});
/// while (auto* e = box.next_to_send()) { /* send e->message() with e->id(), e->idempotency_key()
/// */ } box.acknowledge(1, {7, "epoch"});
/// ```
template <class Message, class Clock = std::chrono::steady_clock, class URBG = std::mt19937_64,
          class Ack = outbox_ack>
class basic_outbox {
public:
    using message_type = Message;                              ///< the message type
    using clock_type = Clock;                                  ///< the clock type
    using time_point = typename Clock::time_point;             ///< the clock's time point
    using duration = typename Clock::duration;                 ///< the clock's duration
    using generator_type = URBG;                               ///< the idempotency keys' generator
    using ack_type = Ack;                                      ///< the acknowledgement payload
    using completion = basic_outbox_completion<Message, Ack>;  ///< what the handler receives
    using completion_handler = std::function<void(const completion&)>;  ///< see `on_complete`

    /// Longest idempotency key accepted, in bytes (PROTOCOL.md section 3).
    static constexpr std::size_t max_key_size = 64;
    /// Length of a generated idempotency key.
    static constexpr std::size_t generated_key_size = 32;

    /// One held message, as `next_to_send` and `find` show it. Valid until the
    /// next non-const call on the outbox.
    class entry {
    public:
        /// The id `push` returned.
        outbox_id id() const noexcept { return id_; }
        /// The message.
        const Message& message() const noexcept { return *message_; }
        /// The idempotency key to send with it, the same on every attempt.
        std::string_view idempotency_key() const noexcept { return {key_.data(), key_size_}; }
        /// Its priority.
        outbox_priority priority() const noexcept { return priority_; }
        /// The byte size charged for it.
        std::size_t bytes() const noexcept { return bytes_; }
        /// When it expires (`time_point::max()`: never).
        time_point deadline() const noexcept { return deadline_; }
        /// How many times `next_to_send` handed it out.
        std::uint32_t attempts() const noexcept { return attempts_; }
        /// True while sent and awaiting its answer.
        bool in_flight() const noexcept { return state_ == detail::outbox_state::in_flight; }

    private:
        friend class basic_outbox;
        outbox_id id_ = 0;
        time_point deadline_{};
        std::size_t bytes_ = 0;
        std::uint32_t attempts_ = 0;
        outbox_priority priority_ = outbox_priority::normal;
        detail::outbox_state state_ = detail::outbox_state::pending;
        bool has_deadline_record_ = false;
        std::uint8_t key_size_ = 0;
        std::array<char, max_key_size> key_{};
        std::optional<Message> message_;
    };

    /// An outbox with a generator seeded from std::random_device. Throws
    /// `std::invalid_argument` (aborts without exceptions) when `max_messages` or
    /// `max_bytes` is 0 or `ttl` is not positive.
    explicit basic_outbox(outbox_options options = {})
        : basic_outbox(options, detail::outbox_seeded_generator<URBG>()) {}

    /// An outbox drawing its generated keys from `generator` (seed it for
    /// reproducible keys). Same option checks.
    basic_outbox(outbox_options options, URBG generator)
        : options_(options), generator_(std::move(generator)) {
        if (options_.max_messages == 0) {
            detail::throw_invalid_argument("outbox_options::max_messages must be > 0");
        }
        if (options_.max_bytes == 0) {
            detail::throw_invalid_argument("outbox_options::max_bytes must be > 0");
        }
        if (options_.ttl <= std::chrono::nanoseconds::zero()) {
            detail::throw_invalid_argument("outbox_options::ttl must be > 0");
        }
    }

    basic_outbox(const basic_outbox&) = delete;
    basic_outbox& operator=(const basic_outbox&) = delete;
    /// Moves every entry, the handler and the generator.
    basic_outbox(basic_outbox&&) = default;
    /// Replaces everything with `other`'s, completing nothing (like the destructor).
    basic_outbox& operator=(basic_outbox&&) = default;
    /// Destroys the held messages without calling the handler (see `clear()`).
    ~basic_outbox() = default;

    /// Sets the handler every outcome goes to (replacing any previous one).
    /// Example: `box.on_complete([&](const auto& c) { if (c.error) log(c.error); });`
    void on_complete(completion_handler handler) { handler_ = std::move(handler); }

    /// Queues `message`, charged `bytes` bytes. First expires what is past its
    /// deadline at `now`, then applies the overflow policy if it does not fit.
    /// Never throws on user input; the result says whether it was accepted.
    /// Eviction outcomes (`dropped`) are delivered before this returns; the new
    /// message's own outcome never is.
    ///
    /// Example: `auto r = box.push(msg, 42); if (!r) report(r.error);`
    outbox_push_result push(Message message, std::size_t bytes,
                            const outbox_push_options& options = {},
                            time_point now = Clock::now()) {
        outbox_push_result result;
        if (options.idempotency_key &&
            (options.idempotency_key->empty() || options.idempotency_key->size() > max_key_size ||
             !detail::outbox_valid_utf8(*options.idempotency_key))) {
            return refuse(result, make_error_code(errc::bad_request));
        }
        if (options.ttl < std::chrono::nanoseconds::zero()) {
            return refuse(result, make_error_code(errc::bad_request));
        }
        if (bytes > options_.max_bytes) {
            return refuse(result, std::make_error_code(std::errc::message_size));
        }
        expire(now);

        std::vector<retired> victims;
        if (!fits(0, 0, bytes)) {
            const bool critical = options.priority == outbox_priority::critical;
            const bool may_evict = options_.overflow == overflow_policy::drop_oldest ||
                                   (options_.overflow == overflow_policy::drop_newest && critical);
            if (!may_evict || !fits(pending_normal_, pending_normal_bytes_, bytes)) {
                return refuse(result, std::make_error_code(std::errc::no_buffer_space));
            }
            const bool oldest_first = options_.overflow == overflow_policy::drop_oldest;
            while (!fits(0, 0, bytes)) {
                victims.push_back(retire(oldest_first ? oldest_evictable() : newest_evictable()));
            }
        }

        entry& e = entries_.push_back();
        e.id_ = next_id_++;
        e.attempts_ = 0;
        e.state_ = detail::outbox_state::pending;
        e.has_deadline_record_ = false;
        e.bytes_ = bytes;
        e.priority_ = options.priority;
        e.deadline_ = deadline_after(
            now, options.ttl == std::chrono::nanoseconds::zero() ? options_.ttl : options.ttl);
        if (options.idempotency_key) {
            e.key_size_ = static_cast<std::uint8_t>(options.idempotency_key->size());
            std::copy(options.idempotency_key->begin(), options.idempotency_key->end(),
                      e.key_.begin());
        } else {
            detail::outbox_generate_key(generator_, e.key_.data());
            e.key_size_ = static_cast<std::uint8_t>(generated_key_size);
        }
        e.message_.emplace(std::move(message));
        ++live_;
        bytes_ += bytes;
        if (e.priority_ == outbox_priority::normal) {
            ++pending_normal_;
            pending_normal_bytes_ += bytes;
        }
        if (e.deadline_ != time_point::max()) add_deadline_record(e);
        ++counters_.pushed;
        result.id = e.id_;
        result.evicted = victims.size();

        prune();
        for (auto& v : victims) {
            deliver(v, outbox_outcome::dropped, std::make_error_code(std::errc::no_buffer_space),
                    nullptr);
        }
        return result;
    }

    /// Queues `message`, charged `outbox_size(message)` bytes (found by
    /// argument-dependent lookup; provided for `outbox_message`). Otherwise as above.
    ///
    /// Example: `box.push({"chat:1", R"({"text":"hi"})", ""});`
    template <class M = Message, class = decltype(outbox_size(std::declval<const M&>()))>
    outbox_push_result push(Message message, const outbox_push_options& options = {},
                            time_point now = Clock::now()) {
        const std::size_t bytes = outbox_size(static_cast<const Message&>(message));
        return push(std::move(message), bytes, options, now);
    }

    /// The next entry to send, marked in flight, or null when none is pending.
    /// Expires what is past its deadline at `now` first. Entries come in push
    /// order, except that entries put back by `on_disconnect` come before all
    /// others (in their own original order). The pointer is valid until the next
    /// non-const call.
    ///
    /// Example: `while (auto* e = box.next_to_send()) write(e->id(), e->message());`
    const entry* next_to_send(time_point now = Clock::now()) {
        expire(now);
        while (send_cursor_ < entries_.size() &&
               entries_[send_cursor_].state_ != detail::outbox_state::pending) {
            ++send_cursor_;
        }
        if (send_cursor_ == entries_.size()) return nullptr;
        entry& e = entries_[send_cursor_++];
        e.state_ = detail::outbox_state::in_flight;
        ++in_flight_;
        if (e.priority_ == outbox_priority::normal) {
            --pending_normal_;
            pending_normal_bytes_ -= e.bytes_;
        }
        ++counters_.transmissions;
        if (e.attempts_ > 0) ++counters_.retransmissions;
        ++e.attempts_;
        return &e;
    }

    /// Completes entry `id` with outcome `sent`, passing `ack` to the handler.
    /// Works in any order and for a pending entry too (the server answered it);
    /// returns false, doing nothing, for an unknown or already completed id (a
    /// duplicate ack). O(log n).
    ///
    /// Example: `box.acknowledge(reply_id, {offset, epoch});`
    bool acknowledge(outbox_id id, const Ack& ack) {
        const std::size_t i = index_of(id);
        if (i == npos) return false;
        finish(i, outbox_outcome::sent, std::error_code{}, &ack);
        return true;
    }

    /// Completes entry `id` with outcome `failed` and `error` (a default
    /// `error` becomes `errc::internal`, so a failure always carries one).
    /// Returns false for an unknown or completed id. For a transient error
    /// (`rate_limited`, `unavailable`) a client may prefer `on_disconnect()` and a
    /// re-send after a delay: the idempotency key makes that safe.
    ///
    /// Example: `box.fail(reply_id, sluice::errc_from_wire(code));`
    bool fail(outbox_id id, std::error_code error) {
        const std::size_t i = index_of(id);
        if (i == npos) return false;
        if (!error) error = make_error_code(errc::internal);
        finish(i, outbox_outcome::failed, error, nullptr);
        return true;
    }

    /// Puts every in-flight entry back to pending (the connection dropped, their
    /// answers will never come), so that `next_to_send` hands them out again first,
    /// in their original order; those past their deadline at `now` complete
    /// `expired` instead. Returns how many entries expired. O(in flight + expired
    /// log n).
    ///
    /// Example: `void on_close() { box.on_disconnect(); }`
    std::size_t on_disconnect(time_point now = Clock::now()) {
        for (std::size_t i = 0; i < send_cursor_ && i < entries_.size(); ++i) {
            entry& e = entries_[i];
            if (e.state_ != detail::outbox_state::in_flight) continue;
            e.state_ = detail::outbox_state::pending;
            --in_flight_;
            if (e.priority_ == outbox_priority::normal) {
                ++pending_normal_;
                pending_normal_bytes_ += e.bytes_;
            }
            if (e.deadline_ != time_point::max() && !e.has_deadline_record_) {
                add_deadline_record(e);
            }
        }
        send_cursor_ = 0;
        evict_cursor_ = 0;
        return expire(now);
    }

    /// Completes every pending entry whose deadline is at or before `now` with
    /// `expired`, earliest deadline first. In-flight entries are left alone.
    /// Returns how many expired. O(1) when none did.
    std::size_t expire(time_point now = Clock::now()) {
        std::size_t expired = 0;
        while (!deadlines_.empty() && deadlines_.front().first <= now) {
            const outbox_id id = deadlines_.front().second;
            std::pop_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
            deadlines_.pop_back();
            const std::size_t i = index_of(id);
            if (i == npos) continue;
            entry& e = entries_[i];
            e.has_deadline_record_ = false;
            if (e.state_ != detail::outbox_state::pending) continue;
            finish(i, outbox_outcome::expired, std::make_error_code(std::errc::timed_out), nullptr);
            ++expired;
        }
        return expired;
    }

    /// Completes every entry held now, pending and in flight, with `cancelled`,
    /// oldest first (entries pushed by the handler meanwhile stay). Returns how
    /// many. Call it before destroying an outbox whose outcomes matter.
    std::size_t clear() {
        if (entries_.empty()) return 0;
        const outbox_id last = entries_.back().id_;
        std::size_t cancelled = 0;
        std::size_t i = 0;
        while (i < entries_.size() && entries_[i].id_ <= last) {
            if (entries_[i].state_ == detail::outbox_state::done) {
                ++i;
                continue;
            }
            const outbox_id id = entries_[i].id_;
            finish(i, outbox_outcome::cancelled,
                   std::make_error_code(std::errc::operation_canceled), nullptr);
            ++cancelled;
            i = first_index_after(id);
        }
        return cancelled;
    }

    /// The entry with this id while it is held, else null. O(log n).
    const entry* find(outbox_id id) const noexcept {
        const std::size_t i = index_of(id);
        return i == npos ? nullptr : &entries_[i];
    }

    /// Entries held (pending and in flight).
    std::size_t size() const noexcept { return live_; }
    /// True when nothing is held.
    bool empty() const noexcept { return live_ == 0; }
    /// Bytes held.
    std::size_t bytes() const noexcept { return bytes_; }
    /// Entries in flight.
    std::size_t in_flight() const noexcept { return in_flight_; }
    /// Entries waiting to be handed out.
    std::size_t pending() const noexcept { return live_ - in_flight_; }
    /// The counters, with the current levels filled in.
    outbox_counters counters() const noexcept {
        outbox_counters c = counters_;
        c.messages = live_;
        c.bytes = bytes_;
        c.in_flight = in_flight_;
        return c;
    }
    /// The options given at construction.
    const outbox_options& options() const noexcept { return options_; }
    /// The generator (to inspect or reseed it in tests).
    URBG& generator() noexcept { return generator_; }

private:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    using deadline_record = std::pair<time_point, outbox_id>;

    /// An entry taken out of the ring, waiting for its outcome to be delivered.
    struct retired {
        outbox_id id;
        outbox_priority priority;
        std::uint32_t attempts;
        std::uint8_t key_size;
        std::array<char, max_key_size> key;
        Message message;
    };

    outbox_push_result& refuse(outbox_push_result& r, std::error_code ec) noexcept {
        ++counters_.rejected;
        r.error = ec;
        return r;
    }

    /// Whether a new message of `bytes` fits once `count`/`freed` of the held
    /// ones are gone.
    bool fits(std::size_t count, std::size_t freed, std::size_t bytes) const noexcept {
        return live_ - count < options_.max_messages &&
               bytes <= options_.max_bytes - (bytes_ - freed);
    }

    static time_point deadline_after(time_point now, std::chrono::nanoseconds ttl) noexcept {
        using seconds = std::chrono::duration<double>;
        const seconds room = time_point::max() - now;
        if (seconds(ttl) >= room) return time_point::max();
        return now + std::chrono::duration_cast<duration>(ttl);
    }

    void add_deadline_record(entry& e) {
        deadlines_.emplace_back(e.deadline_, e.id_);
        std::push_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
        e.has_deadline_record_ = true;
    }

    std::size_t index_of(outbox_id id) const noexcept {
        const std::size_t i = first_index_after(id - 1);
        if (i == entries_.size() || entries_[i].id_ != id ||
            entries_[i].state_ == detail::outbox_state::done) {
            return npos;
        }
        return i;
    }

    /// The index of the first entry whose id is greater than `id`.
    std::size_t first_index_after(outbox_id id) const noexcept {
        std::size_t lo = 0, hi = entries_.size();
        while (lo < hi) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (entries_[mid].id_ <= id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    static bool evictable(const entry& e) noexcept {
        return e.state_ == detail::outbox_state::pending && e.priority_ == outbox_priority::normal;
    }

    std::size_t oldest_evictable() noexcept {
        while (!evictable(entries_[evict_cursor_])) ++evict_cursor_;
        return evict_cursor_++;
    }

    std::size_t newest_evictable() const noexcept {
        std::size_t i = entries_.size();
        while (!evictable(entries_[--i])) {
        }
        return i;
    }

    /// Takes entry `i` out of the accounting and leaves a tombstone behind.
    retired retire(std::size_t i) {
        entry& e = entries_[i];
        retired r{e.id_, e.priority_, e.attempts_, e.key_size_, e.key_, std::move(*e.message_)};
        --live_;
        bytes_ -= e.bytes_;
        if (e.state_ == detail::outbox_state::in_flight) {
            --in_flight_;
        } else if (e.priority_ == outbox_priority::normal) {
            --pending_normal_;
            pending_normal_bytes_ -= e.bytes_;
        }
        e.state_ = detail::outbox_state::done;
        e.message_.reset();
        ++tombstones_;
        return r;
    }

    void finish(std::size_t i, outbox_outcome outcome, std::error_code ec, const Ack* ack) {
        retired r = retire(i);
        prune();
        deliver(r, outcome, ec, ack);
    }

    void deliver(retired& r, outbox_outcome outcome, std::error_code ec, const Ack* ack) {
        switch (outcome) {
        case outbox_outcome::sent: ++counters_.sent; break;
        case outbox_outcome::failed: ++counters_.failed; break;
        case outbox_outcome::expired: ++counters_.expired; break;
        case outbox_outcome::dropped: ++counters_.dropped; break;
        case outbox_outcome::cancelled: ++counters_.cancelled; break;
        }
        if (!handler_) return;
        const completion c{r.id,       outcome,   ec,
                           ack,        r.message, std::string_view(r.key.data(), r.key_size),
                           r.priority, r.attempts};
        handler_(c);
    }

    /// Drops tombstones from the front; compacts when they outnumber live
    /// entries; rebuilds the deadline heap when stale records dominate it.
    void prune() {
        while (!entries_.empty() && entries_.front().state_ == detail::outbox_state::done) {
            entries_.pop_front();
            --tombstones_;
            if (send_cursor_ > 0) --send_cursor_;
            if (evict_cursor_ > 0) --evict_cursor_;
        }
        if (tombstones_ > 32 && tombstones_ > live_) {
            std::size_t kept = 0;
            for (std::size_t i = 0; i < entries_.size(); ++i) {
                if (entries_[i].state_ == detail::outbox_state::done) continue;
                if (kept != i) {
                    entries_[kept] = std::move(entries_[i]);
                    entries_[i].message_.reset();
                    entries_[i].state_ = detail::outbox_state::done;
                }
                ++kept;
            }
            entries_.truncate(kept);
            tombstones_ = 0;
            send_cursor_ = 0;
            while (send_cursor_ < entries_.size() &&
                   entries_[send_cursor_].state_ != detail::outbox_state::pending) {
                ++send_cursor_;
            }
            evict_cursor_ = send_cursor_;
        }
        if (deadlines_.size() > 2 * live_ + 64) {
            deadlines_.clear();
            for (std::size_t i = 0; i < entries_.size(); ++i) {
                entry& e = entries_[i];
                e.has_deadline_record_ = false;
                if (e.state_ != detail::outbox_state::done && e.deadline_ != time_point::max()) {
                    deadlines_.emplace_back(e.deadline_, e.id_);
                    e.has_deadline_record_ = true;
                }
            }
            std::make_heap(deadlines_.begin(), deadlines_.end(), std::greater<>{});
        }
        entries_.release_memory();
    }

    outbox_options options_;
    URBG generator_;
    completion_handler handler_;
    detail::outbox_ring<entry> entries_;      // by id; completed entries linger as tombstones
    std::size_t send_cursor_ = 0;             // no pending entry before this index
    std::size_t evict_cursor_ = 0;            // no pending normal entry before this index
    std::vector<deadline_record> deadlines_;  // min-heap; stale records skipped
    outbox_id next_id_ = 1;
    std::size_t live_ = 0;
    std::size_t bytes_ = 0;
    std::size_t in_flight_ = 0;
    std::size_t tombstones_ = 0;
    std::size_t pending_normal_ = 0;
    std::size_t pending_normal_bytes_ = 0;
    outbox_counters counters_;
};

/// The completion of the convenience alias `sluice::outbox`.
using outbox_completion = basic_outbox_completion<outbox_message>;

/// An outbox of `outbox_message`s on the steady clock, with generated keys from a
/// `std::mt19937_64` seeded from std::random_device, acknowledged by `outbox_ack`.
using outbox = basic_outbox<outbox_message>;

}  // namespace sluice
