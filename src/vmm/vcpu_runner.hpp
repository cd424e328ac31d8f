// Runs one vCPU on its own thread: enter the guest, route each exit to the device
// buses, and stop, with a clear description, on an exit the VMM cannot handle.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "devices/bus.hpp"
#include "hv/hypervisor.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::vmm {

// Why a vCPU stopped on its own.
struct VcpuStop {
  enum class Kind { Fatal, Reset, Shutdown } kind;
  std::string detail;
};

class VcpuRunner {
 public:
  using OnStop = std::function<void(const VcpuStop&)>;

  VcpuRunner(hv::Vcpu& vcpu, const devices::Bus& pio, const devices::Bus& mmio,
             const GuestMemory& memory, OnStop on_stop)
      : vcpu_(vcpu), pio_(pio), mmio_(mmio), memory_(memory), on_stop_(std::move(on_stop)) {}
  ~VcpuRunner() { stop(); }

  void start();
  // Kicks the vCPU out of the guest and joins its thread. Idempotent.
  void stop();
  // Takes the vCPU out of the guest and parks its thread; returns once it is parked,
  // with any port or MMIO access it was in the middle of completed, so its state can be
  // read or written. A real pause: the thread sleeps, it does not spin.
  void pause();
  void resume();
  // Asks the vCPU to park at its next chance without waiting for it; from the vCPU's
  // own thread this parks it right after the exit being handled.
  void request_pause();

  // Counters, read after stop.
  uint64_t exits() const { return exits_.load(); }

 private:
  void loop();
  void park();
  // Returns false when the vCPU must stop.
  bool handle(hv::Exit& exit);
  std::string describe(const std::string& what);

  hv::Vcpu& vcpu_;
  const devices::Bus& pio_;
  const devices::Bus& mmio_;
  const GuestMemory& memory_;
  OnStop on_stop_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> pause_requested_{false};
  std::mutex park_mu_;
  std::condition_variable park_cv_;
  bool parked_ = false;
  std::atomic<uint64_t> exits_{0};
  std::thread thread_;
};

// The signal used to kick vCPU threads out of KVM_RUN; installs its no-op handler once.
int vcpu_kick_signal();

}  // namespace ignition::vmm
