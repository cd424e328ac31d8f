// pmem: virtio-pmem devices mapping a host file into the guest, as in Firecracker's Pmem API
// object.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::config {

struct Pmem {
  std::string id{};
  std::string path_on_host{};
  bool root_device = false;  // at most one root device among drives and pmem
  bool read_only = false;
  std::optional<RateLimiter> rate_limiter{};

  bool operator==(const Pmem&) const = default;
};

// The body of PATCH /pmem/{id}: a new rate limiter after boot.
struct PartialPmem {
  std::string id{};
  std::optional<RateLimiter> rate_limiter{};

  bool operator==(const PartialPmem&) const = default;
};

Result<Pmem> parse_pmem(const nlohmann::json& j);
Result<PartialPmem> parse_partial_pmem(const nlohmann::json& j);
nlohmann::json to_json(const Pmem& p);

}  // namespace ignition::config
