// Tests for the guest CPUID template: a synthetic AMD host and an Intel one, the override syntax,
// and the real KVM on this machine (its supported list, KVM_SET_CPUID2, and a guest reading CPUID).
#include "arch/x86_64/cpuid.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <bit>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/fd.hpp"

namespace ignition::x86_64 {
namespace {

using hv::CpuidEntry;
using R = CpuidRegister;
constexpr uint32_t kIndexed = hv::kCpuidFlagSignificantIndex;

// ---- building synthetic hosts ----

CpuidEntry leaf(uint32_t function, uint32_t index, uint32_t flags, uint32_t eax, uint32_t ebx,
                uint32_t ecx, uint32_t edx) {
  return CpuidEntry{.function = function,
                    .index = index,
                    .flags = flags,
                    .eax = eax,
                    .ebx = ebx,
                    .ecx = ecx,
                    .edx = edx};
}

constexpr uint32_t bits(std::initializer_list<unsigned> list) {
  uint32_t v = 0;
  for (unsigned b : list) v |= 1u << b;
  return v;
}

void put_brand(std::vector<CpuidEntry>& t, std::string_view brand) {
  char text[48] = {};
  std::memcpy(text, brand.data(), std::min<size_t>(brand.size(), 47));
  for (uint32_t i = 0; i < 3; ++i) {
    CpuidEntry e = leaf(0x80000002 + i, 0, 0, 0, 0, 0, 0);
    std::memcpy(&e.eax, text + i * 16, 16);
    t.push_back(e);
  }
}

std::string get_brand(const std::vector<CpuidEntry>& t) {
  char text[49] = {};
  for (uint32_t i = 0; i < 3; ++i) {
    const CpuidEntry* e = find_cpuid_entry(t, 0x80000002 + i, 0);
    if (!e) return "<missing>";
    std::memcpy(text + i * 16, &e->eax, 16);
  }
  return text;
}

// What KVM_GET_SUPPORTED_CPUID returns on an AMD EPYC (Zen 4) host with XSAVE, AVX-512 and CX16.
std::vector<CpuidEntry> amd_host() {
  std::vector<CpuidEntry> t = {
      leaf(0x0, 0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65),  // AuthenticAMD
      leaf(0x1, 0, 0, 0x00a10f11, 0x17400800,
           bits({0, 1, 9, 12, 13, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30}), 0x178bfbff),
      leaf(0x4, 0, kIndexed, 0, 0, 0, 0),
      leaf(0x5, 0, 0, 0, 0, 0, 0),
      leaf(0x6, 0, 0, 0x4, 0, 0, 0),
      leaf(0x7, 0, kIndexed, 1,
           bits({0, 3, 5, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 23, 24, 28, 29, 30, 31}),
           bits({1, 2, 3, 6, 8, 9, 10, 11, 12, 14, 22}), bits({4, 29})),
      leaf(0x7, 1, kIndexed, bits({4, 5}), 0, 0, 0),
      leaf(0xb, 0, kIndexed, 1, 2, 0x100, 0x17),
      leaf(0xb, 1, kIndexed, 7, 64, 0x201, 0x17),
      leaf(0xd, 0, kIndexed, 0x2e7, 0x988, 0x988, 0),
      leaf(0xd, 1, kIndexed, 0xf, 0x988, 0, 0),
      leaf(0xd, 2, kIndexed, 0x100, 0x240, 0, 0),
      leaf(0xd, 5, kIndexed, 0x40, 0x340, 0, 0),
      leaf(0xd, 6, kIndexed, 0x200, 0x380, 0, 0),
      leaf(0xd, 7, kIndexed, 0x400, 0x580, 0, 0),
      leaf(0xd, 9, kIndexed, 0x8, 0x980, 0, 0),
      leaf(0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
      leaf(0x40000001, 0, 0, 0x01007efb, 0, 0, 0),
      leaf(0x80000000, 0, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
      leaf(0x80000001, 0, 0, 0x00a10f11, 0x40000000, bits({0, 1, 4, 5, 6, 7, 8, 9, 22}),
           0x2fd3fbff),
      leaf(0x80000005, 0, 0, 0xff40ff40, 0xff40ff40, 0x20080140, 0x20080140),
      leaf(0x80000006, 0, 0, 0x48002200, 0x68004200, 0x04008140, 0x01009140),
      leaf(0x80000007, 0, 0, 0, 0, 0, 0x100),
      leaf(0x80000008, 0, 0, 0x3030, 0x791ef257, 0x0000707f, 0),
      leaf(0x8000001d, 0, kIndexed, 0x4121, 0x01c0003f, 0x3f, 0),
      leaf(0x8000001d, 1, kIndexed, 0x4122, 0x01c0003f, 0x3f, 0),
      leaf(0x8000001d, 2, kIndexed, 0x4143, 0x01c0003f, 0x7ff, 0x2),
      leaf(0x8000001d, 3, kIndexed, 0x3c163, 0x03c0003f, 0x7fff, 0x1),
      leaf(0x8000001d, 4, kIndexed, 0, 0, 0, 0),
      leaf(0x8000001e, 0, 0, 0x17, 0x10b, 0, 0),
      leaf(0x80000021, 0, 0, 0x62fcf, 0, 0, 0),
  };
  put_brand(t, "AMD EPYC 9R14 96-Core Processor");
  return t;
}

// A smaller Intel (Sapphire Rapids-like) host, for the Intel-only normalisation.
std::vector<CpuidEntry> intel_host() {
  std::vector<CpuidEntry> t = {
      leaf(0x0, 0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),  // GenuineIntel
      leaf(0x1, 0, 0, 0x000806f8, 0x05800800, bits({0, 1, 9, 12, 13, 15, 19, 20, 26, 28, 31}),
           0x1f8bfbff),
      leaf(0x4, 0, kIndexed, 0x7c004121, 0x02c0003f, 0x3f, 0),
      leaf(0x4, 1, kIndexed, 0x7c004122, 0x01c0003f, 0x3f, 0),
      leaf(0x4, 2, kIndexed, 0x7c004143, 0x03c0003f, 0x7ff, 0),
      leaf(0x4, 3, kIndexed, 0x7c0fc163, 0x03c0003f, 0x1ffff, 0x4),
      leaf(0x4, 4, kIndexed, 0, 0, 0, 0),
      leaf(0x6, 0, 0, 0x6, 0, 0x9, 0),
      leaf(0x7, 0, kIndexed, 2, bits({5, 16}), bits({5}), bits({24, 25, 29})),
      leaf(0x7, 1, kIndexed, 0, 0, 0, 0),
      leaf(0xa, 0, 0, 0x08300805, 0, 0, 0x8603),
      leaf(0xb, 0, kIndexed, 1, 2, 0x100, 0x5),
      leaf(0xb, 1, kIndexed, 7, 112, 0x201, 0x5),
      leaf(0xd, 0, kIndexed, 0x602e7, 0x988, 0x2b00, 0),
      leaf(0xd, 1, kIndexed, 0x1f, 0x988, 0, 0),
      leaf(0xd, 2, kIndexed, 0x100, 0x240, 0, 0),
      leaf(0xd, 17, kIndexed, 0x40, 0xac0, 0x2, 0),
      leaf(0xd, 18, kIndexed, 0x2000, 0xb00, 0x6, 0),
      leaf(0x1d, 0, kIndexed, 1, 0, 0, 0),
      leaf(0x1d, 1, kIndexed, 0x4002000, 0x80040, 0x10, 0),
      leaf(0x1f, 0, kIndexed, 1, 2, 0x100, 0x5),
      leaf(0x1f, 1, kIndexed, 7, 112, 0x201, 0x5),
      leaf(0x1f, 2, kIndexed, 0, 0, 2, 0x5),
      leaf(0x80000000, 0, 0, 0x80000008, 0, 0, 0),
      leaf(0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800),
      leaf(0x80000008, 0, 0, 0x3934, 0, 0, 0),
  };
  put_brand(t, "Intel(R) Xeon(R) Platinum 8488C");
  return t;
}

// ---- reading results ----

uint32_t reg(const CpuidEntry& e, R r) {
  switch (r) {
    case R::Eax:
      return e.eax;
    case R::Ebx:
      return e.ebx;
    case R::Ecx:
      return e.ecx;
    case R::Edx:
      break;
  }
  return e.edx;
}

// Bit `b` of CPUID(l, s).r; false when the leaf is absent, as the guest would read zeros.
bool bit(const std::vector<CpuidEntry>& t, uint32_t l, uint32_t s, R r, unsigned b) {
  const CpuidEntry* e = find_cpuid_entry(t, l, s);
  return e && ((reg(*e, r) >> b) & 1);
}

uint32_t field(uint32_t x, unsigned lo, unsigned hi) {
  return (x >> lo) & ((hi - lo == 31) ? ~0u : ((1u << (hi - lo + 1)) - 1));
}

const CpuidEntry& must_find(const std::vector<CpuidEntry>& t, uint32_t l, uint32_t s) {
  static const CpuidEntry kZero{};
  const CpuidEntry* e = find_cpuid_entry(t, l, s);
  if (!e) ADD_FAILURE() << fmt::format("no CPUID leaf {:#x} subleaf {}", l, s);
  return e ? *e : kZero;
}

std::vector<CpuidEntry> build(const std::vector<CpuidEntry>& host, uint32_t id, uint32_t count,
                              const CpuidMask& mask = {}, uint32_t threads_per_core = 1) {
  auto r = build_cpuid(host, CpuTopology{id, count, threads_per_core}, mask);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : std::vector<CpuidEntry>{};
}

struct Bit {
  uint32_t leaf, subleaf;
  R reg;
  unsigned bit;
  const char* name;
};

// The XSAVE family and the features that need XSAVE-managed state.
const Bit kXsaveFamily[] = {
    {1, 0, R::Ecx, 26, "XSAVE"},         {1, 0, R::Ecx, 27, "OSXSAVE"},
    {1, 0, R::Ecx, 28, "AVX"},           {1, 0, R::Ecx, 12, "FMA"},
    {1, 0, R::Ecx, 29, "F16C"},          {7, 0, R::Ebx, 5, "AVX2"},
    {7, 0, R::Ebx, 16, "AVX512F"},       {7, 0, R::Ebx, 17, "AVX512DQ"},
    {7, 0, R::Ebx, 21, "AVX512_IFMA"},   {7, 0, R::Ebx, 28, "AVX512CD"},
    {7, 0, R::Ebx, 30, "AVX512BW"},      {7, 0, R::Ebx, 31, "AVX512VL"},
    {7, 0, R::Ecx, 1, "AVX512_VBMI"},    {7, 0, R::Ecx, 3, "PKU"},
    {7, 0, R::Ecx, 6, "AVX512_VBMI2"},   {7, 0, R::Ecx, 9, "VAES"},
    {7, 0, R::Ecx, 10, "VPCLMULQDQ"},    {7, 0, R::Ecx, 11, "AVX512_VNNI"},
    {7, 0, R::Ecx, 12, "AVX512_BITALG"}, {7, 0, R::Ecx, 14, "AVX512_VPOPCNTDQ"},
    {7, 1, R::Eax, 4, "AVX_VNNI"},       {7, 1, R::Eax, 5, "AVX512_BF16"},
    {0xd, 1, R::Eax, 0, "XSAVEOPT"},     {0xd, 1, R::Eax, 1, "XSAVEC"},
    {0xd, 1, R::Eax, 2, "XGETBV1"},      {0xd, 1, R::Eax, 3, "XSAVES"},
};

// Features that do not depend on XSAVE and must survive the default mask.
const Bit kIndependent[] = {
    {1, 0, R::Ecx, 0, "SSE3"},    {1, 0, R::Ecx, 9, "SSSE3"},         {1, 0, R::Ecx, 20, "SSE4.2"},
    {1, 0, R::Ecx, 25, "AES"},    {1, 0, R::Ecx, 1, "PCLMULQDQ"},     {7, 0, R::Ebx, 3, "BMI1"},
    {7, 0, R::Ebx, 8, "BMI2"},    {7, 0, R::Ebx, 29, "SHA"},          {7, 0, R::Ecx, 8, "GFNI"},
    {1, 0, R::Ecx, 21, "x2APIC"}, {1, 0, R::Ecx, 24, "TSC_DEADLINE"},
};

// Feature registers in which the template may only advertise what the hypervisor supports.
struct FeatureReg {
  uint32_t leaf, subleaf;
  R reg;
  uint32_t vmm_owned;  // bits the VMM itself provides
};
const FeatureReg kFeatureRegs[] = {
    {1, 0, R::Ecx, bits({31})},     // hypervisor
    {1, 0, R::Edx, bits({28})},     // HTT
    {7, 0, R::Ebx, bits({6, 13})},  // Intel: FPU CS/DS deprecation, set as KVM recommends
    {7, 0, R::Ecx, 0},
    {7, 0, R::Edx, 0},
    {7, 1, R::Eax, 0},
    {7, 1, R::Edx, 0},
    {0xd, 1, R::Eax, 0},
    {0x80000001, 0, R::Ecx, 0},
    {0x80000001, 0, R::Edx, 0},
    {0x80000007, 0, R::Edx, 0},
    {0x80000008, 0, R::Ebx, 0},
};

// What must hold for any host, vCPU and mask; shared by the synthetic and the real-host tests.
void expect_invariants(const std::vector<CpuidEntry>& host, const std::vector<CpuidEntry>& out,
                       const CpuTopology& topo, const CpuidMask& mask) {
  SCOPED_TRACE(fmt::format("vCPU {} of {}", topo.vcpu_id, topo.vcpu_count));
  // Sorted and unique, as KVM_SET_CPUID2 wants one entry per (leaf, subleaf).
  for (size_t i = 1; i < out.size(); ++i) {
    const auto& a = out[i - 1];
    const auto& b = out[i];
    EXPECT_TRUE(a.function < b.function || (a.function == b.function && a.index < b.index))
        << fmt::format("entries {:#x}/{} and {:#x}/{} out of order or duplicated", a.function,
                       a.index, b.function, b.index);
  }

  const CpuidEntry& l1 = must_find(out, 1, 0);
  EXPECT_EQ(field(l1.ebx, 24, 31), topo.vcpu_id) << "initial APIC id";
  EXPECT_EQ(field(l1.ebx, 8, 15), 8u) << "CLFLUSH line size";
  EXPECT_EQ(field(l1.ebx, 16, 23), std::bit_ceil(topo.vcpu_count));
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 31)) << "hypervisor bit";
  EXPECT_EQ(bit(out, 1, 0, R::Edx, 28), topo.vcpu_count > 1) << "HTT";
  EXPECT_EQ(bit(out, 1, 0, R::Ecx, 24), bit(host, 1, 0, R::Ecx, 24)) << "TSC deadline as supported";

  if (mask.hide_cx16) {
    EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 13)) << "CX16";
  }
  if (mask.hide_xsave) {
    for (const auto& b : kXsaveFamily) {
      EXPECT_FALSE(bit(out, b.leaf, b.subleaf, b.reg, b.bit)) << b.name << " should be hidden";
    }
  }

