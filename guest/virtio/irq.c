/* See irq.h. */
#include "irq.h"

#include "apic.h"
#include "cpu.h"
#include "layout.h"
#include "ring0.h"
#include "time.h"

#define IOAPIC_VERSION_REG 1

/* The I/O APIC whose inputs include `gsi`, and the pin; false if none does. Without a MADT the
 * one I/O APIC at the default address serves GSIs from 0. */
static bool find_pin(const struct acpi_info* a, uint32_t gsi, uint64_t* base, uint32_t* pin) {
  struct acpi_ioapic fallback = {DEFAULT_IOAPIC_BASE, 0};
  int count = a->ioapic_count ? a->ioapic_count : 1;
  if (count > ACPI_MAX_IOAPICS) count = ACPI_MAX_IOAPICS;
  for (int i = 0; i < count; i++) {
    const struct acpi_ioapic* io = a->ioapic_count ? &a->ioapics[i] : &fallback;
    uint32_t pins = ((ioapic_read(io->base, IOAPIC_VERSION_REG) >> 16) & 0xff) + 1;
    if (gsi >= io->gsi_base && gsi < io->gsi_base + pins) {
      *base = io->base;
      *pin = gsi - io->gsi_base;
      return true;
    }
  }
  return false;
}

bool virtio_irq_route(const struct guest* g, const struct virtio_dev* d) {
  uint64_t base;
  uint32_t pin;
  if (!find_pin(&g->acpi, d->gsi, &base, &pin)) return false;
  ioapic_route(base, pin, VEC_VIRTIO, g->bsp_apic_id, 0); /* edge, active high */
  return true;
}

void virtio_irq_mask(const struct guest* g, const struct virtio_dev* d) {
  uint64_t base;
  uint32_t pin;
  if (find_pin(&g->acpi, d->gsi, &base, &pin)) ioapic_mask(base, pin);
}

uint64_t virtio_irq_count(void) {
  return irq_counts[2];
}

int64_t virtq_transfer_irq(struct virtq* q, const struct virtq_buf* bufs, int n,
                           uint64_t timeout_us, uint64_t* irqs) {
  virtio_ack_interrupt(q->dev);
  uint64_t before = virtio_irq_count();
  int head = virtq_add(q, bufs, n);
  if (head < 0) return -1;
  virtq_kick(q);
  uint64_t deadline = deadline_after_us(timeout_us);
  while (virtio_irq_count() == before && !deadline_passed(deadline)) cpu_relax();
  *irqs = virtio_irq_count() - before;
  if (*irqs == 0) return -1;
  virtio_ack_interrupt(q->dev);
  uint32_t len;
  if (virtq_wait(q, &len, timeout_us) != head) return -1;
  return len;
}
