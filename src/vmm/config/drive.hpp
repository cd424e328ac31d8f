// drives: block devices, virtio-block (path_on_host) or vhost-user-block (socket), as in
// Firecracker's Drive / PartialDrive API objects.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::config {

// Unsafe: flush is not offered to the guest. Writeback: flush is offered and fsync()s.
enum class CacheType { kUnsafe, kWriteback };
enum class IoEngine { kSync, kAsync };

struct Drive {
  std::string drive_id{};
  std::optional<std::string> partuuid{};  // used only for the root device
  bool is_root_device = false;
  CacheType cache_type = CacheType::kUnsafe;
  // virtio-block: path_on_host is set, socket is not. Unset optionals take the defaults below.
  std::optional<bool> is_read_only{};
  std::optional<std::string> path_on_host{};
  std::optional<RateLimiter> rate_limiter{};
  std::optional<IoEngine> io_engine{};
  // vhost-user-block: only socket (with the common fields above).
  std::optional<std::string> socket{};

  bool is_vhost_user() const { return socket.has_value(); }
  bool read_only() const { return is_read_only.value_or(false); }
  IoEngine engine() const { return io_engine.value_or(IoEngine::kSync); }
  bool operator==(const Drive&) const = default;
};

// The body of PATCH /drives/{id}: a new backing file and/or rate limiter after boot.
struct PartialDrive {
  std::string drive_id{};
  std::optional<std::string> path_on_host{};
  std::optional<RateLimiter> rate_limiter{};

  bool operator==(const PartialDrive&) const = default;
};

Result<Drive> parse_drive(const nlohmann::json& j);
Result<PartialDrive> parse_partial_drive(const nlohmann::json& j);
nlohmann::json to_json(const Drive& d);
nlohmann::json to_json(const PartialDrive& d);

std::string_view to_string(CacheType t);
std::string_view to_string(IoEngine e);

}  // namespace ignition::config
