#include "devices/virtio/net/tx.hpp"

#include <algorithm>
#include <cstring>

#include "devices/virtio/net/virtio_net.hpp"

namespace ignition::devices::virtio::net {

Result<TxFrame> parse_tx_chain(GuestMemory& mem, const DescriptorChain& chain) {
  if (chain.readable_count != chain.buffers.size())
    return err("TX chain has {} device-writable buffers",
               chain.buffers.size() - chain.readable_count);
  if (chain.buffers.size() > kMaxTxBuffers)
    return err("TX chain has {} buffers (limit {})", chain.buffers.size(), kMaxTxBuffers);
  uint64_t size = chain.readable_bytes();
  if (size < kHdrSize) return err("TX frame of {} bytes has no virtio-net header", size);
  if (size > kMaxFrameSize) return err("TX frame of {} bytes exceeds {}", size, kMaxFrameSize);
  TxFrame frame;
  frame.size = static_cast<uint32_t>(size);
  frame.iov.reserve(chain.buffers.size());
  for (const Buffer& buf : chain.buffers) {
    if (buf.len == 0) continue;
    IGN_ASSIGN_OR_RETURN(auto host, mem.slice(buf.gpa, buf.len));
    frame.iov.push_back({host.data(), host.size()});
  }
  return frame;
}

size_t TxFrame::copy_out(uint32_t offset, std::span<uint8_t> out) const {
  size_t copied = 0;
  uint64_t pos = 0;  // frame offset where the current iovec starts
  for (const iovec& v : iov) {
    if (copied == out.size()) break;
    uint64_t end = pos + v.iov_len;
    if (end > offset) {
      uint64_t from = std::max<uint64_t>(offset, pos) - pos;
      size_t n = std::min<size_t>(v.iov_len - from, out.size() - copied);
      std::memcpy(out.data() + copied, static_cast<const uint8_t*>(v.iov_base) + from, n);
      copied += n;
      offset = static_cast<uint32_t>(pos + from + n);
    }
    pos = end;
  }
  return copied;
}

}  // namespace ignition::devices::virtio::net
