#include <sluice/outbox.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "manual_clock.hpp"
#include "scripted_rng.hpp"

namespace {

using namespace std::chrono_literals;
using sluice::test::manual_clock;

using test_outbox = sluice::basic_outbox<sluice::outbox_message, manual_clock, std::mt19937_64>;
using scripted_outbox =
    sluice::basic_outbox<sluice::outbox_message, manual_clock, sluice::test::scripted_rng>;

struct record {
    sluice::outbox_id id;
    sluice::outbox_outcome outcome;
    std::error_code error;
    std::uint64_t ack_offset;
    std::string topic;
    std::string key;
    std::uint32_t attempts;
};

/// Collects every completion; `of(id)` counts those of one id.
struct recorder {
    std::vector<record> records;
    template <class Box>
    void attach(Box& box) {
        box.on_complete([this](const typename Box::completion& c) {
            records.push_back({c.id, c.outcome, c.error, c.ack ? c.ack->offset : 0, c.message.topic,
                               std::string(c.idempotency_key), c.attempts});
        });
    }
    std::size_t of(sluice::outbox_id id) const {
        return static_cast<std::size_t>(std::count_if(records.begin(), records.end(),
                                                      [&](const record& r) { return r.id == id; }));
    }
    std::vector<sluice::outbox_id> ids(sluice::outbox_outcome o) const {
        std::vector<sluice::outbox_id> out;
        for (const auto& r : records)
            if (r.outcome == o) out.push_back(r.id);
        return out;
    }
};

sluice::outbox_message msg(std::string topic, std::string data = "1") {
    return {std::move(topic), std::move(data), ""};
}

sluice::outbox_options opts(std::size_t max_messages, std::size_t max_bytes,
                            sluice::overflow_policy p = sluice::overflow_policy::drop_oldest) {
    sluice::outbox_options o;
    o.max_messages = max_messages;
    o.max_bytes = max_bytes;
    o.overflow = p;
    return o;
}

sluice::outbox_push_options critical() {
    sluice::outbox_push_options p;
    p.priority = sluice::outbox_priority::critical;
    return p;
}

sluice::outbox_push_options with_key(std::string_view key) {
    sluice::outbox_push_options p;
    p.idempotency_key = key;
    return p;
}

sluice::outbox_push_options with_ttl(std::chrono::nanoseconds ttl) {
    sluice::outbox_push_options p;
    p.ttl = ttl;
    return p;
}

/// The ids handed out by next_to_send until none is pending.
template <class Box>
std::vector<sluice::outbox_id> drain(Box& box) {
    std::vector<sluice::outbox_id> out;
    while (auto* e = box.next_to_send()) out.push_back(e->id());
    return out;
}

/// The ids of what the outbox holds, in order.
template <class Box>
std::vector<sluice::outbox_id> held(const Box& box, sluice::outbox_id up_to) {
    std::vector<sluice::outbox_id> out;
    for (sluice::outbox_id id = 1; id <= up_to; ++id)
        if (box.find(id)) out.push_back(id);
    return out;
}

using ids = std::vector<sluice::outbox_id>;
const auto no_buffer_space = std::make_error_code(std::errc::no_buffer_space);

}  // namespace

TEST_CASE("options are validated at construction", "[outbox]") {
    CHECK_THROWS_AS(test_outbox(opts(0, 10)), std::invalid_argument);
    CHECK_THROWS_AS(test_outbox(opts(10, 0)), std::invalid_argument);
    sluice::outbox_options o;
    o.ttl = 0s;
    CHECK_THROWS_AS(test_outbox(o), std::invalid_argument);
    o.ttl = -1s;
    CHECK_THROWS_AS(test_outbox(o), std::invalid_argument);
    sluice::outbox_options d;
    CHECK(d.max_messages == 1000);
    CHECK(d.max_bytes == 1024 * 1024);
    CHECK(d.ttl == 60s);
    CHECK(d.overflow == sluice::overflow_policy::drop_oldest);
    sluice::outbox defaulted;  // seeded from std::random_device
    CHECK(defaulted.empty());
}

