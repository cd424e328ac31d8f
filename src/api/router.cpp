// Router: route matching and the faults Firecracker gives before any resource is involved.
#include "api/router.hpp"

#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

// Splits "/a/b/" into {"a", "b"}; empty segments inside ("/a//b") are kept so they fail
// to match rather than silently merging.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

// Matches `path` against `pattern`; on success returns the {param} value ("" when absent).
std::optional<std::string> match(std::string_view pattern, std::string_view path) {
  auto want = segments(pattern);
  auto got = segments(path);
  bool has_param = !want.empty() && is_param(want.back());
  if (got.size() == want.size()) {
    for (size_t i = 0; i < want.size(); ++i) {
      if (is_param(want[i])) continue;
      if (want[i] != got[i]) return std::nullopt;
    }
    return has_param ? std::string(got.back()) : std::string();
  }
  // "PUT /drives" (or "/drives/") names the collection without an id.
  if (has_param && got.size() + 1 == want.size()) {
    for (size_t i = 0; i < got.size(); ++i) {
      if (want[i] != got[i]) return std::nullopt;
    }
    return std::string();
  }
  return std::nullopt;
}

std::string method_name(const ApiRequest& r) {
  return r.method == Method::kOther ? r.method_name : std::string(to_string(r.method));
}

}  // namespace

std::optional<std::string> request_path(std::string_view target) {
  if (target.empty()) return std::nullopt;
  if (target.front() != '/') {
    // Absolute form: "http://localhost/path".
    size_t scheme = target.find("://");
    if (scheme == std::string_view::npos) return std::nullopt;
    size_t slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  size_t query = target.find_first_of("?#");
  if (query != std::string_view::npos) target = target.substr(0, query);
  return std::string(target);
}

void RouteTable::add(Method method, std::string pattern, RouteHandler handler, bool body_optional) {
  routes_.push_back(Route{method, std::move(pattern), std::move(handler), body_optional});
}

Router::Router(VmmController& controller) : controller_(controller) {
  add_instance_routes(table_);
  add_machine_config_routes(table_);
  add_boot_source_routes(table_);
  add_drive_routes(table_);
  add_network_interface_routes(table_);
  add_pmem_routes(table_);
  add_vsock_routes(table_);
  add_entropy_routes(table_);
  add_serial_routes(table_);
  add_balloon_routes(table_);
  add_logger_routes(table_);
  add_metrics_routes(table_);
  add_mmds_routes(table_);
  add_cpu_config_routes(table_);
  add_snapshot_routes(table_);
  add_memory_hotplug_routes(table_);
}

ApiResponse Router::handle(const ApiRequest& request) {
  ApiResponse response = dispatch(request);
  auto path = request_path(request.target);
  controller_.count_request(request.method, path ? *path : std::string(), response.status,
                            response.deprecated);
  return response;
}

ApiResponse Router::dispatch(const ApiRequest& request) {
  auto path = request_path(request.target);
  if (!path) {
    return fault(fmt::format("Invalid request method and/or path: {} {}.", method_name(request),
                             request.target));
  }
  bool has_body = !request.body.empty();
  if (request.method == Method::kGet && has_body) return fault("GET request cannot have a body.");

  for (const Route& route : table_.routes()) {
    if (route.method != request.method) continue;
    auto id = match(route.pattern, *path);
    if (!id) continue;
    bool needs_body = route.method != Method::kGet && !route.body_optional;
    if (!has_body && needs_body) break;  // answered below like an unknown route
    return route.handler(controller_, RouteRequest{request, *path, std::move(*id)});
  }
  if (!has_body && request.method == Method::kPut) return fault("Empty PUT request.");
  if (!has_body && request.method == Method::kPatch) return fault("Empty PATCH request.");
  return fault(
      fmt::format("Invalid request method and/or path: {} {}.", method_name(request), *path));
}

}  // namespace ignition::api
