#include "http_routes.hpp"

#include "connection.hpp"
#include "hub_core.hpp"

#include <sluice/filter.hpp>
#include <sluice/topic.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <random>

namespace sluice::detail {
namespace {

std::string_view reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) {
            return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
        };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

/// The CORS header lines for a request from `origin` (section 6).
std::string cors_headers(const server_options& o, std::string_view origin) {
    if (o.allowed_origins.empty()) return "Access-Control-Allow-Origin: *\r\n";
    if (origin.empty()) return {};
    for (const auto& allowed : o.allowed_origins) {
        if (allowed == origin)
            return "Access-Control-Allow-Origin: " + std::string(origin) + "\r\nVary: Origin\r\n";
    }
    return {};
}

bool origin_allowed(const server_options& o, std::string_view origin) {
    if (o.allowed_origins.empty() || origin.empty()) return true;
    return std::find(o.allowed_origins.begin(), o.allowed_origins.end(), origin) !=
           o.allowed_origins.end();
}

std::string retry_after_header(std::chrono::milliseconds retry_after) {
    auto seconds = std::max<std::int64_t>(1, (retry_after.count() + 999) / 1000);
    return "Retry-After: " + std::to_string(seconds) + "\r\n";
}

struct request_view {
    connection& c;
    const http_request_head& head;
    bool keep_alive;
    std::string_view origin;

