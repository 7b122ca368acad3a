// The comparison point of server_bench: a broadcast server written the
// ordinary way with websocketpp 0.8.2 (its `asio` transport, default
// `config::asio`, one `endpoint.send` per subscriber).
//
// It speaks just enough of PROTOCOL.md for the load generator: `subscribe`
// (answered `subscribed` with the topic's current offset) and `publish`
// (offset assigned, the event sent to every subscriber of the topic, answered
// `published`). Events have the same JSON shape as sluice's, so the same
// subscribers verify exactly-once, in-order delivery against both servers.
// Messages are parsed with RapidJSON, the way such a server usually would.
//
// Thread-safety: everything runs on the io_context it is given (run it on one
// thread). websocketpp's standalone-asio mode needs ASIO_STANDALONE and
// _WEBSOCKETPP_CPP11_STL_ before its headers, and the TU must be C++17
// (websocketpp 0.8.2 does not compile as C++20).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#ifndef _WEBSOCKETPP_CPP11_STL_
#define _WEBSOCKETPP_CPP11_STL_
#endif

#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace sluice::bench {

/// A websocketpp broadcast server (default `config::asio`), the baseline.
class baseline_server {
public:
    using endpoint_type = websocketpp::server<websocketpp::config::asio>;
    using handle = websocketpp::connection_hdl;

    explicit baseline_server(asio::io_context& io) {
        // websocketpp logs every connect and disconnect to std::cout by default.
        endpoint_.clear_access_channels(websocketpp::log::alevel::all);
        endpoint_.clear_error_channels(websocketpp::log::elevel::all);
        endpoint_.init_asio(&io);
        endpoint_.set_reuse_addr(true);
        endpoint_.set_message_handler([this](handle h, endpoint_type::message_ptr msg) {
            on_message(h, msg->get_payload());
        });
        endpoint_.set_open_handler([this](handle h) { connections_.insert(h); });
        endpoint_.set_close_handler([this](handle h) { forget(h); });
        endpoint_.set_fail_handler([this](handle h) { forget(h); });
    }

    /// Listens on 127.0.0.1 with an OS-chosen port; returns that port (0 on failure).
    std::uint16_t listen() {
        std::error_code ec;
        endpoint_.listen(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), ec);
        if (ec) return 0;
        endpoint_.start_accept(ec);
        if (ec) return 0;
        auto local = endpoint_.get_local_endpoint(ec);
        return ec ? 0 : local.port();
    }

    /// Stops accepting and closes every connection (call on the io thread).
    void stop() {
        std::error_code ec;
        endpoint_.stop_listening(ec);
        std::vector<handle> all(connections_.begin(), connections_.end());
        for (auto& h : all) endpoint_.close(h, websocketpp::close::status::going_away, "", ec);
    }

private:
    void on_message(handle h, const std::string& payload) {
        rapidjson::Document doc;
        doc.Parse(payload.data(), payload.size());
        if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("type") ||
            !doc["type"].IsString())
            return;
        std::string type = doc["type"].GetString();
        auto topic_it = doc.FindMember("topic");
        if (topic_it == doc.MemberEnd() || !topic_it->value.IsString()) return;
        std::string topic = topic_it->value.GetString();
        std::string id = doc.HasMember("id") ? to_json(doc["id"]) : "null";
        std::error_code ec;
        if (type == "subscribe") {
            topics_[topic].insert(h);
            subscriptions_[h].push_back(topic);
            std::string reply = R"({"type":"subscribed","id":)" + id + R"(,"topic":")" + topic +
                                R"(","epoch":"baseline","offset":)" +
                                std::to_string(offsets_[topic]) + "}";
            endpoint_.send(h, reply, websocketpp::frame::opcode::text, ec);
        } else if (type == "publish" && doc.HasMember("data")) {
            std::uint64_t offset = ++offsets_[topic];
            auto ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
            std::string event = R"({"type":"event","sub":")" + topic + R"(","topic":")" + topic +
                                R"(","offset":)" + std::to_string(offset) +
                                R"(,"epoch":"baseline","ts":)" + std::to_string(ts) +
                                R"(,"data":)" + to_json(doc["data"]) + "}";
            auto subscribers = topics_.find(topic);
            if (subscribers != topics_.end()) {
                for (const auto& subscriber : subscribers->second) {
                    endpoint_.send(subscriber, event, websocketpp::frame::opcode::text, ec);
                }
            }
            std::string reply = R"({"type":"published","id":)" + id + R"(,"topic":")" + topic +
                                R"(","offset":)" + std::to_string(offset) +
                                R"(,"epoch":"baseline"})";
            endpoint_.send(h, reply, websocketpp::frame::opcode::text, ec);
        }
    }

    void forget(handle h) {
        connections_.erase(h);
        auto it = subscriptions_.find(h);
        if (it == subscriptions_.end()) return;
        for (const auto& topic : it->second) {
            auto t = topics_.find(topic);
            if (t == topics_.end()) continue;
            t->second.erase(h);
            if (t->second.empty()) topics_.erase(t);
        }
        subscriptions_.erase(it);
    }

    static std::string to_json(const rapidjson::Value& v) {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
        v.Accept(writer);
        return std::string(buffer.GetString(), buffer.GetSize());
    }

    endpoint_type endpoint_;
    std::set<handle, std::owner_less<handle>> connections_;
    std::unordered_map<std::string, std::set<handle, std::owner_less<handle>>> topics_;
    std::map<handle, std::vector<std::string>, std::owner_less<handle>> subscriptions_;
    std::unordered_map<std::string, std::uint64_t> offsets_;
};

}  // namespace sluice::bench
