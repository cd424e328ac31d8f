// virtio-mmio version 2 (virtio spec 4.2): the register window through which the driver
// discovers a device, negotiates features, lays out its queues and starts it. One
// transport wraps one device and serialises everything that reaches it: register
// accesses from vCPU threads, queue kicks and backend events from the event thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
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
  const IrqLine& irq() const { return irq_; }

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void set_status(uint32_t value);
  void reset_locked();
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
  std::unique_ptr<EventRegistrar> locked_registrar_;  // outlives the registered handlers
};

}  // namespace ignition::devices::virtio
