// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/rng/persist.hpp"

#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::rng {

std::vector<uint8_t> encode_state(const RngState& state) {
  snapshot::Encoder e;
  e.u64(state.bytes_served);
  return std::move(e).take();
}

Result<RngState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  RngState state;
  state.bytes_served = d.u64();
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::rng
