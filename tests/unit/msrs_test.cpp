// Tests for the boot MSR values and the snapshot MSR filter, on their own and against this
// machine's KVM (KVM_SET_MSRS / KVM_GET_MSRS must accept every entry).
#include "arch/x86_64/msrs.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "arch/x86_64/cpuid.hpp"
#include "base/fd.hpp"

namespace ignition::x86_64 {
namespace {

bool contains(const std::vector<uint32_t>& v, uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST(BootMsrs, FirecrackerDefaults) {
  std::map<uint32_t, uint64_t> got;
  for (const auto& m : boot_msrs()) {
    EXPECT_TRUE(got.emplace(m.index, m.value).second) << "duplicate MSR " << std::hex << m.index;
  }
  const std::map<uint32_t, uint64_t> want = {
      {0x174, 0},
      {0x175, 0},
      {0x176, 0},  // SYSENTER_CS/ESP/EIP
      {0xc0000081, 0},
      {0xc0000082, 0},
      {0xc0000083, 0},  // STAR, LSTAR, CSTAR
      {0xc0000084, 0},
      {0xc0000102, 0},         // SYSCALL_MASK, KERNEL_GS_BASE
      {0x10, 0},               // TSC
      {0x1a0, 1},              // MISC_ENABLE.FAST_STRING
      {0x2ff, (1 << 11) | 6},  // MTRRs on, write-back default
  };
  EXPECT_EQ(got, want);
}

TEST(SnapshotMsrs, KeepsStateDropsTheRest) {
  const std::vector<uint32_t> kvm_list = {
      0x174,      0x175,      0x176, 0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084,
      0xc0000082, 0x6e0,      0x10,  0x277,      0x1d9,      0x4b564d01, 0x4b564d00,
      0x3b,       0x1a0,      0x17a, 0x17b,      0x10a,      0x345,      0x11,
      0x12,       0x186,      0xc1,  0x38d,      0x480,      0x40000000, 0xc0010117,
      0x10,       0xc0010015, 0x48,  0xda0,      0x830,
  };
  const auto out = snapshot_msr_list(kvm_list);
  for (uint32_t keep :
       {0x174u,      0x175u, 0x176u, 0xc0000081u, 0xc0000082u, 0xc0000083u, 0xc0000084u,
        0xc0000102u, 0x10u,  0x6e0u, 0x277u,      0x1d9u,      0x4b564d00u, 0x4b564d01u,
        0x3bu,       0x1a0u, 0x17au, 0xc0010015u, 0x48u,       0xda0u,      0x830u}) {
    EXPECT_TRUE(contains(out, keep)) << std::hex << keep;
  }
  // MCG_CTL, ARCH_CAPABILITIES and PERF_CAPABILITIES (read-only, set by the VMM), the old
  // kvmclock MSRs, PMU counters, VMX capabilities, Hyper-V, SVM host save area.
  for (uint32_t drop : {0x17bu, 0x10au, 0x345u, 0x11u, 0x12u, 0x186u, 0xc1u, 0x38du, 0x480u,
                        0x40000000u, 0xc0010117u}) {
    EXPECT_FALSE(contains(out, drop)) << std::hex << drop;
  }
  EXPECT_EQ(std::set<uint32_t>(out.begin(), out.end()).size(), out.size()) << "duplicates";
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), 0x6e0u) << "TSC_DEADLINE is restored after the TSC";
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end() - 1));
  for (uint32_t index : out) EXPECT_TRUE(msr_should_snapshot(index)) << std::hex << index;
}

TEST(SnapshotMsrs, CpuidAddsMtrrAndMceMsrs) {
  const std::vector<uint32_t> kvm_list = {0x10, 0x277};
  hv::CpuidEntry leaf1{.function = 1,
                       .index = 0,
                       .flags = 0,
                       .eax = 0,
                       .ebx = 0,
                       .ecx = 0,
                       .edx = (1u << 12) | (1u << 7)};
  const std::vector<hv::CpuidEntry> both = {leaf1};
  const auto out = snapshot_msr_list(kvm_list, both);
  for (uint32_t i = 0x200; i < 0x210; ++i) EXPECT_TRUE(contains(out, i)) << std::hex << i;
  for (uint32_t fixed : {0x250u, 0x258u, 0x259u, 0x268u, 0x26fu, 0x2ffu}) {
    EXPECT_TRUE(contains(out, fixed)) << std::hex << fixed;
  }
  for (uint32_t i = 0x400; i < 0x480; ++i) EXPECT_TRUE(contains(out, i)) << std::hex << i;
  EXPECT_EQ(std::count(out.begin(), out.end(), 0x277u), 1) << "PAT listed by KVM and by CPUID";

  leaf1.edx = 0;
  const std::vector<hv::CpuidEntry> neither = {leaf1};
  const auto plain = snapshot_msr_list(kvm_list, neither);
  EXPECT_EQ(plain, (std::vector<uint32_t>{0x10, 0x277}));
  EXPECT_EQ(plain, snapshot_msr_list(kvm_list));
}

// ---- the real KVM ----

// <linux/kvm.h> declares the flexible arrays of kvm_msr_list, kvm_msrs and kvm_cpuid2 with
// __DECLARE_FLEX_ARRAY, which in C++ adds a 1-byte member: sizeof and the entries' offsets
// differ from C, so the header's ioctl numbers are wrong (KVM answers EINVAL). These are the C
// layouts: an 8-byte header (4 for the MSR index list), then the entries.
struct Header8 {
  uint32_t count;
  uint32_t pad;
};
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, uint32_t);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Header8);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, Header8);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, Header8);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Header8);

