// Snapshot state of the legacy devices (16550A serial port, i8042): plain data, kept
// apart from the devices, in the same encoding as the rest of a snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ignition::devices {

struct SerialState {
  uint8_t ier = 0;
  uint8_t lcr = 0;
  uint8_t mcr = 0;
  uint8_t scr = 0;
  uint8_t dll = 0;
  uint8_t dlm = 0;
  bool fifo_enabled = false;
  bool thr_empty_pending = false;
  std::vector<uint8_t> rx_fifo;  // bytes the guest has not read yet
};

std::vector<uint8_t> encode_state(const SerialState& state);
Result<SerialState> decode_serial_state(std::span<const uint8_t> bytes);

struct I8042State {
  uint8_t command_byte = 0;     // the control register
  uint8_t pending_command = 0;  // waiting for its data byte, 0 when none
  uint8_t output_port = 0;
  std::vector<uint8_t> output;  // bytes the guest has not read, oldest first
};

std::vector<uint8_t> encode_state(const I8042State& state);
Result<I8042State> decode_i8042_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices
