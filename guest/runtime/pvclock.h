/* KVM's paravirtual clock (kvmclock2): a page the hypervisor keeps updated with the scale
 * between the TSC and nanoseconds. Used by the kvmclock test and to learn the TSC rate. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct pvclock {
  uint32_t version; /* odd while the host updates the record */
  uint32_t pad0;
  uint64_t tsc_timestamp;
  uint64_t system_time;
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;
  uint8_t pad[2];
};

/* CPUID says KVM, with kvmclock2 (MSR_KVM_SYSTEM_TIME_NEW). */
bool kvmclock_available(void);
/* Registers `clock` with the hypervisor (through a syscall); false if it never got filled. */
bool pvclock_enable(volatile struct pvclock* clock);
void pvclock_disable(void);
uint64_t pvclock_read_ns(const volatile struct pvclock* clock);
uint64_t pvclock_tsc_khz(const volatile struct pvclock* clock);
