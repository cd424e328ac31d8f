#include "devices/virtio/net/rx.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <vector>

#include "devices/virtio/net/virtio_net.hpp"

namespace ignition::devices::virtio::net {

namespace {

struct Used {
  uint16_t head;
  uint32_t len;
};

// Adds several used elements and publishes them with one index update, so a driver
// reading a frame's num_buffers finds all its chains already there (Queue::add_used
// publishes each element on its own). Uses the split-ring layout of spec 2.7.8.
Result<void> publish_used(GuestMemory& mem, Queue& queue, const std::vector<Used>& used) {
  if (used.empty()) return {};
  const QueueConfig& cfg = queue.config();
  uint16_t next = queue.next_used();
  for (const Used& u : used) {
    uint64_t elem = cfg.used_addr + 4 + 8ULL * (next % cfg.size);
    IGN_TRY(mem.write_obj<uint32_t>(elem, u.head));
    IGN_TRY(mem.write_obj<uint32_t>(elem + 4, u.len));
    ++next;
  }
  std::atomic_thread_fence(std::memory_order_release);
  IGN_TRY(mem.write_obj<uint16_t>(cfg.used_addr + 2, next));
  queue.set_positions(queue.next_avail(), next);
  return {};
}

// Copies `data` into the chain's writable buffers; returns the bytes written.
Result<uint32_t> fill_chain(GuestMemory& mem, const DescriptorChain& chain,
                            std::span<const uint8_t> data) {
  uint32_t written = 0;
  for (size_t i = chain.readable_count; i < chain.buffers.size() && written < data.size(); ++i) {
    const Buffer& buf = chain.buffers[i];
    uint32_t n = static_cast<uint32_t>(std::min<size_t>(buf.len, data.size() - written));
    IGN_TRY(mem.write(buf.gpa, data.subspan(written, n)));
    written += n;
  }
  return written;
}

void set_num_buffers(std::span<uint8_t> frame, uint16_t n) {
  std::memcpy(frame.data() + kNumBuffersOffset, &n, sizeof(n));
}

}  // namespace

Result<RxOutcome> deliver_rx_frame(GuestMemory& mem, Queue& queue, std::span<uint8_t> frame,
                                   bool mergeable) {
  RxOutcome out;
  if (frame.size() < kHdrSize) {
    out.kind = RxOutcome::Kind::kDropped;
    return out;
  }
  std::vector<DescriptorChain> good;
  std::vector<Used> used;
  uint64_t capacity = 0;
  uint16_t popped = 0;
  // A chain that cannot even hold the header is returned empty, after the frame's chains
  // (the used ring need not follow the available ring's order).
  auto bad = [&](uint16_t head) {
    used.push_back({head, 0});
    ++out.bad_chains;
  };

  while (capacity < frame.size()) {
    // Also bounds the work when a driver races to publish tiny chains.
    bool whole_ring = popped == queue.config().size;
    std::optional<DescriptorChain> chain;
    if (!whole_ring) {
      IGN_ASSIGN_OR_RETURN(chain, queue.pop(mem));
    }
    if (!chain) {
      if (!good.empty()) {
        // Give the chains back: the frame goes in once enough of them are there, or,
        // when a whole ring of them cannot hold it, never.
        for (uint16_t i = 0; i < popped; ++i) queue.undo_pop();
        RxOutcome none;  // nothing was used, not even the bad chains
        none.kind = whole_ring ? RxOutcome::Kind::kDropped : RxOutcome::Kind::kNoBuffers;
        return none;
      }
      IGN_TRY(publish_used(mem, queue, used));
      out.kind = RxOutcome::Kind::kNoBuffers;
      return out;
    }
    ++popped;
    uint64_t room = chain->writable_bytes();
    if (room < kHdrSize) {
      bad(chain->head);
      continue;
    }
    if (!mergeable && room < frame.size()) {
      // Chains are meant for whole frames here; keep this one for the next frame.
      queue.undo_pop();
      IGN_TRY(publish_used(mem, queue, used));
      out.kind = RxOutcome::Kind::kDropped;
      return out;
    }
    capacity += room;
    good.push_back(std::move(*chain));
  }

  set_num_buffers(frame, static_cast<uint16_t>(good.size()));
  std::vector<Used> frame_used;
  uint32_t offset = 0;
  for (const DescriptorChain& chain : good) {
    IGN_ASSIGN_OR_RETURN(uint32_t n, fill_chain(mem, chain, frame.subspan(offset)));
    frame_used.push_back({chain.head, n});
    offset += n;
  }
  frame_used.insert(frame_used.end(), used.begin(), used.end());
  IGN_TRY(publish_used(mem, queue, frame_used));
  out.kind = RxOutcome::Kind::kDelivered;
  out.chains = static_cast<uint16_t>(good.size());
  return out;
}

}  // namespace ignition::devices::virtio::net