  for (const auto& f : kFeatureRegs) {
    const CpuidEntry* o = find_cpuid_entry(out, f.leaf, f.subleaf);
    if (!o) continue;
    const CpuidEntry* h = find_cpuid_entry(host, f.leaf, f.subleaf);
    const uint32_t allowed = (h ? reg(*h, f.reg) : 0) | f.vmm_owned;
    EXPECT_EQ(reg(*o, f.reg) & ~allowed, 0u)
        << fmt::format("leaf {:#x}:{} advertises unsupported bits", f.leaf, f.subleaf);
  }

  // Leaf 0xD agrees with the features.
  const bool xsave = bit(out, 1, 0, R::Ecx, 26);
  if (!xsave) {
    for (const auto& e : out) {
      if (e.function != 0xd) continue;
      EXPECT_LE(e.index, 1u) << "leaf 0xd subleaf " << e.index << " left without XSAVE";
      EXPECT_EQ(e.eax | e.ebx | e.ecx | e.edx, 0u) << "leaf 0xd." << e.index << " not zeroed";
    }
  } else if (const CpuidEntry* d0 = find_cpuid_entry(out, 0xd, 0)) {
    const uint64_t xcr0 = d0->eax | (uint64_t{d0->edx} << 32);
    const CpuidEntry* d1 = find_cpuid_entry(out, 0xd, 1);
    const uint64_t xss = d1 ? d1->ecx | (uint64_t{d1->edx} << 32) : 0;
    EXPECT_EQ((xcr0 >> 2) & 1, uint64_t{bit(out, 1, 0, R::Ecx, 28)}) << "YMM state iff AVX";
    EXPECT_EQ((xcr0 >> 5) & 7, bit(out, 7, 0, R::Ebx, 16) ? 7u : 0u) << "ZMM state iff AVX512F";
    EXPECT_EQ((xcr0 >> 9) & 1, uint64_t{bit(out, 7, 0, R::Ecx, 3)}) << "PKRU state iff PKU";
    uint32_t needed = 576;
    for (const auto& e : out) {
      if (e.function != 0xd || e.index < 2) continue;
      EXPECT_TRUE(((xcr0 | xss) >> e.index) & 1) << "subleaf " << e.index << " not enabled";
      if ((xcr0 >> e.index) & 1) needed = std::max(needed, e.eax + e.ebx);
    }
    EXPECT_EQ(d0->ecx, needed) << "max XSAVE area size";
    EXPECT_LE(d0->ebx, d0->ecx);
  }

  // Topology.
  if (const CpuidEntry* b0 = find_cpuid_entry(out, 0xb, 0)) {
    const CpuidEntry& b1 = must_find(out, 0xb, 1);
    EXPECT_EQ(b0->edx, topo.vcpu_id);
    EXPECT_EQ(b1.edx, topo.vcpu_id);
    EXPECT_EQ(field(b0->ecx, 8, 15), 1u) << "SMT level";
    EXPECT_EQ(field(b1.ecx, 8, 15), 2u) << "core level";
    EXPECT_EQ(b1.ebx, topo.vcpu_count);
    EXPECT_EQ((topo.vcpu_count - 1) >> field(b1.eax, 0, 4), 0u) << "package shift covers all ids";
    EXPECT_EQ(field(must_find(out, 0xb, 2).ecx, 8, 15), 0u) << "no level after core";
  }
  if (bit(out, 0x80000001, 0, R::Ecx, 22)) {  // TOPOEXT
    EXPECT_EQ(must_find(out, 0x8000001e, 0).eax, topo.vcpu_id) << "extended APIC id";
  }

  // KVM's paravirtual leaves and the invariant TSC bit are passed through untouched.
  for (const auto& h : host) {
    if (h.function < 0x40000000 || h.function > 0x400000ff) continue;
    const CpuidEntry& o = must_find(out, h.function, h.index);
    EXPECT_EQ(std::tie(o.eax, o.ebx, o.ecx, o.edx), std::tie(h.eax, h.ebx, h.ecx, h.edx));
  }
  EXPECT_EQ(bit(out, 0x80000007, 0, R::Edx, 8), bit(host, 0x80000007, 0, R::Edx, 8));
}

// ---- synthetic hosts ----

TEST(Cpuid, ApicIdsFollowTheVcpuId) {
  const auto host = amd_host();
  for (uint32_t id = 0; id < 4; ++id) {
    const auto out = build(host, id, 4);
    expect_invariants(host, out, {id, 4}, {});
    EXPECT_EQ(must_find(out, 1, 0).ebx >> 24, id);
    EXPECT_EQ(must_find(out, 0xb, 0).edx, id);
    EXPECT_EQ(must_find(out, 0x8000001e, 0).eax, id);
    EXPECT_EQ(field(must_find(out, 0x8000001e, 0).ebx, 0, 7), id) << "core id";
  }
}

TEST(Cpuid, HypervisorBitSetEvenIfHostLacksIt) {
  auto host = amd_host();
  ASSERT_FALSE(bit(host, 1, 0, R::Ecx, 31));
  EXPECT_TRUE(bit(build(host, 0, 1), 1, 0, R::Ecx, 31));
}

TEST(Cpuid, DefaultMaskHidesCx16AndTheXsaveFamily) {
  const auto host = amd_host();
  for (const auto& b : kXsaveFamily) {
    ASSERT_TRUE(bit(host, b.leaf, b.subleaf, b.reg, b.bit) || b.bit == 27)
        << "the synthetic host should have " << b.name;
  }
  const auto out = build(host, 0, 2);
  expect_invariants(host, out, {0, 2}, {});
  EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 13)) << "CX16";
  for (const auto& b : kXsaveFamily) {
    EXPECT_FALSE(bit(out, b.leaf, b.subleaf, b.reg, b.bit)) << b.name;
  }
  for (const auto& b : kIndependent) {
    EXPECT_EQ(bit(out, b.leaf, b.subleaf, b.reg, b.bit), bit(host, b.leaf, b.subleaf, b.reg, b.bit))
        << b.name << " does not depend on XSAVE and must be left alone";
  }
  const CpuidEntry& d0 = must_find(out, 0xd, 0);
  EXPECT_EQ(d0.eax | d0.ebx | d0.ecx | d0.edx, 0u);
  EXPECT_EQ(find_cpuid_entry(out, 0xd, 2), nullptr);
}

TEST(Cpuid, MaskOffKeepsCx16AndXsave) {
  const auto host = amd_host();
  const CpuidMask keep = CpuidMask::passthrough();
  const auto out = build(host, 1, 2, keep);
  expect_invariants(host, out, {1, 2}, keep);
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 13)) << "CX16";
  for (const auto& b : kXsaveFamily) {
    if (b.bit == 27 && b.leaf == 1) continue;  // OSXSAVE is KVM's to set from CR4
    EXPECT_TRUE(bit(out, b.leaf, b.subleaf, b.reg, b.bit)) << b.name;
  }
  for (uint32_t sub : {0u, 1u, 2u, 5u, 6u, 7u, 9u}) {
    const CpuidEntry& h = must_find(host, 0xd, sub);
    const CpuidEntry& o = must_find(out, 0xd, sub);
    EXPECT_EQ(std::tie(o.eax, o.ebx, o.ecx, o.edx), std::tie(h.eax, h.ebx, h.ecx, h.edx))
        << "leaf 0xd." << sub << " should be the host's";
  }
}

TEST(Cpuid, HidingOnlyCx16KeepsXsave) {
  const auto host = amd_host();
  const auto out =
      build(host, 0, 1, CpuidMask{.hide_cx16 = true, .hide_xsave = false, .overrides = {}});
  EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 13));
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 26));
  EXPECT_TRUE(bit(out, 7, 0, R::Ebx, 16));
}

TEST(Cpuid, Leaf0xdFollowsHiddenStateComponents) {
  const auto host = amd_host();
  CpuidMask mask{.hide_cx16 = true, .hide_xsave = false, .overrides = {}};
  // Hide AVX-512 (and so everything built on it) and PKU: only x87, SSE and AVX state remain.
  mask.overrides = *parse_cpuid_overrides("0x7:0:ebx:16=0, 0x7:0:ecx:3=0");
  const auto out = build(host, 0, 1, mask);
  expect_invariants(host, out, {0, 1}, mask);
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 28)) << "AVX stays";
  EXPECT_TRUE(bit(out, 7, 0, R::Ebx, 5)) << "AVX2 stays";
  EXPECT_FALSE(bit(out, 7, 0, R::Ebx, 31)) << "AVX512VL goes with AVX512F";
  EXPECT_FALSE(bit(out, 7, 0, R::Ecx, 11)) << "AVX512_VNNI goes with AVX512VL";
  EXPECT_FALSE(bit(out, 7, 1, R::Eax, 5)) << "AVX512_BF16 goes with AVX512VL";
  const CpuidEntry& d0 = must_find(out, 0xd, 0);
  EXPECT_EQ(d0.eax, 0x7u);
  EXPECT_EQ(d0.ecx, 0x240u + 0x100u) << "ends with the AVX component";
  EXPECT_NE(find_cpuid_entry(out, 0xd, 2), nullptr);
  for (uint32_t sub : {5u, 6u, 7u, 9u}) EXPECT_EQ(find_cpuid_entry(out, 0xd, sub), nullptr) << sub;
}

class CpuidTopologyTest : public testing::TestWithParam<uint32_t> {};

