// Building API responses.
#include "api/api_types.hpp"

namespace ignition::api {

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiResponse no_content() {
  return ApiResponse{204, {}, false};
}

ApiResponse json_response(const nlohmann::json& body, int status) {
  return ApiResponse{status, dump_json(body), false};
}

ApiResponse fault(std::string_view message, int status) {
  return ApiResponse{status, dump_json({{"fault_message", message}}), false};
}

std::string_view to_string(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kPut:
      return "PUT";
    case Method::kPatch:
      return "PATCH";
    case Method::kOther:
      break;
  }
  return "OTHER";
}

}  // namespace ignition::api
