// RateLimiter / TokenBucket parsing and serialization.
#include "vmm/config/rate_limiter.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

Result<TokenBucket> parse_token_bucket(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"size", "one_time_burst", "refill_time"}));
  TokenBucket b;
  IGN_ASSIGN_OR_RETURN(b.size, r.required_uint<uint64_t>("size"));
  IGN_ASSIGN_OR_RETURN(b.one_time_burst, r.optional_uint<uint64_t>("one_time_burst"));
  IGN_ASSIGN_OR_RETURN(b.refill_time, r.required_uint<uint64_t>("refill_time"));
  return b;
}

Result<RateLimiter> parse_rate_limiter(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"bandwidth", "ops"}));
  RateLimiter l;
  IGN_ASSIGN_OR_RETURN(l.bandwidth, r.optional_with("bandwidth", parse_token_bucket));
  IGN_ASSIGN_OR_RETURN(l.ops, r.optional_with("ops", parse_token_bucket));
  return l;
}

nlohmann::json to_json(const TokenBucket& b) {
  return {{"size", b.size},
          {"one_time_burst", or_null(b.one_time_burst)},
          {"refill_time", b.refill_time}};
}

nlohmann::json to_json(const RateLimiter& r) {
  return {{"bandwidth", to_json_or_null(r.bandwidth)}, {"ops", to_json_or_null(r.ops)}};
}

}  // namespace ignition::config
