// virtio-balloon guest requests (virtio spec 5.5.6): the page-frame arrays of the inflate
// and deflate queues, the tag/value pairs of the statistics queue and the page ranges of the
// free page reporting queue, read and checked.
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

// A free page report (virtio spec 5.5.6.7): the ranges of whole 4 KiB pages to discard, in the
// order the driver listed them, and how many of its buffers were not as the spec wants.
struct FreePageReport {
  std::vector<PageRange> ranges;
  uint64_t malformed = 0;
};

// Each device-writable buffer of a reporting chain is one range of free guest pages (the
// queue has already checked that it lies inside guest RAM). Device-readable and empty buffers
// are skipped and a range that is not 4 KiB-aligned is trimmed to the whole pages inside it:
// both count as malformed, and neither makes the device discard a byte outside the buffer.
FreePageReport read_free_page_report(const DescriptorChain& chain);

}  // namespace ignition::devices::virtio
