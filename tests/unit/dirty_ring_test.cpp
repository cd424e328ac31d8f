// Dirty page logging through the hypervisor seam, on the real /dev/kvm, with the dirty ring
// and with the bitmap: collect_dirty() reports exactly the pages a guest wrote, re-arms them,
// and loses none when the guest writes more pages than a vCPU's ring holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "arch/x86_64/boot_cpu.hpp"
#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/msrs.hpp"
#include "hv/hypervisor.hpp"
#include "memory/guest_memory.hpp"

namespace ignition {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMemSize = 96ull << 20;
constexpr uint64_t kEntry = 0x100000;
constexpr uint64_t kData = 0x400000;  // pages the guests write start here
constexpr uint64_t kDataEnd = kMemSize;
constexpr uint16_t kDonePort = 0x10;

// Writes RCX pages, RSI bytes apart, from RDI on, spinning RBX (>= 1) times after each;
// then reports on port 0x10.
const std::vector<uint8_t> kWriterGuest = {
    0x48, 0x89, 0x3f,  // loop: mov [rdi], rdi
    0x48, 0x89, 0xda,  // mov rdx, rbx
    0x48, 0xff, 0xca,  // spin: dec rdx
    0x75, 0xfb,        // jnz spin
    0x48, 0x01, 0xf7,  // add rdi, rsi
    0x48, 0xff, 0xc9,  // dec rcx
    0x75, 0xed,        // jnz loop
    0xe6, 0x10,        // out 0x10, al
    0xeb, 0xfe,        // jmp $
};

struct Vm {
  GuestMemory mem;
  std::unique_ptr<hv::Vm> vm;
  std::vector<std::unique_ptr<hv::Vcpu>> vcpus;
};

// A VM logging dirty pages in its one slot, with `vcpus` vCPUs in 64-bit mode at kEntry.
Vm make_vm(hv::Hypervisor& hyp, uint32_t vcpus) {
  auto mem = GuestMemory::create_anonymous({{0, kMemSize}});
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  Vm v{std::move(mem).value(), nullptr, {}};
  EXPECT_TRUE(v.mem.write(kEntry, kWriterGuest).ok());
  auto vm = hyp.create_vm();
  EXPECT_TRUE(vm.ok()) << vm.error().message;
  if (!vm.ok()) return v;
  v.vm = std::move(*vm);
  EXPECT_TRUE(v.vm->map_memory(0, 0, kMemSize, v.mem.regions()[0].host, true).ok());
  EXPECT_TRUE(v.vm->create_irqchip().ok());
  auto supported = hyp.supported_cpuid();
  EXPECT_TRUE(supported.ok());
  auto boot = x86_64::setup_boot_cpu(v.mem, x86_64::BootProtocol::Linux64, kEntry);
  EXPECT_TRUE(boot.ok()) << boot.error().message;
  for (uint32_t id = 0; id < vcpus; ++id) {
    auto vcpu = v.vm->create_vcpu(id);
    EXPECT_TRUE(vcpu.ok()) << vcpu.error().message;
    if (!vcpu.ok()) return v;
    auto cpuid = x86_64::build_cpuid(*supported, {id, vcpus}, x86_64::CpuidMask{});
    EXPECT_TRUE(cpuid.ok());
    auto& c = *vcpu;
    EXPECT_TRUE(c->set_cpuid(*cpuid).ok());
    auto sregs = c->get_sregs();
    EXPECT_TRUE(sregs.ok());
    x86_64::apply_boot_sregs(*sregs, x86_64::BootProtocol::Linux64);
    EXPECT_TRUE(c->set_sregs(*sregs).ok());
    EXPECT_TRUE(c->set_fpu(x86_64::boot_fpu()).ok());
    EXPECT_TRUE(c->set_msrs(x86_64::boot_msrs()).ok());
    // APs wait for INIT/SIPI; these run straight away.
    EXPECT_TRUE(c->set_mp_state(hv::MpState::Runnable).ok());
    v.vcpus.push_back(std::move(c));
  }
  return v;
}

// This host's KVM (kvm-pvm) emulates guest ring-0 code in batches and only checks for a
// full dirty ring between batches: a dense run of ring-0 writes overflows any ring (kernel
// WARN in kvm_dirty_ring_push, pages lost), which is why the ring is not the default here.
// The overflow tests spin between writes so that KVM notices the full ring in time, and
// test what ignition must do: drain on KVM_EXIT_DIRTY_RING_FULL without losing a page.
constexpr uint64_t kSpin = 32;

// Runs the writer on `vcpu`: `count` pages, `stride` pages apart, from guest page `first`.
// Returns the guest pages it should have dirtied.
std::set<uint64_t> write_pages(hv::Vcpu& vcpu, uint64_t first, uint64_t count, uint64_t stride,
                               uint64_t spin = 1) {
  hv::Regs regs{};
  regs.rip = kEntry;
  regs.rflags = 2;
  regs.rdi = first * kPage;
  regs.rcx = count;
  regs.rsi = stride * kPage;
  regs.rbx = spin;
  EXPECT_TRUE(vcpu.set_regs(regs).ok());
  for (int i = 0; i < 16; ++i) {
    auto exit = vcpu.run();
    if (!exit.ok()) {
      ADD_FAILURE() << exit.error().message;
      break;
    }
    if (std::holds_alternative<hv::Interrupted>(*exit)) continue;
    if (auto* io = std::get_if<hv::IoOut>(&*exit); io && io->port == kDonePort) break;
    if (auto* fatal = std::get_if<hv::Fatal>(&*exit)) {
      ADD_FAILURE() << "guest failed: " << fatal->what;
    } else {
      ADD_FAILURE() << "unexpected exit " << exit->index();
    }
    break;
  }
  std::set<uint64_t> pages;
  for (uint64_t i = 0; i < count; ++i) pages.insert(first + i * stride);
  return pages;
}

struct Collected {
  std::set<uint64_t> data;  // pages in [kData, kDataEnd)
  uint64_t other = 0;       // pages elsewhere (page tables get accessed/dirty bits)
};

Collected collect(hv::Vm& vm) {
  Collected c;
  auto result = vm.collect_dirty([&](const hv::DirtyPages& p) {
    EXPECT_EQ(p.slot, 0u);
    EXPECT_EQ(p.first_page % 64, 0u);
    EXPECT_NE(p.mask, 0u);
    for (uint64_t i = 0; i < 64; ++i) {
      if (!(p.mask >> i & 1)) continue;
      uint64_t page = p.first_page + i;
      EXPECT_LT(page, kMemSize / kPage);
      if (page >= kData / kPage && page < kDataEnd / kPage) {
        EXPECT_TRUE(c.data.insert(page).second) << "page " << page << " reported twice";
      } else {
        ++c.other;
      }
    }
  });
  EXPECT_TRUE(result.ok()) << result.error().message;
  return c;
}

// The parameter is HypervisorOptions::dirty_ring_entries: 0 for the bitmap.
class DirtyRingTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    auto hyp = hv::open_hypervisor({.dirty_ring_entries = GetParam()});
    if (!hyp.ok()) GTEST_SKIP() << "no usable KVM here: " << hyp.error().message;
    hyp_ = std::move(*hyp);
  }
  // Skips when a ring was asked for and the host has none.
  bool expect_mode(hv::Vm& vm) {
    if (GetParam() == 0) {
      EXPECT_EQ(vm.dirty_log_mode(), hv::DirtyLogMode::Bitmap);
      return true;
    }
    return vm.dirty_log_mode() == hv::DirtyLogMode::Ring;
  }
  std::unique_ptr<hv::Hypervisor> hyp_;
};

