/* TSC-based deadlines. The TSC rate comes from the hypervisor: CPUID leaf 0x40000010 if
 * offered, else kvmclock's scale, else an assumed 3 GHz (timeouts then stretch or shrink a
 * little; they are generous). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

void time_init(void);
uint64_t tsc_khz(void);
const char* tsc_khz_source(void); /* "cpuid", "kvmclock" or "assumed" */
uint64_t deadline_after_us(uint64_t us);
bool deadline_passed(uint64_t deadline);
void delay_us(uint64_t us);
