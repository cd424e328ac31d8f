// Serial console configuration parsing and serialization.
#include "vmm/config/serial.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

Result<SerialConfig> parse_serial(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"serial_out_path", "rate_limiter"}));
  SerialConfig s;
  IGN_ASSIGN_OR_RETURN(s.serial_out_path, r.optional_string("serial_out_path"));
  if (s.serial_out_path && s.serial_out_path->empty()) {
    return err("field 'serial_out_path' must not be empty");
  }
  IGN_ASSIGN_OR_RETURN(s.rate_limiter, r.optional_with("rate_limiter", parse_token_bucket));
  return s;
}

nlohmann::json to_json(const SerialConfig& s) {
  return {{"serial_out_path", or_null(s.serial_out_path)},
          {"rate_limiter", to_json_or_null(s.rate_limiter)}};
}

}  // namespace ignition::config
