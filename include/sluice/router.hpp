// sluice/router.hpp: the subscription router.
//
// Defines `basic_router<Subscriber, Value, Hash, Equal>`, a registry of
// subscriptions (an exact topic or a pattern, an optional compiled filter, a
// subscriber handle and a user value), the `subscription` records it hands to
// visitors, and the alias `router` (64-bit connection ids, no user value).
//
// Guarantees: `match(topic, visitor)` visits every subscription whose topic or
// pattern matches `topic` exactly once, without allocating; exact topics
// resolve through one hash lookup and patterns through a trie on segments, so
// the cost does not grow with unrelated subscriptions. Subscriptions are
// validated (PROTOCOL.md section 2) and errors come back as std::error_code;
// nothing throws on user input. Pure code: no threads, no locks, no sockets;
// builds with -fno-exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <rapidjson/document.h>

#include "sluice/detail/router_table.hpp"
#include "sluice/error.hpp"
#include "sluice/filter.hpp"
#include "sluice/topic.hpp"

namespace sluice {

/// The default user value of a router subscription: nothing.
struct no_value {};

/// A registry of subscriptions that answers "who wants this topic?".
///
/// - `Subscriber`: a small copyable handle (a connection id, a raw pointer);
///   hashed with `Hash` and compared with `Equal`.
/// - `Value`: per-subscription user state (default `no_value`), e.g. the
///   pre-serialized `"sub"` field or flags; default-constructible and movable.
///
/// A subscription is identified by (subscriber, subscription string): the
/// same subscriber may hold `country:42` and `country:*` (an event to
/// `country:42` visits both), but not the same string twice.
///
/// Complexity, with S the number of segments of the topic and k the number of
/// subscriptions of one subscriber:
/// - `match`: O(length + S × P + matches), where P is the number of trie
///   paths the topic's prefixes can follow (1 with no wildcards; each `*`
///   level may add one). Independent of unrelated subscriptions.
/// - `subscribe`, `unsubscribe`: O(length + min(k, subscribers of that
///   string)). `unsubscribe_all`: O(k × S).
///
/// Memory (64-bit, `Subscriber` = 8 bytes, `Value` = `no_value`): 64 bytes per
/// subscription record (+ allocator overhead), plus per distinct subscription
/// string 24 bytes + its length, plus 8-byte hash slots at a load of at most
/// 3/4 (exact strings and trie edges), plus one hash-map node per subscriber.
/// A non-empty filter adds one small heap block. Removing the last
/// subscription of a string frees it and prunes its trie nodes, so churn does
/// not grow memory (hash-slot arrays keep their peak size).
///
/// Thread-safety: none; call from one strand. Do not subscribe or unsubscribe
/// from inside a `match` visitor (collect, then act).
///
/// Example (from tests/unit/router_test.cpp):
/// @code
/// sluice::router r;
/// r.subscribe(1, "country:42");
/// r.subscribe(1, "country:*");
/// r.subscribe(2, "country:#");
/// std::size_t to_connection_1 = 0;
/// std::size_t visits = r.match("country:42", [&](const sluice::router::subscription& s) {
///     if (s.subscriber() == 1) ++to_connection_1;
/// });
/// // visits == 3; to_connection_1 == 2 (via "country:42" and via "country:*")
/// @endcode
template <class Subscriber, class Value = no_value, class Hash = std::hash<Subscriber>,
          class Equal = std::equal_to<Subscriber>>
class basic_router {
public:
    class subscription;

private:
    // One per distinct subscription string; the string follows the struct.
    struct entry {
        std::size_t hash = 0;
        subscription* head = nullptr;
        std::uint32_t count = 0;
        std::uint8_t len = 0;
        bool pattern = false;
    };
    // One per trie edge (a segment below its parent); the segment follows.
    struct node {
        std::size_t hash = 0;  // of (parent, segment): key in children_
        node* parent = nullptr;
        node* star = nullptr;        // the '*' child
        entry* end = nullptr;        // the pattern that ends here
        entry* tail = nullptr;       // the pattern that ends here with ":#"
        std::uint32_t children = 0;  // literal children (in children_)
        std::uint8_t len = 0;
    };
    struct owned_list {
        subscription* head = nullptr;
        std::size_t count = 0;
    };

public:
    /// One subscription as a visitor sees it. Stable in memory from
    /// `subscribe` to its removal.
    class subscription {
    public:
        /// Who subscribed.
        const Subscriber& subscriber() const noexcept { return subscriber_; }
        /// The subscription string exactly as given to `subscribe` (the `sub`
        /// field of an event). Points into the router; valid while subscribed.
        std::string_view topic() const noexcept { return detail::router_text(owner_); }
        /// True when `topic()` is a pattern.
        bool is_pattern() const noexcept { return owner_->pattern; }
        /// The compiled filter; an empty one matches everything.
        const ::sluice::filter& filter() const noexcept { return filter_; }
        /// The user value given to `subscribe`.
        Value& value() noexcept { return value_; }
        /// The user value given to `subscribe`.
        const Value& value() const noexcept { return value_; }

