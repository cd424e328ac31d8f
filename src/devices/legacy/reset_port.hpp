// The checkpoint/reset port: a guest that cooperates with its host (a fuzzing harness, the
// test guests) writes 1 to take an in-process checkpoint here and 2 to be rolled back to
// it; execution then continues right after the checkpoint's write. A 32-bit read returns
// how many resets the VMM has done, a count that lives outside the guest and so survives
// them. Present only when the VMM is asked for it, never for untrusted guests by default.
#pragma once

#include <atomic>
#include <functional>

#include "devices/bus.hpp"

namespace ignition::devices {

class ResetPort final : public BusDevice {
 public:
  enum class Request : uint32_t { Checkpoint = 1, Reset = 2 };
  // Called on the vCPU thread that wrote the port.
  using Handler = std::function<void(Request)>;
  explicit ResetPort(Handler handler) : handler_(std::move(handler)) {}

  void read(uint64_t, std::span<uint8_t> data) override {
    uint32_t resets = static_cast<uint32_t>(resets_.load(std::memory_order_relaxed));
    for (size_t i = 0; i < data.size(); ++i) data[i] = i < 4 ? (resets >> (8 * i)) & 0xff : 0;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset != 0 || data.empty()) return;
    if (data[0] == static_cast<uint8_t>(Request::Checkpoint)) handler_(Request::Checkpoint);
    if (data[0] == static_cast<uint8_t>(Request::Reset)) handler_(Request::Reset);
  }
  void count_reset() { resets_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t resets() const { return resets_.load(std::memory_order_relaxed); }

 private:
  Handler handler_;
  std::atomic<uint64_t> resets_{0};
};

}  // namespace ignition::devices
