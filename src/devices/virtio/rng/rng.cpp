#include "devices/virtio/rng/rng.hpp"

#include <sys/epoll.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "devices/virtio/request_loop.hpp"
#include "devices/virtio/rng/persist.hpp"

namespace ignition::devices::virtio {

Result<std::unique_ptr<Rng>> Rng::create(const config::Entropy& entropy, Clock clock) {
  if (!entropy.rate_limiter) return std::make_unique<Rng>();
  auto limiter = RateLimiter::create(*entropy.rate_limiter, std::move(clock));
  if (!limiter.ok()) return context(limiter.error(), "entropy device");
  if (limiter->unlimited()) return std::make_unique<Rng>();
  return std::unique_ptr<Rng>(new Rng(std::move(limiter).value()));
}

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

Result<void> Rng::register_events(EventRegistrar& registrar) {
  if (!limiter_) return {};
  return registrar.add(limiter_->timer_fd(), EPOLLIN,
                       [this](uint32_t) { on_rate_limiter_timer(); });
}

void Rng::on_rate_limiter_timer() {
  if (!limiter_) return;
  limiter_->on_timer();
  process_queue(0);
}

bool Rng::admit(uint32_t bytes) {
  if (!limiter_) return true;
  if (!limiter_->consume(1, TokenType::kOps)) {
    throttled_++;
    return false;
  }
  if (bytes != 0 && !limiter_->consume(bytes, TokenType::kBytes)) {
    limiter_->manual_replenish(1, TokenType::kOps);
    throttled_++;
    return false;
  }
  return true;
}

void Rng::process_queue(uint16_t index) {
  if (!ctx_ || index != 0) return;
  if (limiter_ && limiter_->is_blocked()) return;  // the limiter's timer resumes the queue
  serve_requests(*ctx_, index, "virtio-rng",
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   // What the request will be served, charged before anything is written so
                   // a request that must wait stays untouched in the ring.
                   uint64_t wanted = 0;
                   for (size_t i = chain.readable_count; i < chain.buffers.size(); ++i)
                     wanted += chain.buffers[i].len;
                   uint32_t charge =
                       static_cast<uint32_t>(std::min<uint64_t>(wanted, kMaxRequestBytes));
                   if (!admit(charge)) return std::optional<uint32_t>();
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
                   if (limiter_ && written < charge)
                     limiter_->manual_replenish(charge - written, TokenType::kBytes);
                   bytes_served_ += written;
                   return std::optional<uint32_t>(written);
                 });
}

}  // namespace ignition::devices::virtio