        subscription(const subscription&) = delete;
        subscription& operator=(const subscription&) = delete;

    private:
        friend class basic_router;
        subscription(const Subscriber& s, ::sluice::filter&& f, Value&& v)
            : subscriber_(s), filter_(std::move(f)), value_(std::move(v)) {}

        entry* owner_ = nullptr;
        subscription* entry_prev_ = nullptr;
        subscription* entry_next_ = nullptr;
        subscription* own_prev_ = nullptr;
        subscription* own_next_ = nullptr;
        Subscriber subscriber_;
        ::sluice::filter filter_;
        Value value_;
    };

    basic_router() = default;
    basic_router(const basic_router&) = delete;
    basic_router& operator=(const basic_router&) = delete;
    /// Moves every subscription; the source is left empty. References to
    /// `subscription` records stay valid.
    basic_router(basic_router&& other) noexcept
        : exact_(std::move(other.exact_)),
          children_(std::move(other.children_)),
          owners_(std::move(other.owners_)),
          root_(std::move(other.root_)),
          size_(std::exchange(other.size_, 0)),
          nodes_(std::exchange(other.nodes_, 0)),
          patterns_(std::exchange(other.patterns_, 0)) {
        other.owners_.clear();
    }
    /// Removes every subscription, then moves `other`'s as the move constructor does.
    basic_router& operator=(basic_router&& other) noexcept {
        if (this != &other) {
            clear();
            basic_router tmp(std::move(other));
            swap(tmp);
        }
        return *this;
    }
    ~basic_router() { clear(); }

    /// Exchanges the content with `other`'s. O(1).
    void swap(basic_router& other) noexcept {
        exact_.swap(other.exact_);
        children_.swap(other.children_);
        owners_.swap(other.owners_);
        root_.swap(other.root_);
        std::swap(size_, other.size_);
        std::swap(nodes_, other.nodes_);
        std::swap(patterns_, other.patterns_);
    }

    /// Adds the subscription (`subscriber`, `topic`) with its filter and user
    /// value. Errors: `errc::invalid_topic` when `topic` is neither a topic
    /// nor a pattern (section 2); `errc::already_subscribed` when this
    /// subscriber already holds this exact string (the filter and value are
    /// then dropped and the existing subscription is unchanged). Allocates the
    /// record (and the string and trie nodes when new). If an allocation
    /// throws, the router is unchanged.
    ///
    /// Example: `if (auto ec = r.subscribe(conn, "prices:*", std::move(f), v)) reply_error(ec);`
    std::error_code subscribe(const Subscriber& subscriber, std::string_view topic,
                              ::sluice::filter f = {}, Value value = Value{}) {
        name_check check = check_pattern(topic);
        if (!check) return check.error;
        bool pattern = is_pattern(topic);
        entry* existing = find_entry(topic, pattern);
        auto owner = owners_.find(subscriber);
        if (existing != nullptr && owner != owners_.end() &&
            find_in(existing, owner->second, subscriber) != nullptr) {
            return make_error_code(errc::already_subscribed);
        }
        std::unique_ptr<subscription> record(
            new subscription(subscriber, std::move(f), std::move(value)));
        bool new_owner = owner == owners_.end();
        if (new_owner) owner = owners_.try_emplace(subscriber).first;
        undo_owner guard{&owners_, owner, new_owner};
        entry* e = existing != nullptr ? existing : create_entry(topic, pattern);
        guard.active = false;

        subscription* s = record.release();
        s->owner_ = e;
        s->entry_next_ = e->head;
        if (e->head != nullptr) e->head->entry_prev_ = s;
        e->head = s;
        ++e->count;
        owned_list& list = owner->second;
        s->own_next_ = list.head;
        if (list.head != nullptr) list.head->own_prev_ = s;
        list.head = s;
        ++list.count;
        ++size_;
        return {};
    }

