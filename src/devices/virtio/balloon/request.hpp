// virtio-balloon guest requests (virtio spec 5.5.6): the page-frame arrays of the inflate
// and deflate queues and the tag/value pairs of the statistics queue, read and checked.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "memory/guest_memory.hpp"
#include "vmm/config/balloon.hpp"

namespace ignition::devices::virtio {

// Balloon PFNs always count 4 KiB pages, whatever the guest's page size.
inline constexpr uint32_t kBalloonPfnShift = 12;
inline constexpr uint64_t kBalloonPageSize = 1ULL << kBalloonPfnShift;
inline constexpr uint32_t kBalloonPagesPerMib = 256;
// Linux sends at most 256 PFNs per request (VIRTIO_BALLOON_ARRAY_PFNS_MAX); more is refused
// so a guest cannot make the device read and sort an arbitrarily large array.
inline constexpr uint32_t kBalloonMaxPfnsPerRequest = 256;

// Statistics tags (include/uapi/linux/virtio_balloon.h).
enum BalloonStatTag : uint16_t {
  kStatSwapIn = 0,
  kStatSwapOut = 1,
  kStatMajorFaults = 2,
  kStatMinorFaults = 3,
  kStatMemFree = 4,
  kStatMemTotal = 5,
  kStatAvailable = 6,
  kStatCaches = 7,
  kStatHugetlbAlloc = 8,
  kStatHugetlbFail = 9,
  kStatOomKill = 10,
  kStatAllocStall = 11,
  kStatAsyncScan = 12,
  kStatDirectScan = 13,
  kStatAsyncReclaim = 14,
  kStatDirectReclaim = 15,
};
// One entry is a packed {le16 tag; le64 value}.
inline constexpr uint32_t kBalloonStatSize = 10;
// The spec defines 16 tags and newer kernels add more; this bounds the work per report.
inline constexpr uint32_t kBalloonMaxStats = 256;

struct BalloonStat {
  uint16_t tag;
  uint64_t value;
};

// A run of contiguous guest pages.
struct PageRange {
  uint64_t first_pfn;
  uint64_t count;
};

// The PFN array of an inflate or deflate request. An error means the request is malformed
// (device-writable buffers, a length that is not whole PFNs, too many PFNs).
Result<std::vector<uint32_t>> read_balloon_pfns(const GuestMemory& mem,
                                                const DescriptorChain& chain);

// Sorts and de-duplicates `pfns` and merges them into runs of contiguous pages.
std::vector<PageRange> coalesce_pfns(std::vector<uint32_t> pfns);

// The entries of a statistics report. An error means the report is malformed
// (device-writable buffers, a partial entry, more than kBalloonMaxStats entries).
Result<std::vector<BalloonStat>> read_balloon_stats(const GuestMemory& mem,
                                                    const DescriptorChain& chain);

// Records one entry in `stats`; false for a tag this device does not know.
bool apply_balloon_stat(config::BalloonStats& stats, const BalloonStat& stat);

}  // namespace ignition::devices::virtio
