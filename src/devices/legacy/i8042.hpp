// i8042 keyboard controller, just enough for guests: the status and command ports,
// the controller self-test, and the CPU reset line (command 0xFE) that Linux pulls to
// reboot, which stops the VM.
#pragma once

#include <mutex>
#include <span>
#include <vector>

#include "base/result.hpp"

#include "devices/bus.hpp"
#include "devices/vm_exit.hpp"

namespace ignition::devices {

class I8042 final : public BusDevice {
 public:
  // Occupies ports 0x60-0x64: data at offset 0, status/command at offset 4.
  static constexpr uint64_t kPortCount = 5;
  explicit I8042(VmExitRequest& exit) : exit_(exit) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Snapshots: the command byte, a command waiting for its data byte, the output buffer.
  // restore_state() changes nothing on error.
  std::vector<uint8_t> save_state() const;
  Result<void> restore_state(std::span<const uint8_t> state);

 private:
  mutable std::mutex mu_;
  VmExitRequest& exit_;
  uint8_t command_byte_ = 0x05;  // system flag, keyboard interrupt enabled
  uint8_t pending_command_ = 0;  // a command waiting for its data byte
  int output_ = -1;              // byte in the output buffer, -1 when empty
};

}  // namespace ignition::devices
