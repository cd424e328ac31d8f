// 16550A UART (COM1): the guest console. Output goes to a file descriptor; input is
// queued by the event loop and handed to the guest through a 64-byte receive FIFO,
// with THR-empty and data-ready interrupts as Linux's 8250 driver expects.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "base/event_fd.hpp"
#include "base/result.hpp"
#include "devices/bus.hpp"
#include "devices/irq.hpp"

namespace ignition::devices {

class Serial final : public BusDevice {
 public:
  static constexpr size_t kFifoSize = 64;

  // `out_fd` is not owned; -1 discards output. `space_evt` is signalled when the guest
  // frees room in a receive FIFO that was full, so the event loop can feed more input.
  Serial(IrqLine irq, int out_fd, EventFd space_evt);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues host input for the guest; returns how many bytes fitted in the FIFO.
  size_t enqueue_input(std::span<const uint8_t> bytes);
  int space_fd() const { return space_evt_.fd(); }
  void ack_space() const { space_evt_.consume(); }

  // Snapshots: registers, divisor, the receive FIFO's unread bytes and a pending
  // THR-empty interrupt. restore_state() checks every value as a register write would and
  // changes nothing on error; a restored pending interrupt is raised again (call it after
  // the interrupt controller's state is restored), since a lost one would stall the guest.
  std::vector<uint8_t> save_state() const;
  Result<void> restore_state(std::span<const uint8_t> state);

 private:
  uint8_t read_register(uint8_t reg);
  void write_register(uint8_t reg, uint8_t value);
  void transmit(uint8_t byte);
  void update_interrupt();
  uint8_t interrupt_id() const;

  mutable std::mutex mu_;
  IrqLine irq_;
  int out_fd_;
  EventFd space_evt_;
  bool input_blocked_ = false;  // a caller was turned away for lack of room

  std::deque<uint8_t> rx_fifo_;
  uint8_t ier_ = 0;     // interrupt enable
  uint8_t lcr_ = 0x03;  // line control: 8N1
  uint8_t mcr_ = 0x08;  // modem control: OUT2
  uint8_t scr_ = 0;     // scratch
  uint8_t dll_ = 0x0c;  // divisor latch: 9600 baud
  uint8_t dlm_ = 0;
  bool fifo_enabled_ = false;
  bool thr_empty_pending_ = false;  // THR-empty interrupt raised and not yet acknowledged
  bool irq_asserted_ = false;       // last level we showed the edge-triggered line
};

}  // namespace ignition::devices
