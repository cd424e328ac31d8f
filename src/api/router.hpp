// Router: turns an API request into a call on the VmmController and its result into a
// response, with Firecracker's paths, status codes and fault messages. One file per
// resource group under routes/ declares that group's routes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_types.hpp"
#include "api/vmm_controller.hpp"

namespace ignition::api {

// A route's view of one request.
struct RouteRequest {
  const ApiRequest& request;
  std::string_view path;  // without query, e.g. "/drives/rootfs"
  // The {param} segment of the path for routes that have one; empty when the path stops
  // before it ("PUT /drives"), which the route answers with "The ID cannot be empty.".
  std::string id{};
  const std::string& body() const { return request.body; }
};

using RouteHandler = std::function<ApiResponse(VmmController&, const RouteRequest&)>;

struct Route {
  Method method;
  std::string pattern;  // "/drives/{drive_id}": at most one {param}, as the last segment
  RouteHandler handler;
  bool body_optional = false;  // PUT/PATCH bodies are required unless this is set
};

class RouteTable {
 public:
  void add(Method method, std::string pattern, RouteHandler handler, bool body_optional = false);
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

class Router {
 public:
  explicit Router(VmmController& controller);

  // Never fails: every problem becomes a fault response.
  ApiResponse handle(const ApiRequest& request);
  const std::vector<Route>& routes() const { return table_.routes(); }

 private:
  ApiResponse dispatch(const ApiRequest& request);

  VmmController& controller_;
  RouteTable table_;
};

// The path of a request target: "/a/b" from "/a/b?x" or "http://localhost/a/b"; nullopt
// when it is neither origin- nor absolute-form.
std::optional<std::string> request_path(std::string_view target);

}  // namespace ignition::api
