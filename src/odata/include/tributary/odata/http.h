#pragma once
// Plain HTTP request/response values exchanged between the server (which owns sockets) and the
// protocol handlers (which own semantics). Header names are lower-case.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tributary::odata {

struct HttpRequest {
  std::string method;  // upper-case
  std::string target;  // path and query exactly as received
  std::vector<std::pair<std::string, std::string>> headers;
  // The header names as sent (case kept), parallel to `headers`; the server fills it for
  // /servicebus/ requests only (custom message properties keep their case), else it is empty.
  std::vector<std::string> header_names;
  std::string body;
  std::string base_url;  // "http://host:port" as the client addressed this server

  // First header named `name` (lower-case), or nullptr.
  const std::string* Header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return &v;
    return nullptr;
  }
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  void Set(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
};

}  // namespace tributary::odata
