// mmds-config: which interfaces reach the microVM metadata service and at what address,
// as in Firecracker's MmdsConfig API object.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

enum class MmdsVersion { kV1, kV2 };

struct Ipv4Address {
  std::array<uint8_t, 4> octets{};

  // Dotted quad, each part 0..255 without leading zeros.
  static Result<Ipv4Address> parse(std::string_view text);
  std::string to_string() const;
  bool operator==(const Ipv4Address&) const = default;
};

inline constexpr Ipv4Address kDefaultMmdsAddress{{169, 254, 169, 254}};

struct MmdsConfig {
  MmdsVersion version = MmdsVersion::kV1;
  std::vector<std::string> network_interfaces{};  // iface_ids; at least one
  // Must be link-local (169.254.1.0 - 169.254.254.255).
  Ipv4Address ipv4_address = kDefaultMmdsAddress;
  bool imds_compat = false;  // answer text/plain regardless of Accept, like EC2 IMDS

  bool operator==(const MmdsConfig&) const = default;
};

// Checks the shape and the address; that the interfaces exist is a cross-resource check.
Result<MmdsConfig> parse_mmds_config(const nlohmann::json& j);
nlohmann::json to_json(const MmdsConfig& m);
std::string_view to_string(MmdsVersion v);

}  // namespace ignition::config
