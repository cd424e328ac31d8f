// The MMDS's answers to the guest's requests.
#include "mmds/responder.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>

namespace ignition::mmds {

namespace {

constexpr std::string_view kTokenHeaders[] = {"X-metadata-token", "X-aws-ec2-metadata-token"};
constexpr std::string_view kTtlHeaders[] = {"X-metadata-token-ttl-seconds",
                                            "X-aws-ec2-metadata-token-ttl-seconds"};

HttpResponse text(unsigned status, std::string body) {
  return HttpResponse{status, "text/plain", std::move(body), {}};
}

struct Found {
  std::string_view name;
  std::string_view value;
};
template <size_t N>
std::optional<Found> find_header(const HttpRequest& r, const std::string_view (&names)[N]) {
  for (std::string_view name : names)
    if (auto v = r.header(name)) return Found{name, *v};
  return std::nullopt;
}

// The absolute path of the request-target: "http://host/a?b" and "/a?b" both give "/a".
std::string_view target_path(std::string_view target) {
  if (size_t scheme = target.find("://"); scheme != std::string_view::npos && target[0] != '/') {
    target.remove_prefix(scheme + 3);
    size_t slash = target.find('/');
    target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
  }
  return target.substr(0, std::min(target.find('?'), target.size()));
}

// Repeated slashes collapse, as Firecracker's sanitize_uri does.
std::string collapse_slashes(std::string_view path) {
  std::string out;
  for (char c : path)
    if (c != '/' || out.empty() || out.back() != '/') out.push_back(c);
  return out;
}

bool wants_json(const HttpRequest& r) {
  auto accept = r.header("Accept");
  if (!accept) return false;
  // Any of the listed media types, parameters ignored.
  std::string_view list = *accept;
  while (!list.empty()) {
    size_t comma = std::min(list.find(','), list.size());
    std::string_view item = list.substr(0, comma);
    item = item.substr(0, std::min(item.find(';'), item.size()));
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (boost::beast::iequals(boost::beast::string_view(item.data(), item.size()),
                              "application/json"))
      return true;
    list.remove_prefix(std::min(comma + 1, list.size()));
  }
  return false;
}

// EC2's format: an object lists its keys, one a line, objects with a trailing '/'; a string
// is itself; nothing else has a text form.
std::optional<std::string> imds_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_object()) return std::nullopt;
  std::string out;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!out.empty()) out.push_back('\n');
    out += it.key();
    if (it.value().is_object()) out.push_back('/');
  }
  return out;
}

HttpResponse get(const HttpRequest& r, std::string_view path, const DataStore& store,
                 const ResponderOptions& options) {
  std::string pointer = collapse_slashes(path);
  // "/a/b/" names the same value as "/a/b".
  if (!pointer.empty() && pointer.back() == '/') pointer.pop_back();
  auto value = store.find(pointer);
  if (!value) return text(404, fmt::format("Resource not found: {}.", path));
  if (!options.imds_compat && wants_json(r)) {
    return HttpResponse{200,
                        "application/json",
                        value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        {}};
  }
  auto body = imds_text(*value);
  if (!body) return text(501, "Cannot retrieve value. The value has an unsupported type.");
  return text(200, std::move(*body));
}

HttpResponse put_token(const HttpRequest& r, std::string_view path, DataStore& store,
                       DataStore::Clock::time_point now) {
  if (r.header("X-Forwarded-For")) {
    return text(400, "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
  }
  if (collapse_slashes(path) != kTokenPath)
    return text(404, fmt::format("Resource not found: {}.", path));
  auto ttl = find_header(r, kTtlHeaders);
  if (!ttl) {
    return text(400,
                "Token time to live value not found. Use `X-metadata-token-ttl-seconds` or "
                "`X-aws-ec2-metadata-token-ttl-seconds` header to specify the token's lifetime.");
  }
  uint32_t seconds = 0;
  auto [end, ec] =
      std::from_chars(ttl->value.data(), ttl->value.data() + ttl->value.size(), seconds);
  if (ec != std::errc() || end != ttl->value.data() + ttl->value.size()) {
    return text(400, fmt::format("Invalid header. Reason: Invalid value. Key:{}; Value:{}",
                                 ttl->name, ttl->value));
  }
  auto token = store.issue_token(seconds, now);
  if (!token.ok()) return text(400, token.error().message);
  HttpResponse response = text(200, std::move(*token));
  response.headers.emplace_back(std::string(ttl->name), std::to_string(seconds));
  return response;
}

}  // namespace

HttpResponse respond(const HttpRequest& r, DataStore& store, const ResponderOptions& options,
                     DataStore::Clock::time_point now, TokenCounters* counters) {
  std::string_view path = target_path(r.target);
  if (path.empty() || path[0] != '/') return text(400, "Invalid URI.");
  if (r.method == "PUT") return put_token(r, path, store, now);
  if (r.method != "GET") {
    HttpResponse response = text(405, "Not allowed HTTP method.");
    response.headers.emplace_back("Allow", "GET, PUT");
    return response;
  }
  auto token = find_header(r, kTokenHeaders);
  bool valid = token && store.token_valid(token->value, now);
  if (counters && !token) counters->rx_no_token.fetch_add(1, std::memory_order_relaxed);
  if (counters && token && !valid)
    counters->rx_invalid_token.fetch_add(1, std::memory_order_relaxed);
  if (options.version == config::MmdsVersion::kV2) {
    if (!token) {
      return text(401,
                  "No MMDS token provided. Use `X-metadata-token` or `X-aws-ec2-metadata-token` "
                  "header to specify the session token.");
    }
    if (!valid) return text(401, "MMDS token not valid.");
  }
  return get(r, path, store, options);
}

}  // namespace ignition::mmds
