// What an API exchange looks like without HTTP: the request the server hands the router and
// the response it sends back. Keeps Boost.Beast inside http_server.cpp.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ignition::api {

enum class Method { kGet, kPut, kPatch, kOther };

struct ApiRequest {
  Method method = Method::kGet;
  std::string method_name = "GET";  // as sent, for messages about unsupported methods
  std::string target = "/";         // the request target, possibly with a query
  std::string body{};               // empty: the request has no body
};

struct ApiResponse {
  int status = 204;
  std::string body{};       // JSON text; empty for 204
  bool deprecated = false;  // the request used a deprecated field: "Deprecation: true"
};

// Serializes JSON for the wire. Invalid UTF-8 (a client's path bytes echoed in a fault)
// is replaced rather than thrown on.
std::string dump_json(const nlohmann::json& j);

ApiResponse no_content();
ApiResponse json_response(const nlohmann::json& body, int status = 200);
// Firecracker's error body: {"fault_message": "..."}.
ApiResponse fault(std::string_view message, int status = 400);

std::string_view to_string(Method m);

}  // namespace ignition::api
