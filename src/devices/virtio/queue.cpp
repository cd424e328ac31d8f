#include "devices/virtio/queue.hpp"

#include <atomic>

namespace ignition::devices::virtio {

namespace {

constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;

struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

// Ring layouts (spec 2.7.6 and 2.7.8): offsets within the driver and device areas.
constexpr uint64_t kRingIdxOffset = 2;
constexpr uint64_t kRingEntriesOffset = 4;
constexpr uint64_t kUsedElemSize = 8;

uint64_t avail_size(uint16_t n) {
  return kRingEntriesOffset + 2ULL * n + 2;
}
uint64_t used_size(uint16_t n) {
  return kRingEntriesOffset + kUsedElemSize * n + 2;
}

}  // namespace

uint64_t DescriptorChain::readable_bytes() const {
  uint64_t n = 0;
  for (size_t i = 0; i < readable_count; ++i) n += buffers[i].len;
  return n;
}

uint64_t DescriptorChain::writable_bytes() const {
  uint64_t n = 0;
  for (size_t i = readable_count; i < buffers.size(); ++i) n += buffers[i].len;
  return n;
}

Result<void> Queue::validate(const GuestMemory& mem) const {
  uint16_t n = config_.size;
  if (n == 0 || n > max_size_ || (n & (n - 1)) != 0)
    return err("queue size {} is not a power of two up to {}", n, max_size_);
  if (config_.desc_addr % 16 || config_.avail_addr % 2 || config_.used_addr % 4)
    return err("queue rings are misaligned");
  if (!mem.contains(config_.desc_addr, 16ULL * n))
    return err("descriptor table {:#x} is outside guest RAM", config_.desc_addr);
  if (!mem.contains(config_.avail_addr, avail_size(n)))
    return err("available ring {:#x} is outside guest RAM", config_.avail_addr);
  if (!mem.contains(config_.used_addr, used_size(n)))
    return err("used ring {:#x} is outside guest RAM", config_.used_addr);
  return {};
}

void Queue::activate(bool event_idx) {
  event_idx_ = event_idx;
  next_avail_ = next_used_ = signalled_used_ = 0;
  signalled_valid_ = false;
}

QueueState Queue::save_state() const {
  return {max_size_,  config_,         next_avail_,     next_used_,
          event_idx_, signalled_used_, signalled_valid_};
}

Result<void> Queue::restore_state(const QueueState& state, const GuestMemory& mem, bool in_use) {
  if (state.max_size != max_size_)
    return err("queue of at most {} entries saved, this one takes {}", state.max_size, max_size_);
  if (in_use) {
    Queue check(max_size_);
    check.config_ = state.config;
    IGN_TRY(check.validate(mem));
    // The device cannot have more requests popped and not yet returned than the ring holds.
    uint16_t in_flight = static_cast<uint16_t>(state.next_avail - state.next_used);
    if (in_flight > state.config.size)
      return err("{} requests in flight in a queue of {}", in_flight, state.config.size);
  }
  config_ = state.config;
  next_avail_ = state.next_avail;
  next_used_ = state.next_used;
  event_idx_ = state.event_idx;
  signalled_used_ = state.signalled_used;
  signalled_valid_ = state.signalled_valid;
  return {};
}

Result<uint16_t> Queue::avail_idx(const GuestMemory& mem) const {
  return mem.read_obj<uint16_t>(config_.avail_addr + kRingIdxOffset);
}

void Queue::reset() {
  config_ = QueueConfig{};
  activate(false);
}

Result<std::optional<DescriptorChain>> Queue::pop(GuestMemory& mem) {
  IGN_ASSIGN_OR_RETURN(uint16_t avail_idx,
                       mem.read_obj<uint16_t>(config_.avail_addr + kRingIdxOffset));
  // Read the ring entries only after the index that publishes them.
  std::atomic_thread_fence(std::memory_order_acquire);
  uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return std::optional<DescriptorChain>{};
  if (pending > config_.size)
    return err("driver claims {} available entries in a queue of {}", pending, config_.size);
  uint64_t slot = config_.avail_addr + kRingEntriesOffset + 2ULL * (next_avail_ % config_.size);
  IGN_ASSIGN_OR_RETURN(uint16_t head, mem.read_obj<uint16_t>(slot));
  DescriptorChain chain;
  IGN_TRY(read_chain(mem, head, chain));
  ++next_avail_;
  if (event_idx_) {
    // Ask to be kicked again as soon as the driver adds anything past what we took.
    uint64_t avail_event = config_.used_addr + kRingEntriesOffset + kUsedElemSize * config_.size;
    IGN_TRY(mem.write_obj<uint16_t>(avail_event, next_avail_));
  }
  return std::optional<DescriptorChain>(std::move(chain));
}

Result<void> Queue::read_chain(const GuestMemory& mem, uint16_t head,
                               DescriptorChain& chain) const {
  if (head >= config_.size)
    return err("descriptor index {} beyond queue size {}", head, config_.size);
  chain.head = head;
  uint64_t table = config_.desc_addr;
  uint32_t table_size = config_.size;
  uint16_t index = head;
  bool indirect = false;
  // A chain visits each descriptor at most once; more steps than that means a loop.
  uint32_t budget = table_size;
  uint64_t total = 0;
  while (true) {
    if (budget-- == 0) return err("descriptor chain from {} loops or is too long", head);
    IGN_ASSIGN_OR_RETURN(auto desc, mem.read_obj<Descriptor>(table + 16ULL * index));
    if (desc.flags & kDescIndirect) {
      if (indirect) return err("nested indirect descriptor table");
      if (desc.len == 0 || desc.len % 16 || desc.len / 16 > 0xffff)
        return err("indirect descriptor table of {} bytes", desc.len);
      if (!mem.contains(desc.addr, desc.len))
        return err("indirect table {:#x}+{:#x} is outside guest RAM", desc.addr, desc.len);
      if (desc.flags & kDescNext) return err("indirect descriptor with NEXT set");
      indirect = true;
      table = desc.addr;
      table_size = desc.len / 16;
      budget = table_size;
      index = 0;
      continue;
    }
    if (!mem.contains(desc.addr, desc.len))
      return err("buffer {:#x}+{:#x} is outside guest RAM", desc.addr, desc.len);
    total += desc.len;
    if (total > (1ULL << 32)) return err("descriptor chain longer than 4 GiB");
    bool writable = desc.flags & kDescWrite;
    if (!writable && chain.buffers.size() != chain.readable_count)
      return err("device-readable buffer after a writable one");
    chain.buffers.push_back({desc.addr, desc.len, writable});
    if (!writable) ++chain.readable_count;
    if (!(desc.flags & kDescNext)) return {};
    index = desc.next;
    if (index >= table_size)
      return err("next descriptor {} beyond table size {}", index, table_size);
  }
}

Result<void> Queue::add_used(GuestMemory& mem, uint16_t head, uint32_t len) {
  uint64_t elem =
      config_.used_addr + kRingEntriesOffset + kUsedElemSize * (next_used_ % config_.size);
  IGN_TRY(mem.write_obj<uint32_t>(elem, head));
  IGN_TRY(mem.write_obj<uint32_t>(elem + 4, len));
  ++next_used_;
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  return mem.write_obj<uint16_t>(config_.used_addr + kRingIdxOffset, next_used_);
}

Result<bool> Queue::needs_interrupt(const GuestMemory& mem) {
  // Order our used-idx store before reading the driver's suppression hints.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    IGN_ASSIGN_OR_RETURN(uint16_t flags, mem.read_obj<uint16_t>(config_.avail_addr));
    return !(flags & kAvailNoInterrupt);
  }
  uint16_t old_used = signalled_used_;
  bool valid = signalled_valid_;
  signalled_used_ = next_used_;
  signalled_valid_ = true;
  if (!valid) return true;
  uint64_t used_event_addr = config_.avail_addr + kRingEntriesOffset + 2ULL * config_.size;
  IGN_ASSIGN_OR_RETURN(uint16_t used_event, mem.read_obj<uint16_t>(used_event_addr));
  // vring_need_event: did the new used entries cross the index the driver asked about?
  return static_cast<uint16_t>(next_used_ - used_event - 1) <
         static_cast<uint16_t>(next_used_ - old_used);
}

}  // namespace ignition::devices::virtio
