// i8042: the command set Firecracker's model answers, plus the controller self-test.
#include "devices/legacy/i8042.hpp"

#include <algorithm>

#include "devices/legacy/persist.hpp"

namespace ignition::devices {

namespace {
constexpr uint64_t kDataOffset = 0, kCommandOffset = 4;

constexpr uint8_t kStatusOutputFull = 0x01, kStatusSystemFlag = 0x04, kStatusCommandData = 0x08,
                  kStatusKeyboardEnabled = 0x10;
constexpr uint8_t kControlKeyboardInterrupt = 0x01;

constexpr uint8_t kCmdReadControl = 0x20, kCmdWriteControl = 0x60;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdReadOutputPort = 0xd0, kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdResetCpu = 0xfe;
constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kKeyboardAck = 0xfa;

// Scan code set 2 make codes; Del is an extended key (0xE0 prefix).
constexpr uint8_t kKeyCtrl = 0x14, kKeyAlt = 0x11, kExtendedPrefix = 0xe0, kKeyDel = 0x71;

bool takes_data_byte(uint8_t command) {
  return command == kCmdWriteControl || command == kCmdWriteOutputPort;
}
}  // namespace

void I8042::set_keyboard_irq(IrqLine irq) {
  std::lock_guard lock(mu_);
  irq_.emplace(std::move(irq));
}

bool I8042::has_keyboard_irq() const {
  std::lock_guard lock(mu_);
  return irq_.has_value();
}

bool I8042::push_locked(uint8_t byte) {
  if (buffer_.size() >= kBufferSize) return false;
  buffer_.push_back(byte);
  return true;
}

void I8042::interrupt_locked() {
  // The guest masks keyboard interrupts through the control register; the bytes still wait.
  if (irq_ && (control_ & kControlKeyboardInterrupt)) irq_->trigger();
}

Result<void> I8042::trigger_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  if (kBufferSize - buffer_.size() < 4) return err("i8042 internal buffer full");
  push_locked(kKeyCtrl);
  interrupt_locked();
  push_locked(kKeyAlt);
  interrupt_locked();
  push_locked(kExtendedPrefix);
  push_locked(kKeyDel);
  interrupt_locked();
  return {};
}

I8042::Counters I8042::counters() const {
  return {counters_.reads.load(), counters_.writes.load(), counters_.missed_reads.load(),
          counters_.missed_writes.load(), counters_.resets.load()};
}

std::vector<uint8_t> I8042::save_state() const {
  std::lock_guard lock(mu_);
  return encode_state(I8042State{control_, pending_command_, output_port_, buffer_});
}

Result<void> I8042::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(I8042State saved, decode_i8042_state(state));
  if (saved.pending_command != 0 && !takes_data_byte(saved.pending_command))
    return err("i8042: invalid pending command {:#x}", saved.pending_command);
  if (saved.output.size() > kBufferSize)
    return err("i8042: {} bytes in a {}-byte output buffer", saved.output.size(), kBufferSize);
  std::lock_guard lock(mu_);
  control_ = saved.command_byte;
  pending_command_ = saved.pending_command;
  output_port_ = saved.output_port;
  buffer_ = std::move(saved.output);
  return {};
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::fill(data.begin(), data.end(), 0);
  if (data.size() != 1 || (offset != kCommandOffset && offset != kDataOffset)) {
    counters_.missed_reads.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  counters_.reads.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (offset == kCommandOffset) {
    data[0] = kStatusSystemFlag | kStatusKeyboardEnabled |
              (buffer_.empty() ? 0 : kStatusOutputFull) |
              (pending_command_ != 0 ? kStatusCommandData : 0);
    return;
  }
  if (buffer_.empty()) return;  // an empty buffer reads as 0
  data[0] = buffer_.front();
  buffer_.erase(buffer_.begin());
  // One interrupt per byte: the driver reads one byte per interrupt.
  if (!buffer_.empty()) interrupt_locked();
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (data.size() != 1) {
    counters_.missed_writes.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(mu_);
  uint8_t value = data[0];
  bool handled = true;
  if (offset == kCommandOffset) {
    pending_command_ = 0;
    switch (value) {
      case kCmdResetCpu:
        counters_.resets.fetch_add(1, std::memory_order_relaxed);
        exit_.request(ExitReason::Reset);
        break;
      case kCmdReadControl:
        flush_locked();
        push_locked(control_);
        break;
      case kCmdReadOutputPort:
        flush_locked();
        push_locked(output_port_);
        break;
      case kCmdSelfTest:
        flush_locked();
        push_locked(kSelfTestOk);
        break;
      case kCmdWriteControl:
        flush_locked();
        pending_command_ = value;
        break;
      case kCmdWriteOutputPort:
        pending_command_ = value;
        break;
      default:
        handled = false;
        break;
    }
  } else if (offset == kDataOffset) {
    if (pending_command_ == kCmdWriteControl) {
      control_ = value;
    } else if (pending_command_ == kCmdWriteOutputPort) {
      output_port_ = value;
    } else {
      // A command for the keyboard itself: this keyboard acknowledges everything.
      flush_locked();
      push_locked(kKeyboardAck);
      interrupt_locked();
    }
    pending_command_ = 0;
  } else {
    handled = false;
  }
  (handled ? counters_.writes : counters_.missed_writes).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace ignition::devices