TEST_P(CpuidTopologyTest, LeavesDescribeOneSocketOfSingleThreadCores) {
  const uint32_t count = GetParam();
  const auto host = amd_host();
  const uint32_t shift = count <= 1 ? 0 : std::bit_width(count - 1);
  for (uint32_t id = 0; id < count; ++id) {
    const auto out = build(host, id, count);
    expect_invariants(host, out, {id, count}, {});
    const CpuidEntry& b0 = must_find(out, 0xb, 0);
    EXPECT_EQ(b0.eax, 0u);
    EXPECT_EQ(b0.ebx, 1u);
    EXPECT_EQ(b0.ecx, 0x100u);
    const CpuidEntry& b1 = must_find(out, 0xb, 1);
    EXPECT_EQ(b1.eax, shift);
    EXPECT_EQ(b1.ebx, count);
    EXPECT_EQ(b1.ecx, 0x201u);
    const CpuidEntry& b2 = must_find(out, 0xb, 2);
    EXPECT_EQ(b2.ecx, 2u);
    EXPECT_EQ(b2.edx, id);

    const CpuidEntry& sizes = must_find(out, 0x80000008, 0);
    EXPECT_EQ(field(sizes.ecx, 0, 7), count - 1) << "NC";
    EXPECT_EQ(field(sizes.ecx, 12, 15), shift) << "ApicIdSize";
    EXPECT_EQ(sizes.eax, 0x3030u) << "address sizes untouched";

    EXPECT_EQ(field(must_find(out, 0x8000001d, 0).eax, 14, 25), 0u) << "L1d per core";
    EXPECT_EQ(field(must_find(out, 0x8000001d, 2).eax, 14, 25), 0u) << "L2 per core";
    EXPECT_EQ(field(must_find(out, 0x8000001d, 3).eax, 14, 25), count - 1) << "L3 shared";
    EXPECT_EQ(field(must_find(out, 0x8000001d, 3).eax, 0, 13), 0x163u) << "cache type kept";
    const CpuidEntry& ext = must_find(out, 0x8000001e, 0);
    EXPECT_EQ(ext.ebx, id) << "core id, one thread per core";
    EXPECT_EQ(ext.ecx, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Counts, CpuidTopologyTest, testing::Values(1u, 2u, 4u));

TEST(Cpuid, TwoThreadsPerCore) {
  const auto host = amd_host();
  for (uint32_t id = 0; id < 4; ++id) {
    const auto out = build(host, id, 4, {}, 2);
    expect_invariants(host, out, {id, 4, 2}, {});
    EXPECT_EQ(must_find(out, 0xb, 0).eax, 1u) << "one bit of thread id";
    EXPECT_EQ(must_find(out, 0xb, 0).ebx, 2u);
    EXPECT_EQ(must_find(out, 0xb, 1).eax, 2u);
    const CpuidEntry& ext = must_find(out, 0x8000001e, 0);
    EXPECT_EQ(field(ext.ebx, 0, 7), id / 2) << "core id";
    EXPECT_EQ(field(ext.ebx, 8, 15), 1u) << "threads per core - 1";
    EXPECT_EQ(field(must_find(out, 0x8000001d, 0).eax, 14, 25), 1u) << "L1 shared by siblings";
  }
}

TEST(Cpuid, RejectsBadTopologies) {
  const auto host = amd_host();
  const struct {
    CpuTopology topo;
    const char* words;
  } cases[] = {
      {{0, 0, 1}, "count 0"},
      {{2, 2, 1}, "id 2"},
      {{0, 129, 1}, "count 129"},
      {{0, 4, 3}, "threads per core must be 1 or 2, not 3"},
      {{0, 3, 2}, "3 vCPUs cannot be split"},
  };
  for (const auto& c : cases) {
    auto r = build_cpuid(host, c.topo, {});
    ASSERT_FALSE(r.ok()) << c.words;
    EXPECT_NE(r.error().message.find(c.words), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(build_cpuid(host, {0, 1, 2}, {}).ok()) << "one vCPU ignores threads_per_core";
}

TEST(Cpuid, RejectsHostWithoutBasicLeaves) {
  auto host = amd_host();
  std::erase_if(host, [](const CpuidEntry& e) { return e.function == 1; });
  auto r = build_cpuid(host, {0, 1}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("leaf 0x1"), std::string::npos) << r.error().message;
}

TEST(Cpuid, PowerPmuBrandAndAmdFixups) {
  auto host = amd_host();
  host.push_back(leaf(0xa, 0, 0, 0x07300403, 0, 0, 0x603));
  for (auto& e : host) {
    if (e.function == 6) e.eax |= 2;  // turbo
  }
  const auto out = build(host, 0, 1);
  EXPECT_FALSE(bit(out, 6, 0, R::Eax, 1)) << "turbo";
  EXPECT_TRUE(bit(out, 6, 0, R::Eax, 2)) << "ARAT kept";
  const CpuidEntry& pmu = must_find(out, 0xa, 0);
  EXPECT_EQ(pmu.eax | pmu.ebx | pmu.ecx | pmu.edx, 0u);
  EXPECT_EQ(get_brand(out), "AMD EPYC 9R14 96-Core Processor");
  EXPECT_FALSE(bit(out, 7, 0, R::Edx, 29)) << "ARCH_CAPABILITIES is not an AMD MSR";
  EXPECT_TRUE(bit(out, 7, 0, R::Edx, 4)) << "FSRM kept";
  EXPECT_TRUE(bit(out, 0x80000007, 0, R::Edx, 8)) << "invariant TSC";

  std::erase_if(host, [](const CpuidEntry& e) {
    return e.function >= 0x80000002 && e.function <= 0x80000004;
  });
  put_brand(host, "");
  EXPECT_EQ(get_brand(build(host, 0, 1)), "AMD EPYC") << "an empty brand gets a generic name";
}

TEST(Cpuid, IntelNormalisation) {
  const auto host = intel_host();
  const CpuidMask keep = CpuidMask::passthrough();
  const auto out = build(host, 3, 4, keep);
  EXPECT_TRUE(bit(out, 7, 0, R::Ebx, 6)) << "FDP_EXCPTN_ONLY";
  EXPECT_TRUE(bit(out, 7, 0, R::Ebx, 13)) << "ZERO_FCS_FDS";
  EXPECT_FALSE(bit(out, 7, 0, R::Ecx, 5)) << "WAITPKG";
  EXPECT_TRUE(bit(out, 7, 0, R::Edx, 29)) << "ARCH_CAPABILITIES stays on Intel";
  EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 15)) << "PDCM";
  EXPECT_EQ(field(must_find(out, 4, 0).eax, 14, 25), 0u) << "L1 per core";
  EXPECT_EQ(field(must_find(out, 4, 3).eax, 14, 25), 3u) << "L3 shared by 4";
  EXPECT_EQ(field(must_find(out, 4, 3).eax, 26, 31), 3u) << "4 cores";
  for (uint32_t sub = 0; sub < 3; ++sub) {
    const CpuidEntry& b = must_find(out, 0xb, sub);
    const CpuidEntry& f = must_find(out, 0x1f, sub);
    EXPECT_EQ(std::tie(f.eax, f.ebx, f.ecx, f.edx), std::tie(b.eax, b.ebx, b.ecx, b.edx)) << sub;
  }
  EXPECT_EQ(must_find(out, 0x1f, 0).edx, 3u);
  EXPECT_EQ(get_brand(out), "Intel(R) Xeon(R) Platinum 8488C");
  // AMX is XSAVE state too: kept here, gone (with its leaves) by default.
  EXPECT_TRUE(bit(out, 7, 0, R::Edx, 24));
  EXPECT_NE(find_cpuid_entry(out, 0xd, 18), nullptr);
  const auto hidden = build(host, 0, 1);
  expect_invariants(host, hidden, {0, 1}, {});
  EXPECT_FALSE(bit(hidden, 7, 0, R::Edx, 24)) << "AMX_TILE";
  EXPECT_FALSE(bit(hidden, 7, 0, R::Edx, 25)) << "AMX_INT8";
  EXPECT_EQ(must_find(hidden, 0x1d, 0).eax, 0u);
  EXPECT_EQ(find_cpuid_entry(hidden, 0x1d, 1), nullptr);
}

// ---- overrides ----

TEST(CpuidOverride, ParsesTheTextForm) {
  auto list = parse_cpuid_overrides(" 0x1:0:ecx:30=0 ,7:0:EBX:9=1,0x80000001:0:Edx:31=0 ");
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0], (CpuidOverride{0x1, 0, R::Ecx, 30, false}));
  EXPECT_EQ((*list)[1], (CpuidOverride{0x7, 0, R::Ebx, 9, true}));
  EXPECT_EQ((*list)[2], (CpuidOverride{0x80000001, 0, R::Edx, 31, false}));
  EXPECT_EQ(to_string((*list)[2]), "0x80000001:0:edx:31=0");
  auto again = parse_cpuid_override(to_string((*list)[1]));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, (*list)[1]);
  auto empty = parse_cpuid_overrides("  ");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CpuidOverride, RejectsBadText) {
  const struct {
    const char* text;
    const char* words;
  } cases[] = {
      {"0x1:0:ecx:13", "missing '='"},
      {"0x1:0:13=0", "four ':'-separated fields"},
      {"0x1:0:ecx:13:1=0", "four ':'-separated fields"},
      {"zz:0:ecx:13=0", "leaf 'zz'"},
      {"0x100000000:0:ecx:13=0", "leaf '0x100000000'"},
      {"1:-1:ecx:13=0", "subleaf '-1'"},
      {"1:0:exx:13=0", "register 'exx'"},
      {"1:0:ecx:32=0", "bit '32'"},
      {"1:0:ecx:3x=0", "bit '3x'"},
      {"1:0:ecx:13=2", "value '2'"},
      {"1:0:ecx:13=", "value ''"},
      {"1:0:ecx:13=0,,1:0:ecx:12=0", "empty item"},
      {"1:0:ecx:13=0,", "empty item"},
  };
  for (const auto& c : cases) {
    auto r = parse_cpuid_overrides(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(c.words), std::string::npos)
        << c.text << " -> " << r.error().message;
    EXPECT_TRUE(r.error().message.find("LEAF:SUBLEAF:REGISTER:BIT=0|1") != std::string::npos ||
                r.error().message.find("empty item") != std::string::npos)
        << "the message should show the expected form: " << r.error().message;
  }
}

