// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/balloon/persist.hpp"

#include <array>

#include "snapshot/codec.hpp"

namespace ignition::devices::virtio::balloon {

namespace {

using Stat = std::optional<uint64_t> config::BalloonStats::*;
constexpr std::array<Stat, 16> kStats = {
    &config::BalloonStats::swap_in,
    &config::BalloonStats::swap_out,
    &config::BalloonStats::major_faults,
    &config::BalloonStats::minor_faults,
    &config::BalloonStats::free_memory,
    &config::BalloonStats::total_memory,
    &config::BalloonStats::available_memory,
    &config::BalloonStats::disk_caches,
    &config::BalloonStats::hugetlb_allocations,
    &config::BalloonStats::hugetlb_failures,
    &config::BalloonStats::oom_kill,
    &config::BalloonStats::alloc_stall,
    &config::BalloonStats::async_scan,
    &config::BalloonStats::direct_scan,
    &config::BalloonStats::async_reclaim,
    &config::BalloonStats::direct_reclaim,
};

}  // namespace

std::vector<uint8_t> encode_state(const BalloonState& state) {
  snapshot::Encoder e;
  e.u64(state.features);
  e.u32(state.num_pages);
  e.u32(state.actual_pages);
  e.u16(state.stats_interval_s);
  e.boolean(state.stats_head.has_value());
  e.u16(state.stats_head.value_or(0));
  for (Stat stat : kStats) {
    const std::optional<uint64_t>& v = state.stats.*stat;
    e.boolean(v.has_value());
    e.u64(v.value_or(0));
  }
  return std::move(e).take();
}

Result<BalloonState> decode_state(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  BalloonState state;
  state.features = d.u64();
  state.num_pages = d.u32();
  state.actual_pages = d.u32();
  state.stats_interval_s = d.u16();
  bool has_head = d.boolean();
  uint16_t head = d.u16();
  if (has_head) state.stats_head = head;
  for (Stat stat : kStats) {
    bool present = d.boolean();
    uint64_t v = d.u64();
    if (present) state.stats.*stat = v;
  }
  IGN_TRY(d.finish());
  return state;
}

}  // namespace ignition::devices::virtio::balloon
