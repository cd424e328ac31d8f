/* See time.h. */
#include "time.h"

#include "cpu.h"
#include "pvclock.h"

#define ASSUMED_TSC_KHZ 3000000

static uint64_t khz = ASSUMED_TSC_KHZ;
static const char* source = "assumed";
static volatile struct pvclock probe __attribute__((aligned(64)));

void time_init(void) {
  if (!(cpuid(1, 0).ecx & (1u << 31))) return; /* no hypervisor */
  if (cpuid(0x40000000, 0).eax >= 0x40000010) {
    uint32_t leaf_khz = cpuid(0x40000010, 0).eax;
    if (leaf_khz) {
      khz = leaf_khz;
      source = "cpuid";
      return;
    }
  }
  if (kvmclock_available()) {
    bool ok = pvclock_enable(&probe);
    uint64_t probed = ok ? pvclock_tsc_khz(&probe) : 0;
    pvclock_disable();
    if (probed) {
      khz = probed;
      source = "kvmclock";
    }
  }
}

uint64_t tsc_khz(void) {
  return khz;
}
const char* tsc_khz_source(void) {
  return source;
}
uint64_t deadline_after_us(uint64_t us) {
  return rdtsc() + us * khz / 1000;
}
bool deadline_passed(uint64_t deadline) {
  return rdtsc() > deadline;
}

void delay_us(uint64_t us) {
  uint64_t end = deadline_after_us(us);
  while (!deadline_passed(end)) cpu_relax();
}