template <typename Entry>
struct FlexBuffer {
  explicit FlexBuffer(size_t n) : bytes(sizeof(Header8) + n * sizeof(Entry)) {
    header()->count = static_cast<uint32_t>(n);
  }
  Header8* header() { return reinterpret_cast<Header8*>(bytes.data()); }
  Entry* entries() { return reinterpret_cast<Entry*>(bytes.data() + sizeof(Header8)); }
  std::vector<uint8_t> bytes;
};

Result<std::vector<uint32_t>> kvm_msr_index_list(int kvm) {
  uint32_t probe = 0;
  if (::ioctl(kvm, kGetMsrIndexList, &probe) == 0 || errno != E2BIG) {
    return err("KVM_GET_MSR_INDEX_LIST probe: {}", errno_string());
  }
  std::vector<uint32_t> list(1 + probe);
  list[0] = probe;
  if (::ioctl(kvm, kGetMsrIndexList, list.data()) < 0) {
    return err("KVM_GET_MSR_INDEX_LIST: {}", errno_string());
  }
  return std::vector<uint32_t>(list.begin() + 1, list.begin() + 1 + list[0]);
}

Result<std::vector<hv::CpuidEntry>> kvm_supported_cpuid(int kvm) {
  FlexBuffer<kvm_cpuid_entry2> buf(256);
  if (::ioctl(kvm, kGetSupportedCpuid, buf.bytes.data()) < 0) {
    return err("KVM_GET_SUPPORTED_CPUID: {}", errno_string());
  }
  std::vector<hv::CpuidEntry> out;
  for (uint32_t i = 0; i < buf.header()->count; ++i) {
    const auto& e = buf.entries()[i];
    out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
  }
  return out;
}

Result<void> kvm_set_cpuid(int vcpu, const std::vector<hv::CpuidEntry>& cpuid) {
  FlexBuffer<kvm_cpuid_entry2> buf(cpuid.size());
  for (size_t i = 0; i < cpuid.size(); ++i) {
    const auto& e = cpuid[i];
    auto& k = buf.entries()[i];
    k.function = e.function;
    k.index = e.index;
    k.flags = e.flags;
    k.eax = e.eax;
    k.ebx = e.ebx;
    k.ecx = e.ecx;
    k.edx = e.edx;
  }
  if (::ioctl(vcpu, kSetCpuid2, buf.bytes.data()) < 0) {
    return err("KVM_SET_CPUID2: {}", errno_string());
  }
  return {};
}

TEST(MsrsOnKvm, BootValuesAndSnapshotListAreAccepted) {
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm.valid()) GTEST_SKIP() << "no /dev/kvm";

  // The hypervisor's MSR list and CPUID, as the VMM will get them.
  auto kvm_list = kvm_msr_index_list(kvm.get());
  ASSERT_TRUE(kvm_list.ok()) << kvm_list.error().message;
  auto supported = kvm_supported_cpuid(kvm.get());
  ASSERT_TRUE(supported.ok()) << supported.error().message;
  auto guest_cpuid = build_cpuid(*supported, CpuTopology{0, 1}, CpuidMask{});
  ASSERT_TRUE(guest_cpuid.ok()) << guest_cpuid.error().message;

  UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
  ASSERT_TRUE(vm.valid()) << errno_string();
  UniqueFd vcpu(::ioctl(vm.get(), KVM_CREATE_VCPU, 0));
  ASSERT_TRUE(vcpu.valid()) << errno_string();
  auto set_cpuid = kvm_set_cpuid(vcpu.get(), *guest_cpuid);
  ASSERT_TRUE(set_cpuid.ok()) << set_cpuid.error().message;

  // KVM_SET_MSRS returns how many it wrote, stopping at the first it refuses.
  const auto boot = boot_msrs();
  FlexBuffer<kvm_msr_entry> set(boot.size());
  for (size_t i = 0; i < boot.size(); ++i) {
    set.entries()[i].index = boot[i].index;
    set.entries()[i].data = boot[i].value;
  }
  const int written = ::ioctl(vcpu.get(), kSetMsrs, set.bytes.data());
  ASSERT_EQ(written, static_cast<int>(boot.size()))
      << errno_string() << "; KVM refused MSR " << std::hex
      << (written >= 0 && written < static_cast<int>(boot.size()) ? boot[written].index : 0);

  // Every MSR a snapshot saves must be readable, in chunks as KVM caps one call at 255.
  const auto to_save = snapshot_msr_list(*kvm_list, *guest_cpuid);
  ASSERT_GT(to_save.size(), boot.size());
  for (uint32_t index : {0x174u, 0xc0000082u, 0x10u, 0x1a0u, 0x2ffu}) {
    EXPECT_TRUE(contains(to_save, index)) << std::hex << index;
  }
  std::map<uint32_t, uint64_t> values;
  for (size_t start = 0; start < to_save.size(); start += 200) {
    const size_t n = std::min<size_t>(200, to_save.size() - start);
    FlexBuffer<kvm_msr_entry> get(n);
    for (size_t i = 0; i < n; ++i) get.entries()[i].index = to_save[start + i];
    const int read = ::ioctl(vcpu.get(), kGetMsrs, get.bytes.data());
    ASSERT_EQ(read, static_cast<int>(n))
        << errno_string() << "; KVM cannot read MSR " << std::hex
        << (read >= 0 && static_cast<size_t>(read) < n ? to_save[start + read] : 0);
    for (size_t i = 0; i < n; ++i) values[get.entries()[i].index] = get.entries()[i].data;
  }
  EXPECT_EQ(values[0x2ff], (1u << 11) | 6u) << "MTRR default type read back";
  EXPECT_TRUE(values[0x1a0] & 1) << "fast strings read back";
  EXPECT_EQ(values[0xc0000082], 0u);
}

}  // namespace
}  // namespace ignition::x86_64
