// A reset allocates nothing: the fuzzer calls it millions of times, so its cost must be the
// pages and the state, never the heap. This binary replaces operator new to count the
// allocations made on the event-loop thread while reset_to_checkpoint() runs, for a guest
// whose virtio-rng and virtio-blk devices are live (so the transport roll backs have queue
// state to reload).
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <new>
#include <thread>
#include <vector>

#include "ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/pattern_disk.hpp"
#include "vmm/machine.hpp"

namespace {
thread_local bool counting = false;
std::atomic<uint64_t> allocations{0};
}  // namespace

// The replacements pair malloc with free; GCC, seeing both inlined, takes them for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (counting) allocations++;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  return ::operator new(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (counting) allocations++;
  void* p = nullptr;
  if (::posix_memalign(&p, std::max(sizeof(void*), static_cast<std::size_t>(align)),
                       size ? size : 1) == 0)
    return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}
// The nothrow forms too (std::stable_partition's temporary buffer uses them): every form
// must be ours, or ASan sees its operator new paired with our free.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  if (counting) allocations++;
  return std::malloc(size ? size : 1);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, tag);
}
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  if (counting) allocations++;
  void* p = nullptr;
  return ::posix_memalign(&p, std::max(sizeof(void*), static_cast<std::size_t>(align)),
                          size ? size : 1) == 0
             ? p
             : nullptr;
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, align, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

#pragma GCC diagnostic pop

namespace ignition::vmm {
namespace {

// Runs `task` on the machine's event loop, paused, and waits for it.
template <typename F>
auto paused(Machine& m, F task) {
  std::promise<decltype(task())> done;
  m.post([&] {
    m.pause();
    done.set_value(task());
    m.resume();
  });
  return done.get_future().get();
}

TEST(ResetNoAlloc, AResetMakesNoHeapAllocation) {
  config::VmConfig config;
  config.machine_config.vcpu_count = 2;
  config.machine_config.mem_size_mib = 128;
  config.boot_source.kernel_image_path = test::guest_image("ignition-test.elf");
  // The device tests run, then the guest spins in ring 3 until stopped.
  config.boot_source.boot_args = "ign.tests=boot,virtio-rng,virtio-blk ign.exit=hang";
  config.entropy = config::Entropy{};
  std::string disk = ::testing::TempDir() + "ign-reset-alloc-" + std::to_string(::getpid());
  test::write_pattern_disk(disk);
  config.drives.push_back(config::Drive{.drive_id = "data", .path_on_host = disk});
  int out[2];
  ASSERT_EQ(::pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
  ::fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
  MachineIo io;
  io.console_out = out[1];
  auto machine = Machine::create(config, io);
  ASSERT_TRUE(machine.ok()) << machine.error().message;
  Machine& m = **machine;
  auto outcome = std::async(std::launch::async, [&] { return m.run(); });

  // Checkpoint once the guest has used the device.
  std::string console;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!test::parse_guest_report(console).ended && std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n > 0)
      console.append(buf, static_cast<size_t>(n));
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto report = test::parse_guest_report(console);
  ASSERT_TRUE(report.ended) << console;
  ASSERT_TRUE(report.passed(IGN_TEST_VIRTIO_RNG)) << console;
  ASSERT_TRUE(report.passed(IGN_TEST_VIRTIO_BLK)) << console;
  auto taken = paused(m, [&] { return m.checkpoint(); });
  ASSERT_TRUE(taken.ok()) << taken.error().message;

  // Each round the host writes a page into the paused guest, as a fuzzing harness writes
  // its input; the reset puts the page back as it was at the checkpoint.
  uint64_t counted = 0;
  std::vector<uint8_t> before(4096), scribble(4096, 0xa5), after(4096);
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    uint64_t gpa = (64ull << 20) + static_cast<uint64_t>(i) * 4096;
    auto stats = paused(m, [&] {
      EXPECT_TRUE(m.memory().read(gpa, before).ok());
      EXPECT_TRUE(m.memory().write(gpa, scribble).ok());
      counting = i >= 2;  // the first resets may size buffers that later ones reuse
      auto r = m.reset_to_checkpoint();
      counting = false;
      EXPECT_TRUE(m.memory().read(gpa, after).ok());
      return r;
    });
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    EXPECT_GE(stats->pages, 1u);
    EXPECT_EQ(after, before) << "round " << i;
  }
  counted = allocations.load();
  m.stop();
  auto result = outcome.get();
  ASSERT_TRUE(result.ok()) << result.error().message;
  ::close(out[0]);
  ::close(out[1]);
  std::remove(disk.c_str());
  EXPECT_EQ(counted, 0u) << "heap allocations in 18 resets";
}

}  // namespace
}  // namespace ignition::vmm
