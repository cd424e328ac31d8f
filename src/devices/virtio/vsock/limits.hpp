// Bounds on what one vsock device holds for the guest and the host: the defaults suit a
// VMM; tests shrink them to reach the edges quickly.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace ignition::devices::virtio::vsock {

struct Limits {
  // Receive buffer advertised to the guest per connection (buf_alloc); also the most
  // guest-to-host bytes the device buffers for one connection when the host is slow.
  uint32_t conn_buffer = 256 * 1024;
  // The guest gets a CREDIT_UPDATE once the space it believes is free falls below this
  // (and at least this much is really free).
  uint32_t credit_update_threshold = 64 * 1024;
  size_t max_connections = 256;
  // Host clients that connected to uds_path and have not sent "CONNECT <port>\n" yet.
  size_t max_handshakes = 64;
  // How long the guest may take to answer a REQUEST, and to acknowledge (RST) a
  // shutdown, before the connection is reset.
  std::chrono::milliseconds request_timeout{2000};
  std::chrono::milliseconds shutdown_timeout{2000};
};

}  // namespace ignition::devices::virtio::vsock
