// sluice-hub: the reference hub (PROTOCOL.md section 8). A thin command line
// around sluice::hub and sluice::server: everything it does, a host can do in
// its own process.
#include "demo_feed.hpp"

#include <sluice/hub.hpp>
#include <sluice/server.hpp>
#include <sluice/version.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace {

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    sluice::hub_options hub;
    sluice::server_options server;
    std::string jwt_secret;
    bool allow_publish = false;
    bool demo = false;
    std::string redis;
    sluice::redis_options redis_options;
};

const char* const usage =
    "usage: sluice-hub [--listen 127.0.0.1:8080] [--history 1000] [--history-ttl 300]\n"
    "                  [--replay-limit 1000] [--jwt-secret SECRET] [--allow-publish]\n"
    "                  [--allowed-origin ORIGIN]... [--redis HOST:PORT] [--static DIR] [--demo]\n"
    "                  [--max-message-bytes 1048576] [--client-rate 100] [--max-queue-bytes "
    "4194304]\n"
    "                  [--send-timeout 10] [--ping-interval 25] [--pong-timeout 10]\n"
    "                  [--sse-heartbeat 15] [--token-grace 25] [--drain-seconds 0]\n"
    "times in seconds, fractions allowed (--ping-interval 0.5)\n";

[[noreturn]] void bad_flag(const std::string& message) {
    std::cerr << "sluice-hub: " << message << "\n" << usage;
    std::exit(2);
}

std::size_t parse_count(std::string_view flag, std::string_view text, std::size_t min_value) {
    std::size_t value = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), value);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || value < min_value) {
        bad_flag(std::string(flag) + " needs a whole number >= " + std::to_string(min_value) +
                 ", not '" + std::string(text) + "'");
    }
    return value;
}

std::chrono::milliseconds parse_seconds(std::string_view flag, std::string_view text,
                                        bool allow_zero) {
    char* end = nullptr;
    std::string copy(text);
    double seconds = std::strtod(copy.c_str(), &end);
    if (copy.empty() || end != copy.c_str() + copy.size() || !(seconds >= 0) || seconds > 1e7 ||
        (!allow_zero && seconds <= 0)) {
        bad_flag(std::string(flag) + " needs a number of seconds" +
                 (allow_zero ? " >= 0" : " > 0") + ", not '" + copy + "'");
    }
    auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
    if (!allow_zero && ms.count() == 0) ms = std::chrono::milliseconds(1);
    return ms;
}

