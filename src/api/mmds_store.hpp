// The MMDS data store: the metadata document the host puts and patches through the API
// (the guest-facing side is the net device's job). Bounded in size, as in Firecracker.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::api {

// Firecracker's default --mmds-size-limit.
inline constexpr size_t kDefaultMmdsLimitBytes = 51200;

class MmdsStore {
 public:
  // The message of every put/patch refused for size; the API answers it with 413.
  static constexpr std::string_view kLimitExceeded =
      "MMDS limit exceeded error: The MMDS patch request doesn't fit.";

  explicit MmdsStore(size_t limit_bytes = kDefaultMmdsLimitBytes) : limit_(limit_bytes) {}

  // Replaces the whole document.
  Result<void> put(nlohmann::json data);
  // Applies a JSON merge patch (RFC 7396): objects merge, null deletes, anything else
  // replaces. Fails before the first put, and leaves the document unchanged on any error.
  Result<void> patch(const nlohmann::json& patch);
  // The document; {} before the first put.
  nlohmann::json get() const;
  bool initialized() const { return initialized_; }

 private:
  size_t limit_;
  nlohmann::json data_{};
  bool initialized_ = false;
};

}  // namespace ignition::api
