// i8042 keyboard controller, just enough for guests, as Firecracker's: the status and
// command ports, the control register and output port, the CPU reset line (command 0xFE)
// that Linux pulls to reboot, and a keyboard that can type Ctrl+Alt+Del (SendCtrlAltDel)
// into a 16-byte output buffer, raising IRQ 1 for each key.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/vm_exit.hpp"

namespace ignition::devices {

class I8042 final : public BusDevice {
 public:
  // Occupies ports 0x60-0x64: data at offset 0, status/command at offset 4.
  static constexpr uint64_t kPortCount = 5;
  static constexpr size_t kBufferSize = 16;

  // Without a keyboard interrupt line until set_keyboard_irq().
  explicit I8042(VmExitRequest& exit) : exit_(exit) {}
  I8042(VmExitRequest& exit, IrqLine keyboard_irq) : exit_(exit), irq_(std::move(keyboard_irq)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The line raised when the output buffer gets a byte from the keyboard (IRQ 1).
  void set_keyboard_irq(IrqLine irq);
  bool has_keyboard_irq() const;

  // Queues the scancodes (set 2, make codes only, as Firecracker sends) for Ctrl, Alt and
  // Del and raises the keyboard interrupt after each key, unless the guest disabled it in
  // the control register. Fails, queueing nothing, if the buffer cannot take all 4 bytes.
  Result<void> trigger_ctrl_alt_del();

  // For metrics (Firecracker's "i8042" group).
  struct Counters {
    uint64_t reads = 0;          // byte reads of the data and status ports
    uint64_t writes = 0;         // byte writes handled
    uint64_t missed_reads = 0;   // wider than a byte, or another port
    uint64_t missed_writes = 0;  // wider than a byte, or not a command we know
    uint64_t resets = 0;         // CPU resets the guest asked for
  };
  Counters counters() const;

  // Snapshots: the control register, a command waiting for its data byte, the output port,
  // the output buffer. restore_state() changes nothing on error.
  std::vector<uint8_t> save_state() const;
  Result<void> restore_state(std::span<const uint8_t> state);

 private:
  // mu_ held.
  bool push_locked(uint8_t byte);
  void flush_locked() { buffer_.clear(); }
  void interrupt_locked();

  mutable std::mutex mu_;
  VmExitRequest& exit_;
  std::optional<IrqLine> irq_;
  uint8_t control_ = 0x05;       // system flag, keyboard interrupt enabled
  uint8_t pending_command_ = 0;  // a command waiting for its data byte
  uint8_t output_port_ = 0;
  std::vector<uint8_t> buffer_;  // bytes for the guest, oldest first; at most kBufferSize

  struct LiveCounters {
    std::atomic<uint64_t> reads{0}, writes{0}, missed_reads{0}, missed_writes{0}, resets{0};
  } counters_;
};

}  // namespace ignition::devices
