#include "devices/virtio/rng/rng.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "devices/virtio/request_loop.hpp"
#include "devices/virtio/rng/persist.hpp"

namespace ignition::devices::virtio {

void Rng::read_config(uint64_t, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());  // virtio-rng has no config space
}

Result<void> Rng::activate(const ActiveContext& ctx) {
  ctx_.emplace(ctx);
  return {};
}

std::vector<uint8_t> Rng::save_state() const {
  return rng::encode_state({bytes_served_});
}

Result<void> Rng::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(rng::RngState saved, rng::decode_state(state));
  bytes_served_ = saved.bytes_served;
  return {};
}

void Rng::process_queue(uint16_t index) {
  if (!ctx_) return;
  serve_requests(*ctx_, index, "virtio-rng",
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   uint32_t written = 0;
                   for (size_t i = chain.readable_count; i < chain.buffers.size(); ++i) {
                     const Buffer& buf = chain.buffers[i];
                     uint32_t n = std::min(buf.len, kMaxRequestBytes - written);
                     if (n == 0) break;
                     IGN_ASSIGN_OR_RETURN(auto dest, ctx_->memory.slice(buf.gpa, n));
                     ssize_t got = ::getrandom(dest.data(), n, 0);
                     if (got <= 0) break;
                     written += static_cast<uint32_t>(got);
                   }
                   bytes_served_ += written;
                   return std::optional<uint32_t>(written);
                 });
}

}  // namespace ignition::devices::virtio
