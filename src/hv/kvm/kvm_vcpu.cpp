// The KVM vCPU: creation, KVM_RUN and exit decoding, registers, MSRs, CPUID and LAPIC.
#include "hv/kvm/kvm_vcpu.hpp"

#include "hv/kvm/flex_arrays.hpp"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace ignition::hv::kvm {

namespace {

Segment from_kvm(const kvm_segment& s) {
  return {s.base, s.limit, s.selector, s.type, s.present, s.dpl,
          s.db,   s.s,     s.l,        s.g,    s.avl,     s.unusable};
}

kvm_segment to_kvm(const Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}

Regs from_kvm(const kvm_regs& r) {
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,
          r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

kvm_regs to_kvm(const Regs& r) {
  return {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,
          r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
}

const char* exit_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN:
      return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION:
      return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_HYPERCALL:
      return "KVM_EXIT_HYPERCALL";
    case KVM_EXIT_DEBUG:
      return "KVM_EXIT_DEBUG";
    case KVM_EXIT_FAIL_ENTRY:
      return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_NMI:
      return "KVM_EXIT_NMI";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_X86_RDMSR:
      return "KVM_EXIT_X86_RDMSR";
    case KVM_EXIT_X86_WRMSR:
      return "KVM_EXIT_X86_WRMSR";
    case KVM_EXIT_DIRTY_RING_FULL:
      return "KVM_EXIT_DIRTY_RING_FULL";
    case KVM_EXIT_X86_BUS_LOCK:
      return "KVM_EXIT_X86_BUS_LOCK";
    case KVM_EXIT_NOTIFY:
      return "KVM_EXIT_NOTIFY";
    default:
      return "unhandled KVM exit";
  }
}

const char* internal_error_name(uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
      return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      return "exception during exception delivery";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      return "event delivery failed";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
      return "unexpected exit reason";
    default:
      return "internal error";
  }
}

// KVM refuses 256 or more MSRs in one KVM_GET_MSRS/KVM_SET_MSRS (MAX_IO_MSRS).
constexpr size_t kMaxMsrsPerCall = 255;

// One KVM_SET_MSRS call's argument, 4 KiB: on the stack, so that a reset allocates nothing.
struct MsrChunk {
  MsrsHeader header;
  kvm_msr_entry entries[kMaxMsrsPerCall];
};

}  // namespace

Result<std::unique_ptr<KvmVcpu>> KvmVcpu::create(int vm_fd, uint32_t id, const KvmCaps& caps,
                                                 std::shared_ptr<DirtyLog> dirty_log) {
  UniqueFd fd(::ioctl(vm_fd, KVM_CREATE_VCPU, static_cast<unsigned long>(id)));
  if (!fd.valid()) return err("KVM_CREATE_VCPU {}: {}", id, errno_string());
  void* run = ::mmap(nullptr, caps.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (run == MAP_FAILED) return err("mmap kvm_run for vCPU {}: {}", id, errno_string());
  auto* kvm_run_page = static_cast<kvm_run*>(run);
  if (caps.sync_regs) kvm_run_page->kvm_valid_regs = KVM_SYNC_X86_REGS;
  std::unique_ptr<KvmVcpu> vcpu(new KvmVcpu(std::move(fd), id, kvm_run_page, caps));
  if (dirty_log->ring_entries()) {
    IGN_ASSIGN_OR_RETURN(vcpu->dirty_ring_,
                         DirtyRing::map(vcpu->fd_.get(), dirty_log->ring_entries()));
    dirty_log->add_ring(vcpu->dirty_ring_.get());
  }
  vcpu->dirty_log_ = std::move(dirty_log);
  return vcpu;
}

KvmVcpu::~KvmVcpu() {
  if (dirty_ring_) dirty_log_->remove_ring(dirty_ring_.get());
  ::munmap(run_, run_size_);
}

Result<Exit> KvmVcpu::run() {
  int empty_drains = 0;
  for (;;) {
    if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        run_->immediate_exit = 0;
        return Exit{Interrupted{}};
      }
      return err("KVM_RUN on vCPU {}: {}", id_, errno_string());
    }
    synced_regs_valid_ = sync_regs_;
    // A full ring is the backend's business: drain it here, on this vCPU's thread, into the
    // VM's log (where the next collect_dirty() finds the pages) and go back in.
    if (run_->exit_reason != KVM_EXIT_DIRTY_RING_FULL || !dirty_ring_) return decode_exit();
    IGN_ASSIGN_OR_RETURN(uint32_t taken, dirty_log_->drain(*dirty_ring_));
    // Full twice with nothing to take: KVM overran the ring (it warns in its log), pages are
    // lost, and running on would spin here forever.
    if (taken == 0 && empty_drains++ > 0)
      return Exit{Fatal{"KVM_EXIT_DIRTY_RING_FULL with an empty dirty ring: KVM overran it"}};
    if (taken) empty_drains = 0;
  }
}

