#include "devices/legacy/serial.hpp"

#include <unistd.h>

#include "devices/legacy/persist.hpp"

namespace ignition::devices {

namespace {
// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint8_t kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kIerRxData = 0x01, kIerThrEmpty = 0x02;
constexpr uint8_t kIirNone = 0x01, kIirThrEmpty = 0x02, kIirRxData = 0x04, kIirFifo = 0xc0;
constexpr uint8_t kLsrDataReady = 0x01, kLsrThrEmpty = 0x20, kLsrIdle = 0x40;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kIerMask = 0x0f, kMcrMask = 0x1f;  // bits the registers keep
// Modem status without loopback: carrier detect, data set ready, clear to send.
constexpr uint8_t kMsrConnected = 0xb0;
}  // namespace

Serial::Serial(IrqLine irq, int out_fd, EventFd space_evt)
    : irq_(std::move(irq)), out_fd_(out_fd), space_evt_(std::move(space_evt)) {}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = offset < 8 ? read_register(static_cast<uint8_t>(offset)) : 0xff;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= 8) return;
  std::lock_guard lock(mu_);
  write_register(static_cast<uint8_t>(offset), data[0]);
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  // In loopback the receiver is wired to the transmitter, not to the host.
  if (mcr_ & kMcrLoop) return 0;
  size_t n = std::min(bytes.size(), kFifoSize - rx_fifo_.size());
  rx_fifo_.insert(rx_fifo_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
  if (n < bytes.size()) input_blocked_ = true;
  update_interrupt();
  return n;
}

std::vector<uint8_t> Serial::save_state() const {
  std::lock_guard lock(mu_);
  SerialState state{ier_, lcr_, mcr_, scr_, dll_, dlm_, fifo_enabled_, thr_empty_pending_, {}};
  state.rx_fifo.assign(rx_fifo_.begin(), rx_fifo_.end());
  return encode_state(state);
}

Result<void> Serial::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(SerialState saved, decode_serial_state(state));
  if (saved.ier & ~kIerMask) return err("serial: invalid IER {:#x}", saved.ier);
  if (saved.mcr & ~kMcrMask) return err("serial: invalid MCR {:#x}", saved.mcr);
  if (saved.rx_fifo.size() > kFifoSize)
    return err("serial: {} bytes in a {}-byte receive FIFO", saved.rx_fifo.size(), kFifoSize);
  std::lock_guard lock(mu_);
  ier_ = saved.ier;
  lcr_ = saved.lcr;
  mcr_ = saved.mcr;
  scr_ = saved.scr;
  dll_ = saved.dll;
  dlm_ = saved.dlm;
  fifo_enabled_ = saved.fifo_enabled;
  thr_empty_pending_ = saved.thr_empty_pending;
  rx_fifo_.assign(saved.rx_fifo.begin(), saved.rx_fifo.end());
  input_blocked_ = false;
  irq_asserted_ = false;
  update_interrupt();
  return {};
}

uint8_t Serial::read_register(uint8_t reg) {
  if ((lcr_ & kLcrDlab) && reg <= kIer) return reg == kData ? dll_ : dlm_;
  switch (reg) {
    case kData: {
      if (rx_fifo_.empty()) return 0;
      uint8_t byte = rx_fifo_.front();
      rx_fifo_.pop_front();
      if (input_blocked_) {
        input_blocked_ = false;
        space_evt_.signal();
      }
      update_interrupt();
      return byte;
    }
    case kIer:
      return ier_;
    case kIir: {
      uint8_t id = interrupt_id();
      // Reading IIR acknowledges a THR-empty interrupt (16550 behaviour).
      if (id == kIirThrEmpty) {
        thr_empty_pending_ = false;
        update_interrupt();
      }
      return id | (fifo_enabled_ ? kIirFifo : 0);
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return (rx_fifo_.empty() ? 0 : kLsrDataReady) | kLsrThrEmpty | kLsrIdle;
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return kMsrConnected;
    case kScr:
      return scr_;
    default:
      return 0xff;
  }
}

void Serial::write_register(uint8_t reg, uint8_t value) {
  if ((lcr_ & kLcrDlab) && reg <= kIer) {
    (reg == kData ? dll_ : dlm_) = value;
    return;
  }
  switch (reg) {
    case kData:
      if (mcr_ & kMcrLoop) {
        if (rx_fifo_.size() < kFifoSize) rx_fifo_.push_back(value);
      } else {
        transmit(value);
      }
      // The byte left at once: the holding register is empty again.
      thr_empty_pending_ = true;
      update_interrupt();
      break;
    case kIer: {
      bool thre_newly_enabled = !(ier_ & kIerThrEmpty) && (value & kIerThrEmpty);
      ier_ = value & kIerMask;
      // Enabling THR-empty while the THR is empty raises it at once; Linux waits for that.
      if (thre_newly_enabled) thr_empty_pending_ = true;
      update_interrupt();
      break;
    }
    case kIir:  // FCR
      fifo_enabled_ = value & 0x01;
      if (value & 0x02) rx_fifo_.clear();
      update_interrupt();
      break;
    case kLcr:
      lcr_ = value;
      break;
    case kMcr:
      mcr_ = value & kMcrMask;
      break;
    case kScr:
      scr_ = value;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

void Serial::transmit(uint8_t byte) {
  if (out_fd_ < 0) return;
  // The console is best effort: a closed or full output must not stall the guest.
  [[maybe_unused]] ssize_t n = ::write(out_fd_, &byte, 1);
}

uint8_t Serial::interrupt_id() const {
  if ((ier_ & kIerRxData) && !rx_fifo_.empty()) return kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty;
  return kIirNone;
}

void Serial::update_interrupt() {
  bool pending = interrupt_id() != kIirNone;
  // The line is edge-triggered through irqfd: raise it when a condition appears.
  if (pending && !irq_asserted_) irq_.trigger();
  irq_asserted_ = pending;
}

}  // namespace ignition::devices
