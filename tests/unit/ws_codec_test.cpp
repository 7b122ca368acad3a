#include "ws_codec.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace sluice::detail;

namespace {

// A masked client frame (RFC 6455 5.3).
std::vector<std::uint8_t> client_frame(std::uint8_t first_byte, const std::string& payload) {
    std::vector<std::uint8_t> out{first_byte};
    const std::uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (payload.size() < 126) {
        out.push_back(static_cast<std::uint8_t>(0x80 | payload.size()));
    } else {
        out.push_back(0x80 | 126);
        out.push_back(static_cast<std::uint8_t>(payload.size() >> 8));
        out.push_back(static_cast<std::uint8_t>(payload.size()));
    }
    out.insert(out.end(), mask, mask + 4);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        out.push_back(static_cast<std::uint8_t>(payload[i]) ^ mask[i % 4]);
    }
    return out;
}

// Feeds a copy: the decoder unmasks its input in place.
std::vector<ws_message> feed_all(ws_decoder& d, std::vector<std::uint8_t> bytes,
                                 ws_decode_error& error) {
    std::vector<ws_message> out;
    error =
        d.feed(bytes.data(), bytes.size(), [&](ws_message&& m) { out.push_back(std::move(m)); });
    return out;
}

}  // namespace

TEST_CASE("decoder: text, ping and fragmented messages, byte by byte too", "[ws_codec]") {
    auto bytes = client_frame(0x81, "hello");
    auto ping = client_frame(0x89, "p");
    auto first = client_frame(0x01, "frag");
    auto last = client_frame(0x80, "ment");
    bytes.insert(bytes.end(), ping.begin(), ping.end());
    bytes.insert(bytes.end(), first.begin(), first.end());
    bytes.insert(bytes.end(), last.begin(), last.end());

    ws_decoder whole(1 << 20);
    ws_decode_error error;
    auto messages = feed_all(whole, bytes, error);
    CHECK(error.close_code == 0);
    REQUIRE(messages.size() == 3);
    CHECK(messages[0].opcode == ws_opcode::text);
    CHECK(messages[0].payload == "hello");
    CHECK(messages[1].opcode == ws_opcode::ping);
    CHECK(messages[2].payload == "fragment");

    ws_decoder trickle(1 << 20);
    std::vector<ws_message> seen;
    for (auto b : bytes) {
        auto e = trickle.feed(&b, 1, [&](ws_message&& m) { seen.push_back(std::move(m)); });
        REQUIRE(e.close_code == 0);
    }
    REQUIRE(seen.size() == 3);
    CHECK(seen[2].payload == "fragment");
}

TEST_CASE("decoder: protocol errors map to their close codes", "[ws_codec]") {
    ws_decode_error error;
    {
        ws_decoder d(1 << 20);
        feed_all(d, client_frame(0x81, std::string("\xff\xfe", 2)), error);
        CHECK(error.close_code == 1007);
    }
    {
        ws_decoder d(16);
        feed_all(d, client_frame(0x81, std::string(200, 'x')), error);
        CHECK(error.close_code == 1009);
    }
    {
        ws_decoder d(1 << 20);
        std::vector<std::uint8_t> unmasked{0x81, 0x02, 'h', 'i'};
        feed_all(d, unmasked, error);
        CHECK(error.close_code == 1002);
    }
}

TEST_CASE("frame headers use the shortest length encoding", "[ws_codec]") {
    std::uint8_t h[ws_max_header_bytes];
    CHECK(ws_write_frame_header(ws_opcode::text, 125, h) == 2);
    CHECK(h[0] == 0x81);
    CHECK(h[1] == 125);
    CHECK(ws_write_frame_header(ws_opcode::text, 126, h) == 4);
    CHECK(h[1] == 126);
    CHECK(ws_write_frame_header(ws_opcode::text, 65535, h) == 4);
    CHECK(ws_write_frame_header(ws_opcode::text, 65536, h) == 10);
    CHECK(h[1] == 127);
    CHECK(h[7] == 1);  // 65536 = 0x10000, big-endian in bytes 2..9
}

TEST_CASE("close payloads and codes", "[ws_codec]") {
    auto payload = ws_close_payload(1013, "slow consumer");
    CHECK(ws_parse_close_code(payload) == 1013);
    CHECK(payload.substr(2) == "slow consumer");
    CHECK(ws_parse_close_code("") == 1005);
    CHECK(ws_parse_close_code(std::string(1, '\x03')) == 0);
    CHECK(ws_parse_close_code(ws_close_payload(1005, "")) == 0);  // reserved: may not be sent
    CHECK(ws_parse_close_code(ws_close_payload(4429, "")) == 4429);
    CHECK(ws_parse_close_code(ws_close_payload(1012, "")) == 1012);
    CHECK(ws_parse_close_code(ws_close_payload(1015, "")) == 0);  // local use only
    CHECK(ws_parse_close_code(ws_close_payload(1012, "")) == 1012);
    CHECK(ws_parse_close_code(ws_close_payload(1015, "")) == 0);  // local use only
}

TEST_CASE("handshake key (RFC 6455 section 1.3 example)", "[ws_codec]") {
    CHECK(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(ws_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK_FALSE(ws_valid_client_key("short"));
    CHECK_FALSE(ws_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=!"));
}