TEST(CpuidOverride, AppliedAfterNormalisation) {
  const auto host = amd_host();
  CpuidMask mask;
  mask.overrides =
      *parse_cpuid_overrides("1:0:ecx:30=0,7:0:ebx:9=0,0x80000001:0:ecx:2=1,1:0:ecx:31=0");
  const auto out = build(host, 0, 1, mask);
  EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 30)) << "RDRAND cleared";
  EXPECT_FALSE(bit(out, 7, 0, R::Ebx, 9)) << "ERMS cleared";
  EXPECT_TRUE(bit(out, 0x80000001, 0, R::Ecx, 2)) << "SVM set though unsupported";
  EXPECT_FALSE(bit(out, 1, 0, R::Ecx, 31)) << "overrides come after normalisation";
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 25)) << "AES untouched";
}

TEST(CpuidOverride, CanReenableXsaveExplicitly) {
  const auto host = amd_host();
  CpuidMask mask;
  mask.overrides = {{1, 0, R::Ecx, 26, true}};
  const auto out = build(host, 0, 1, mask);
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 26));
  EXPECT_TRUE(bit(out, 1, 0, R::Ecx, 28)) << "AVX follows XSAVE back";
  expect_invariants(host, out, {0, 1},
                    CpuidMask{.hide_cx16 = true, .hide_xsave = false, .overrides = {}});
}

TEST(CpuidOverride, SettingAFeatureWithAHiddenPrerequisiteFails) {
  const auto host = amd_host();
  CpuidMask mask;
  mask.overrides = {{7, 0, R::Ebx, 5, true}};  // AVX2 while XSAVE (so AVX) is hidden
  auto r = build_cpuid(host, {0, 1}, mask);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("AVX2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("needs AVX"), std::string::npos) << r.error().message;
}

TEST(CpuidOverride, SettingABitInAnAbsentLeafFails) {
  const auto host = amd_host();
  CpuidMask mask;
  mask.overrides = {{0x14, 0, R::Ebx, 0, true}};
  auto r = build_cpuid(host, {0, 1}, mask);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no leaf 0x14"), std::string::npos) << r.error().message;
  mask.overrides = {{0x14, 0, R::Ebx, 0, false}};
  EXPECT_TRUE(build_cpuid(host, {0, 1}, mask).ok()) << "clearing there is a no-op";
}

// ---- the real KVM ----

// <linux/kvm.h> declares kvm_cpuid2's flexible array with __DECLARE_FLEX_ARRAY, which in C++ adds
// a 1-byte member: sizeof and the entries' offset differ from C, so the header's ioctl numbers
// are wrong (KVM answers EINVAL). These are the C layouts.
struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(kvm_cpuid_entry2) == 40);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);

std::vector<uint8_t> cpuid_buffer(size_t n) {
  std::vector<uint8_t> buf(sizeof(CpuidHeader) + n * sizeof(kvm_cpuid_entry2));
  reinterpret_cast<CpuidHeader*>(buf.data())->nent = static_cast<uint32_t>(n);
  return buf;
}
kvm_cpuid_entry2* cpuid_entries(std::vector<uint8_t>& buf) {
  return reinterpret_cast<kvm_cpuid_entry2*>(buf.data() + sizeof(CpuidHeader));
}

struct Kvm {
  UniqueFd fd;
  std::vector<CpuidEntry> supported;
};

// Opens /dev/kvm and reads KVM_GET_SUPPORTED_CPUID; nullptr if there is no KVM here.
std::unique_ptr<Kvm> open_kvm() {
  UniqueFd fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return nullptr;
  auto buf = cpuid_buffer(256);
  if (::ioctl(fd.get(), kGetSupportedCpuid, buf.data()) < 0) {
    ADD_FAILURE() << "KVM_GET_SUPPORTED_CPUID: " << errno_string();
    return nullptr;
  }
  auto kvm = std::make_unique<Kvm>();
  const uint32_t nent = reinterpret_cast<CpuidHeader*>(buf.data())->nent;
  for (uint32_t i = 0; i < nent; ++i) {
    const auto& e = cpuid_entries(buf)[i];
    kvm->supported.push_back(leaf(e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx));
  }
  kvm->fd = std::move(fd);
  return kvm;
}

std::vector<uint8_t> to_kvm_cpuid2(const std::vector<CpuidEntry>& entries) {
  auto buf = cpuid_buffer(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& k = cpuid_entries(buf)[i];
    k.function = entries[i].function;
    k.index = entries[i].index;
    k.flags = entries[i].flags;
    k.eax = entries[i].eax;
    k.ebx = entries[i].ebx;
    k.ecx = entries[i].ecx;
    k.edx = entries[i].edx;
  }
  return buf;
}

TEST(CpuidOnKvm, InvariantsHoldForTheHostList) {
  auto kvm = open_kvm();
  if (!kvm) GTEST_SKIP() << "no /dev/kvm";
  for (uint32_t count : {1u, 2u, 4u}) {
    for (uint32_t id = 0; id < count; ++id) {
      for (const CpuidMask& mask : {CpuidMask{}, CpuidMask::passthrough()}) {
        const auto out = build(kvm->supported, id, count, mask);
        expect_invariants(kvm->supported, out, {id, count}, mask);
      }
    }
  }
  // The defaults exist for this machine: it reports CX16, which must go.
  if (bit(kvm->supported, 1, 0, R::Ecx, 13)) {
    EXPECT_FALSE(bit(build(kvm->supported, 0, 1), 1, 0, R::Ecx, 13));
  }
}

