// Routing of one complete HTTP request (PROTOCOL.md sections 1, 4, 5, 6): the
// WebSocket upgrade, the SSE stream, `/publish`, `/health`, `/metrics`, CORS
// preflights, static files, and the 404/405/426 answers.
//
// Thread-safety: called on the connection's strand.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace sluice::detail {

class connection;
class http_request_head;

/// Answers or hands over `head` (with its body). The connection stays paused
/// until the answer is queued and `finish_request` is called.
void route_http_request(connection& c, const http_request_head& head, std::string body);

/// A complete HTTP/1.1 response. `extra_headers` are complete header lines
/// (each ending in CRLF).
std::string http_response(int status, std::string_view content_type, std::string_view body,
                          bool keep_alive, std::string_view extra_headers = {});

/// An error response with the JSON body `{"code":…,"message":…}`.
std::string http_error_response(int status, std::string_view code, std::string_view message,
                                bool keep_alive, std::string_view extra_headers = {});

/// The HTTP status that carries a sluice error code.
int http_status_for(std::error_code ec) noexcept;

}  // namespace sluice::detail