TEST_CASE("messages are handed out and acknowledged in push order", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(10, 1000), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    for (int i = 1; i <= 3; ++i) {
        auto r = box.push(msg("t:" + std::to_string(i)));
        REQUIRE(r);
        CHECK(r.id == static_cast<sluice::outbox_id>(i));
        CHECK(!r.error);
        CHECK(r.evicted == 0);
    }
    CHECK(box.size() == 3);
    CHECK(box.bytes() == 3 * 4);  // "t:N" + "1"
    CHECK(box.pending() == 3);

    const auto* e = box.next_to_send();
    REQUIRE(e);
    CHECK(e->id() == 1);
    CHECK(e->message().topic == "t:1");
    CHECK(e->in_flight());
    CHECK(e->attempts() == 1);
    CHECK(e->bytes() == 4);
    CHECK(box.in_flight() == 1);
    CHECK(drain(box) == ids{2, 3});
    CHECK(box.next_to_send() == nullptr);

    CHECK(box.acknowledge(1, {10, "E"}));
    CHECK(box.acknowledge(2, {11, "E"}));
    CHECK(box.acknowledge(3, {12, "E"}));
    REQUIRE(rec.records.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(rec.records[i].id == i + 1);
        CHECK(rec.records[i].outcome == sluice::outbox_outcome::sent);
        CHECK(!rec.records[i].error);
        CHECK(rec.records[i].ack_offset == 10 + i);
        CHECK(rec.records[i].topic == "t:" + std::to_string(i + 1));
        CHECK(rec.records[i].attempts == 1);
    }
    CHECK(box.empty());
    CHECK(box.bytes() == 0);
    CHECK(box.in_flight() == 0);
    auto c = box.counters();
    CHECK(c.pushed == 3);
    CHECK(c.sent == 3);
    CHECK(c.transmissions == 3);
    CHECK(c.retransmissions == 0);
    CHECK(c.messages == 0);
}

TEST_CASE("generated idempotency keys", "[outbox]") {
    manual_clock::reset();
    SECTION("32 lower-case hex characters, unique") {
        test_outbox box(opts(5000, 1 << 20), std::mt19937_64(42));
        std::set<std::string> keys;
        for (int i = 0; i < 2000; ++i) {
            auto r = box.push(msg("t"));
            REQUIRE(r);
            std::string key(box.find(r.id)->idempotency_key());
            REQUIRE(key.size() == 32);
            REQUIRE(key.find_first_not_of("0123456789abcdef") == std::string::npos);
            keys.insert(key);
        }
        CHECK(keys.size() == 2000);
    }
    SECTION("the same seed gives the same keys") {
        test_outbox a(opts(10, 1000), std::mt19937_64(7));
        test_outbox b(opts(10, 1000), std::mt19937_64(7));
        test_outbox c(opts(10, 1000), std::mt19937_64(8));
        for (int i = 0; i < 5; ++i) {
            auto ra = a.push(msg("t"));
            auto rb = b.push(msg("t"));
            auto rc = c.push(msg("t"));
            CHECK(a.find(ra.id)->idempotency_key() == b.find(rb.id)->idempotency_key());
            CHECK(a.find(ra.id)->idempotency_key() != c.find(rc.id)->idempotency_key());
        }
    }
    SECTION("the key is the hex of the generator's raw draws") {
        scripted_outbox box(opts(10, 1000), sluice::test::scripted_rng(
                                                {0x0123456789abcdefULL, 0xfedcba9876543210ULL,
                                                 0x0000000000000001ULL, 0xffffffffffffffffULL}));
        auto r1 = box.push(msg("t"));
        auto r2 = box.push(msg("t"));
        CHECK(box.find(r1.id)->idempotency_key() == "0123456789abcdeffedcba9876543210");
        CHECK(box.find(r2.id)->idempotency_key() == "0000000000000001ffffffffffffffff");
        CHECK(box.generator().calls() == 4);
        // A user key consumes no randomness.
        box.push(msg("t"), with_key("mine"));
        CHECK(box.generator().calls() == 4);
    }
    SECTION("a 32-bit generator fills the key from four draws") {
        sluice::basic_outbox<sluice::outbox_message, manual_clock, std::mt19937> box(
            opts(10, 1000), std::mt19937(3));
        std::mt19937 ref(3);
        std::string expected;
        char buf[9];
        for (int i = 0; i < 4; ++i) {
            std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(ref()));
            expected += buf;
        }
        auto r = box.push(msg("t"));
        CHECK(box.find(r.id)->idempotency_key() == expected);
    }
}

