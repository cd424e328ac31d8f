// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/legacy/persist.hpp"

#include "snapshot/codec.hpp"

namespace ignition::devices {

std::vector<uint8_t> encode_state(const SerialState& state) {
  snapshot::Encoder e;
  for (uint8_t reg : {state.ier, state.lcr, state.mcr, state.scr, state.dll, state.dlm}) e.u8(reg);
  e.boolean(state.fifo_enabled);
  e.boolean(state.thr_empty_pending);
  e.bytes(state.rx_fifo);
  return std::move(e).take();
}

Result<SerialState> decode_serial_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  SerialState state;
  for (uint8_t* reg : {&state.ier, &state.lcr, &state.mcr, &state.scr, &state.dll, &state.dlm})
    *reg = d.u8();
  state.fifo_enabled = d.boolean();
  state.thr_empty_pending = d.boolean();
  state.rx_fifo = d.bytes();
  IGN_TRY(d.finish());
  return state;
}

std::vector<uint8_t> encode_state(const I8042State& state) {
  snapshot::Encoder e;
  e.u8(state.command_byte);
  e.u8(state.pending_command);
  e.u8(state.output_port);
  e.bytes(state.output);
  return std::move(e).take();
}

Result<I8042State> decode_i8042_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  I8042State state;
  state.command_byte = d.u8();
  state.pending_command = d.u8();
  state.output_port = d.u8();
  state.output = d.bytes();
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices
