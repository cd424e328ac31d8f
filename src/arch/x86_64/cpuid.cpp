// Builds a vCPU's CPUID table: normalise what the hypervisor supports (after Firecracker's
// cpu_config/x86_64/cpuid normalisation), hide what cannot run here, apply user overrides, then
// make dependent features and the XSAVE leaf agree with what is left.
#include "arch/x86_64/cpuid.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>

namespace ignition::x86_64 {
namespace {

using hv::CpuidEntry;
using R = CpuidRegister;

// ---- bit fields ----

uint32_t& reg_ref(CpuidEntry& e, CpuidRegister r) {
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

uint32_t reg_value(const CpuidEntry& e, CpuidRegister r) {
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

std::string_view reg_name(CpuidRegister r) {
  static constexpr std::array<std::string_view, 4> kNames = {"eax", "ebx", "ecx", "edx"};
  return kNames[static_cast<size_t>(r)];
}

void set_bit(uint32_t& x, unsigned bit, bool value) {
  x = (x & ~(1u << bit)) | (uint32_t{value} << bit);
}

uint32_t get_field(uint32_t x, unsigned lo, unsigned hi) {
  const uint32_t mask = hi - lo == 31 ? ~0u : ((1u << (hi - lo + 1)) - 1);
  return (x >> lo) & mask;
}

// Callers validate ranges beforehand (topology limits), so the value is truncated, never checked.
void set_field(uint32_t& x, unsigned lo, unsigned hi, uint32_t value) {
  const uint32_t mask = (hi - lo == 31 ? ~0u : ((1u << (hi - lo + 1)) - 1)) << lo;
  x = (x & ~mask) | ((value << lo) & mask);
}

uint32_t ceil_log2(uint32_t n) {
  return n <= 1 ? 0 : 32 - std::countl_zero(n - 1);
}

// ---- the table being built ----

class Table {
 public:
  explicit Table(std::span<const CpuidEntry> entries) : entries_(entries.begin(), entries.end()) {}

  CpuidEntry* find(uint32_t leaf, uint32_t subleaf) {
    for (auto& e : entries_) {
      if (e.function == leaf &&
          (e.index == subleaf || (e.flags & hv::kCpuidFlagSignificantIndex) == 0)) {
        return &e;
      }
    }
    return nullptr;
  }

  CpuidEntry& insert(uint32_t leaf, uint32_t subleaf, bool indexed) {
    return entries_.emplace_back(CpuidEntry{.function = leaf,
                                            .index = subleaf,
                                            .flags = indexed ? hv::kCpuidFlagSignificantIndex : 0,
                                            .eax = 0,
                                            .ebx = 0,
                                            .ecx = 0,
                                            .edx = 0});
  }

  void add(const CpuidEntry& e) { entries_.push_back(e); }

  CpuidEntry& find_or_insert(uint32_t leaf, uint32_t subleaf, bool indexed) {
    CpuidEntry* e = find(leaf, subleaf);
    return e ? *e : insert(leaf, subleaf, indexed);
  }

  template <typename Pred>
  void erase_if(Pred pred) {
    std::erase_if(entries_, pred);
  }

  void erase_leaf(uint32_t leaf) {
    erase_if([leaf](const CpuidEntry& e) { return e.function == leaf; });
  }

  std::vector<CpuidEntry> take_sorted() && {
    std::sort(entries_.begin(), entries_.end(), [](const CpuidEntry& a, const CpuidEntry& b) {
      return a.function != b.function ? a.function < b.function : a.index < b.index;
    });
    return std::move(entries_);
  }

 private:
  std::vector<CpuidEntry> entries_;
};

// ---- named feature bits ----

struct Feature {
  uint32_t leaf;
  uint32_t subleaf;
  CpuidRegister reg;
  uint8_t bit;
  std::string_view name;
};

bool has(Table& t, const Feature& f) {
  const CpuidEntry* e = t.find(f.leaf, f.subleaf);
  return e && ((reg_value(*e, f.reg) >> f.bit) & 1);
}

void clear(Table& t, const Feature& f) {
  if (CpuidEntry* e = t.find(f.leaf, f.subleaf)) set_bit(reg_ref(*e, f.reg), f.bit, false);
}

// CPUID.1
constexpr Feature kPclmulqdq{1, 0, R::Ecx, 1, "PCLMULQDQ"};
constexpr Feature kFma{1, 0, R::Ecx, 12, "FMA"};
constexpr Feature kCx16{1, 0, R::Ecx, 13, "CX16"};
constexpr Feature kPdcm{1, 0, R::Ecx, 15, "PDCM"};
constexpr Feature kXsave{1, 0, R::Ecx, 26, "XSAVE"};
constexpr Feature kOsxsave{1, 0, R::Ecx, 27, "OSXSAVE"};
constexpr Feature kAvx{1, 0, R::Ecx, 28, "AVX"};
constexpr Feature kF16c{1, 0, R::Ecx, 29, "F16C"};
constexpr Feature kHypervisor{1, 0, R::Ecx, 31, "HYPERVISOR"};
constexpr Feature kHtt{1, 0, R::Edx, 28, "HTT"};
// CPUID.7.0
constexpr Feature kAvx2{7, 0, R::Ebx, 5, "AVX2"};
constexpr Feature kFdpExcptnOnly{7, 0, R::Ebx, 6, "FDP_EXCPTN_ONLY"};
constexpr Feature kZeroFcsFds{7, 0, R::Ebx, 13, "ZERO_FCS_FDS"};
constexpr Feature kMpx{7, 0, R::Ebx, 14, "MPX"};
constexpr Feature kAvx512f{7, 0, R::Ebx, 16, "AVX512F"};
constexpr Feature kAvx512dq{7, 0, R::Ebx, 17, "AVX512DQ"};
constexpr Feature kAvx512ifma{7, 0, R::Ebx, 21, "AVX512_IFMA"};
constexpr Feature kIntelPt{7, 0, R::Ebx, 25, "INTEL_PT"};
constexpr Feature kAvx512pf{7, 0, R::Ebx, 26, "AVX512PF"};
constexpr Feature kAvx512er{7, 0, R::Ebx, 27, "AVX512ER"};
constexpr Feature kAvx512cd{7, 0, R::Ebx, 28, "AVX512CD"};
constexpr Feature kAvx512bw{7, 0, R::Ebx, 30, "AVX512BW"};
constexpr Feature kAvx512vl{7, 0, R::Ebx, 31, "AVX512VL"};
constexpr Feature kAvx512vbmi{7, 0, R::Ecx, 1, "AVX512_VBMI"};
constexpr Feature kPku{7, 0, R::Ecx, 3, "PKU"};
constexpr Feature kOspke{7, 0, R::Ecx, 4, "OSPKE"};
constexpr Feature kWaitpkg{7, 0, R::Ecx, 5, "WAITPKG"};
constexpr Feature kAvx512vbmi2{7, 0, R::Ecx, 6, "AVX512_VBMI2"};
constexpr Feature kCetSs{7, 0, R::Ecx, 7, "CET_SS"};
constexpr Feature kVaes{7, 0, R::Ecx, 9, "VAES"};
constexpr Feature kVpclmulqdq{7, 0, R::Ecx, 10, "VPCLMULQDQ"};
constexpr Feature kAvx512vnni{7, 0, R::Ecx, 11, "AVX512_VNNI"};
constexpr Feature kAvx512bitalg{7, 0, R::Ecx, 12, "AVX512_BITALG"};
constexpr Feature kAvx512vpopcntdq{7, 0, R::Ecx, 14, "AVX512_VPOPCNTDQ"};
constexpr Feature kEnqcmd{7, 0, R::Ecx, 29, "ENQCMD"};
constexpr Feature kAvx5124vnniw{7, 0, R::Edx, 2, "AVX512_4VNNIW"};
constexpr Feature kAvx5124fmaps{7, 0, R::Edx, 3, "AVX512_4FMAPS"};
constexpr Feature kAvx512vp2intersect{7, 0, R::Edx, 8, "AVX512_VP2INTERSECT"};
constexpr Feature kArchLbr{7, 0, R::Edx, 19, "ARCH_LBR"};
constexpr Feature kCetIbt{7, 0, R::Edx, 20, "CET_IBT"};
constexpr Feature kAmxBf16{7, 0, R::Edx, 22, "AMX_BF16"};
constexpr Feature kAvx512fp16{7, 0, R::Edx, 23, "AVX512_FP16"};
constexpr Feature kAmxTile{7, 0, R::Edx, 24, "AMX_TILE"};
constexpr Feature kAmxInt8{7, 0, R::Edx, 25, "AMX_INT8"};
constexpr Feature kArchCapabilities{7, 0, R::Edx, 29, "ARCH_CAPABILITIES"};
// CPUID.7.1
constexpr Feature kSha512{7, 1, R::Eax, 0, "SHA512"};
constexpr Feature kSm3{7, 1, R::Eax, 1, "SM3"};
constexpr Feature kSm4{7, 1, R::Eax, 2, "SM4"};
constexpr Feature kAvxVnni{7, 1, R::Eax, 4, "AVX_VNNI"};
constexpr Feature kAvx512bf16{7, 1, R::Eax, 5, "AVX512_BF16"};
constexpr Feature kAmxFp16{7, 1, R::Eax, 21, "AMX_FP16"};
constexpr Feature kAvxIfma{7, 1, R::Eax, 23, "AVX_IFMA"};
constexpr Feature kAvxVnniInt8{7, 1, R::Edx, 4, "AVX_VNNI_INT8"};
constexpr Feature kAvxNeConvert{7, 1, R::Edx, 5, "AVX_NE_CONVERT"};
constexpr Feature kAmxComplex{7, 1, R::Edx, 8, "AMX_COMPLEX"};
constexpr Feature kAvxVnniInt16{7, 1, R::Edx, 10, "AVX_VNNI_INT16"};
constexpr Feature kAvx10{7, 1, R::Edx, 19, "AVX10"};
constexpr Feature kApx{7, 1, R::Edx, 21, "APX_F"};
// CPUID.0xD.1
constexpr Feature kXsaveopt{0xd, 1, R::Eax, 0, "XSAVEOPT"};
constexpr Feature kXsavec{0xd, 1, R::Eax, 1, "XSAVEC"};
constexpr Feature kXgetbv1{0xd, 1, R::Eax, 2, "XGETBV1"};
constexpr Feature kXsaves{0xd, 1, R::Eax, 3, "XSAVES"};
constexpr Feature kXfd{0xd, 1, R::Eax, 4, "XFD"};
// CPUID.0x8000_0001
constexpr Feature kXop{0x80000001, 0, R::Ecx, 11, "XOP"};
constexpr Feature kLwp{0x80000001, 0, R::Ecx, 15, "LWP"};
constexpr Feature kFma4{0x80000001, 0, R::Ecx, 16, "FMA4"};
constexpr Feature kTopoext{0x80000001, 0, R::Ecx, 22, "TOPOEXT"};

// A feature is only advertised if what it needs is. After Linux's cpuid-deps.c, plus the
// VEX-encoded extensions that need AVX (YMM) state even where Linux does not list it.
struct Dependency {
  Feature feature;
  Feature needs;
};
constexpr Dependency kDependencies[] = {
    {kOsxsave, kXsave},
    {kXsaveopt, kXsave},
    {kXsavec, kXsave},
    {kXsaves, kXsave},
    {kXgetbv1, kXsave},
    {kAvx, kXsave},
    {kPku, kXsave},
    {kMpx, kXsave},
    {kLwp, kXsave},
    {kApx, kXsave},
    {kOspke, kPku},
    {kXfd, kXsaves},
    {kXfd, kXgetbv1},
    {kEnqcmd, kXsaves},
    {kCetSs, kXsaves},
    {kCetIbt, kXsaves},
    {kArchLbr, kXsaves},
    {kAmxTile, kXfd},
    {kAmxBf16, kAmxTile},
    {kAmxInt8, kAmxTile},
    {kAmxFp16, kAmxTile},
    {kAmxComplex, kAmxTile},
    {kFma, kAvx},
    {kF16c, kAvx},
    {kAvx2, kAvx},
    {kVaes, kAvx},
    {kVpclmulqdq, kAvx},
    {kXop, kAvx},
    {kFma4, kAvx},
    {kAvxVnni, kAvx},
    {kAvxIfma, kAvx},
    {kAvxVnniInt8, kAvx},
    {kAvxNeConvert, kAvx},
    {kAvxVnniInt16, kAvx},
    {kSha512, kAvx},
    {kSm3, kAvx},
    {kSm4, kAvx},
    {kAvx10, kAvx},
    {kAvx512f, kAvx},
    {kAvx512dq, kAvx512f},
    {kAvx512ifma, kAvx512f},
    {kAvx512pf, kAvx512f},
    {kAvx512er, kAvx512f},
    {kAvx512cd, kAvx512f},
    {kAvx512bw, kAvx512f},
    {kAvx512vl, kAvx512f},
    {kAvx512vbmi, kAvx512f},
    {kAvx5124vnniw, kAvx512f},
    {kAvx5124fmaps, kAvx512f},
    {kAvx512vpopcntdq, kAvx512f},
    {kAvx512vbmi2, kAvx512vl},
    {kAvx512vnni, kAvx512vl},
    {kAvx512bitalg, kAvx512vl},
    {kAvx512vp2intersect, kAvx512vl},
    {kAvx512bf16, kAvx512vl},
    {kAvx512fp16, kAvx512bw},
};

struct Cleared {
  Feature feature;
  Feature because;
};

// Clears every advertised feature whose prerequisite is not advertised, until nothing changes.
std::vector<Cleared> close_dependencies(Table& t) {
  std::vector<Cleared> cleared;
  bool changed = true;
  while (changed) {
    changed = false;
    for (const auto& d : kDependencies) {
      if (has(t, d.feature) && !has(t, d.needs)) {
        clear(t, d.feature);
        cleared.push_back({d.feature, d.needs});
        changed = true;
      }
    }
  }
  return cleared;
}

// ---- vendor ----

enum class Vendor { Intel, Amd, Other };

Vendor vendor_of(const CpuidEntry& leaf0) {
  char id[12];
  std::memcpy(id, &leaf0.ebx, 4);
  std::memcpy(id + 4, &leaf0.edx, 4);
  std::memcpy(id + 8, &leaf0.ecx, 4);
  const std::string_view s(id, sizeof(id));
  if (s == "GenuineIntel") return Vendor::Intel;
  if (s == "AuthenticAMD" || s == "HygonGenuine") return Vendor::Amd;
  return Vendor::Other;
}

// ---- topology ----

struct Shape {
  uint32_t id;
  uint32_t count;
  uint32_t threads_per_core;
  uint32_t smt_shift;      // x2APIC id bits for the thread within a core
  uint32_t package_shift;  // x2APIC id bits for the logical processor within the package
};

Result<Shape> check_topology(const CpuTopology& topo) {
  if (topo.vcpu_count == 0 || topo.vcpu_count > kMaxCpuidVcpus) {
    return err("vCPU count {} is outside 1..{}", topo.vcpu_count, kMaxCpuidVcpus);
  }
  if (topo.vcpu_id >= topo.vcpu_count) {
    return err("vCPU id {} is not below the vCPU count {}", topo.vcpu_id, topo.vcpu_count);
  }
  if (topo.threads_per_core != 1 && topo.threads_per_core != 2) {
    return err("threads per core must be 1 or 2, not {}", topo.threads_per_core);
  }
  // A single vCPU has no sibling, whatever was asked (as Firecracker does).
  const uint32_t tpc = topo.vcpu_count == 1 ? 1 : topo.threads_per_core;
  if (topo.vcpu_count % tpc != 0) {
    return err("{} vCPUs cannot be split into cores of {} threads", topo.vcpu_count, tpc);
  }
  const uint32_t smt_shift = ceil_log2(tpc);
  return Shape{.id = topo.vcpu_id,
               .count = topo.vcpu_count,
               .threads_per_core = tpc,
               .smt_shift = smt_shift,
               .package_shift = std::max(smt_shift, ceil_log2(topo.vcpu_count))};
}

// Leaf 0x1: identity of this vCPU and the features the VMM owns.
void normalize_feature_info(Table& t, const Shape& s) {
  CpuidEntry& e = *t.find(0x1, 0);
  set_field(e.ebx, 8, 15, 8);  // CLFLUSH line size in 8-byte units: 64 bytes
  set_field(e.ebx, 16, 23, std::bit_ceil(s.count));
  set_field(e.ebx, 24, 31, s.id);  // initial APIC id
  // No IA32_PERF_CAPABILITIES for guests: the PMU is not virtualised.
  set_bit(e.ecx, kPdcm.bit, false);
  set_bit(e.ecx, kHypervisor.bit, true);
  set_bit(e.edx, kHtt.bit, s.count > 1);
}

// Leaf 0x4 (Intel deterministic cache parameters): who shares each cache.
Result<void> normalize_cache_params(Table& t, const Shape& s) {
  const uint32_t cores = s.count / s.threads_per_core;
  for (uint32_t i = 0;; ++i) {
    CpuidEntry* e = t.find(0x4, i);
    if (!e || (e->eax == 0 && e->ebx == 0 && e->ecx == 0 && e->edx == 0)) break;
    if (!(e->flags & hv::kCpuidFlagSignificantIndex) && i > 0) break;
    switch (get_field(e->eax, 5, 7)) {  // cache level
      case 1:
      case 2:
        set_field(e->eax, 14, 25, s.threads_per_core - 1);
        break;
      case 3:
        set_field(e->eax, 14, 25, s.count - 1);
        break;
      default:
        break;
    }
    if (cores - 1 > 63) return err("{} cores do not fit CPUID.4:EAX[31:26]", cores);
    set_field(e->eax, 26, 31, cores - 1);
  }
  return {};
}

// Leaf 0x6: no frequency control for guests (turbo, energy/performance bias).
void normalize_power(Table& t) {
  if (CpuidEntry* e = t.find(0x6, 0)) {
    set_bit(e->eax, 1, false);
    set_bit(e->ecx, 3, false);
  }
}

// Leaf 0xA: no architectural PMU for guests.
void normalize_pmu(Table& t) {
  if (CpuidEntry* e = t.find(0xa, 0)) e->eax = e->ebx = e->ecx = e->edx = 0;
}

// Leaves 0xB and 0x1F: SMT level, then core level covering the whole package; x2APIC id in EDX.
void normalize_extended_topology(Table& t, const Shape& s, uint32_t max_basic) {
  if (max_basic < 0xb) return;
  const auto level = [&](uint32_t index, uint32_t shift, uint32_t processors, uint32_t type) {
    return CpuidEntry{.function = 0xb,
                      .index = index,
                      .flags = hv::kCpuidFlagSignificantIndex,
                      .eax = shift,
                      .ebx = processors,
                      .ecx = (type << 8) | index,
                      .edx = s.id};
  };
  t.erase_leaf(0xb);
  t.add(level(0, s.smt_shift, s.threads_per_core, 1));  // SMT
  t.add(level(1, s.package_shift, s.count, 2));         // core
  // Type 0 ends the list; EDX still reports the x2APIC id, as on hardware.
  t.add(level(2, 0, 0, 0));

  // Leaf 0x1F is the preferred superset of 0xB; we have no levels beyond core, so it is a copy.
  if (max_basic >= 0x1f && t.find(0x1f, 0)) {
    t.erase_leaf(0x1f);
    for (uint32_t i = 0; i < 3; ++i) {
      CpuidEntry copy = *t.find(0xb, i);
      copy.function = 0x1f;
      t.add(copy);
    }
  }
}

void normalize_intel(Table& t) {
  if (CpuidEntry* e = t.find(0x7, 0)) {
    // Recommended for guests by KVM: the FPU CS/DS/DP are deprecated and only saved on errors.
    set_bit(e->ebx, kFdpExcptnOnly.bit, true);
    set_bit(e->ebx, kZeroFcsFds.bit, true);
    // UMWAIT/TPAUSE would idle the physical core from inside the guest.
    set_bit(e->ecx, kWaitpkg.bit, false);
  }
}

void normalize_amd(Table& t, const Shape& s, uint32_t max_extended) {
  // IA32_ARCH_CAPABILITIES is an Intel MSR; KVM emulates it on AMD, but guests must not rely on it.
  clear(t, kArchCapabilities);

  if (CpuidEntry* e = t.find(0x80000008, 0)) {
    set_field(e->ecx, 0, 7, s.count - 1);        // NC: logical processors - 1
    set_field(e->ecx, 12, 15, s.package_shift);  // ApicIdSize
  }

  // Cache topology and extended APIC id (TOPOEXT). Without the leaves, do not claim it.
  if (max_extended < 0x8000001e) clear(t, kTopoext);
  if (!has(t, kTopoext)) return;
  for (uint32_t i = 0;; ++i) {
    CpuidEntry* e = t.find(0x8000001d, i);
    if (!e || get_field(e->eax, 0, 4) == 0) break;  // cache type 0: no more caches
    if (!(e->flags & hv::kCpuidFlagSignificantIndex) && i > 0) break;
    switch (get_field(e->eax, 5, 7)) {
      case 1:
      case 2:
        set_field(e->eax, 14, 25, s.threads_per_core - 1);
        break;
      case 3:
        set_field(e->eax, 14, 25, s.count - 1);
        break;
      default:
        break;
    }
  }
  CpuidEntry& ext = t.find_or_insert(0x8000001e, 0, false);
  ext.eax = s.id;                                                     // extended APIC id
  ext.ebx = ((s.threads_per_core - 1) << 8) | (s.id >> s.smt_shift);  // threads/core, core id
  ext.ecx = 0;  // one node per processor, node id 0
  ext.edx = 0;
}

// Leaves 0x8000_0002..4. Kept from the hypervisor; when it reports none, a generic name for the
// vendor so that guests do not print an empty model name.
void normalize_brand(Table& t, Vendor vendor) {
  std::array<CpuidEntry*, 3> leaves = {t.find(0x80000002, 0), t.find(0x80000003, 0),
                                       t.find(0x80000004, 0)};
  for (const CpuidEntry* e : leaves) {
    if (!e || e->eax || e->ebx || e->ecx || e->edx) return;
  }
  std::string_view brand;
  if (vendor == Vendor::Amd) brand = "AMD EPYC";
  if (vendor == Vendor::Intel) brand = "Intel(R) Xeon(R) Processor";
  std::array<char, 48> text{};
  std::copy(brand.begin(), brand.end(), text.begin());
  for (size_t i = 0; i < leaves.size(); ++i) {
    std::memcpy(&leaves[i]->eax, &text[i * 16 + 0], 4);
    std::memcpy(&leaves[i]->ebx, &text[i * 16 + 4], 4);
    std::memcpy(&leaves[i]->ecx, &text[i * 16 + 8], 4);
    std::memcpy(&leaves[i]->edx, &text[i * 16 + 12], 4);
  }
}

// ---- XSAVE state ----

constexpr uint64_t kLegacyXsaveAreaSize = 512 + 64;  // FXSAVE image + XSAVE header

// Whether XSAVE state component `bit` may stay enabled given the advertised features. Components
// this code does not know stay as the hypervisor reported them.
bool component_allowed(Table& t, unsigned bit) {
  switch (bit) {
    case 2:
      return has(t, kAvx);
    case 3:
    case 4:
      return has(t, kMpx);
    case 5:
    case 6:
    case 7:
      return has(t, kAvx512f);
    case 8:
      return has(t, kIntelPt);
    case 9:
      return has(t, kPku);
    case 10:
      return has(t, kEnqcmd);
    case 11:
    case 12:
      return has(t, kCetSs) || has(t, kCetIbt);
    case 15:
      return has(t, kArchLbr);
    case 17:
    case 18:
      return has(t, kAmxTile);
    case 19:
      return has(t, kApx);
    default:
      return true;
  }
}

// Leaf 0xD (and the AMX leaves) agree with the features left: no XSAVE means an empty leaf, else
// only the state components whose features are advertised, with sizes to match.
void reconcile_xsave_leaves(Table& t, uint32_t max_basic) {
  if (!has(t, kAmxTile)) {
    for (uint32_t leaf : {0x1du, 0x1eu}) {
      t.erase_if([leaf](const CpuidEntry& e) { return e.function == leaf && e.index > 0; });
      if (CpuidEntry* e = t.find(leaf, 0)) e->eax = e->ebx = e->ecx = e->edx = 0;
    }
  }
  if (max_basic < 0xd) return;
  if (!has(t, kXsave)) {
    t.erase_leaf(0xd);
    t.insert(0xd, 0, true);
    t.insert(0xd, 1, true);
    return;
  }
  CpuidEntry* user = t.find(0xd, 0);
  if (!user) return;
  uint64_t xcr0 = user->eax | (uint64_t{user->edx} << 32);
  for (unsigned bit = 2; bit < 64; ++bit) {
    if (!component_allowed(t, bit)) xcr0 &= ~(uint64_t{1} << bit);
  }
  user->eax = static_cast<uint32_t>(xcr0);
  user->edx = static_cast<uint32_t>(xcr0 >> 32);

  uint64_t xss = 0;
  if (CpuidEntry* sup = t.find(0xd, 1)) {
    xss = has(t, kXsaves) ? sup->ecx | (uint64_t{sup->edx} << 32) : 0;
    for (unsigned bit = 0; bit < 64; ++bit) {
      if (!component_allowed(t, bit)) xss &= ~(uint64_t{1} << bit);
    }
    sup->ecx = static_cast<uint32_t>(xss);
    sup->edx = static_cast<uint32_t>(xss >> 32);
  }

  const uint64_t enabled = xcr0 | xss;
  t.erase_if([enabled](const CpuidEntry& e) {
    return e.function == 0xd && e.index >= 2 && (e.index >= 64 || !((enabled >> e.index) & 1));
  });
  user = t.find(0xd, 0);  // erasing moved the entries

  // ECX: the standard-format area for every user component; EBX (for the current XCR0) is
  // refreshed by KVM whenever the guest writes XCR0, so it only must not exceed ECX.
  uint64_t max_size = kLegacyXsaveAreaSize;
  for (unsigned bit = 2; bit < 64; ++bit) {
    if (!((xcr0 >> bit) & 1)) continue;
    const CpuidEntry* c = t.find(0xd, bit);
    if (!c) return;  // sizes unknown: keep what the hypervisor said
    max_size = std::max<uint64_t>(max_size, uint64_t{c->ebx} + c->eax);
  }
  user->ecx = static_cast<uint32_t>(max_size);
  user->ebx = std::min(user->ebx, user->ecx);
}

// ---- overrides ----

Result<void> apply_override(Table& t, const CpuidOverride& o) {
  CpuidEntry* e = t.find(o.leaf, o.subleaf);
  if (!e) {
    if (!o.value) return {};  // the guest reads zeros there anyway
    return err("cpuid override {}: the hypervisor reports no leaf {:#x} subleaf {:#x}",
               to_string(o), o.leaf, o.subleaf);
  }
  set_bit(reg_ref(*e, o.reg), o.bit, o.value);
  return {};
}

std::string describe(const Feature& f) {
  return fmt::format("{} ({:#x}:{}:{}:{})", f.name, f.leaf, f.subleaf, reg_name(f.reg), f.bit);
}

Result<void> check_override_held(Table& t, const CpuidOverride& o,
                                 const std::vector<Cleared>& cleared) {
  const CpuidEntry* e = t.find(o.leaf, o.subleaf);
  const bool now = e && ((reg_value(*e, o.reg) >> o.bit) & 1);
  if (now == o.value) return {};
  for (const auto& c : cleared) {
    if (c.feature.leaf == o.leaf && c.feature.subleaf == o.subleaf && c.feature.reg == o.reg &&
        c.feature.bit == o.bit) {
      return err("cpuid override {} sets {}, which needs {}, which is hidden or unsupported",
                 to_string(o), describe(c.feature), describe(c.because));
    }
  }
  return err(
      "cpuid override {} cannot take effect: leaf {:#x} is derived from the other "
      "features (XSAVE state sizes, topology)",
      to_string(o), o.leaf);
}

// ---- parsing ----

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Decimal, or hex with a 0x prefix; the whole text must be the number.
std::optional<uint64_t> parse_number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

const hv::CpuidEntry* find_cpuid_entry(std::span<const hv::CpuidEntry> entries, uint32_t leaf,
                                       uint32_t subleaf) {
  for (const auto& e : entries) {
    if (e.function == leaf &&
        (e.index == subleaf || (e.flags & hv::kCpuidFlagSignificantIndex) == 0)) {
      return &e;
    }
  }
  return nullptr;
}

std::string to_string(const CpuidOverride& o) {
  return fmt::format("{:#x}:{}:{}:{}={}", o.leaf, o.subleaf, reg_name(o.reg), o.bit,
                     o.value ? 1 : 0);
}

Result<CpuidOverride> parse_cpuid_override(std::string_view text) {
  const std::string_view item = trim(text);
  const auto fail = [&](std::string_view why) {
    return err(
        "cpuid override '{}': {} (expected LEAF:SUBLEAF:REGISTER:BIT=0|1, e.g. "
        "0x1:0:ecx:13=0)",
        item, why);
  };
  std::array<std::string_view, 4> parts;
  std::string_view rest = item;
  const size_t eq = rest.find('=');
  if (eq == std::string_view::npos) return fail("missing '='");
  const std::string_view value_text = trim(rest.substr(eq + 1));
  rest = rest.substr(0, eq);
  for (size_t i = 0; i < parts.size(); ++i) {
    const size_t colon = rest.find(':');
    if ((colon == std::string_view::npos) != (i == parts.size() - 1)) {
      return fail("needs exactly four ':'-separated fields before '='");
    }
    parts[i] = trim(rest.substr(0, colon));
    if (colon != std::string_view::npos) rest = rest.substr(colon + 1);
  }

  CpuidOverride o;
  const auto leaf = parse_number(parts[0]);
  if (!leaf || *leaf > UINT32_MAX)
    return fail(fmt::format("leaf '{}' is not a 32-bit number", parts[0]));
  o.leaf = static_cast<uint32_t>(*leaf);
  const auto subleaf = parse_number(parts[1]);
  if (!subleaf || *subleaf > UINT32_MAX) {
    return fail(fmt::format("subleaf '{}' is not a 32-bit number", parts[1]));
  }
  o.subleaf = static_cast<uint32_t>(*subleaf);

  std::string reg(parts[2]);
  std::transform(reg.begin(), reg.end(), reg.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (reg == "eax") {
    o.reg = R::Eax;
  } else if (reg == "ebx") {
    o.reg = R::Ebx;
  } else if (reg == "ecx") {
    o.reg = R::Ecx;
  } else if (reg == "edx") {
    o.reg = R::Edx;
  } else {
    return fail(fmt::format("register '{}' is not one of eax, ebx, ecx, edx", parts[2]));
  }

  const auto bit = parse_number(parts[3]);
  if (!bit || *bit > 31) return fail(fmt::format("bit '{}' is not a number in 0-31", parts[3]));
  o.bit = static_cast<uint8_t>(*bit);

  if (value_text != "0" && value_text != "1") {
    return fail(fmt::format("value '{}' must be 0 or 1", value_text));
  }
  o.value = value_text == "1";
  return o;
}

Result<std::vector<CpuidOverride>> parse_cpuid_overrides(std::string_view text) {
  std::vector<CpuidOverride> out;
  if (trim(text).empty()) return out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (trim(item).empty()) return err("cpuid overrides '{}': empty item between commas", text);
    IGN_ASSIGN_OR_RETURN(CpuidOverride o, parse_cpuid_override(item));
    out.push_back(o);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

Result<std::vector<hv::CpuidEntry>> build_cpuid(std::span<const hv::CpuidEntry> supported,
                                                const CpuTopology& topo, const CpuidMask& mask) {
  IGN_ASSIGN_OR_RETURN(const Shape shape, check_topology(topo));
  Table t(supported);
  const CpuidEntry* leaf0 = t.find(0x0, 0);
  if (!leaf0) return err("the hypervisor's CPUID has no leaf 0x0 (vendor, max leaf)");
  if (!t.find(0x1, 0)) return err("the hypervisor's CPUID has no leaf 0x1 (feature info)");
  const Vendor vendor = vendor_of(*leaf0);
  const uint32_t max_basic = leaf0->eax;
  const CpuidEntry* ext0 = t.find(0x80000000, 0);
  const uint32_t max_extended = ext0 ? ext0->eax : 0;

  normalize_feature_info(t, shape);
  IGN_TRY(normalize_cache_params(t, shape));
  normalize_power(t);
  normalize_pmu(t);
  normalize_extended_topology(t, shape, max_basic);
  if (vendor == Vendor::Intel) normalize_intel(t);
  if (vendor == Vendor::Amd) normalize_amd(t, shape, max_extended);
  normalize_brand(t, vendor);

  if (mask.hide_cx16) clear(t, kCx16);
  if (mask.hide_xsave) clear(t, kXsave);  // the dependency pass takes everything built on it
  for (const auto& o : mask.overrides) IGN_TRY(apply_override(t, o));

  const std::vector<Cleared> cleared = close_dependencies(t);
  reconcile_xsave_leaves(t, max_basic);
  for (const auto& o : mask.overrides) IGN_TRY(check_override_held(t, o, cleared));
  return std::move(t).take_sorted();
}

}  // namespace ignition::x86_64