TEST_CASE("user idempotency keys are checked and kept", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(10, 1000), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    const std::string k64(64, 'k');
    auto ok1 = box.push(msg("t"), with_key("a"));
    auto ok64 = box.push(msg("t"), with_key(k64));
    auto okutf8 =
        box.push(msg("t"), with_key("client-1\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80-abcdefgh"));
    REQUIRE(ok1);
    REQUIRE(ok64);
    REQUIRE(okutf8);
    CHECK(box.find(ok1.id)->idempotency_key() == "a");
    CHECK(box.find(ok64.id)->idempotency_key() == k64);
    CHECK(box.find(okutf8.id)->idempotency_key().size() == 28);

    const std::string k65(65, 'k');
    for (std::string_view bad :
         {std::string_view(""), std::string_view(k65), std::string_view("\xff"),
          std::string_view("a\xc3"), std::string_view("\xc0\xaf"), std::string_view("\xed\xa0\x80"),
          std::string_view("\xf4\x90\x80\x80"), std::string_view("abcdefgh\xff"),
          std::string_view("abcdefghijklmno\xe2\x82")}) {
        auto r = box.push(msg("t"), with_key(bad));
        CHECK(!r);
        CHECK(r.id == 0);
        CHECK(r.error == sluice::errc::bad_request);
    }
    CHECK(box.push(msg("t"), with_ttl(-1ms)).error == sluice::errc::bad_request);
    CHECK(box.size() == 3);
    CHECK(box.counters().rejected == 10);
    CHECK(box.counters().pushed == 3);
    CHECK(rec.records.empty());

    // The key the message was sent with reaches the handler.
    box.acknowledge(ok1.id, {});
    REQUIRE(rec.records.size() == 1);
    CHECK(rec.records[0].key == "a");
}

TEST_CASE("drop_oldest evicts the oldest pending normal entries", "[outbox][overflow]") {
    manual_clock::reset();
    SECTION("by count") {
        test_outbox box(opts(3, 1000), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        for (int i = 0; i < 3; ++i) REQUIRE(box.push(msg("t")));
        auto r = box.push(msg("t"));
        REQUIRE(r);
        CHECK(r.id == 4);
        CHECK(r.evicted == 1);
        REQUIRE(rec.records.size() == 1);
        CHECK(rec.records[0].id == 1);
        CHECK(rec.records[0].outcome == sluice::outbox_outcome::dropped);
        CHECK(rec.records[0].error == std::errc::no_buffer_space);
        CHECK(held(box, 4) == ids{2, 3, 4});
        CHECK(drain(box) == ids{2, 3, 4});
        CHECK(box.counters().dropped == 1);
    }
    SECTION("by bytes, several at once") {
        test_outbox box(opts(100, 10), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        for (int i = 0; i < 5; ++i) REQUIRE(box.push(msg("t"), 2));
        CHECK(box.bytes() == 10);
        auto r = box.push(msg("big"), 5);
        REQUIRE(r);
        CHECK(r.evicted == 3);
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{1, 2, 3});
        CHECK(box.bytes() == 9);
        CHECK(held(box, 6) == ids{4, 5, 6});
    }
    SECTION("never a critical entry, never an entry in flight") {
        test_outbox box(opts(4, 1000), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        REQUIRE(box.push(msg("n1")));              // 1, will be in flight
        REQUIRE(box.push(msg("c2"), critical()));  // 2
        REQUIRE(box.push(msg("n3")));              // 3
        REQUIRE(box.push(msg("c4"), critical()));  // 4
        REQUIRE(box.next_to_send()->id() == 1);
        auto r = box.push(msg("n5"));
        REQUIRE(r);
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{3});
        auto r6 = box.push(msg("c6"), critical());
        REQUIRE(r6);
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{3, 5});
        // Now: 1 in flight, 2, 4, 6 critical. Nothing may be evicted.
        auto n7 = box.push(msg("n7"));
        CHECK(!n7);
        CHECK(n7.error == no_buffer_space);
        auto c7 = box.push(msg("c7"), critical());
        CHECK(!c7);
        CHECK(c7.error == no_buffer_space);
        CHECK(held(box, 8) == ids{1, 2, 4, 6});
        CHECK(box.counters().rejected == 2);
        CHECK(rec.records.size() == 2);
    }
    SECTION("a push that cannot be made to fit evicts nothing") {
        test_outbox box(opts(100, 10), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        REQUIRE(box.push(msg("c"), 6, critical()));
        REQUIRE(box.push(msg("n"), 4));
        auto r = box.push(msg("x"), 5);  // would need 1 more byte than the normal one frees
        CHECK(!r);
        CHECK(r.error == no_buffer_space);
        CHECK(rec.records.empty());
        CHECK(box.size() == 2);
        CHECK(box.bytes() == 10);
    }
}

TEST_CASE("drop_newest refuses a normal newcomer", "[outbox][overflow]") {
    manual_clock::reset();
    SECTION("by count; critical newcomers evict the newest normal entries") {
        test_outbox box(opts(3, 1000, sluice::overflow_policy::drop_newest), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        for (int i = 0; i < 3; ++i) REQUIRE(box.push(msg("t")));
        auto r = box.push(msg("t"));
        CHECK(!r);
        CHECK(r.error == no_buffer_space);
        CHECK(r.evicted == 0);
        CHECK(rec.records.empty());
        CHECK(held(box, 3) == ids{1, 2, 3});

        auto c = box.push(msg("c"), critical());
        REQUIRE(c);
        CHECK(c.id == 4);  // a refused push takes no id
        CHECK(c.evicted == 1);
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{3});
        REQUIRE(box.push(msg("c"), critical()));
        REQUIRE(box.push(msg("c"), critical()));
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{3, 2, 1});
        // Only critical ones left: a critical push is refused, not traded.
        auto c2 = box.push(msg("c"), critical());
        CHECK(!c2);
        CHECK(c2.error == no_buffer_space);
        CHECK(held(box, 9) == ids{4, 5, 6});
        CHECK(box.counters().rejected == 2);
        CHECK(box.counters().dropped == 3);
    }
    SECTION("by bytes") {
        test_outbox box(opts(100, 10, sluice::overflow_policy::drop_newest), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        REQUIRE(box.push(msg("a"), 4));
        REQUIRE(box.push(msg("b"), 4));
        CHECK(!box.push(msg("c"), 3));
        REQUIRE(box.push(msg("d"), 2).id == 3);  // still fits exactly
        auto c = box.push(msg("e"), 5, critical());
        REQUIRE(c);
        CHECK(c.evicted == 2);  // newest normal first: d (2 bytes), then b (4)
        CHECK(rec.ids(sluice::outbox_outcome::dropped) == ids{3, 2});
        CHECK(box.bytes() == 9);
        CHECK(held(box, 5) == ids{1, 4});
    }
    SECTION("in-flight entries are not evicted") {
        test_outbox box(opts(2, 1000, sluice::overflow_policy::drop_newest), std::mt19937_64(1));
        REQUIRE(box.push(msg("a")));
        REQUIRE(box.push(msg("b")));
        drain(box);
        CHECK(!box.push(msg("c"), critical()));
        CHECK(box.size() == 2);
    }
}

TEST_CASE("reject refuses every newcomer that does not fit", "[outbox][overflow]") {
    manual_clock::reset();
    test_outbox box(opts(2, 10, sluice::overflow_policy::reject), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("a"), 3));
    REQUIRE(box.push(msg("b"), 3));
    auto n = box.push(msg("c"), 1);  // count
    CHECK(!n);
    CHECK(n.error == no_buffer_space);
    auto c = box.push(msg("c"), 1, critical());
    CHECK(!c);
    CHECK(c.error == no_buffer_space);
    REQUIRE(box.acknowledge(1, {}));
    CHECK(!box.push(msg("d"), 8));  // bytes: 3 + 8 > 10
    CHECK(!box.push(msg("d"), 8, critical()));
    REQUIRE(box.push(msg("d"), 7));
    CHECK(rec.ids(sluice::outbox_outcome::dropped).empty());
    CHECK(box.counters().rejected == 4);
    CHECK(box.counters().dropped == 0);
}