Exit KvmVcpu::decode_exit() {
  auto* raw = reinterpret_cast<uint8_t*>(run_);
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      auto size = static_cast<uint8_t>(run_->io.size);
      size_t bytes = static_cast<size_t>(run_->io.size) * run_->io.count;
      uint8_t* data = raw + run_->io.data_offset;
      if (run_->io.direction == KVM_EXIT_IO_OUT) return IoOut{run_->io.port, size, {data, bytes}};
      return IoIn{run_->io.port, size, {data, bytes}};
    }
    case KVM_EXIT_MMIO: {
      uint32_t len = std::min<uint32_t>(run_->mmio.len, sizeof(run_->mmio.data));
      if (run_->mmio.is_write) return MmioWrite{run_->mmio.phys_addr, {run_->mmio.data, len}};
      return MmioRead{run_->mmio.phys_addr, {run_->mmio.data, len}};
    }
    case KVM_EXIT_HLT:
      return Halted{};
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return Interrupted{};
    case KVM_EXIT_SHUTDOWN:
      return TripleFault{};
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run_->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          return SystemEvent{SystemEvent::Kind::Shutdown};
        case KVM_SYSTEM_EVENT_RESET:
          return SystemEvent{SystemEvent::Kind::Reset};
        default:
          return SystemEvent{SystemEvent::Kind::Crash};
      }
    case KVM_EXIT_INTERNAL_ERROR:
      return describe_internal_error();
    case KVM_EXIT_FAIL_ENTRY:
      return Fatal{fmt::format("KVM_EXIT_FAIL_ENTRY (hardware entry failure reason {:#x})",
                               run_->fail_entry.hardware_entry_failure_reason)};
    default:
      return Fatal{
          fmt::format("{} (exit reason {})", exit_name(run_->exit_reason), run_->exit_reason)};
  }
}

