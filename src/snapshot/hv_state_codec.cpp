// Field order here is the section format: changing it needs a new kFormatVersion.
#include "snapshot/hv_state_codec.hpp"

#include "snapshot/codec.hpp"

namespace ignition::snapshot {

namespace {

// The smallest encodings, to bound counts before allocating.
constexpr size_t kXcrSize = 4 + 8;
constexpr size_t kMsrSize = 4 + 8;

void put_segment(Encoder& e, const hv::Segment& s) {
  e.u64(s.base);
  e.u32(s.limit);
  e.u16(s.selector);
  for (uint8_t v : {s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable}) e.u8(v);
}

hv::Segment get_segment(Decoder& d) {
  hv::Segment s{};
  s.base = d.u64();
  s.limit = d.u32();
  s.selector = d.u16();
  for (uint8_t* v : {&s.type, &s.present, &s.dpl, &s.db, &s.s, &s.l, &s.g, &s.avl, &s.unusable})
    *v = d.u8();
  return s;
}

void put_sregs(Encoder& e, const hv::Sregs& s) {
  for (const hv::Segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt})
    put_segment(e, *seg);
  for (const hv::DescriptorTable* t : {&s.gdt, &s.idt}) {
    e.u64(t->base);
    e.u16(t->limit);
  }
  for (uint64_t v : {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base}) e.u64(v);
  e.pod(s.interrupt_bitmap);
}

hv::Sregs get_sregs(Decoder& d) {
  hv::Sregs s{};
  for (hv::Segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt})
    *seg = get_segment(d);
  for (hv::DescriptorTable* t : {&s.gdt, &s.idt}) {
    t->base = d.u64();
    t->limit = d.u16();
  }
  for (uint64_t* v : {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base}) *v = d.u64();
  s.interrupt_bitmap = d.pod<std::array<uint64_t, 4>>();
  return s;
}

}  // namespace

std::vector<uint8_t> encode_vcpu_state(const hv::VcpuState& s) {
  Encoder e;
  e.pod_vector(std::span(s.cpuid));
  e.u32(static_cast<uint32_t>(s.mp_state));
  e.pod(s.regs);
  put_sregs(e, s.sregs);
  e.bytes(s.xsave);
  e.u64(s.xcrs.size());
  for (const auto& x : s.xcrs) {
    e.u32(x.index);
    e.u64(x.value);
  }
  e.pod(s.debug_regs.db);
  for (uint64_t v : {s.debug_regs.dr6, s.debug_regs.dr7, s.debug_regs.flags}) e.u64(v);
  e.pod(s.lapic.regs);
  e.u64(s.msrs.size());
  for (const auto& m : s.msrs) {
    e.u32(m.index);
    e.u64(m.value);
  }
  e.bytes(s.events);
  e.boolean(s.tsc_khz.has_value());
  e.u32(s.tsc_khz.value_or(0));
  return std::move(e).take();
}

Result<hv::VcpuState> decode_vcpu_state(std::span<const uint8_t> bytes) {
  Decoder d(bytes);
  hv::VcpuState s;
  s.cpuid = d.pod_vector<hv::CpuidEntry>();
  s.mp_state = static_cast<hv::MpState>(d.u32());
  s.regs = d.pod<hv::Regs>();
  s.sregs = get_sregs(d);
  s.xsave = d.bytes();
  s.xcrs.resize(d.count(kXcrSize));
  for (auto& x : s.xcrs) {
    x.index = d.u32();
    x.value = d.u64();
  }
  s.debug_regs.db = d.pod<std::array<uint64_t, 4>>();
  for (uint64_t* v : {&s.debug_regs.dr6, &s.debug_regs.dr7, &s.debug_regs.flags}) *v = d.u64();
  s.lapic.regs = d.pod<std::array<uint8_t, 1024>>();
  s.msrs.resize(d.count(kMsrSize));
  for (auto& m : s.msrs) {
    m.index = d.u32();
    m.value = d.u64();
  }
  s.events = d.bytes();
  bool has_tsc_khz = d.boolean();
  uint32_t tsc_khz = d.u32();
  if (has_tsc_khz) s.tsc_khz = tsc_khz;
  if (auto done = d.finish(); !done.ok()) return context(done.error(), "vCPU state");
  return s;
}

std::vector<uint8_t> encode_vm_state(const hv::VmState& s) {
  Encoder e;
  for (const auto* chip : {&s.pic_master, &s.pic_slave, &s.ioapic, &s.pit}) e.bytes(*chip);
  e.u64(s.clock.ns);
  e.u32(s.clock.flags);
  e.u64(s.clock.realtime_ns);
  e.u64(s.clock.host_tsc);
  return std::move(e).take();
}

Result<hv::VmState> decode_vm_state(std::span<const uint8_t> bytes) {
  Decoder d(bytes);
  hv::VmState s;
  for (auto* chip : {&s.pic_master, &s.pic_slave, &s.ioapic, &s.pit}) *chip = d.bytes();
  s.clock.ns = d.u64();
  s.clock.flags = d.u32();
  s.clock.realtime_ns = d.u64();
  s.clock.host_tsc = d.u64();
  if (auto done = d.finish(); !done.ok()) return context(done.error(), "VM state");
  return s;
}

}  // namespace ignition::snapshot