    /// Removes the subscription (`subscriber`, `topic`), `topic` being the
    /// string given to `subscribe`. Errors: `errc::invalid_topic` for a string
    /// outside the grammar, `errc::not_subscribed` when absent. Never
    /// allocates.
    std::error_code unsubscribe(const Subscriber& subscriber, std::string_view topic) noexcept {
        name_check check = check_pattern(topic);
        if (!check) return check.error;
        entry* e = find_entry(topic, is_pattern(topic));
        auto owner = owners_.find(subscriber);
        if (e == nullptr || owner == owners_.end()) return make_error_code(errc::not_subscribed);
        subscription* s = find_in(e, owner->second, subscriber);
        if (s == nullptr) return make_error_code(errc::not_subscribed);
        unlink_from_entry(s);
        owned_list& list = owner->second;
        if (s->own_prev_ != nullptr) s->own_prev_->own_next_ = s->own_next_;
        if (s->own_next_ != nullptr) s->own_next_->own_prev_ = s->own_prev_;
        if (list.head == s) list.head = s->own_next_;
        if (--list.count == 0) owners_.erase(owner);
        delete s;
        --size_;
        release_if_empty(e);
        return {};
    }

    /// Removes every subscription of `subscriber` (a closed connection);
    /// returns how many. O(that subscriber's subscriptions), never allocates.
    std::size_t unsubscribe_all(const Subscriber& subscriber) noexcept {
        auto owner = owners_.find(subscriber);
        if (owner == owners_.end()) return 0;
        std::size_t n = owner->second.count;
        subscription* s = owner->second.head;
        owners_.erase(owner);
        while (s != nullptr) {
            subscription* next = s->own_next_;
            entry* e = s->owner_;
            unlink_from_entry(s);
            delete s;
            release_if_empty(e);
            s = next;
        }
        size_ -= n;
        return n;
    }

    /// Calls `visit(subscription&)` once for every subscription whose topic
    /// or pattern matches the valid topic `topic` (check it with
    /// `check_topic` first; for other input the visits are unspecified but
    /// safe). Returns the number of visits. Order: unspecified. Never
    /// allocates (the visitor is called directly, not through
    /// std::function). The filter is not applied; see the overload below.
    template <class Visitor>
    std::size_t match(std::string_view topic, Visitor&& visit) {
        std::size_t n = 0;
        if (entry* e = find_exact(topic)) n += visit_entry(e, visit);
        if (root_) n += walk(root_.get(), topic, false, visit);
        return n;
    }

    /// As above, visiting `const subscription&`.
    template <class Visitor>
    std::size_t match(std::string_view topic, Visitor&& visit) const {
        auto as_const = [&visit](subscription& s) { visit(static_cast<const subscription&>(s)); };
        return const_cast<basic_router*>(this)->match(topic, as_const);
    }

    /// Visits only the subscriptions whose filter accepts `data` (the event's
    /// parsed `data`, parsed once for all subscribers); returns the number of
    /// visits. Never allocates.
    template <class Visitor>
    std::size_t match(std::string_view topic, const rapidjson::Value& data, Visitor&& visit) {
        std::size_t n = 0;
        match(topic, [&](subscription& s) {
            if (s.filter_.matches(data)) {
                ++n;
                visit(s);
            }
        });
        return n;
    }

    /// The user value of (`subscriber`, `topic`), or nullptr. O(length + k).
    Value* find(const Subscriber& subscriber, std::string_view topic) noexcept {
        subscription* s = find_subscription(subscriber, topic);
        return s != nullptr ? &s->value_ : nullptr;
    }
    /// @copydoc find(const Subscriber&, std::string_view)
    const Value* find(const Subscriber& subscriber, std::string_view topic) const noexcept {
        return const_cast<basic_router*>(this)->find(subscriber, topic);
    }

    /// True when (`subscriber`, `topic`) is subscribed.
    bool contains(const Subscriber& subscriber, std::string_view topic) const noexcept {
        return find(subscriber, topic) != nullptr;
    }

    /// Calls `f(subscription&)` for every subscription of `subscriber`.
    template <class F>
    void for_each(const Subscriber& subscriber, F&& f) {
        auto owner = owners_.find(subscriber);
        if (owner == owners_.end()) return;
        for (subscription* s = owner->second.head; s != nullptr; s = s->own_next_) f(*s);
    }

