/* serial-irq: COM1's IRQ (ISA 4, through the I/O APIC) must reach the CPU. Enabling the
 * THR-empty interrupt while the transmitter is idle raises it at once; the ring-0 handler
 * reads IIR (acknowledging it), counts and EOIs. */
#include "apic.h"
#include "cpu.h"
#include "report.h"
#include "ring0.h"
#include "serial.h"
#include "tests.h"
#include "time.h"

#define TIMEOUT_US 5000000

void test_serial_irq(struct guest* g) {
  const struct acpi_info* a = &g->acpi;
  uint32_t pin = a->serial_gsi - a->ioapic_gsi_base;
  uint64_t start = irq_counts[1];
  ioapic_route(a->ioapic_base, pin, VEC_SERIAL, g->bsp_apic_id, a->serial_irq_flags);
  outb(COM1 + UART_MCR, 0x03 | UART_MCR_OUT2);
  outb(COM1 + UART_IER, UART_IER_THRI);
  uint64_t deadline = deadline_after_us(TIMEOUT_US);
  while (irq_counts[1] == start && !deadline_passed(deadline)) cpu_relax();
  outb(COM1 + UART_IER, 0);
  outb(COM1 + UART_MCR, 0x03);
  ioapic_mask(a->ioapic_base, pin);
  uint64_t irqs = irq_counts[1] - start;
  if (irqs > 0) {
    report_pass(IGN_TEST_SERIAL_IRQ, "irqs=%lu gsi=%u", irqs, a->serial_gsi);
  } else {
    report_fail(IGN_TEST_SERIAL_IRQ, "no-interrupt gsi=%u", a->serial_gsi);
  }
}
