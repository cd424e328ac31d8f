// Counters of one virtio-net device, for the metrics file and tests. Written on the event
// thread, readable from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace ignition::devices::virtio::net {

struct NetMetrics {
  using Counter = std::atomic<uint64_t>;

  Counter rx_frames{0};        // frames delivered to the guest
  Counter rx_bytes{0};         // their Ethernet bytes (virtio header not counted)
  Counter rx_dropped{0};       // frames read from the TAP that no guest chain could hold
  Counter rx_bad_chains{0};    // RX chains too small for a header, returned empty
  Counter rx_no_buffers{0};    // times a frame had to wait for the driver's RX buffers
  Counter rx_tap_errors{0};    // failed TAP reads
  Counter rx_rate_limited{0};  // times the RX rate limiter held a frame back
  Counter rx_vmm_frames{0};    // frames from the VMM's RX source (the MMDS), in rx_frames too

  Counter tx_frames{0};        // frames written to the TAP
  Counter tx_bytes{0};         // their Ethernet bytes (virtio header not counted)
  Counter tx_malformed{0};     // chains dropped as malformed (no header, too big, ...)
  Counter tx_tap_errors{0};    // frames the TAP refused (e.g. a bad GSO header)
  Counter tx_filtered{0};      // frames consumed by the TX filter instead of the TAP
  Counter tx_spoofed_mac{0};   // frames whose source MAC is not the configured guest MAC
  Counter tx_rate_limited{0};  // times the TX rate limiter held a frame back
};

}  // namespace ignition::devices::virtio::net
