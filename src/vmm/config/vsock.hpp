// vsock: the virtio-vsock device and the host Unix socket it proxies through, as in
// Firecracker's Vsock API object.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

// CIDs 0-2 are reserved (hypervisor, local, host).
inline constexpr uint32_t kMinGuestCid = 3;

struct Vsock {
  uint32_t guest_cid = kMinGuestCid;
  // Host-initiated connections go to this socket; guest-initiated ones to uds_path + "_<port>".
  std::string uds_path{};

  bool operator==(const Vsock&) const = default;
};

// Accepts and drops the deprecated "vsock_id" field, as Firecracker does.
Result<Vsock> parse_vsock(const nlohmann::json& j);
nlohmann::json to_json(const Vsock& v);

}  // namespace ignition::config
