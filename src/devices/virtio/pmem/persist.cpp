// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/pmem/persist.hpp"

#include "devices/virtio/limiter_state.hpp"
#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::pmem {

std::vector<uint8_t> encode_state(const PmemState& state) {
  snapshot::Encoder e;
  e.str(state.id);
  e.str(state.path);
  e.u64(state.gpa);
  e.u64(state.size);
  e.u64(state.file_size);
  e.boolean(state.read_only);
  put_rate_limiter(e, state.rate_limiter);
  return std::move(e).take();
}

Result<PmemState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  PmemState state;
  state.id = d.str_view();
  state.path = d.str_view();
  state.gpa = d.u64();
  state.size = d.u64();
  state.file_size = d.u64();
  state.read_only = d.boolean();
  state.rate_limiter = get_rate_limiter(d);
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::pmem
