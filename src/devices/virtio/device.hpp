// What a virtio device implements; the transport (virtio-mmio) does the rest. A device
// is a state machine over its queues: it sees a kick, pops requests, completes them
// and asks the transport to interrupt the driver.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "devices/virtio/virtio.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio {

// How a device tells the driver something happened. Implemented by the transport.
class Interrupt {
 public:
  virtual ~Interrupt() = default;
  virtual void used_ring() = 0;       // a queue has new used entries
  virtual void config_changed() = 0;  // config space changed
  // The driver broke the protocol: mark the device as needing reset and tell the driver.
  virtual void needs_reset() = 0;
};

// Lets a device watch its own backend fds (TAP, sockets, timers) on the VMM's event
// loop without knowing the loop.
class EventRegistrar {
 public:
  virtual ~EventRegistrar() = default;
  using Handler = std::function<void(uint32_t epoll_events)>;
  virtual Result<void> add(int fd, uint32_t epoll_events, Handler handler) = 0;
  virtual void remove(int fd) = 0;
};

// Everything an activated device works with. Valid until reset().
struct ActiveContext {
  GuestMemory& memory;
  std::span<Queue> queues;
  Interrupt& interrupt;
  uint64_t acked_features;
};

class Device {
 public:
  virtual ~Device() = default;

  virtual DeviceType type() const = 0;
  // Features offered; VIRTIO_F_VERSION_1 is added by the transport.
  virtual uint64_t features() const = 0;
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

  // DRIVER_OK with valid queues: start working. An error fails the activation.
  virtual Result<void> activate(const ActiveContext& ctx) = 0;
  // The driver reset the device (status 0): drop all in-flight state.
  virtual void reset() = 0;
  // The driver kicked queue `index`. Called only while active.
  virtual void process_queue(uint16_t index) = 0;

  // Backend fds to watch while active (called once by the VMM at start-up).
  virtual Result<void> register_events(EventRegistrar&) { return {}; }

  // Snapshots (the transport calls these under its lock). The device's own state as
  // plain bytes; the transport saves the queues and negotiation around it.
  virtual std::vector<uint8_t> save_state() const { return {}; }
  // Applies saved state to a freshly created device, before the transport re-activates
  // it (if it was active) with its restored queues; what must happen once it runs again
  // (vsock's transport reset) belongs in activate(). The bytes are untrusted: check every
  // value as the live paths would, and change nothing on error.
  virtual Result<void> restore_state(std::span<const uint8_t> state) {
    if (!state.empty()) return err("{} bytes of state for a device that keeps none", state.size());
    return {};
  }
};

}  // namespace ignition::devices::virtio
