/* Local APIC (xAPIC MMIO) and I/O APIC access from ring 3: both are mapped user-accessible. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0

#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_LVT_MASKED (1u << 16)
#define LAPIC_TIMER_PERIODIC (1u << 17)
#define LAPIC_ICR_BUSY (1u << 12)
#define LAPIC_ICR_INIT 0x4500    /* INIT, level assert */
#define LAPIC_ICR_STARTUP 0x4600 /* SIPI, level assert; vector = start page */

void lapic_set_base(uint64_t base);
uint64_t lapic_base(void);
uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t value);
/* Enables the local APIC (spurious vector register). */
void lapic_enable(void);
/* Sends an IPI and waits (bounded) for delivery; false if it stayed pending. */
bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low);

uint32_t ioapic_read(uint64_t base, uint32_t reg);
void ioapic_write(uint64_t base, uint32_t reg, uint32_t value);
/* Programs redirection entry `pin`: fixed delivery to `apic_id`. `flags` are the MADT MPS
 * INTI flags (polarity bits 0-1, trigger bits 2-3; 0 = bus default: high, edge). */
void ioapic_route(uint64_t base, uint32_t pin, uint8_t vector, uint32_t apic_id, uint16_t flags);
void ioapic_mask(uint64_t base, uint32_t pin);