TEST_P(DirtyRingTest, ReportsExactlyThePagesWrittenAndReArms) {
  Vm v = make_vm(*hyp_, 1);
  ASSERT_TRUE(v.vm && v.vcpus.size() == 1);
  if (!expect_mode(*v.vm)) GTEST_SKIP() << "this host has no dirty ring";
  collect(*v.vm);  // whatever setup touched

  auto first = write_pages(*v.vcpus[0], kData / kPage + 5, 300, 1);
  Collected c1 = collect(*v.vm);
  EXPECT_EQ(c1.data, first);
  EXPECT_LT(c1.other, 16u);

  // Nothing written: nothing reported.
  EXPECT_TRUE(collect(*v.vm).data.empty());

  // Pages written again after a collect are reported again; the others are not.
  auto second = write_pages(*v.vcpus[0], kData / kPage + 100, 200, 3);
  EXPECT_EQ(collect(*v.vm).data, second);
}

TEST_P(DirtyRingTest, NoPageLostWhenTheGuestOverflowsItsRing) {
  Vm v = make_vm(*hyp_, 1);
  ASSERT_TRUE(v.vm && v.vcpus.size() == 1);
  if (!expect_mode(*v.vm)) GTEST_SKIP() << "this host has no dirty ring";
  collect(*v.vm);
  // Several times the ring: the vCPU must drain it (KVM_EXIT_DIRTY_RING_FULL) to go on.
  uint64_t count = 3 * std::max(GetParam(), 1024u) + 123;
  auto written = write_pages(*v.vcpus[0], kData / kPage, count, 1, kSpin);
  Collected c = collect(*v.vm);
  EXPECT_EQ(c.data.size(), count);
  EXPECT_EQ(c.data, written);
}

TEST_P(DirtyRingTest, TwoVcpusOverflowingTheirRingsAtOnce) {
  Vm v = make_vm(*hyp_, 2);
  ASSERT_TRUE(v.vm && v.vcpus.size() == 2);
  if (!expect_mode(*v.vm)) GTEST_SKIP() << "this host has no dirty ring";
  collect(*v.vm);
  // Interleaved pages, so both vCPUs' rings fill and drain concurrently.
  uint64_t count = 2 * std::max(GetParam(), 1024u) + 77;
  std::set<uint64_t> a, b;
  std::thread t([&] { a = write_pages(*v.vcpus[1], kData / kPage + 1, count, 2, kSpin); });
  b = write_pages(*v.vcpus[0], kData / kPage, count, 2, kSpin);
  t.join();
  std::set<uint64_t> all = a;
  all.insert(b.begin(), b.end());
  EXPECT_EQ(collect(*v.vm).data, all);
}

INSTANTIATE_TEST_SUITE_P(Log, DirtyRingTest, ::testing::Values(4096u, 1024u, 0u),
                         [](const auto& info) {
                           return info.param ? "Ring" + std::to_string(info.param)
                                             : std::string("Bitmap");
                         });

}  // namespace
}  // namespace ignition
