// The loop every virtio device runs on a kick: pop each available request, let the
// device serve it, return it as used, and interrupt the driver once if it asked to be.
// A protocol error from the driver marks the device as needing reset.
#pragma once

#include <optional>

#include <spdlog/spdlog.h>

#include "devices/virtio/device.hpp"

namespace ignition::devices::virtio {

// `serve(chain)` returns the number of bytes written into the chain's writable buffers,
// nullopt to leave the request (and the rest) in the ring for later, or an error for a
// malformed request the device cannot even answer.
template <typename Serve>
void serve_requests(const ActiveContext& ctx, uint16_t queue_index, const char* device,
                    Serve serve) {
  Queue& queue = ctx.queues[queue_index];
  bool used_any = false;
  auto fail = [&](const Error& e) {
    spdlog::warn("{}: queue {}: {}", device, queue_index, e.message);
    ctx.interrupt.needs_reset();
  };
  while (true) {
    auto popped = queue.pop(ctx.memory);
    if (!popped.ok()) return fail(popped.error());
    if (!*popped) break;
    Result<std::optional<uint32_t>> served = serve(**popped);
    if (!served.ok()) return fail(served.error());
    if (!*served) {
      queue.undo_pop();
      break;
    }
    if (auto used = queue.add_used(ctx.memory, (*popped)->head, **served); !used.ok())
      return fail(used.error());
    used_any = true;
  }
  if (!used_any) return;
  auto notify = queue.needs_interrupt(ctx.memory);
  if (!notify.ok()) return fail(notify.error());
  if (*notify) ctx.interrupt.used_ring();
}

}  // namespace ignition::devices::virtio
