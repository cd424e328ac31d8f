// A virtio-blk request (virtio spec 5.2.6) parsed out of a descriptor chain, with every
// check on the guest's input done here: header, buffer directions, lengths, sector
// ranges, read-only drives. The device only executes requests this file accepted.
#pragma once

#include <cstdint>
#include <vector>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio::block {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr uint32_t kSectorShift = 9;
inline constexpr uint32_t kHeaderSize = 16;
inline constexpr uint32_t kIdBytes = 20;           // GET_ID answer, NUL-padded
inline constexpr uint32_t kRangeSegmentSize = 16;  // one DISCARD / WRITE_ZEROES range

// Request types.
inline constexpr uint32_t kTypeIn = 0;
inline constexpr uint32_t kTypeOut = 1;
inline constexpr uint32_t kTypeFlush = 4;
inline constexpr uint32_t kTypeGetId = 8;
inline constexpr uint32_t kTypeDiscard = 11;
inline constexpr uint32_t kTypeWriteZeroes = 13;

// Status byte values.
inline constexpr uint8_t kStatusOk = 0;
inline constexpr uint8_t kStatusIoErr = 1;
inline constexpr uint8_t kStatusUnsupp = 2;

// Range flags (struct virtio_blk_discard_write_zeroes).
inline constexpr uint32_t kRangeFlagUnmap = 1;

// What a request is checked against.
struct DiskGeometry {
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  bool discard = false;       // DISCARD offered and acked
  bool write_zeroes = false;  // WRITE_ZEROES offered and acked
  uint32_t max_range_segments = 1;
  uint32_t max_range_sectors = UINT32_MAX;
};

struct SectorRange {
  uint64_t sector;
  uint32_t num_sectors;
  bool unmap;  // WRITE_ZEROES may deallocate
};

struct Request {
  uint32_t type = 0;
  uint64_t sector = 0;
  // Guest data: for IN and GET_ID the device writes it, for OUT it reads it. The header
  // and status byte are not part of it.
  std::vector<Buffer> data;
  uint64_t data_len = 0;
  std::vector<SectorRange> ranges;  // DISCARD / WRITE_ZEROES
  uint64_t status_gpa = 0;
  // kStatusOk: execute the request. Anything else: the request is rejected and this is
  // the answer, written without touching the disk.
  uint8_t status = kStatusOk;

  uint64_t offset() const { return sector << kSectorShift; }
};

// Parses `chain`. The chain is treated as a byte stream, as the spec asks (no assumption
// about how the driver split it into descriptors): the readable part is header + OUT data
// or ranges, the writable part is IN data + the status byte (its very last byte).
// An error means there is no writable byte to answer in: the driver broke the protocol.
Result<Request> parse_request(const DescriptorChain& chain, const GuestMemory& memory,
                              const DiskGeometry& disk);

// The part [offset, offset+len) of the byte stream formed by `buffers`.
std::vector<Buffer> sub_buffers(std::span<const Buffer> buffers, uint64_t offset, uint64_t len);

}  // namespace ignition::devices::virtio::block