    /// The number of subscriptions.
    std::size_t size() const noexcept { return size_; }
    /// True when there is no subscription.
    bool empty() const noexcept { return size_ == 0; }
    /// The number of subscriptions of `subscriber` (for a per-connection cap).
    /// O(1).
    std::size_t subscriptions_of(const Subscriber& subscriber) const noexcept {
        auto owner = owners_.find(subscriber);
        return owner == owners_.end() ? 0 : owner->second.count;
    }
    /// The number of subscribers holding exactly the string `topic` (a topic
    /// or a pattern, not the number of matches). O(length).
    std::size_t subscribers_of(std::string_view topic) const noexcept {
        if (!check_pattern(topic)) return 0;
        entry* e = find_entry(topic, is_pattern(topic));
        return e == nullptr ? 0 : e->count;
    }
    /// The number of distinct subscribers.
    std::size_t subscriber_count() const noexcept { return owners_.size(); }
    /// The number of distinct exact topics subscribed to.
    std::size_t topic_count() const noexcept { return exact_.size(); }
    /// The number of distinct patterns subscribed to.
    std::size_t pattern_count() const noexcept { return patterns_; }
    /// The number of trie nodes (0 when no pattern is subscribed).
    std::size_t trie_node_count() const noexcept { return nodes_; }

    /// Makes room for `n` distinct exact topics (avoids rehashing while
    /// loading many).
    void reserve_topics(std::size_t n) { exact_.reserve(n); }

    /// Removes everything.
    void clear() noexcept {
        while (!owners_.empty()) {
            Subscriber s = owners_.begin()->first;
            unsubscribe_all(s);
        }
    }

private:
    using owner_map = std::unordered_map<Subscriber, owned_list, Hash, Equal>;
    struct undo_owner {
        owner_map* map;
        typename owner_map::iterator it;
        bool active;
        ~undo_owner() {
            if (active) map->erase(it);
        }
    };
    struct undo_prune {
        basic_router* self;
        node* from;
        ~undo_prune() {
            if (from != nullptr) self->prune(from);
        }
    };

    std::size_t child_hash(const node* parent, std::string_view segment) const noexcept {
        return detail::router_hash(segment, reinterpret_cast<std::uintptr_t>(parent));
    }

    node* find_child(const node* parent, std::string_view segment) const noexcept {
        if (parent->children == 0) return nullptr;
        return children_.find(child_hash(parent, segment), [&](const node& c) {
            return c.parent == parent && detail::router_text(&c) == segment;
        });
    }

    entry* find_exact(std::string_view topic) const noexcept {
        if (exact_.size() == 0) return nullptr;
        return exact_.find(detail::router_hash(topic),
                           [&](const entry& e) { return detail::router_text(&e) == topic; });
    }

    // The trie node where `pattern` ends, and whether it ends with '#'.
    node* find_node(std::string_view pattern, bool& tail) const noexcept {
        node* n = root_.get();
        std::string_view rest = pattern;
        while (n != nullptr) {
            std::string_view segment = detail::topic_next_segment(rest);
            bool last = rest.data() == nullptr;
            if (last && segment == "#") {
                tail = true;
                return n;
            }
            n = segment == "*" ? n->star : find_child(n, segment);
            if (last) {
                tail = false;
                return n;
            }
        }
        return nullptr;
    }

    entry* find_entry(std::string_view topic, bool pattern) const noexcept {
        if (!pattern) return find_exact(topic);
        bool tail = false;
        node* n = find_node(topic, tail);
        if (n == nullptr) return nullptr;
        return tail ? n->tail : n->end;
    }

    subscription* find_in(entry* e, const owned_list& list, const Subscriber& who) const noexcept {
        // Walk whichever list is shorter: the string's subscribers or the
        // subscriber's strings.
        if (e->count <= list.count) {
            for (subscription* s = e->head; s != nullptr; s = s->entry_next_) {
                if (owners_.key_eq()(s->subscriber_, who)) return s;
            }
        } else {
            for (subscription* s = list.head; s != nullptr; s = s->own_next_) {
                if (s->owner_ == e) return s;
            }
        }
        return nullptr;
    }

    subscription* find_subscription(const Subscriber& who, std::string_view topic) const noexcept {
        if (!check_pattern(topic)) return nullptr;
        entry* e = find_entry(topic, is_pattern(topic));
        auto owner = owners_.find(who);
        if (e == nullptr || owner == owners_.end()) return nullptr;
        return find_in(e, owner->second, who);
    }

