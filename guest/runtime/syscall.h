/* Ring-3 wrappers for the few things only ring 0 may do (int3, see isr.S). */
#pragma once

#include <stdint.h>

uint64_t sys_rdmsr(uint32_t msr);
void sys_wrmsr(uint32_t msr, uint64_t value);
/* cli; hlt forever on this CPU. */
__attribute__((noreturn)) void sys_halt(void);
/* Loads an empty IDT and faults: the CPU shuts down (triple fault). */
__attribute__((noreturn)) void sys_triple_fault(void);
