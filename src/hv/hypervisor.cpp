// Defaults for the snapshot-state calls of the seam: "not supported", so a backend or a
// test double only implements what it has.
#include "hv/hypervisor.hpp"

namespace ignition::hv {

namespace {
Error unsupported(std::string_view what) {
  return err("{} is not supported by this hypervisor backend", what);
}
}  // namespace

Result<VcpuState> Vcpu::save_state(std::span<const uint32_t>) {
  return unsupported("saving vCPU state");
}
Result<void> Vcpu::restore_state(const VcpuState&) {
  return unsupported("restoring vCPU state");
}
Result<void> Vcpu::complete_pending_exit() {
  return unsupported("completing a pending exit");
}
Result<void> Vcpu::kvmclock_ctrl() {
  return unsupported("kvmclock control");
}
Result<MpState> Vcpu::get_mp_state() {
  return unsupported("reading the MP state");
}
Result<void> Vcpu::set_mp_state(MpState) {
  return unsupported("setting the MP state");
}
Result<std::vector<uint8_t>> Vcpu::get_xsave() {
  return unsupported("reading XSAVE state");
}
Result<void> Vcpu::set_xsave(std::span<const uint8_t>) {
  return unsupported("setting XSAVE state");
}
Result<std::vector<Xcr>> Vcpu::get_xcrs() {
  return unsupported("reading XCRs");
}
Result<void> Vcpu::set_xcrs(std::span<const Xcr>) {
  return unsupported("setting XCRs");
}
Result<DebugRegs> Vcpu::get_debug_regs() {
  return unsupported("reading debug registers");
}
Result<void> Vcpu::set_debug_regs(const DebugRegs&) {
  return unsupported("setting debug registers");
}
Result<std::vector<uint8_t>> Vcpu::get_vcpu_events() {
  return unsupported("reading vCPU events");
}
Result<void> Vcpu::set_vcpu_events(std::span<const uint8_t>) {
  return unsupported("setting vCPU events");
}
Result<std::vector<CpuidEntry>> Vcpu::get_cpuid() {
  return unsupported("reading CPUID");
}
Result<uint32_t> Vcpu::get_tsc_khz() {
  return unsupported("reading the TSC frequency");
}
Result<void> Vcpu::set_tsc_khz(uint32_t) {
  return unsupported("setting the TSC frequency");
}

Result<VmState> Vm::save_state() {
  return unsupported("saving VM state");
}
Result<void> Vm::restore_state(const VmState&, ClockRestore) {
  return unsupported("restoring VM state");
}
Result<ClockState> Vm::get_clock_state() {
  return unsupported("reading the clock state");
}
Result<void> Vm::set_clock_state(const ClockState&, ClockRestore) {
  return unsupported("setting the clock state");
}

}  // namespace ignition::hv