TEST_CASE("a message larger than max_bytes is refused under every policy", "[outbox][overflow]") {
    manual_clock::reset();
    for (auto p : {sluice::overflow_policy::drop_oldest, sluice::overflow_policy::drop_newest,
                   sluice::overflow_policy::reject}) {
        test_outbox box(opts(10, 10, p), std::mt19937_64(1));
        recorder rec;
        rec.attach(box);
        REQUIRE(box.push(msg("a"), 5));
        auto r = box.push(msg("b"), 11, critical());
        CHECK(!r);
        CHECK(r.error == std::errc::message_size);
        CHECK(box.size() == 1);
        CHECK(rec.records.empty());
        CHECK(box.push(msg("c"), 5));  // exactly full is fine
    }
}

TEST_CASE("pending entries expire at their deadline", "[outbox][ttl]") {
    manual_clock::reset();
    sluice::outbox_options o = opts(10, 1000);
    o.ttl = 10s;
    test_outbox box(o, std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("a")));
    manual_clock::advance(2s);
    REQUIRE(box.push(msg("b"), with_ttl(3s)));  // deadline +5 s, before a's
    REQUIRE(box.push(msg("c")));                // deadline +12 s

    manual_clock::advance(2999ms);
    CHECK(box.expire() == 0);
    manual_clock::advance(1ms);  // t = 5 s: b's deadline
    CHECK(box.expire() == 1);
    CHECK(rec.ids(sluice::outbox_outcome::expired) == ids{2});
    CHECK(rec.records[0].error == std::errc::timed_out);
    CHECK(rec.records[0].attempts == 0);

    manual_clock::advance(5s);  // t = 10 s: a's deadline; next_to_send expires first
    const auto* e = box.next_to_send();
    REQUIRE(e);
    CHECK(e->id() == 3);
    CHECK(rec.ids(sluice::outbox_outcome::expired) == ids{2, 1});
    CHECK(box.counters().expired == 2);
    CHECK(box.size() == 1);
}