settings parse(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) bad_flag(std::string(flag) + " needs a value");
            return argv[++i];
        };
        if (flag == "--help" || flag == "-h") {
            std::cout << usage;
            std::exit(0);
        } else if (flag == "--version") {
            std::cout << "sluice-hub " << SLUICE_VERSION_STRING << "\n";
            std::exit(0);
        } else if (flag == "--listen") {
            auto text = value();
            auto colon = text.rfind(':');
            if (colon == std::string_view::npos) bad_flag("--listen needs HOST:PORT");
            s.host = std::string(text.substr(0, colon));
            if (s.host.size() > 2 && s.host.front() == '[' && s.host.back() == ']')
                s.host = s.host.substr(1, s.host.size() - 2);
            auto port = parse_count("--listen port", text.substr(colon + 1), 0);
            if (port > 65535) bad_flag("--listen port must be <= 65535");
            s.port = static_cast<std::uint16_t>(port);
        } else if (flag == "--history") {
            s.hub.history_size = parse_count(flag, value(), 0);
        } else if (flag == "--history-ttl") {
            s.hub.history_ttl = parse_seconds(flag, value(), false);
        } else if (flag == "--replay-limit") {
            s.hub.replay_limit = parse_count(flag, value(), 0);
        } else if (flag == "--jwt-secret") {
            s.jwt_secret = std::string(value());
            if (s.jwt_secret.empty()) bad_flag("--jwt-secret must not be empty");
        } else if (flag == "--allow-publish") {
            s.allow_publish = true;
        } else if (flag == "--allowed-origin") {
            s.server.allowed_origins.emplace_back(value());
        } else if (flag == "--redis") {
            s.redis = std::string(value());
            auto colon = s.redis.rfind(':');
            if (colon == std::string::npos || colon == 0)
                bad_flag("--redis needs HOST:PORT, not '" + s.redis + "'");
            s.redis_options.host = s.redis.substr(0, colon);
            auto port = parse_count(flag, std::string_view(s.redis).substr(colon + 1), 1);
            if (port > 65535) bad_flag("--redis: the port must be 1-65535");
            s.redis_options.port = static_cast<std::uint16_t>(port);
        } else if (flag == "--static") {
            s.server.static_dir = std::string(value());
        } else if (flag == "--demo") {
            s.demo = true;
        } else if (flag == "--max-message-bytes") {
            s.server.max_message_bytes = parse_count(flag, value(), 1);
        } else if (flag == "--client-rate") {
            s.server.client_rate = parse_count(flag, value(), 1);
        } else if (flag == "--max-queue-bytes") {
            s.server.max_queue_bytes = parse_count(flag, value(), 1);
        } else if (flag == "--send-timeout") {
            s.server.send_timeout = parse_seconds(flag, value(), false);
        } else if (flag == "--ping-interval") {
            s.server.ping_interval = parse_seconds(flag, value(), false);
        } else if (flag == "--pong-timeout") {
            s.server.pong_timeout = parse_seconds(flag, value(), false);
        } else if (flag == "--sse-heartbeat") {
            s.server.sse_heartbeat = parse_seconds(flag, value(), false);
        } else if (flag == "--token-grace") {
            s.server.token_grace = parse_seconds(flag, value(), true);
        } else if (flag == "--drain-seconds") {
            s.server.drain = parse_seconds(flag, value(), true);
        } else {
            bad_flag("unknown flag '" + std::string(flag) + "'");
        }
    }
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    settings s = parse(argc, argv);
    if (!s.redis.empty() && !sluice::hub::redis_supported()) {
        std::cerr << "sluice-hub: --redis: this build has no Redis backplane "
                     "(configure with -DSLUICE_WITH_REDIS=ON)\n";
        return 2;
    }
    asio::io_context io;
    std::shared_ptr<const sluice::auth_policy> policy;
    if (s.jwt_secret.empty()) {
        policy = std::make_shared<sluice::anonymous_policy>(s.allow_publish);
    } else {
        sluice::jwt_options jwt;
        jwt.secret = s.jwt_secret;
        policy = std::make_shared<sluice::jwt_policy>(jwt);
    }
    try {
        std::optional<sluice::hub> clustered;
        if (!s.redis.empty()) clustered.emplace(io.get_executor(), policy, s.hub, s.redis_options);
        std::optional<sluice::hub> alone;
        if (s.redis.empty()) alone.emplace(io.get_executor(), policy, s.hub);
        sluice::hub& hub = clustered ? *clustered : *alone;
        hub.on_log([](sluice::log_level level, std::string_view message) {
            if (level >= sluice::log_level::warning) std::cerr << "sluice-hub: " << message << "\n";
        });
        sluice::server server(io, hub, s.server);
        if (auto ec = server.listen(s.host, s.port)) {
            std::cerr << "sluice-hub: cannot listen on " << s.host << ":" << s.port << ": "
                      << ec.message() << "\n";
            return 2;
        }
        std::optional<sluice_hub::demo_feed> demo;
        if (s.demo) {
            demo.emplace(io, hub, std::chrono::milliseconds(200));
            demo->start();
        }
        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const std::error_code& ec, int) {
            if (ec) return;
            if (demo) demo->stop();
            server.stop([&] { io.stop(); });
        });
        auto endpoint = server.local_endpoint();
        auto announce = [&] {
            std::cout << "listening on " << s.host << ":" << endpoint.port() << std::endl;
        };
        // With --redis: once joined, or after 5 s in degraded mode.
        asio::steady_timer joining(io);
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        std::function<void()> wait_joined = [&] {
            if (hub.backplane_up() || std::chrono::steady_clock::now() >= give_up) {
                if (!hub.backplane_up())
                    std::cerr << "sluice-hub: Redis at " << s.redis
                              << " unreachable; serving in degraded mode\n";
                return announce();
            }
            joining.expires_after(std::chrono::milliseconds(20));
            joining.async_wait([&](const std::error_code& ec) {
                if (!ec) wait_joined();
            });
        };
        if (s.redis.empty()) {
            announce();
        } else {
            wait_joined();
        }
        io.run();
    } catch (const std::exception& e) {
        std::cerr << "sluice-hub: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
