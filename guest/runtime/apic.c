/* See apic.h. The interrupt handlers (isr.S) EOI through lapic_eoi_reg, kept in step here. */
#include "apic.h"

#include "cpu.h"
#include "layout.h"
#include "ring0.h"
#include "time.h"

static uint64_t base = DEFAULT_LAPIC_BASE;

void lapic_set_base(uint64_t b) {
  base = b;
  lapic_eoi_reg = b + LAPIC_EOI;
}

uint64_t lapic_base(void) {
  return base;
}
uint32_t lapic_read(uint32_t reg) {
  return mmio_read32(base + reg);
}
void lapic_write(uint32_t reg, uint32_t value) {
  mmio_write32(base + reg, value);
}

void lapic_enable(void) {
  lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | VEC_SPURIOUS);
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_low) {
  lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
  lapic_write(LAPIC_ICR_LOW, icr_low);
  uint64_t deadline = deadline_after_us(100000);
  while (lapic_read(LAPIC_ICR_LOW) & LAPIC_ICR_BUSY) {
    if (deadline_passed(deadline)) return false;
    cpu_relax();
  }
  return true;
}

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))

uint32_t ioapic_read(uint64_t ioapic, uint32_t reg) {
  mmio_write32(ioapic + IOAPIC_REGSEL, reg);
  return mmio_read32(ioapic + IOAPIC_WINDOW);
}

void ioapic_write(uint64_t ioapic, uint32_t reg, uint32_t value) {
  mmio_write32(ioapic + IOAPIC_REGSEL, reg);
  mmio_write32(ioapic + IOAPIC_WINDOW, value);
}

void ioapic_route(uint64_t ioapic, uint32_t pin, uint8_t vector, uint32_t apic_id, uint16_t flags) {
  uint32_t low = vector;                            /* fixed delivery, physical destination */
  if ((flags & 0x3) == 0x3) low |= 1u << 13;        /* active low */
  if (((flags >> 2) & 0x3) == 0x3) low |= 1u << 15; /* level triggered */
  ioapic_write(ioapic, IOAPIC_REDTBL(pin) + 1, apic_id << 24);
  ioapic_write(ioapic, IOAPIC_REDTBL(pin), low);
}

void ioapic_mask(uint64_t ioapic, uint32_t pin) {
  ioapic_write(ioapic, IOAPIC_REDTBL(pin), 1u << 16);
}