TEST_CASE("an entry in flight does not expire until the connection drops", "[outbox][ttl]") {
    manual_clock::reset();
    sluice::outbox_options o = opts(10, 1000);
    o.ttl = 10s;
    test_outbox box(o, std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("a")));
    REQUIRE(box.push(msg("b")));
    REQUIRE(box.push(msg("c"), with_ttl(60s)));
    CHECK(drain(box) == ids{1, 2, 3});

    manual_clock::advance(20s);
    CHECK(box.expire() == 0);
    CHECK(box.next_to_send() == nullptr);
    CHECK(box.size() == 3);
    SECTION("a late ack still completes it as sent") {
        CHECK(box.acknowledge(1, {5, "E"}));
        REQUIRE(rec.records.size() == 1);
        CHECK(rec.records[0].outcome == sluice::outbox_outcome::sent);
    }
    SECTION("a drop expires it instead of re-sending it") {
        CHECK(box.on_disconnect() == 2);
        CHECK(rec.ids(sluice::outbox_outcome::expired) == ids{1, 2});
        CHECK(rec.records[0].attempts == 1);  // it had been sent: it may have been published
        const auto* e = box.next_to_send();
        REQUIRE(e);
        CHECK(e->id() == 3);  // not past its own deadline: re-sent
        CHECK(e->attempts() == 2);
    }
}

TEST_CASE("expiry frees room before the overflow policy evicts", "[outbox][ttl][overflow]") {
    manual_clock::reset();
    sluice::outbox_options o = opts(2, 1000, sluice::overflow_policy::reject);
    o.ttl = 1s;
    test_outbox box(o, std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("a")));
    REQUIRE(box.push(msg("b"), with_ttl(1h)));
    manual_clock::advance(1s);
    auto r = box.push(msg("c"));
    REQUIRE(r);
    CHECK(r.evicted == 0);
    CHECK(rec.ids(sluice::outbox_outcome::expired) == ids{1});
    CHECK(rec.ids(sluice::outbox_outcome::dropped).empty());
}

TEST_CASE("a TTL of nanoseconds::max() never expires", "[outbox][ttl]") {
    manual_clock::reset();
    sluice::outbox_options o = opts(10, 1000);
    o.ttl = std::chrono::nanoseconds::max();
    test_outbox box(o, std::mt19937_64(1));
    auto r = box.push(msg("a"));
    REQUIRE(r);
    CHECK(box.find(r.id)->deadline() == manual_clock::time_point::max());
    manual_clock::advance(std::chrono::hours(24 * 365 * 100));
    CHECK(box.expire() == 0);
    CHECK(box.size() == 1);
    auto short_lived = box.push(msg("b"), with_ttl(1s));
    CHECK(box.find(short_lived.id)->deadline() == manual_clock::now() + 1s);
}

TEST_CASE("after a disconnect in-flight entries go out again first, in order, same key",
          "[outbox][flush]") {
    manual_clock::reset();
    test_outbox box(opts(100, 10000), std::mt19937_64(9));
    recorder rec;
    rec.attach(box);
    for (int i = 0; i < 5; ++i) REQUIRE(box.push(msg("t:" + std::to_string(i + 1))));
    std::map<sluice::outbox_id, std::string> first_keys;
    for (int i = 0; i < 4; ++i) {
        const auto* e = box.next_to_send();
        first_keys[e->id()] = std::string(e->idempotency_key());
    }
    CHECK(box.acknowledge(2, {2, "E"}));  // out of order: 1 is still unanswered
    CHECK(box.in_flight() == 3);
    CHECK(box.on_disconnect() == 0);
    CHECK(box.in_flight() == 0);
    REQUIRE(box.push(msg("t:6")));

    std::vector<sluice::outbox_id> order;
    while (const auto* e = box.next_to_send()) {
        order.push_back(e->id());
        if (first_keys.count(e->id())) {
            CHECK(e->idempotency_key() == first_keys[e->id()]);
            CHECK(e->attempts() == 2);
        } else {
            CHECK(e->attempts() == 1);
        }
    }
    CHECK(order == ids{1, 3, 4, 5, 6});
    CHECK(box.counters().retransmissions == 3);
    CHECK(box.counters().transmissions == 9);

    // A second drop, half-way through the second flush.
    REQUIRE(box.acknowledge(1, {1, "E"}));
    CHECK(box.on_disconnect() == 0);
    CHECK(drain(box) == ids{3, 4, 5, 6});
    for (sluice::outbox_id id : {3, 4, 5, 6}) CHECK(box.acknowledge(id, {id, "E"}));
    CHECK(box.empty());
    CHECK(rec.ids(sluice::outbox_outcome::sent) == ids{2, 1, 3, 4, 5, 6});
}

