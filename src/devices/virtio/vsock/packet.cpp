#include "devices/virtio/vsock/packet.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace ignition::devices::virtio::vsock {

static_assert(std::endian::native == std::endian::little, "virtio-vsock headers are little-endian");

namespace {

template <typename T>
void put(HeaderBytes& b, size_t offset, T value) {
  std::memcpy(b.data() + offset, &value, sizeof(T));
}
template <typename T>
T get(const HeaderBytes& b, size_t offset) {
  T value;
  std::memcpy(&value, b.data() + offset, sizeof(T));
  return value;
}

}  // namespace

HeaderBytes encode(const PacketHeader& h) {
  HeaderBytes b{};
  put(b, 0, h.src_cid);
  put(b, 8, h.dst_cid);
  put(b, 16, h.src_port);
  put(b, 20, h.dst_port);
  put(b, 24, h.len);
  put(b, 28, h.type);
  put(b, 30, h.op);
  put(b, 32, h.flags);
  put(b, 36, h.buf_alloc);
  put(b, 40, h.fwd_cnt);
  return b;
}

PacketHeader decode(const HeaderBytes& b) {
  PacketHeader h;
  h.src_cid = get<uint64_t>(b, 0);
  h.dst_cid = get<uint64_t>(b, 8);
  h.src_port = get<uint32_t>(b, 16);
  h.dst_port = get<uint32_t>(b, 20);
  h.len = get<uint32_t>(b, 24);
  h.type = get<uint16_t>(b, 28);
  h.op = get<uint16_t>(b, 30);
  h.flags = get<uint32_t>(b, 32);
  h.buf_alloc = get<uint32_t>(b, 36);
  h.fwd_cnt = get<uint32_t>(b, 40);
  return h;
}

Result<PacketHeader> read_tx_header(const GuestMemory& mem, const DescriptorChain& chain) {
  if (chain.readable_bytes() < kHeaderSize)
    return err("tx chain of {} readable bytes has no room for a header", chain.readable_bytes());
  HeaderBytes bytes{};
  size_t got = 0;
  for (size_t i = 0; i < chain.readable_count && got < kHeaderSize; ++i) {
    const Buffer& buf = chain.buffers[i];
    size_t n = std::min<size_t>(buf.len, kHeaderSize - got);
    IGN_TRY(mem.read(buf.gpa, {bytes.data() + got, n}));
    got += n;
  }
  return decode(bytes);
}

Result<TxPacket> read_tx_payload(const GuestMemory& mem, const DescriptorChain& chain,
                                 const PacketHeader& hdr) {
  if (hdr.len > kMaxPayload) return err("tx packet length {} exceeds {}", hdr.len, kMaxPayload);
  if (hdr.len > chain.readable_bytes() - kHeaderSize) {
    return err("tx packet length {} exceeds the {} bytes its chain holds", hdr.len,
               chain.readable_bytes() - kHeaderSize);
  }
  TxPacket pkt{hdr, {}};
  uint64_t skip = kHeaderSize;
  uint64_t left = hdr.len;
  for (size_t i = 0; i < chain.readable_count && left > 0; ++i) {
    const Buffer& buf = chain.buffers[i];
    uint64_t off = std::min<uint64_t>(skip, buf.len);
    skip -= off;
    uint64_t n = std::min<uint64_t>(buf.len - off, left);
    if (n == 0) continue;
    IGN_ASSIGN_OR_RETURN(std::span<const uint8_t> part, mem.slice(buf.gpa + off, n));
    pkt.payload.push_back(part);
    left -= n;
  }
  return pkt;
}

Result<RxPacket> RxPacket::from_chain(GuestMemory& mem, const DescriptorChain& chain) {
  if (chain.readable_count != 0) return err("rx chain has device-readable buffers");
  if (chain.writable_bytes() < kHeaderSize)
    return err("rx chain of {} bytes has no room for a header", chain.writable_bytes());
  std::vector<std::span<uint8_t>> buffers;
  for (const Buffer& buf : chain.buffers) {
    if (buf.len == 0) continue;
    IGN_ASSIGN_OR_RETURN(std::span<uint8_t> part, mem.slice(buf.gpa, buf.len));
    buffers.push_back(part);
  }
  uint64_t room = chain.writable_bytes() - kHeaderSize;
  return RxPacket(std::move(buffers), static_cast<uint32_t>(std::min<uint64_t>(room, kMaxPayload)));
}

std::vector<iovec> RxPacket::payload_iov(uint32_t len) const {
  std::vector<iovec> iov;
  uint64_t skip = kHeaderSize;
  uint64_t left = std::min(len, capacity_);
  for (std::span<uint8_t> buf : buffers_) {
    if (left == 0) break;
    uint64_t off = std::min<uint64_t>(skip, buf.size());
    skip -= off;
    uint64_t n = std::min<uint64_t>(buf.size() - off, left);
    if (n == 0) continue;
    iov.push_back({buf.data() + off, n});
    left -= n;
  }
  return iov;
}

uint32_t RxPacket::commit() {
  HeaderBytes bytes = encode(hdr);
  size_t done = 0;
  for (std::span<uint8_t> buf : buffers_) {
    if (done == kHeaderSize) break;
    size_t n = std::min(buf.size(), kHeaderSize - done);
    std::memcpy(buf.data(), bytes.data() + done, n);
    done += n;
  }
  return kHeaderSize + hdr.len;
}

}  // namespace ignition::devices::virtio::vsock
