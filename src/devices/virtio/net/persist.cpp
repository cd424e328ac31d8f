// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/net/persist.hpp"

#include "devices/virtio/limiter_state.hpp"
#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::net {

std::vector<uint8_t> encode_state(const NetState& state) {
  snapshot::Encoder e;
  e.str(state.iface_id);
  e.boolean(state.mac.has_value());
  e.pod(state.mac.value_or(std::array<uint8_t, 6>{}));
  e.boolean(state.mtu.has_value());
  e.u16(state.mtu.value_or(0));
  e.u64(state.features);
  put_rate_limiter(e, state.rx_rate_limiter);
  put_rate_limiter(e, state.tx_rate_limiter);
  return std::move(e).take();
}

Result<NetState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  NetState state;
  state.iface_id = d.str_view();
  bool has_mac = d.boolean();
  auto mac = d.pod<std::array<uint8_t, 6>>();
  if (has_mac) state.mac = mac;
  bool has_mtu = d.boolean();
  uint16_t mtu = d.u16();
  if (has_mtu) state.mtu = mtu;
  state.features = d.u64();
  state.rx_rate_limiter = get_rate_limiter(d);
  state.tx_rate_limiter = get_rate_limiter(d);
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::net
