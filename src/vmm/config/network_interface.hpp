// network-interfaces: virtio-net devices backed by host TAP devices, as in Firecracker's
// NetworkInterface / PartialNetworkInterface API objects.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::config {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  // Exactly "xx:xx:xx:xx:xx:xx" with hex digits, either case.
  static Result<MacAddress> parse(std::string_view text);
  std::string to_string() const;  // lower case
  bool operator==(const MacAddress&) const = default;
};

struct NetworkInterface {
  std::string iface_id{};
  std::string host_dev_name{};  // the TAP device, at most 15 bytes (IFNAMSIZ - 1)
  std::optional<MacAddress> guest_mac{};
  std::optional<uint16_t> mtu{};  // 68..65535; advertised with VIRTIO_NET_F_MTU when set
  std::optional<RateLimiter> rx_rate_limiter{};
  std::optional<RateLimiter> tx_rate_limiter{};

  bool operator==(const NetworkInterface&) const = default;
};

// The body of PATCH /network-interfaces/{id}: new rate limiters after boot.
struct PartialNetworkInterface {
  std::string iface_id{};
  std::optional<RateLimiter> rx_rate_limiter{};
  std::optional<RateLimiter> tx_rate_limiter{};

  bool operator==(const PartialNetworkInterface&) const = default;
};

Result<NetworkInterface> parse_network_interface(const nlohmann::json& j);
Result<PartialNetworkInterface> parse_partial_network_interface(const nlohmann::json& j);
nlohmann::json to_json(const NetworkInterface& n);
nlohmann::json to_json(const PartialNetworkInterface& n);

}  // namespace ignition::config
