/* See pvclock.h; the record layout and formula are KVM's (Documentation/virt/kvm/x86/msr.rst). */
#include "pvclock.h"

#include "cpu.h"
#include "syscall.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

bool kvmclock_available(void) {
  if (!(cpuid(1, 0).ecx & (1u << 31))) return false; /* no hypervisor */
  struct cpuid_regs r = cpuid(0x40000000, 0);
  bool kvm = r.ebx == 0x4b4d564b && r.ecx == 0x564b4d56 && r.edx == 0x4d; /* "KVMKVMKVM\0\0\0" */
  return kvm && (cpuid(0x40000001, 0).eax & KVM_FEATURE_CLOCKSOURCE2);
}

bool pvclock_enable(volatile struct pvclock* clock) {
  clock->version = 0;
  sys_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)clock | 1);
  return clock->version != 0; /* KVM fills it in before the guest runs again */
}

void pvclock_disable(void) {
  sys_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
}

uint64_t pvclock_read_ns(const volatile struct pvclock* clock) {
  uint32_t version;
  uint64_t tsc, stamp, system_time;
  uint32_t mul;
  int8_t shift;
  do {
    version = clock->version;
    __asm__ volatile("" ::: "memory");
    tsc = rdtsc();
    stamp = clock->tsc_timestamp;
    system_time = clock->system_time;
    mul = clock->tsc_to_system_mul;
    shift = clock->tsc_shift;
    __asm__ volatile("" ::: "memory");
  } while ((version & 1) || version != clock->version);
  uint64_t delta = tsc - stamp;
  delta = shift < 0 ? delta >> -shift : delta << shift;
  return system_time + (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

/* ns per tick = mul * 2^shift / 2^32, so kHz = 10^6 * 2^32 / (mul * 2^shift). */
uint64_t pvclock_tsc_khz(const volatile struct pvclock* clock) {
  uint32_t mul = clock->tsc_to_system_mul;
  int8_t shift = clock->tsc_shift;
  if (!mul) return 0;
  uint64_t khz = (1000000ull << 32) / mul;
  return shift >= 0 ? khz >> shift : khz << -shift;
}
