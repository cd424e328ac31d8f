// What the MMDS answers a guest's HTTP request, as Firecracker does: GETs render the metadata
// document (JSON, or IMDS-style listings), PUT /latest/api/token issues session tokens, and
// with V2 every GET needs a valid token.
#pragma once

#include <atomic>
#include <cstdint>

#include "mmds/data_store.hpp"
#include "mmds/http.hpp"
#include "vmm/config/mmds_config.hpp"

namespace ignition::mmds {

inline constexpr std::string_view kTokenPath = "/latest/api/token";

struct ResponderOptions {
  config::MmdsVersion version = config::MmdsVersion::kV1;
  bool imds_compat = false;  // IMDS listings whatever Accept asks for, as EC2's IMDS
};

// Requests seen without a token or with an invalid one (in V1 too, where they still pass).
struct TokenCounters {
  std::atomic<uint64_t> rx_no_token{0};
  std::atomic<uint64_t> rx_invalid_token{0};
};

HttpResponse respond(const HttpRequest& request, DataStore& store, const ResponderOptions& options,
                     DataStore::Clock::time_point now, TokenCounters* counters = nullptr);

}  // namespace ignition::mmds
