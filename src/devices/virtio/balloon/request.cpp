#include "devices/virtio/balloon/request.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace ignition::devices::virtio {

namespace {

// Copies the readable part of `chain`; callers bound its size first.
Result<std::vector<uint8_t>> read_readable(const GuestMemory& mem, const DescriptorChain& chain) {
  std::vector<uint8_t> bytes(chain.readable_bytes());
  size_t at = 0;
  for (size_t i = 0; i < chain.readable_count; ++i) {
    const Buffer& buf = chain.buffers[i];
    IGN_TRY(mem.read(buf.gpa, {bytes.data() + at, buf.len}));
    at += buf.len;
  }
  return bytes;
}

}  // namespace

Result<std::vector<uint32_t>> read_balloon_pfns(const GuestMemory& mem,
                                                const DescriptorChain& chain) {
  if (chain.readable_count != chain.buffers.size())
    return err("PFN array in a device-writable buffer");
  uint64_t bytes = chain.readable_bytes();
  if (bytes % sizeof(uint32_t) != 0) return err("PFN array of {} bytes is not whole PFNs", bytes);
  if (bytes / sizeof(uint32_t) > kBalloonMaxPfnsPerRequest)
    return err("{} PFNs in one request (at most {})", bytes / sizeof(uint32_t),
               kBalloonMaxPfnsPerRequest);
  IGN_ASSIGN_OR_RETURN(auto raw, read_readable(mem, chain));
  std::vector<uint32_t> pfns(raw.size() / sizeof(uint32_t));
  std::memcpy(pfns.data(), raw.data(), raw.size());  // little-endian, as the spec says
  return pfns;
}

std::vector<PageRange> coalesce_pfns(std::vector<uint32_t> pfns) {
  std::sort(pfns.begin(), pfns.end());
  pfns.erase(std::unique(pfns.begin(), pfns.end()), pfns.end());
  std::vector<PageRange> ranges;
  for (uint32_t pfn : pfns) {
    if (!ranges.empty() && ranges.back().first_pfn + ranges.back().count == pfn)
      ++ranges.back().count;
    else
      ranges.push_back({pfn, 1});
  }
  return ranges;
}

Result<std::vector<BalloonStat>> read_balloon_stats(const GuestMemory& mem,
                                                    const DescriptorChain& chain) {
  if (chain.readable_count != chain.buffers.size())
    return err("statistics in a device-writable buffer");
  uint64_t bytes = chain.readable_bytes();
  if (bytes % kBalloonStatSize != 0)
    return err("statistics of {} bytes are not whole entries", bytes);
  if (bytes / kBalloonStatSize > kBalloonMaxStats)
    return err("{} statistics in one report (at most {})", bytes / kBalloonStatSize,
               kBalloonMaxStats);
  IGN_ASSIGN_OR_RETURN(auto raw, read_readable(mem, chain));
  std::vector<BalloonStat> stats(raw.size() / kBalloonStatSize);
  for (size_t i = 0; i < stats.size(); ++i) {
    std::memcpy(&stats[i].tag, raw.data() + i * kBalloonStatSize, sizeof(uint16_t));
    std::memcpy(&stats[i].value, raw.data() + i * kBalloonStatSize + 2, sizeof(uint64_t));
  }
  return stats;
}

bool apply_balloon_stat(config::BalloonStats& s, const BalloonStat& stat) {
  using S = config::BalloonStats;
  // Indexed by tag, kStatSwapIn .. kStatDirectReclaim.
  static constexpr std::optional<uint64_t> S::*kFields[] = {
      &S::swap_in,          &S::swap_out,    &S::major_faults,
      &S::minor_faults,     &S::free_memory, &S::total_memory,
      &S::available_memory, &S::disk_caches, &S::hugetlb_allocations,
      &S::hugetlb_failures, &S::oom_kill,    &S::alloc_stall,
      &S::async_scan,       &S::direct_scan, &S::async_reclaim,
      &S::direct_reclaim,
  };
  static_assert(std::size(kFields) == kStatDirectReclaim + 1);
  if (stat.tag >= std::size(kFields)) return false;
  s.*kFields[stat.tag] = stat.value;
  return true;
}

FreePageReport read_free_page_report(const DescriptorChain& chain) {
  FreePageReport report;
  for (const Buffer& buf : chain.buffers) {
    if (!buf.writable || buf.len == 0) {
      ++report.malformed;
      continue;
    }
    // Inward, so only pages wholly inside what the driver called free are touched.
    const uint64_t first = (buf.gpa + kBalloonPageSize - 1) >> kBalloonPfnShift;
    const uint64_t end = (buf.gpa + buf.len) >> kBalloonPfnShift;
    if (buf.gpa % kBalloonPageSize != 0 || buf.len % kBalloonPageSize != 0) ++report.malformed;
    if (first < end) report.ranges.push_back({first, end - first});
  }
  return report;
}

}  // namespace ignition::devices::virtio
