// virtio-mmio version 2 (virtio spec 4.2): the register window through which the driver
// discovers a device, negotiates features, lays out its queues and starts it. One
// transport wraps one device and serialises everything that reaches it: register
// accesses from vCPU threads, queue kicks and backend events from the event thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/virtio/device.hpp"

namespace ignition::devices::virtio {

class MmioTransport final : public BusDevice, private Interrupt {
 public:
  static constexpr uint64_t kWindowSize = 0x1000;
  static constexpr uint64_t kQueueNotifyOffset = 0x50;

  MmioTransport(std::unique_ptr<Device> device, GuestMemory& memory, IrqLine irq);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // A kick for `queue`, from its ioeventfd (or a QueueNotify write that exited).
  void notify(uint16_t queue);
  // Registers the device's backend fds; their handlers run under this transport's lock.
  Result<void> register_events(EventRegistrar& registrar);

  uint16_t queue_count() const { return static_cast<uint16_t>(queues_.size()); }
  uint32_t device_status() const;
  // The driver started the device and it is running (DRIVER_OK accepted).
  bool activated() const;
  const IrqLine& irq() const { return irq_; }

  // Runs `fn` with the device under the transport lock, serialised with the driver's
  // register accesses and the event thread (API updates, vsock's transport reset).
  void with_device(const std::function<void(Device&)>& fn);

  // Snapshots. The registers, every queue and the device's own state, taken under the
  // lock (the VM should be paused so no vCPU is half-way through a handshake).
  Result<std::vector<uint8_t>> save_state() const;
  // Rolls a transport in use back to save_state() bytes taken from it earlier (an in-process
  // reset): the device is reset as if the driver had written status 0, then restored.
  Result<void> roll_back(std::span<const uint8_t> bytes);
  // Applies save_state() bytes to this freshly created transport (no driver access yet)
  // over a device of the same type, with guest memory already holding the snapshot's RAM.
  // Everything is checked as the live paths check it: the device's state first, then the
  // negotiated features against what the device offers, then the queues against guest
  // memory. A device that was active is activated again with its rings where they were.
  // On error the transport and its device are unusable: discard them.
  Result<void> restore_state(std::span<const uint8_t> state);
  // After a restore: looks at every ready queue again (kicks sent before the snapshot may
  // never have been seen) and interrupts the driver so it re-checks its used rings, as
  // Firecracker does. Call it once the interrupt controller's state is restored. A device
  // that is not running is left alone.
  void signal_used_queues();

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void set_status(uint32_t value);
  void reset_locked();
  Result<void> restore_locked(std::span<const uint8_t> bytes);
  Queue* selected_queue();

  // Interrupt, called by the device with mu_ held.
  void used_ring() override;
  void config_changed() override;
  void needs_reset() override;

  mutable std::mutex mu_;
  std::unique_ptr<Device> device_;
  GuestMemory& memory_;
  IrqLine irq_;
  std::vector<Queue> queues_;

  uint32_t status_ = 0;
  bool active_ = false;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t config_generation_ = 0;
  std::atomic<uint32_t> interrupt_status_{0};
  std::vector<QueueState> decoded_queues_;  // restore_locked()'s scratch, kept for roll backs
  std::unique_ptr<EventRegistrar> locked_registrar_;  // outlives the registered handlers
};

}  // namespace ignition::devices::virtio