Fatal KvmVcpu::describe_internal_error() {
  auto& e = run_->internal;
  std::string what = fmt::format("KVM_EXIT_INTERNAL_ERROR: {} (suberror {})",
                                 internal_error_name(e.suberror), e.suberror);
  // With KVM_CAP_EXIT_ON_EMULATION_FAILURE, KVM hands over the instruction bytes.
  if (e.suberror == KVM_INTERNAL_ERROR_EMULATION &&
      (run_->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
    auto& f = run_->emulation_failure;
    what += " insn:";
    for (uint32_t i = 0; i < f.insn_size && i < sizeof(f.insn_bytes); ++i)
      what += fmt::format(" {:02x}", f.insn_bytes[i]);
  }
  return Fatal{what};
}

Result<Regs> KvmVcpu::get_regs() {
  if (synced_regs_valid_) return from_kvm(run_->s.regs.regs);
  kvm_regs r{};
  if (::ioctl(fd_.get(), KVM_GET_REGS, &r) < 0) return err("KVM_GET_REGS: {}", errno_string());
  return from_kvm(r);
}

Result<void> KvmVcpu::set_regs(const Regs& regs) {
  if (sync_regs_) {
    // Applied by KVM on the next KVM_RUN; no ioctl.
    run_->s.regs.regs = to_kvm(regs);
    run_->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    synced_regs_valid_ = true;
    return {};
  }
  return set_regs_now(regs);
}

Result<void> KvmVcpu::set_regs_now(const Regs& regs) {
  kvm_regs r = to_kvm(regs);
  if (::ioctl(fd_.get(), KVM_SET_REGS, &r) < 0) return err("KVM_SET_REGS: {}", errno_string());
  // A deferred write still in the kvm_run page would overwrite these on the next run.
  if (sync_regs_) {
    run_->kvm_dirty_regs &= ~static_cast<uint64_t>(KVM_SYNC_X86_REGS);
    synced_regs_valid_ = false;
  }
  return {};
}

Result<Sregs> KvmVcpu::get_sregs() {
  kvm_sregs k{};
  if (run_->kvm_dirty_regs & KVM_SYNC_X86_SREGS)
    k = run_->s.regs.sregs;  // written by reset_state(), not yet applied by a KVM_RUN
  else if (::ioctl(fd_.get(), KVM_GET_SREGS, &k) < 0)
    return err("KVM_GET_SREGS: {}", errno_string());
  Sregs s{};
  s.cs = from_kvm(k.cs);
  s.ds = from_kvm(k.ds);
  s.es = from_kvm(k.es);
  s.fs = from_kvm(k.fs);
  s.gs = from_kvm(k.gs);
  s.ss = from_kvm(k.ss);
  s.tr = from_kvm(k.tr);
  s.ldt = from_kvm(k.ldt);
  s.gdt = {k.gdt.base, k.gdt.limit};
  s.idt = {k.idt.base, k.idt.limit};
  s.cr0 = k.cr0;
  s.cr2 = k.cr2;
  s.cr3 = k.cr3;
  s.cr4 = k.cr4;
  s.cr8 = k.cr8;
  s.efer = k.efer;
  s.apic_base = k.apic_base;
  std::memcpy(s.interrupt_bitmap.data(), k.interrupt_bitmap, sizeof(k.interrupt_bitmap));
  return s;
}

kvm_sregs KvmVcpu::to_kvm_sregs(const Sregs& s) {
  kvm_sregs k{};
  k.cs = to_kvm(s.cs);
  k.ds = to_kvm(s.ds);
  k.es = to_kvm(s.es);
  k.fs = to_kvm(s.fs);
  k.gs = to_kvm(s.gs);
  k.ss = to_kvm(s.ss);
  k.tr = to_kvm(s.tr);
  k.ldt = to_kvm(s.ldt);
  k.gdt = {s.gdt.base, s.gdt.limit, {}};
  k.idt = {s.idt.base, s.idt.limit, {}};
  k.cr0 = s.cr0;
  k.cr2 = s.cr2;
  k.cr3 = s.cr3;
  k.cr4 = s.cr4;
  k.cr8 = s.cr8;
  k.efer = s.efer;
  k.apic_base = s.apic_base;
  std::memcpy(k.interrupt_bitmap, s.interrupt_bitmap.data(), sizeof(k.interrupt_bitmap));
  return k;
}

Result<void> KvmVcpu::set_sregs(const Sregs& s) {
  kvm_sregs k = to_kvm_sregs(s);
  if (::ioctl(fd_.get(), KVM_SET_SREGS, &k) < 0) return err("KVM_SET_SREGS: {}", errno_string());
  run_->kvm_dirty_regs &= ~static_cast<uint64_t>(KVM_SYNC_X86_SREGS);
  return {};
}

Result<Fpu> KvmVcpu::get_fpu() {
  kvm_fpu k{};
  if (::ioctl(fd_.get(), KVM_GET_FPU, &k) < 0) return err("KVM_GET_FPU: {}", errno_string());
  Fpu f{};
  std::memcpy(f.fpr.data(), k.fpr, sizeof(k.fpr));
  std::memcpy(f.xmm.data(), k.xmm, sizeof(k.xmm));
  f.fcw = k.fcw;
  f.fsw = k.fsw;
  f.ftwx = k.ftwx;
  f.last_opcode = k.last_opcode;
  f.last_ip = k.last_ip;
  f.last_dp = k.last_dp;
  f.mxcsr = k.mxcsr;
  return f;
}

Result<void> KvmVcpu::set_fpu(const Fpu& f) {
  kvm_fpu k{};
  std::memcpy(k.fpr, f.fpr.data(), sizeof(k.fpr));
  std::memcpy(k.xmm, f.xmm.data(), sizeof(k.xmm));
  k.fcw = f.fcw;
  k.fsw = f.fsw;
  k.ftwx = f.ftwx;
  k.last_opcode = f.last_opcode;
  k.last_ip = f.last_ip;
  k.last_dp = f.last_dp;
  k.mxcsr = f.mxcsr;
  if (::ioctl(fd_.get(), KVM_SET_FPU, &k) < 0) return err("KVM_SET_FPU: {}", errno_string());
  return {};
}

Result<void> KvmVcpu::set_msrs(std::span<const Msr> msrs) {
  for (size_t first = 0; first < msrs.size(); first += kMaxMsrsPerCall) {
    const auto chunk = msrs.subspan(first, std::min(kMaxMsrsPerCall, msrs.size() - first));
    MsrChunk buf;
    buf.header = {static_cast<uint32_t>(chunk.size()), 0};
    for (size_t i = 0; i < chunk.size(); ++i) buf.entries[i] = {chunk[i].index, 0, chunk[i].value};
    int n = ::ioctl(fd_.get(), kSetMsrs, &buf);
    if (n < 0) return err("KVM_SET_MSRS: {}", errno_string());
    if (static_cast<size_t>(n) != chunk.size())
      return err("KVM_SET_MSRS: KVM refused MSR {:#x}", chunk[static_cast<size_t>(n)].index);
  }
  return {};
}

Result<std::vector<Msr>> KvmVcpu::get_msrs(std::span<const uint32_t> indexes) {
  std::vector<Msr> out;
  out.reserve(indexes.size());
  size_t next = 0;
  while (next < indexes.size()) {
    const auto chunk = indexes.subspan(next, std::min(kMaxMsrsPerCall, indexes.size() - next));
    FlexBuffer<MsrsHeader, kvm_msr_entry> buf(chunk.size());
    buf.header()->nmsrs = static_cast<uint32_t>(chunk.size());
    for (size_t i = 0; i < chunk.size(); ++i) buf.entries()[i].index = chunk[i];
    int n = ::ioctl(fd_.get(), kGetMsrs, buf.header());
    if (n < 0) return err("KVM_GET_MSRS: {}", errno_string());
    for (int i = 0; i < n; ++i) out.push_back({buf.entries()[i].index, buf.entries()[i].data});
    // KVM stops at the first MSR it does not know: skip that one and carry on after it.
    const auto read = static_cast<size_t>(n);
    next += read < chunk.size() ? read + 1 : read;
  }
  return out;
}

Result<void> KvmVcpu::set_cpuid(std::span<const CpuidEntry> entries) {
  FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buf(entries.size());
  buf.header()->nent = static_cast<uint32_t>(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto& e = buf.entries()[i];
    e = {};
    e.function = entries[i].function;
    e.index = entries[i].index;
    e.flags = entries[i].flags;
    e.eax = entries[i].eax;
    e.ebx = entries[i].ebx;
    e.ecx = entries[i].ecx;
    e.edx = entries[i].edx;
  }
  if (::ioctl(fd_.get(), kSetCpuid2, buf.header()) < 0)
    return err("KVM_SET_CPUID2: {}", errno_string());
  cpuid_.assign(entries.begin(), entries.end());
  return {};
}

Result<LapicState> KvmVcpu::get_lapic() {
  kvm_lapic_state k{};
  if (::ioctl(fd_.get(), KVM_GET_LAPIC, &k) < 0) return err("KVM_GET_LAPIC: {}", errno_string());
  LapicState s{};
  std::memcpy(s.regs.data(), k.regs, sizeof(k.regs));
  return s;
}

Result<void> KvmVcpu::set_lapic(const LapicState& s) {
  kvm_lapic_state k{};
  std::memcpy(k.regs, s.regs.data(), sizeof(k.regs));
  if (::ioctl(fd_.get(), KVM_SET_LAPIC, &k) < 0) return err("KVM_SET_LAPIC: {}", errno_string());
  return {};
}

Result<uint64_t> KvmVcpu::translate(uint64_t gva) {
  kvm_translation t{};
  t.linear_address = gva;
  if (::ioctl(fd_.get(), KVM_TRANSLATE, &t) < 0) return err("KVM_TRANSLATE: {}", errno_string());
  if (!t.valid) return err("guest address {:#x} is not mapped", gva);
  return t.physical_address;
}

}  // namespace ignition::hv::kvm
