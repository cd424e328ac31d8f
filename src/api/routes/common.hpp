// Helpers shared by the route files: reading bodies and ids with Firecracker's fault
// messages, and turning controller results into responses.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "api/api_types.hpp"
#include "api/router.hpp"
#include "base/result.hpp"
#include "vmm/config/json_fields.hpp"

namespace ignition::api {

// "An error occurred when deserializing the json body of a request: <why>."
Error body_error(const Error& why);

// The body as JSON, or a body_error.
Result<nlohmann::json> body_json(const RouteRequest& r);

// The body parsed by one of the config model's strict parse_* functions.
template <typename Parse>
Result<config::ParsedType<Parse>> parse_body(const RouteRequest& r, Parse parse) {
  IGN_ASSIGN_OR_RETURN(nlohmann::json j, body_json(r));
  auto parsed = parse(j);
  if (!parsed.ok()) return body_error(parsed.error());
  return parsed;
}

// True if the body is a JSON object with `field` present and not null (deprecation checks).
bool body_has_field(const RouteRequest& r, std::string_view field);

// The path's id: "The ID cannot be empty." / "API Resource IDs can only contain
// alphanumeric characters and underscores."
Result<std::string> checked_id(const RouteRequest& r);

// Fault 400, or 413 for the MMDS store's size limit.
ApiResponse error_response(const Error& e);
// 204 or the fault.
ApiResponse reply(const Result<void>& r);
// 200 with to_json(value), or the fault.
template <typename T>
ApiResponse reply_json(const Result<T>& r) {
  if (!r.ok()) return error_response(r.error());
  using config::to_json;
  return json_response(to_json(*r));
}

}  // namespace ignition::api
