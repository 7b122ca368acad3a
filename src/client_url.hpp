// client_url.hpp: the URLs the clients connect to (`ws://`, `wss://`,
// `http://`, `https://`), split into what a connection needs. Private to the
// library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::detail {

/// A parsed client URL.
struct client_url {
    bool tls = false;        ///< wss:// or https://
    bool websocket = false;  ///< ws:// or wss:// (else http:// or https://)
    std::string host;        ///< the host, without the brackets of an IPv6 literal
    std::uint16_t port = 0;  ///< the explicit port, or 80 / 443
    std::string path;        ///< starts with '/'; `default_path` when the URL had none or '/'
    std::string query;       ///< after '?', without it; the fragment is dropped
    std::string
        host_header;  ///< the Host header: host (bracketed for IPv6), `:port` unless default
    bool host_is_ip = false;  ///< the host is an IPv4 or IPv6 literal (no SNI then)

    /// path[?query]
    std::string target() const { return query.empty() ? path : path + "?" + query; }
};

/// Parses `url` (scheme case-insensitive; no user info; IPv6 literals in
/// brackets; port 1-65535). Returns nullopt and sets `error` on anything else.
std::optional<client_url> parse_client_url(std::string_view url, std::string_view default_path,
                                           std::string& error);

}  // namespace sluice::detail
