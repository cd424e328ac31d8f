// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/vsock/persist.hpp"

#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::vsock {

std::vector<uint8_t> encode_state(const VsockState& state) {
  snapshot::Encoder e;
  e.u64(state.guest_cid);
  e.boolean(state.active);
  return std::move(e).take();
}

Result<VsockState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  VsockState state;
  state.guest_cid = d.u64();
  state.active = d.boolean();
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::vsock