    entry* new_entry(std::string_view topic, std::size_t hash, bool pattern) {
        entry* e = detail::router_make_with_text<entry>(topic);
        e->hash = hash;
        e->pattern = pattern;
        return e;
    }

    node* add_child(node* parent, std::string_view segment) {
        bool star = segment == "*";
        if (!star) children_.reserve_one();
        node* c = detail::router_make_with_text<node>(segment);
        c->parent = parent;
        ++nodes_;
        if (star) {
            parent->star = c;
        } else {
            c->hash = child_hash(parent, segment);
            children_.insert(c);
            ++parent->children;
        }
        return c;
    }

    entry* create_entry(std::string_view topic, bool pattern) {
        if (!pattern) {
            exact_.reserve_one();
            entry* e = new_entry(topic, detail::router_hash(topic), false);
            exact_.insert(e);
            return e;
        }
        if (!root_) {
            root_.reset(new node{});
            ++nodes_;
        }
        node* n = root_.get();
        undo_prune guard{this, n};
        std::string_view rest = topic;
        entry** slot = nullptr;
        for (;;) {
            std::string_view segment = detail::topic_next_segment(rest);
            bool last = rest.data() == nullptr;
            if (last && segment == "#") {
                slot = &n->tail;
                break;
            }
            node* c = segment == "*" ? n->star : find_child(n, segment);
            if (c == nullptr) c = add_child(n, segment);
            n = c;
            guard.from = n;
            if (last) {
                slot = &n->end;
                break;
            }
        }
        *slot = new_entry(topic, 0, true);
        ++patterns_;
        guard.from = nullptr;
        return *slot;
    }

    void unlink_from_entry(subscription* s) noexcept {
        entry* e = s->owner_;
        if (s->entry_prev_ != nullptr) s->entry_prev_->entry_next_ = s->entry_next_;
        if (s->entry_next_ != nullptr) s->entry_next_->entry_prev_ = s->entry_prev_;
        if (e->head == s) e->head = s->entry_next_;
        --e->count;
    }

    void release_if_empty(entry* e) noexcept {
        if (e->count != 0) return;
        if (!e->pattern) {
            exact_.erase(e);
            detail::router_free_with_text(e);
            return;
        }
        bool tail = false;
        node* n = find_node(detail::router_text(e), tail);
        (tail ? n->tail : n->end) = nullptr;
        detail::router_free_with_text(e);
        --patterns_;
        prune(n);
    }

    // Frees `n` and its ancestors while they hold nothing.
    void prune(node* n) noexcept {
        while (n->parent != nullptr && n->star == nullptr && n->end == nullptr &&
               n->tail == nullptr && n->children == 0) {
            node* parent = n->parent;
            if (parent->star == n) {
                parent->star = nullptr;
            } else {
                children_.erase(n);
                --parent->children;
            }
            detail::router_free_with_text(n);
            --nodes_;
            n = parent;
        }
        if (n == root_.get() && n->star == nullptr && n->end == nullptr && n->tail == nullptr &&
            n->children == 0) {
            root_.reset();
            --nodes_;
        }
    }

    template <class Visitor>
    static std::size_t visit_entry(entry* e, Visitor& visit) {
        std::size_t n = 0;
        for (subscription* s = e->head; s != nullptr; s = s->entry_next_) {
            visit(*s);
            ++n;
        }
        return n;
    }

    // Depth-first over the trie paths that `rest` (the unconsumed part of the
    // topic) can follow. Depth is at most 100 (a 200-byte topic).
    template <class Visitor>
    std::size_t walk(const node* n, std::string_view rest, bool done, Visitor& visit) {
        std::size_t count = 0;
        if (n->tail != nullptr) count += visit_entry(n->tail, visit);
        if (done) {
            if (n->end != nullptr) count += visit_entry(n->end, visit);
            return count;
        }
        std::string_view segment = detail::topic_next_segment(rest);
        bool last = rest.data() == nullptr;
        if (node* c = find_child(n, segment)) count += walk(c, rest, last, visit);
        if (n->star != nullptr) count += walk(n->star, rest, last, visit);
        return count;
    }

    detail::router_table<entry> exact_;
    detail::router_table<node> children_;
    owner_map owners_;
    std::unique_ptr<node> root_;
    std::size_t size_ = 0;
    std::size_t nodes_ = 0;
    std::size_t patterns_ = 0;
};

/// The common case: subscribers are 64-bit connection ids, no user value.
using router = basic_router<std::uint64_t>;

}  // namespace sluice