TEST_CASE("acknowledgements in any order, duplicates ignored", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(100, 10000), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    for (int i = 0; i < 4; ++i) REQUIRE(box.push(msg("t")));
    drain(box);
    CHECK(box.acknowledge(3, {30, "E"}));
    CHECK(box.acknowledge(1, {10, "E"}));
    CHECK(!box.acknowledge(3, {31, "E"}));  // duplicate
    CHECK(!box.acknowledge(99, {}));        // unknown
    CHECK(!box.acknowledge(0, {}));
    CHECK(box.acknowledge(4, {40, "E"}));
    CHECK(box.acknowledge(2, {20, "E"}));
    CHECK(rec.ids(sluice::outbox_outcome::sent) == ids{3, 1, 4, 2});
    CHECK(rec.records[0].ack_offset == 30);
    CHECK(box.empty());
    // An ack for an entry that is pending (never handed out) also completes it.
    auto r = box.push(msg("t"));
    CHECK(box.acknowledge(r.id, {50, "E"}));
    CHECK(box.next_to_send() == nullptr);
    CHECK(rec.of(r.id) == 1);
}

TEST_CASE("an error reply completes the entry as failed", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(100, 10000), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("t")));
    REQUIRE(box.push(msg("t")));
    drain(box);
    CHECK(box.fail(1, sluice::errc::forbidden));
    CHECK(box.fail(2, std::error_code{}));
    CHECK(!box.fail(1, sluice::errc::forbidden));
    CHECK(!box.acknowledge(1, {}));
    REQUIRE(rec.records.size() == 2);
    CHECK(rec.records[0].outcome == sluice::outbox_outcome::failed);
    CHECK(rec.records[0].error == sluice::errc::forbidden);
    CHECK(rec.records[1].error == sluice::errc::internal);
    CHECK(box.counters().failed == 2);
    CHECK(box.empty());
}

TEST_CASE("clear cancels everything held; the destructor calls nothing", "[outbox]") {
    manual_clock::reset();
    recorder rec;
    {
        test_outbox box(opts(100, 10000), std::mt19937_64(1));
        rec.attach(box);
        for (int i = 0; i < 4; ++i) REQUIRE(box.push(msg("t")));
        box.next_to_send();
        box.next_to_send();
        box.acknowledge(2, {});
        CHECK(box.clear() == 3);
        CHECK(rec.ids(sluice::outbox_outcome::cancelled) == ids{1, 3, 4});
        CHECK(rec.records.back().error == std::errc::operation_canceled);
        CHECK(box.empty());
        CHECK(box.bytes() == 0);
        CHECK(box.clear() == 0);
        REQUIRE(box.push(msg("t")));
    }
    CHECK(rec.records.size() == 4);  // the last push got no outcome from the destructor
}

TEST_CASE("the handler may call back into the outbox", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(2, 1000), std::mt19937_64(1));
    std::vector<sluice::outbox_id> requeued;
    box.on_complete([&](const test_outbox::completion& c) {
        if (c.outcome == sluice::outbox_outcome::dropped && c.message.topic == "keep") {
            // Re-queue the dropped message as critical (moving it out of the completion).
            auto r = box.push(std::move(c.message), critical());
            requeued.push_back(r.id);
        }
    });
    REQUIRE(box.push(msg("keep")));
    REQUIRE(box.push(msg("x")));
    auto r = box.push(msg("y"));  // drops 1 ("keep"), whose handler evicts 2 to re-queue it
    REQUIRE(r);
    REQUIRE(requeued.size() == 1);
    CHECK(requeued[0] == 4);
    CHECK(held(box, 4) == ids{3, 4});
    CHECK(box.find(4)->message().topic == "keep");
    CHECK(box.find(4)->priority() == sluice::outbox_priority::critical);
    CHECK(box.size() == 2);
}