    void respond(std::string response, bool keep) {
        c.send_raw(std::move(response));
        c.finish_request(keep);
    }
    void fail(int status, std::string_view code, std::string_view message,
              std::string_view extra = {}) {
        // The connection stays open when the client asked for keep-alive.
        respond(http_error_response(status, code, message, keep_alive, extra), keep_alive);
    }
};

auth_result authenticate(request_view& r, const http_query& query) {
    auth_request request;
    // An Authorization header wins over the query token even when it is not a
    // usable Bearer token: then the policy sees the raw value (a JWT policy
    // refuses it with 401, the anonymous one ignores it).
    if (auto bearer = r.head.bearer_token(); bearer && !bearer->empty()) {
        request.bearer_token = *bearer;
    } else if (auto raw = r.head.header("Authorization")) {
        request.bearer_token = raw->empty() ? std::string_view("-") : *raw;
    }
    if (auto token = query.value("token")) request.query_token = *token;
    request.remote_address = r.c.remote_ip();
    request.origin = r.origin;
    request.path = r.head.path();
    const auto& head = r.head;
    request.find_header = [&head](std::string_view name) {
        auto value = head.header(name);
        return value ? *value : std::string_view{};
    };
    return r.c.context().hub->policy().authenticate(request);
}

void refuse(request_view& r, const auth_result& result) {
    std::string extra = cors_headers(r.c.context().options, r.origin);
    if (result.http_status == 429) extra += retry_after_header(result.retry_after);
    int status = result.http_status ? result.http_status : 401;
    r.fail(status, to_wire(result.error), result.message, extra);
}

/// Counts a new streaming connection for its IP; false (answered 429) when over.
bool admit(request_view& r) {
    auto retry_after = r.c.context().admit_connection(r.c.remote_ip());
    if (retry_after.count() == 0) return true;
    r.c.context().stats.rate_limited.fetch_add(1, std::memory_order_relaxed);
    r.fail(429, "rate_limited", "too many new connections from this address",
           cors_headers(r.c.context().options, r.origin) + retry_after_header(retry_after));
    return false;
}

void websocket_upgrade(request_view& r, const http_query& query) {
    const auto& o = r.c.context().options;
    if (!origin_allowed(o, r.origin)) return r.fail(403, "forbidden", "origin not allowed");
    auto version = r.head.header("Sec-WebSocket-Version");
    if (!version || *version != "13") {
        return r.fail(426, "bad_request", "unsupported WebSocket version",
                      "Sec-WebSocket-Version: 13\r\n");
    }
    auto key = r.head.header("Sec-WebSocket-Key");
    if (!key || !ws_valid_client_key(*key))
        return r.fail(400, "bad_request", "bad Sec-WebSocket-Key");
    if (r.c.context().stopping.load()) return r.fail(503, "unavailable", "the server is stopping");
    auto result = authenticate(r, query);
    if (!result) return refuse(r, result);
    if (!admit(r)) return;
    r.c.send_raw(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        ws_accept_key(*key) + "\r\n\r\n");
    auto expires_at = result.who.expires_at;
    r.c.context().hub->attach_websocket(r.c.shared_from_this(), std::move(result.who));
    r.c.become_websocket(expires_at);
}

void sse_stream(request_view& r, const http_query& query) {
    const auto& o = r.c.context().options;
    auto extra = cors_headers(o, r.origin);
    std::vector<std::string> topics;
    for (auto t : query.values("topic")) {
        if (std::find(topics.begin(), topics.end(), t) == topics.end()) topics.emplace_back(t);
    }
    if (topics.empty()) return r.fail(400, "bad_request", "no topic", extra);
    for (const auto& t : topics) {
        if (auto check = check_pattern(t); !check) {
            return r.fail(400, "invalid_topic", t + ": " + check.message(), extra);
        }
    }
    if (topics.size() > o.max_sse_topics)
        return r.fail(400, "too_many_subscriptions", "too many topics", extra);
    sse_request request;
    if (auto spec = query.value("filter")) {
        auto compiled = parse_filter(*spec);
        if (!compiled) return r.fail(400, "invalid_filter", compiled.message, extra);
        request.filter_json = std::string(*spec);
    }
    if (r.c.context().stopping.load())
        return r.fail(503, "unavailable", "the server is stopping", extra);
    auto result = authenticate(r, query);
    if (!result) return refuse(r, result);
    if (!admit(r)) return;
    if (auto header = r.head.header("Last-Event-ID")) {
        request.last_event_id = std::string(*header);
    } else if (auto id = query.value("lastEventId")) {
        request.last_event_id = std::string(*id);
    } else if (auto id2 = query.value("last_event_id")) {
        request.last_event_id = std::string(*id2);
    }
    thread_local std::minstd_rand rng{std::random_device{}()};
    auto span = std::max<std::int64_t>(0, (o.sse_retry_max - o.sse_retry_min).count());
    request.retry = o.sse_retry_min + std::chrono::milliseconds(
                                          span ? static_cast<std::int64_t>(rng() % (span + 1)) : 0);
    request.topics = std::move(topics);
    request.who = std::move(result.who);
    request.extra_headers = std::move(extra);
    r.c.context().hub->start_sse(r.c.shared_from_this(), std::move(request));
}

void publish(request_view& r, const http_query& query, std::string body) {
    const auto& o = r.c.context().options;
    auto extra = cors_headers(o, r.origin);
    auto type = r.head.header("Content-Type");
    std::string_view media = type ? type->substr(0, type->find(';')) : std::string_view{};
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
    if (!equals_ignore_case(media, "application/json")) {
        return r.fail(415, "bad_request", "Content-Type must be application/json", extra);
    }
    auto result = authenticate(r, query);
    if (!result) return refuse(r, result);
    http_publish_request request{std::move(result.who), std::move(body), std::move(extra),
                                 r.keep_alive};
    r.c.context().hub->http_publish(r.c.shared_from_this(), std::move(request));
}

void preflight(request_view& r, std::string_view methods) {
    const auto& o = r.c.context().options;
    std::string extra = cors_headers(o, r.origin);
    extra += "Access-Control-Allow-Methods: ";
    extra += methods;
    extra += "\r\nAccess-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\n";
    extra += "Access-Control-Max-Age: " + std::to_string(o.cors_max_age.count()) + "\r\n";
    r.respond(http_response(204, {}, {}, r.keep_alive, extra), r.keep_alive);
}

void method_not_allowed(request_view& r, std::string_view allow) {
    r.fail(405, "bad_request", "method not allowed", "Allow: " + std::string(allow) + "\r\n");
}

}  // namespace

