#include "client_url.hpp"

#include <asio/ip/address.hpp>

#include <cctype>

namespace sluice::detail {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<client_url> fail(std::string& error, const char* what) {
    error = what;
    return std::nullopt;
}

}  // namespace

std::optional<client_url> parse_client_url(std::string_view url, std::string_view default_path,
                                           std::string& error) {
    for (char c : url) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) return fail(error, "URL contains a space or control character");
    }
    const auto colon = url.find("://");
    if (colon == std::string_view::npos) return fail(error, "URL has no scheme");
    client_url out;
    const std::string scheme = lower(url.substr(0, colon));
    if (scheme == "ws") {
        out.websocket = true;
    } else if (scheme == "wss") {
        out.websocket = out.tls = true;
    } else if (scheme == "http") {
    } else if (scheme == "https") {
        out.tls = true;
    } else {
        return fail(error, "URL scheme is not ws, wss, http or https");
    }
    std::string_view rest = url.substr(colon + 3);
    if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
    const auto path_start = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, path_start);
    std::string_view path_query =
        path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    if (authority.find('@') != std::string_view::npos)
        return fail(error, "URL user information is not supported");
    std::string_view host, port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return fail(error, "URL has an unclosed '['");
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail(error, "URL has junk after ']'");
            port = after.substr(1);
            if (port.empty()) return fail(error, "URL has an empty port");
        }
        std::error_code ec;
        (void)asio::ip::make_address_v6(std::string(host), ec);
        if (ec) return fail(error, "URL has a bad IPv6 literal");
        out.host_is_ip = true;
    } else {
        const auto c = authority.rfind(':');
        host = authority.substr(0, c);
        if (c != std::string_view::npos) {
            port = authority.substr(c + 1);
            if (port.empty()) return fail(error, "URL has an empty port");
        }
        if (host.find(':') != std::string_view::npos)
            return fail(error, "URL has an IPv6 literal without brackets");
        std::error_code ec;
        (void)asio::ip::make_address_v4(std::string(host), ec);
        out.host_is_ip = !ec;
    }
    if (host.empty()) return fail(error, "URL has no host");
    out.host = std::string(host);
    const std::uint16_t default_port = out.tls ? 443 : 80;
    out.port = default_port;
    if (!port.empty()) {
        unsigned long value = 0;
        if (port.size() > 5) return fail(error, "URL port is out of range");
        for (char c : port) {
            if (c < '0' || c > '9') return fail(error, "URL port is not a number");
            value = value * 10 + static_cast<unsigned long>(c - '0');
        }
        if (value == 0 || value > 65535) return fail(error, "URL port is out of range");
        out.port = static_cast<std::uint16_t>(value);
    }
    const auto q = path_query.find('?');
    std::string_view path = path_query.substr(0, q);
    if (q != std::string_view::npos) out.query = std::string(path_query.substr(q + 1));
    out.path = (path.empty() || path == "/") ? std::string(default_path) : std::string(path);
    const bool v6 = !authority.empty() && authority.front() == '[';
    out.host_header = v6 ? "[" + out.host + "]" : out.host;
    if (out.port != default_port) out.host_header += ":" + std::to_string(out.port);
    return out;
}

}  // namespace sluice::detail