TEST_CASE("custom message and ack types", "[outbox]") {
    manual_clock::reset();
    struct position {
        std::uint64_t offset;
        std::string epoch;
    };
    sluice::basic_outbox<std::vector<int>, manual_clock, sluice::test::scripted_rng, position> box(
        opts(10, 100), sluice::test::scripted_rng({1, 2}));
    std::string got;
    box.on_complete([&](const auto& c) { got = c.ack->epoch + std::to_string(c.message.size()); });
    auto r = box.push(std::vector<int>{1, 2, 3}, 12);
    REQUIRE(r);
    CHECK(box.bytes() == 12);
    box.next_to_send();
    box.acknowledge(r.id, position{7, "ep"});
    CHECK(got == "ep3");
    CHECK(sluice::outbox_size(sluice::outbox_message{"ab", "cde", "f"}) == 6);
}

TEST_CASE("names of policies and outcomes", "[outbox]") {
    CHECK(sluice::to_string(sluice::overflow_policy::drop_oldest) == "drop_oldest");
    CHECK(sluice::to_string(sluice::overflow_policy::drop_newest) == "drop_newest");
    CHECK(sluice::to_string(sluice::overflow_policy::reject) == "reject");
    CHECK(sluice::to_string(sluice::outbox_outcome::sent) == "sent");
    CHECK(sluice::to_string(sluice::outbox_outcome::failed) == "failed");
    CHECK(sluice::to_string(sluice::outbox_outcome::expired) == "expired");
    CHECK(sluice::to_string(sluice::outbox_outcome::dropped) == "dropped");
    CHECK(sluice::to_string(sluice::outbox_outcome::cancelled) == "cancelled");
}

TEST_CASE("a stuck head with many later answers stays consistent", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(100, 100000), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    REQUIRE(box.push(msg("head")));
    box.next_to_send();  // 1 stays in flight throughout
    sluice::outbox_id last = 1;
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 20; ++i) last = box.push(msg("t")).id;
        for (int i = 0; i < 20; ++i) {
            const auto* e = box.next_to_send();
            REQUIRE(e);
            REQUIRE(box.acknowledge(e->id(), {e->id(), "E"}));
        }
        CHECK(box.size() == 1);
    }
    CHECK(last == 1001);
    CHECK(box.find(1) != nullptr);
    CHECK(box.find(500) == nullptr);
    CHECK(box.on_disconnect() == 0);
    CHECK(drain(box) == ids{1});
    CHECK(box.acknowledge(1, {}));
    CHECK(rec.records.size() == 1001);
    CHECK(rec.of(1) == 1);
}

TEST_CASE("bursts of any size keep order and outcomes", "[outbox]") {
    manual_clock::reset();
    test_outbox box(opts(1000, 1 << 20), std::mt19937_64(1));
    recorder rec;
    rec.attach(box);
    sluice::outbox_id next = 1;
    for (std::size_t burst : {1000u, 3u, 300u, 17u, 1000u, 1u, 600u}) {
        const sluice::outbox_id first = next;
        for (std::size_t i = 0; i < burst; ++i) REQUIRE(box.push(msg("t")).id == next++);
        // Send half, lose the connection, then send everything and answer the
        // odd ids first, then the even ones.
        for (std::size_t i = 0; i < burst / 2; ++i) REQUIRE(box.next_to_send());
        box.on_disconnect();
        std::vector<sluice::outbox_id> order = drain(box);
        REQUIRE(order.size() == burst);
        for (std::size_t i = 0; i < burst; ++i) REQUIRE(order[i] == first + i);
        for (int parity : {1, 0})
            for (sluice::outbox_id id = first; id < next; ++id)
                if (static_cast<int>(id % 2) == parity) REQUIRE(box.acknowledge(id, {id, "E"}));
        CHECK(box.empty());
    }
    CHECK(rec.records.size() == next - 1);
    for (sluice::outbox_id id = 1; id < next; ++id) REQUIRE(rec.of(id) == 1);
}

