// Pmem parsing and serialization.
#include "vmm/config/pmem.hpp"

#include "vmm/config/json_fields.hpp"
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

Result<Pmem> parse_pmem(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"id", "path_on_host", "root_device",
                                                     "read_only", "rate_limiter"}));
  Pmem p;
  IGN_ASSIGN_OR_RETURN(p.id, r.required_string("id"));
  IGN_TRY(validate_resource_id("id", p.id));
  IGN_ASSIGN_OR_RETURN(p.path_on_host, r.required_nonempty_string("path_on_host"));
  IGN_ASSIGN_OR_RETURN(p.root_device, r.bool_or("root_device", false));
  IGN_ASSIGN_OR_RETURN(p.read_only, r.bool_or("read_only", false));
  IGN_ASSIGN_OR_RETURN(p.rate_limiter, r.optional_with("rate_limiter", parse_rate_limiter));
  return p;
}

Result<PartialPmem> parse_partial_pmem(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"id", "rate_limiter"}));
  PartialPmem p;
  IGN_ASSIGN_OR_RETURN(p.id, r.required_string("id"));
  IGN_TRY(validate_resource_id("id", p.id));
  IGN_ASSIGN_OR_RETURN(p.rate_limiter, r.optional_with("rate_limiter", parse_rate_limiter));
  return p;
}

nlohmann::json to_json(const Pmem& p) {
  return {{"id", p.id},
          {"path_on_host", p.path_on_host},
          {"root_device", p.root_device},
          {"read_only", p.read_only},
          {"rate_limiter", to_json_or_null(p.rate_limiter)}};
}

}  // namespace ignition::config
