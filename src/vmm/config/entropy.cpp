// Entropy device parsing and serialization.
#include "vmm/config/entropy.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

Result<Entropy> parse_entropy(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"rate_limiter"}));
  Entropy e;
  IGN_ASSIGN_OR_RETURN(e.rate_limiter, r.optional_with("rate_limiter", parse_rate_limiter));
  return e;
}

nlohmann::json to_json(const Entropy& e) {
  return {{"rate_limiter", to_json_or_null(e.rate_limiter)}};
}

}  // namespace ignition::config
