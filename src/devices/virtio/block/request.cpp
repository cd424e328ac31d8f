#include "devices/virtio/block/request.hpp"

#include <algorithm>
#include <cstring>

namespace ignition::devices::virtio::block {
namespace {

// Copies the bytes of `pieces` (already checked to lie in guest RAM) into `out`.
Result<void> gather(const GuestMemory& memory, const std::vector<Buffer>& pieces,
                    std::span<uint8_t> out) {
  size_t pos = 0;
  for (const Buffer& piece : pieces) {
    IGN_TRY(memory.read(piece.gpa, out.subspan(pos, piece.len)));
    pos += piece.len;
  }
  return {};
}

bool in_range(uint64_t sector, uint64_t sectors, uint64_t capacity) {
  return sector <= capacity && sectors <= capacity - sector;
}

uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));  // x86_64 is little-endian, as virtio is
  return v;
}
uint32_t load_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Checks the ranges of a DISCARD / WRITE_ZEROES request; returns the status to answer.
uint8_t parse_ranges(const GuestMemory& memory, std::span<const Buffer> readable, uint64_t len,
                     const DiskGeometry& disk, Request& req) {
  if (len == 0 || len % kRangeSegmentSize != 0) return kStatusIoErr;
  uint64_t count = len / kRangeSegmentSize;
  if (count > disk.max_range_segments) return kStatusIoErr;
  std::vector<uint8_t> raw(len);
  if (!gather(memory, sub_buffers(readable, kHeaderSize, len), raw).ok()) return kStatusIoErr;
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* seg = raw.data() + i * kRangeSegmentSize;
    uint64_t sector = load_le64(seg);
    uint32_t num = load_le32(seg + 8);
    uint32_t flags = load_le32(seg + 12);
    // Spec 5.2.6.2: unknown flags, or unmap on a discard, are unsupported.
    if (flags & ~kRangeFlagUnmap) return kStatusUnsupp;
    if (req.type == kTypeDiscard && (flags & kRangeFlagUnmap)) return kStatusUnsupp;
    if (num > disk.max_range_sectors || !in_range(sector, num, disk.capacity_sectors))
      return kStatusIoErr;
    req.ranges.push_back({sector, num, (flags & kRangeFlagUnmap) != 0});
  }
  return kStatusOk;
}

}  // namespace

std::vector<Buffer> sub_buffers(std::span<const Buffer> buffers, uint64_t offset, uint64_t len) {
  std::vector<Buffer> out;
  for (const Buffer& b : buffers) {
    if (len == 0) break;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    uint32_t take = static_cast<uint32_t>(std::min<uint64_t>(b.len - offset, len));
    out.push_back({b.gpa + offset, take, b.writable});
    len -= take;
    offset = 0;
  }
  return out;
}

Result<Request> parse_request(const DescriptorChain& chain, const GuestMemory& memory,
                              const DiskGeometry& disk) {
  std::span<const Buffer> all(chain.buffers);
  std::span<const Buffer> readable = all.first(chain.readable_count);
  std::span<const Buffer> writable = all.subspan(chain.readable_count);
  uint64_t readable_len = chain.readable_bytes();
  uint64_t writable_len = chain.writable_bytes();
  if (writable_len == 0) return err("request {} has no writable byte for its status", chain.head);

  Request req;
  req.status_gpa = sub_buffers(writable, writable_len - 1, 1).front().gpa;
  auto reject = [&](uint8_t status) {
    req.status = status;
    req.data.clear();
    req.data_len = 0;
    req.ranges.clear();
    return req;
  };

  if (readable_len < kHeaderSize) return reject(kStatusIoErr);
  uint8_t header[kHeaderSize];
  if (!gather(memory, sub_buffers(readable, 0, kHeaderSize), header).ok())
    return reject(kStatusIoErr);
  req.type = load_le32(header);
  req.sector = load_le64(header + 8);

  // Bytes around the header and the status byte: request payload in each direction.
  uint64_t out_len = readable_len - kHeaderSize;
  uint64_t in_len = writable_len - 1;

  switch (req.type) {
    case kTypeIn:
    case kTypeOut: {
      bool is_read = req.type == kTypeIn;
      if ((is_read ? out_len : in_len) != 0) return reject(kStatusIoErr);  // wrong direction
      if (!is_read && disk.read_only) return reject(kStatusIoErr);
      req.data_len = is_read ? in_len : out_len;
      if (req.data_len % kSectorSize != 0) return reject(kStatusIoErr);
      if (!in_range(req.sector, req.data_len >> kSectorShift, disk.capacity_sectors))
        return reject(kStatusIoErr);
      req.data =
          is_read ? sub_buffers(writable, 0, in_len) : sub_buffers(readable, kHeaderSize, out_len);
      return req;
    }
    case kTypeFlush:
      if (out_len != 0 || in_len != 0) return reject(kStatusIoErr);
      return req;
    case kTypeGetId:
      if (out_len != 0) return reject(kStatusIoErr);
      req.data_len = std::min<uint64_t>(in_len, kIdBytes);
      req.data = sub_buffers(writable, 0, req.data_len);
      return req;
    case kTypeDiscard:
    case kTypeWriteZeroes: {
      bool offered = req.type == kTypeDiscard ? disk.discard : disk.write_zeroes;
      if (!offered) return reject(kStatusUnsupp);
      if (in_len != 0 || disk.read_only) return reject(kStatusIoErr);
      uint8_t status = parse_ranges(memory, readable, out_len, disk, req);
      if (status != kStatusOk) return reject(status);
      return req;
    }
    default:
      return reject(kStatusUnsupp);
  }
}

}  // namespace ignition::devices::virtio::block
