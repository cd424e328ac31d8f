/* State shared between the ring-0 entry code (entry.S, isr.S, ring0.c) and ring 3.
 * Everything ring 0 writes lives in .data (RING0_DATA): ring 3 clears .bss at start-up. */
#pragma once

#include <stdint.h>

#include "layout.h"

#define RING0_DATA __attribute__((section(".data.ring0")))

/* What the first exception recorded (field order is used by isr.S). */
struct fault_info {
  uint64_t vector;
  uint64_t error;
  uint64_t rip;
  uint64_t cs;
  uint64_t rflags;
  uint64_t rsp;
  uint64_t cr2;
};

struct idt_gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};

/* Written by the boot entry code. */
extern uint32_t boot_entry_kind;
extern uint64_t boot_info_addr;
/* Which CPU index the next AP to start takes (written by the BSP before each SIPI). */
extern volatile uint32_t ap_boot_cpu;

extern struct fault_info fault_record;
extern volatile uint64_t irq_counts[3]; /* [0] = LAPIC timer, [1] = serial, [2] = virtio */
extern uint64_t lapic_eoi_reg;          /* address the interrupt handlers write to EOI */
extern struct idt_gate idt[256];

/* Handlers in isr.S, installed by idt.c. */
extern const uint64_t exception_stubs[32];
void syscall_entry(void);
void irq_timer(void);
void irq_serial(void);
void irq_virtio(void);
void irq_spurious(void);

/* Start-up code for APs (ap_trampoline.S), copied to AP_TRAMPOLINE_ADDR. */
extern const uint8_t ap_trampoline_start[];
extern const uint8_t ap_trampoline_end[];
