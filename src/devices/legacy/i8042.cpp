#include "devices/legacy/i8042.hpp"

#include "devices/legacy/persist.hpp"

namespace ignition::devices {

namespace {
constexpr uint64_t kDataOffset = 0, kCommandOffset = 4;
constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystemFlag = 0x04;
constexpr uint8_t kCmdReadCommandByte = 0x20, kCmdWriteCommandByte = 0x60;
constexpr uint8_t kCmdSelfTest = 0xaa, kCmdResetCpu = 0xfe;
constexpr uint8_t kSelfTestOk = 0x55;
}  // namespace

std::vector<uint8_t> I8042::save_state() const {
  std::lock_guard lock(mu_);
  I8042State state{command_byte_, pending_command_, std::nullopt};
  if (output_ >= 0) state.output = static_cast<uint8_t>(output_);
  return encode_state(state);
}

Result<void> I8042::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(I8042State saved, decode_i8042_state(state));
  // Only one command takes a data byte.
  if (saved.pending_command != 0 && saved.pending_command != kCmdWriteCommandByte)
    return err("i8042: invalid pending command {:#x}", saved.pending_command);
  std::lock_guard lock(mu_);
  command_byte_ = saved.command_byte;
  pending_command_ = saved.pending_command;
  output_ = saved.output ? *saved.output : -1;
  return {};
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  uint8_t value = 0;
  if (offset == kCommandOffset) {
    value = kStatusSystemFlag | (output_ >= 0 ? kStatusOutputFull : 0);
  } else if (offset == kDataOffset && output_ >= 0) {
    value = static_cast<uint8_t>(output_);
    output_ = -1;
  }
  data[0] = value;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  uint8_t value = data[0];
  if (offset == kCommandOffset) {
    pending_command_ = 0;
    switch (value) {
      case kCmdResetCpu:
        exit_.request(ExitReason::Reset);
        break;
      case kCmdReadCommandByte:
        output_ = command_byte_;
        break;
      case kCmdSelfTest:
        output_ = kSelfTestOk;
        break;
      case kCmdWriteCommandByte:
        pending_command_ = value;
        break;
      default:
        break;
    }
  } else if (offset == kDataOffset && pending_command_ == kCmdWriteCommandByte) {
    command_byte_ = value;
    pending_command_ = 0;
  }
}

}  // namespace ignition::devices
