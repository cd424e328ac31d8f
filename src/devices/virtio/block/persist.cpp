// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/block/persist.hpp"

#include "devices/virtio/limiter_state.hpp"
#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::block {

std::vector<uint8_t> encode_state(const BlockState& state) {
  snapshot::Encoder e;
  e.str(state.drive_id);
  e.str(state.path);
  e.u64(state.capacity_sectors);
  e.boolean(state.read_only);
  e.u64(state.features);
  put_rate_limiter(e, state.rate_limiter);
  return std::move(e).take();
}

Result<BlockState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  BlockState state;
  state.drive_id = d.str_view();
  state.path = d.str_view();
  state.capacity_sectors = d.u64();
  state.read_only = d.boolean();
  state.features = d.u64();
  state.rate_limiter = get_rate_limiter(d);
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::block
