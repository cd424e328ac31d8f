#include "vmm/vcpu_runner.hpp"

#include <signal.h>

#include <mutex>

#include <spdlog/spdlog.h>

namespace ignition::vmm {

int vcpu_kick_signal() {
  static std::once_flag once;
  int sig = SIGRTMIN;
  std::call_once(once, [sig] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};  // only to interrupt KVM_RUN with EINTR
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  });
  return sig;
}

void VcpuRunner::start() {
  vcpu_kick_signal();
  thread_ = std::thread([this] { loop(); });
}

void VcpuRunner::stop() {
  stopping_.store(true);
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(park_mu_);
    park_cv_.notify_all();
  }
  vcpu_.request_exit();
  // Keep kicking: the signal may land just before the thread enters KVM_RUN, where
  // immediate_exit catches it instead; either way the thread sees stopping_.
  ::pthread_kill(thread_.native_handle(), vcpu_kick_signal());
  thread_.join();
}

void VcpuRunner::pause() {
  if (!thread_.joinable()) return;
  pause_requested_.store(true);
  vcpu_.request_exit();
  ::pthread_kill(thread_.native_handle(), vcpu_kick_signal());
  std::unique_lock lock(park_mu_);
  park_cv_.wait(lock, [&] { return parked_ || stopping_.load(); });
}

void VcpuRunner::request_pause() {
  pause_requested_.store(true);
  vcpu_.request_exit();
}

void VcpuRunner::resume() {
  std::lock_guard lock(park_mu_);
  pause_requested_.store(false);
  park_cv_.notify_all();
}

void VcpuRunner::park() {
  // KVM finishes an in/mmio-read exit's instruction on the next KVM_RUN; an entry with
  // immediate_exit set does just that and returns, leaving the state consistent.
  vcpu_.request_exit();
  (void)vcpu_.run();
  std::unique_lock lock(park_mu_);
  parked_ = true;
  park_cv_.notify_all();
  park_cv_.wait(lock, [&] { return !pause_requested_.load() || stopping_.load(); });
  parked_ = false;
}

void VcpuRunner::loop() {
  std::string name = fmt::format("vcpu{}", vcpu_.id());
  ::pthread_setname_np(::pthread_self(), name.c_str());
  while (!stopping_.load()) {
    if (pause_requested_.load()) {
      park();
      continue;
    }
    auto exit = vcpu_.run();
    if (!exit.ok()) {
      on_stop_({VcpuStop::Kind::Fatal, describe(exit.error().message)});
      return;
    }
    exits_.fetch_add(1, std::memory_order_relaxed);
    if (!handle(*exit)) return;
  }
}

bool VcpuRunner::handle(hv::Exit& exit) {
  using namespace hv;
  return std::visit(
      [&](auto& e) -> bool {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, IoOut>) {
          for (size_t at = 0; at + e.size <= e.data.size(); at += e.size)
            pio_.write(e.port, e.data.subspan(at, e.size));
        } else if constexpr (std::is_same_v<T, IoIn>) {
          for (size_t at = 0; at + e.size <= e.data.size(); at += e.size) {
            auto item = e.data.subspan(at, e.size);
            // Nothing there reads as all ones, like an empty ISA bus.
            if (!pio_.read(e.port, item)) std::fill(item.begin(), item.end(), 0xff);
          }
        } else if constexpr (std::is_same_v<T, MmioWrite>) {
          mmio_.write(e.addr, e.data);
        } else if constexpr (std::is_same_v<T, MmioRead>) {
          if (!mmio_.read(e.addr, e.data)) std::fill(e.data.begin(), e.data.end(), 0xff);
        } else if constexpr (std::is_same_v<T, Halted> || std::is_same_v<T, Interrupted>) {
          // The in-kernel irqchip parks halted vCPUs; Interrupted means look at stopping_.
        } else if constexpr (std::is_same_v<T, SystemEvent>) {
          if (e.kind == SystemEvent::Kind::Crash) {
            on_stop_({VcpuStop::Kind::Fatal, describe("guest reported a crash")});
          } else {
            on_stop_({e.kind == SystemEvent::Kind::Reset ? VcpuStop::Kind::Reset
                                                         : VcpuStop::Kind::Shutdown,
                      "system event"});
          }
          return false;
        } else if constexpr (std::is_same_v<T, TripleFault>) {
          on_stop_({VcpuStop::Kind::Fatal, describe("triple fault (KVM_EXIT_SHUTDOWN)")});
          return false;
        } else if constexpr (std::is_same_v<T, Fatal>) {
          on_stop_({VcpuStop::Kind::Fatal, describe(e.what)});
          return false;
        }
        return true;
      },
      exit);
}

// "vCPU 0: <what> at RIP 0x... (64-bit, CPL 0), bytes: 0f 0b ..." — enough to find the
// instruction in a disassembly without a debugger.
std::string VcpuRunner::describe(const std::string& what) {
  std::string out = fmt::format("vCPU {}: {}", vcpu_.id(), what);
  auto regs = vcpu_.get_regs();
  auto sregs = vcpu_.get_sregs();
  if (!regs.ok() || !sregs.ok()) return out;
  const char* mode = sregs->cs.l ? "64-bit" : (sregs->cr0 & 1) ? "protected" : "real";
  out += fmt::format(" at RIP {:#x} ({} mode, CPL {})", regs->rip, mode, sregs->cs.dpl);
  uint64_t linear = sregs->cs.l ? regs->rip : sregs->cs.base + regs->rip;
  uint64_t gpa = linear;
  if (sregs->cr0 & 0x80000000) {
    auto translated = vcpu_.translate(linear);
    if (!translated.ok()) return out;
    gpa = *translated;
  }
  uint8_t bytes[16];
  if (memory_.read(gpa, bytes).ok()) {
    out += ", bytes:";
    for (uint8_t b : bytes) out += fmt::format(" {:02x}", b);
  }
  return out;
}

}  // namespace ignition::vmm