std::string http_response(int status, std::string_view content_type, std::string_view body,
                          bool keep_alive, std::string_view extra_headers) {
    std::string out;
    out.reserve(160 + extra_headers.size() + body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reason_phrase(status);
    out += "\r\n";
    if (!content_type.empty()) {
        out += "Content-Type: ";
        out += content_type;
        out += "\r\n";
    }
    if (status != 204) {
        out += "Content-Length: ";
        out += std::to_string(body.size());
        out += "\r\n";
    }
    out += "Cache-Control: no-store\r\n";
    if (!keep_alive) out += "Connection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
    return out;
}

std::string http_error_response(int status, std::string_view code, std::string_view message,
                                bool keep_alive, std::string_view extra_headers) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("code");
    w.String(code.data(), static_cast<rapidjson::SizeType>(code.size()));
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.EndObject();
    return http_response(status, "application/json",
                         std::string_view(buffer.GetString(), buffer.GetSize()), keep_alive,
                         extra_headers);
}

int http_status_for(std::error_code ec) noexcept {
    if (ec.category() != error_category()) return 500;
    switch (static_cast<errc>(ec.value())) {
    case errc::bad_request:
    case errc::invalid_topic:
    case errc::invalid_filter:
    case errc::too_many_subscriptions:
    case errc::recovery_unsupported: return 400;
    case errc::unauthorized: return 401;
    case errc::forbidden: return 403;
    case errc::rate_limited: return 429;
    case errc::unavailable: return 503;
    default: return 500;
    }
}

void route_http_request(connection& c, const http_request_head& head, std::string body) {
    const auto& o = c.context().options;
    auto origin_header = head.header("Origin");
    request_view r{c, head, head.keep_alive(), origin_header ? *origin_header : std::string_view{}};

    auto rate = c.count_inbound();
    if (!rate.allowed) {
        r.keep_alive = r.keep_alive && !rate.close_after;
        return r.fail(429, "rate_limited", "too many requests on this connection",
                      cors_headers(o, r.origin) + retry_after_header(rate.retry_after));
    }
    http_query query;
    if (query.parse(head.query())) return r.fail(400, "bad_request", "bad query string");

    const auto path = head.path();
    const auto method = head.method();
    if (path == "/ws") {
        if (method != "GET") return method_not_allowed(r, "GET");
        if (!head.is_websocket_upgrade()) {
            return r.fail(426, "bad_request", "WebSocket upgrade required",
                          "Upgrade: websocket\r\n");
        }
        return websocket_upgrade(r, query);
    }
    if (path == "/events") {
        if (method == "GET") return sse_stream(r, query);
        if (method == "OPTIONS") return preflight(r, "GET, OPTIONS");
        return method_not_allowed(r, "GET, OPTIONS");
    }
    if (path == "/publish") {
        if (method == "POST") return publish(r, query, std::move(body));
        if (method == "OPTIONS") return preflight(r, "POST, OPTIONS");
        return method_not_allowed(r, "POST, OPTIONS");
    }
    if (path == "/health") {
        if (method != "GET") return method_not_allowed(r, "GET");
        return r.respond(
            http_response(200, "application/json", c.context().hub->health_json(), r.keep_alive),
            r.keep_alive);
    }
    if (path == "/metrics") {
        if (method != "GET") return method_not_allowed(r, "GET");
        return r.respond(http_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                       c.context().hub->metrics_text(), r.keep_alive),
                         r.keep_alive);
    }
    if (c.context().files.enabled() && (method == "GET" || method == "HEAD")) {
        if (auto file = c.context().files.find(path)) {
            auto response = http_response(200, file->content_type, file->body, r.keep_alive);
            if (method == "HEAD") response.resize(response.size() - file->body.size());
            return r.respond(std::move(response), r.keep_alive);
        }
    }
    r.fail(404, "not_found", "no such path");
}

}  // namespace sluice::detail