// Real mode: CPUID(1) then CPUID(0xB, 1); writes EBX, ECX, EDX of the first and EDX, EBX of the
// second to port 0x10 as 32-bit values, then halts.
constexpr uint8_t kCpuidGuest[] = {
    0x66, 0xb8, 0x01, 0x00, 0x00, 0x00,  // mov eax, 1
    0x66, 0x31, 0xc9,                    // xor ecx, ecx
    0x0f, 0xa2,                          // cpuid
    0x66, 0x89, 0xd6,                    // mov esi, edx
    0xba, 0x10, 0x00,                    // mov dx, 0x10
    0x66, 0x89, 0xd8, 0x66, 0xef,        // mov eax, ebx; out dx, eax
    0x66, 0x89, 0xc8, 0x66, 0xef,        // mov eax, ecx; out dx, eax
    0x66, 0x89, 0xf0, 0x66, 0xef,        // mov eax, esi; out dx, eax
    0x66, 0xb8, 0x0b, 0x00, 0x00, 0x00,  // mov eax, 0xb
    0x66, 0xb9, 0x01, 0x00, 0x00, 0x00,  // mov ecx, 1
    0x0f, 0xa2,                          // cpuid
    0x66, 0x89, 0xd6,                    // mov esi, edx
    0xba, 0x10, 0x00,                    // mov dx, 0x10
    0x66, 0x89, 0xf0, 0x66, 0xef,        // mov eax, esi; out dx, eax
    0x66, 0x89, 0xd8, 0x66, 0xef,        // mov eax, ebx; out dx, eax
    0xf4,                                // hlt
};

struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  Mapping(void* a, size_t s) : addr(a), size(s) {}
  ~Mapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

TEST(CpuidOnKvm, GuestSeesTheTemplate) {
  auto kvm = open_kvm();
  if (!kvm) GTEST_SKIP() << "no /dev/kvm";
  constexpr uint32_t kId = 1;
  constexpr uint32_t kCount = 2;
  const auto cpuid = build(kvm->supported, kId, kCount);
  ASSERT_FALSE(cpuid.empty());

  UniqueFd vm(::ioctl(kvm->fd.get(), KVM_CREATE_VM, 0));
  ASSERT_TRUE(vm.valid()) << "KVM_CREATE_VM: " << errno_string();
  constexpr size_t kMemSize = 0x10000;
  Mapping mem(::mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              kMemSize);
  ASSERT_NE(mem.addr, MAP_FAILED);
  std::memcpy(static_cast<uint8_t*>(mem.addr) + 0x1000, kCpuidGuest, sizeof(kCpuidGuest));
  kvm_userspace_memory_region region{.slot = 0,
                                     .flags = 0,
                                     .guest_phys_addr = 0,
                                     .memory_size = kMemSize,
                                     .userspace_addr = reinterpret_cast<uint64_t>(mem.addr)};
  ASSERT_EQ(::ioctl(vm.get(), KVM_SET_USER_MEMORY_REGION, &region), 0) << errno_string();

  UniqueFd vcpu(::ioctl(vm.get(), KVM_CREATE_VCPU, kId));
  ASSERT_TRUE(vcpu.valid()) << "KVM_CREATE_VCPU: " << errno_string();
  auto buf = to_kvm_cpuid2(cpuid);
  ASSERT_EQ(::ioctl(vcpu.get(), kSetCpuid2, buf.data()), 0)
      << "KVM_SET_CPUID2 rejected the template: " << errno_string();

  kvm_sregs sregs{};
  ASSERT_EQ(::ioctl(vcpu.get(), KVM_GET_SREGS, &sregs), 0);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  ASSERT_EQ(::ioctl(vcpu.get(), KVM_SET_SREGS, &sregs), 0);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 2;
  ASSERT_EQ(::ioctl(vcpu.get(), KVM_SET_REGS, &regs), 0);

  const int run_size = ::ioctl(kvm->fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  ASSERT_GT(run_size, 0);
  Mapping run_map(::mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(), 0),
                  run_size);
  ASSERT_NE(run_map.addr, MAP_FAILED);
  auto* run = static_cast<kvm_run*>(run_map.addr);

  std::vector<uint32_t> out;
  for (int exits = 0; exits < 16; ++exits) {
    ASSERT_EQ(::ioctl(vcpu.get(), KVM_RUN, 0), 0) << "KVM_RUN: " << errno_string();
    if (run->exit_reason == KVM_EXIT_HLT) break;
    ASSERT_EQ(run->exit_reason, KVM_EXIT_IO) << "unexpected exit";
    ASSERT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
    ASSERT_EQ(run->io.port, 0x10);
    ASSERT_EQ(run->io.size, 4);
    uint32_t value;
    std::memcpy(&value, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 4);
    out.push_back(value);
  }
  ASSERT_EQ(run->exit_reason, KVM_EXIT_HLT);
  ASSERT_EQ(out.size(), 5u);
  const uint32_t ebx1 = out[0], ecx1 = out[1], edx1 = out[2], edx_b = out[3], ebx_b = out[4];
  const CpuidEntry& l1 = must_find(cpuid, 1, 0);
  EXPECT_EQ(ebx1, l1.ebx) << "APIC id, logical count, CLFLUSH size as in the template";
  EXPECT_EQ(ebx1 >> 24, kId) << "initial APIC id the guest reads";
  EXPECT_EQ(field(ebx1, 16, 23), kCount);
  EXPECT_EQ(ecx1 & l1.ecx, l1.ecx) << "every feature in the template reaches the guest";
  EXPECT_TRUE((ecx1 >> 31) & 1) << "hypervisor bit";
  EXPECT_FALSE((ecx1 >> 13) & 1) << "CX16 hidden";
  EXPECT_TRUE((edx1 >> 28) & 1) << "HTT with 2 vCPUs";
  EXPECT_EQ(edx_b, kId) << "x2APIC id";
  EXPECT_EQ(ebx_b, kCount) << "logical processors at core level";
  // kvm_pvm runs guest user code natively, so it advertises the host's user-visible features in
  // CPUID.1 (and 7.0, 0xD) whatever the template says: XSAVE shows up even though the template
  // hides it. Recorded, not asserted; Linux guests there need `noxsave` as well.
  if (((ecx1 >> 26) & 1) && !((l1.ecx >> 26) & 1)) {
    RecordProperty("xsave_forced_by_hypervisor", "true");
    std::cerr << "note: this KVM shows XSAVE to the guest although the template hides it\n";
  }
}

}  // namespace
}  // namespace ignition::x86_64