TEST_CASE("every accepted message gets exactly one outcome (random operations)",
          "[outbox][stress]") {
    for (auto policy : {sluice::overflow_policy::drop_oldest, sluice::overflow_policy::drop_newest,
                        sluice::overflow_policy::reject}) {
        manual_clock::reset();
        sluice::outbox_options o = opts(20, 200, policy);
        o.ttl = 5s;
        test_outbox box(o, std::mt19937_64(5));
        std::map<sluice::outbox_id, int> outcomes;
        std::map<sluice::outbox_id, sluice::outbox_priority> priority;
        bool critical_lost = false;
        box.on_complete([&](const test_outbox::completion& c) {
            ++outcomes[c.id];
            if (c.outcome == sluice::outbox_outcome::dropped &&
                priority[c.id] == sluice::outbox_priority::critical) {
                critical_lost = true;
            }
        });
        std::mt19937 ops(11);
        std::vector<sluice::outbox_id> in_flight;
        std::set<sluice::outbox_id> accepted;
        for (int step = 0; step < 20000; ++step) {
            const unsigned op = ops() % 100;
            if (op < 45) {
                sluice::outbox_push_options p;
                if (ops() % 5 == 0) p.priority = sluice::outbox_priority::critical;
                if (ops() % 4 == 0) p.ttl = std::chrono::milliseconds(1 + ops() % 3000);
                auto r = box.push(msg("t"), 1 + ops() % 30, p);
                if (r) {
                    REQUIRE(accepted.insert(r.id).second);
                    priority[r.id] = p.priority;
                } else {
                    REQUIRE(r.error);
                }
            } else if (op < 70) {
                if (const auto* e = box.next_to_send()) in_flight.push_back(e->id());
            } else if (op < 85) {
                if (!in_flight.empty()) {
                    const std::size_t k = ops() % in_flight.size();
                    if (ops() % 8 == 0) {
                        REQUIRE(box.fail(in_flight[k], sluice::errc::forbidden));
                    } else {
                        REQUIRE(box.acknowledge(in_flight[k], {in_flight[k], "E"}));
                    }
                    in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(k));
                }
            } else if (op < 88) {
                box.on_disconnect();
                in_flight.clear();
            } else {
                manual_clock::advance(std::chrono::milliseconds(ops() % 400));
            }
            REQUIRE(box.size() <= o.max_messages);
            REQUIRE(box.bytes() <= o.max_bytes);
            const auto c = box.counters();
            REQUIRE(c.pushed ==
                    c.sent + c.failed + c.expired + c.dropped + c.cancelled + c.messages);
        }
        box.clear();
        CHECK(box.empty());
        CHECK_FALSE(critical_lost);
        CHECK(outcomes.size() == accepted.size());
        bool exactly_once = true;
        for (const auto& [id, n] : outcomes)
            exactly_once = exactly_once && n == 1 && accepted.count(id);
        CHECK(exactly_once);
        const auto c = box.counters();
        CHECK(c.pushed == accepted.size());
        CHECK(c.sent > 0);
        CHECK(c.expired > 0);
        CHECK(c.rejected > 0);
        if (policy != sluice::overflow_policy::reject) CHECK(c.dropped > 0);
        if (policy == sluice::overflow_policy::reject) CHECK(c.dropped == 0);
    }
}

// The snippet of docs/history.md ("Offline outbox (client side)") is this test's body.
TEST_CASE("outbox example", "[outbox][example]") {
    // --- snippet begin
    // snippet: outbox
    sluice::outbox_options options;
    options.max_messages = 100;
    options.ttl = std::chrono::seconds(30);
    sluice::outbox box(options);

    std::vector<std::string> log;
    box.on_complete([&](const sluice::outbox_completion& c) {
        log.push_back(std::string(sluice::to_string(c.outcome)) + " " + c.message.topic +
                      (c.ack ? " @" + std::to_string(c.ack->offset) : ""));
    });

    // Offline: the app publishes; the messages wait.
    box.push({"chat:1", R"({"text":"hi"})", ""});
    sluice::outbox_push_options urgent;
    urgent.priority = sluice::outbox_priority::critical;
    urgent.idempotency_key = "order-42";
    box.push({"orders:7", R"({"qty":1})", "order:new"}, urgent);

    // Connected: flush in order; each entry carries its idempotency key.
    std::vector<sluice::outbox_id> written;
    while (const auto* e = box.next_to_send()) written.push_back(e->id());

    // The connection drops before any answer: both go out again, same keys.
    box.on_disconnect();
    while (const auto* e = box.next_to_send()) written.push_back(e->id());

    // The server answers `published` for the first and `error forbidden` for the second.
    box.acknowledge(written[0], {1, "xyz"});
    box.fail(written[1], sluice::errc::forbidden);
    // end snippet
    // --- snippet end

    CHECK(written == ids{1, 2, 1, 2});
    CHECK(log == std::vector<std::string>{"sent chat:1 @1", "failed orders:7"});
    CHECK(box.empty());
}
