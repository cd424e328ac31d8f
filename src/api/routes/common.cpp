// Helpers shared by the route files.
#include "api/routes/common.hpp"

#include "mmds/data_store.hpp"

namespace ignition::api {

Error body_error(const Error& why) {
  return err("An error occurred when deserializing the json body of a request: {}.", why.message);
}

namespace {

// serde_json's default, which Firecracker inherits. Deeper documents are refused before
// parsing: copying, patching and printing a JSON value recurse once per level.
constexpr int kMaxJsonDepth = 128;

bool too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

Result<nlohmann::json> body_json(const RouteRequest& r) {
  if (too_deep(r.body())) {
    return body_error(
        err("recursion limit exceeded (more than {} nested arrays or objects)", kMaxJsonDepth));
  }
  auto j = config::parse_json_text(r.body());
  if (!j.ok()) return body_error(j.error());
  return j;
}

bool body_has_field(const RouteRequest& r, std::string_view field) {
  auto j = config::parse_json_text(r.body());
  if (!j.ok() || !j->is_object()) return false;
  auto it = j->find(std::string(field));
  return it != j->end() && !it->is_null();
}

Result<std::string> checked_id(const RouteRequest& r) {
  if (r.id.empty()) return err("The ID cannot be empty.");
  for (char c : r.id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok)
      return err("API Resource IDs can only contain alphanumeric characters and underscores.");
  }
  return r.id;
}

ApiResponse error_response(const Error& e) {
  return fault(e.message, e.message == mmds::DataStore::kLimitExceeded ? 413 : 400);
}

ApiResponse reply(const Result<void>& r) {
  return r.ok() ? no_content() : error_response(r.error());
}

}  // namespace ignition::api
