// The MMDS's state, shared by the API (which puts and patches the metadata document) and the
// network stack of every interface that serves it to the guest (which reads the document and
// issues session tokens). Bounded in size as in Firecracker. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "mmds/token_authority.hpp"

namespace ignition::mmds {

// Firecracker's default --mmds-size-limit.
inline constexpr size_t kDefaultMmdsLimitBytes = 51200;

class DataStore {
 public:
  using Clock = TokenAuthority::Clock;

  // The message of every put/patch refused for size; the API answers it with 413.
  static constexpr std::string_view kLimitExceeded =
      "MMDS limit exceeded error: The MMDS patch request doesn't fit.";

  explicit DataStore(size_t limit_bytes = kDefaultMmdsLimitBytes) : limit_(limit_bytes) {}
  DataStore(const DataStore&) = delete;
  DataStore& operator=(const DataStore&) = delete;

  // Replaces the whole document.
  Result<void> put(nlohmann::json data);
  // Applies a JSON merge patch (RFC 7396): objects merge, null deletes, anything else
  // replaces. Fails before the first put, and leaves the document unchanged on any error.
  Result<void> patch(const nlohmann::json& patch);
  // The document; {} before the first put.
  nlohmann::json get() const;
  bool initialized() const;

  // The value at `pointer`, a JSON pointer (RFC 6901: "" is the whole document, "/a/0" a
  // member's first element); nullopt when there is none or the pointer is malformed.
  std::optional<nlohmann::json> find(std::string_view pointer) const;

  // Session tokens, shared by every interface (TokenAuthority).
  Result<std::string> issue_token(uint32_t ttl_seconds, Clock::time_point now);
  bool token_valid(std::string_view token, Clock::time_point now) const;

 private:
  const size_t limit_;
  mutable std::mutex mu_;
  nlohmann::json data_{};
  bool initialized_ = false;
  TokenAuthority tokens_;
};

}  // namespace ignition::mmds
