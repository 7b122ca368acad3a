// sluice-follow: follows topics of a sluice server through cuts and restarts
// with the reconnecting clients (docs/clients.md).
//
//     sluice-follow [--sse] [--token T] [--ca FILE] URL TOPIC...
//
// Every event delivered to the application is printed on stdout as one JSON
// line, the protocol's `event` object as received (`sub`, `topic`, `offset`,
// `epoch`, `ts`, `data`, and `event` when named). Every state change, every
// subscription answer (with `recovered=false` called out: events may have been
// missed) and every refusal go to stderr. SIGINT or SIGTERM: closes and exits
// 0. Bad arguments: a message and exit 2. A fatal error (401, 403, every
// subscription refused): exit 1.
#include <sluice/sse_client.hpp>
#include <sluice/ws_client.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr const char* usage =
    "usage: sluice-follow [--sse] [--token T] [--ca FILE] URL TOPIC...\n"
    "  URL    ws://HOST:PORT/ws or wss://… (default), http://HOST:PORT/events or\n"
    "         https://… with --sse\n"
    "  TOPIC  a topic or a pattern (PROTOCOL.md section 2); several allowed\n"
    "  --sse        use Server-Sent Events instead of WebSocket\n"
    "  --token T    sent as 'Authorization: Bearer T'\n"
    "  --ca FILE    trust the CA certificates of FILE (PEM) for wss:// and https://\n";

struct arguments {
    bool sse = false;
    std::string token;
    std::string ca_file;
    std::string url;
    std::vector<std::string> topics;
};

// Parses argv; on a bad command line prints why and returns false.
bool parse(int argc, char** argv, arguments& out) {
    std::vector<std::string_view> positional;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&](std::string& into) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                std::fprintf(stderr, "sluice-follow: %s needs a value\n", argv[i]);
                return false;
            }
            into = argv[++i];
            return true;
        };
        if (a == "--sse") {
            out.sse = true;
        } else if (a == "--token") {
            if (!value(out.token)) return false;
        } else if (a == "--ca") {
            if (!value(out.ca_file)) return false;
        } else if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (a.size() > 1 && a[0] == '-' && a != "--") {
            std::fprintf(stderr, "sluice-follow: unknown option %s\n", argv[i]);
            return false;
        } else if (a == "--") {
            for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
        } else {
            positional.push_back(a);
        }
    }
    if (positional.size() < 2) {
        std::fputs("sluice-follow: a URL and at least one topic are needed\n", stderr);
        return false;
    }
    out.url = std::string(positional[0]);
    for (std::size_t i = 1; i < positional.size(); ++i) out.topics.emplace_back(positional[i]);
    return true;
}

// One JSON line per event: the protocol's `event` object.
void print_event(const sluice::client_event& e) {
    rapidjson::StringBuffer line;
    rapidjson::Writer<rapidjson::StringBuffer> w(line);
    auto string = [&](const char* key, std::string_view value) {
        w.Key(key);
        w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    w.StartObject();
    string("type", "event");
    string("sub", e.sub);
    string("topic", e.topic);
    w.Key("offset");
    w.Uint64(e.offset);
    string("epoch", e.epoch);
    w.Key("ts");
    w.Int64(e.ts);
    w.Key("data");
    w.RawValue(e.data.data(), e.data.size(), rapidjson::kObjectType);
    if (!e.event.empty()) string("event", e.event);
    w.EndObject();
    std::fwrite(line.GetString(), 1, line.GetSize(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);  // a consumer of the pipe sees each event at once
}

long long to_ms(std::chrono::nanoseconds d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// snippet: follow-state
// Every state change on stderr: why a connection ended, how long until the
// next attempt, when the breaker stopped trying.
void print_state(const sluice::client_state& s) {
    std::string line = "state: " + std::string(sluice::to_string(s.kind));
    switch (s.kind) {
    case sluice::client_state_kind::connecting:
    case sluice::client_state_kind::reconnecting:
        line += " attempt=" + std::to_string(s.attempt);
        if (s.kind == sluice::client_state_kind::connecting) break;
        [[fallthrough]];
    case sluice::client_state_kind::circuit_open:
        line += " delay_ms=" + std::to_string(to_ms(s.delay));
        break;
    default: break;
    }
    if (s.error) line += " error=" + s.error.message();
    if (s.close_code != 0) line += " close_code=" + std::to_string(s.close_code);
    if (s.http_status != 0) line += " http_status=" + std::to_string(s.http_status);
    std::fprintf(stderr, "%s\n", line.c_str());
}
// end snippet

// Follows `args.topics` with a `Client` (ws_client or sse_client) until a
// signal (exit 0) or a fatal error (exit 1).
template <class Client, class Options>
int follow(const arguments& args, Options options) {
    asio::io_context io;
    options.token = args.token;
    if (!args.ca_file.empty()) options.tls.ca_file = args.ca_file;
    std::unique_ptr<Client> client;
    try {
        client = std::make_unique<Client>(io.get_executor(), args.url, std::move(options));
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "sluice-follow: %s\n%s", e.what(), usage);
        return 2;
    }

    int exit_code = 0;
    bool stopping = false;
    std::size_t refused = 0;
    asio::steady_timer give_up(io);
    client->on_state([&](const sluice::client_state& s) {
        print_state(s);
        if (s.kind != sluice::client_state_kind::closed) return;
        if (!stopping) exit_code = 1;  // a fatal error, already printed
        io.stop();
    });

    // snippet: follow-subscribe
    sluice::subscribe_options sub;
    sub.on_status = [&](const sluice::subscription_status& st) {
        std::string topic(st.topic);
        if (st.error) {  // refused: the subscription is dropped, never retried
            std::fprintf(stderr, "refused: %s %s\n", topic.c_str(), st.error.message().c_str());
            if (++refused == args.topics.size()) client->close();
            return;
        }
        std::fprintf(stderr, "subscribed: %s offset=%llu epoch=%.*s resumed=%s recovered=%s\n",
                     topic.c_str(), static_cast<unsigned long long>(st.offset),
                     static_cast<int>(st.epoch.size()), st.epoch.data(),
                     st.resumed ? "true" : "false", st.recovered ? "true" : "false");
        if (!st.recovered) {  // the gap could not be filled: events may be missing
            std::fprintf(stderr, "recovered=false: %s continues at offset %llu of epoch %.*s\n",
                         topic.c_str(), static_cast<unsigned long long>(st.offset + 1),
                         static_cast<int>(st.epoch.size()), st.epoch.data());
        }
    };
    for (const auto& topic : args.topics) client->subscribe(topic, sub, print_event);
    client->connect();
    // end snippet

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec) return;
        stopping = true;
        client->close();  // state `closed` stops the loop
        give_up.expires_after(std::chrono::seconds(3));
        give_up.async_wait([&](std::error_code e) {
            if (!e) io.stop();
        });
    });
    io.run();
    if (refused == args.topics.size()) exit_code = 1;
    client.reset();
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    arguments args;
    if (!parse(argc, argv, args)) {
        std::fputs(usage, stderr);
        return 2;
    }
    std::setvbuf(stderr, nullptr, _IOLBF, 0);
    if (args.sse) return follow<sluice::sse_client>(args, sluice::sse_client_options{});
    return follow<sluice::ws_client>(args, sluice::ws_client_options{});
}
