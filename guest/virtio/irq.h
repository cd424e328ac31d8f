/* Device interrupts for the virtio driver: a device's GSI is routed through whichever I/O APIC
 * serves it to VEC_VIRTIO, edge-triggered; the ring-0 handler only counts (isr.S), and ring 3
 * spins on the count. This is the path that exercises a VMM's irqfd wiring. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "virtq.h"

/* Routes d->gsi to VEC_VIRTIO on the boot CPU; false if no I/O APIC serves that GSI. */
bool virtio_irq_route(const struct guest* g, const struct virtio_dev* d);
void virtio_irq_mask(const struct guest* g, const struct virtio_dev* d);
/* Interrupts taken on VEC_VIRTIO so far. */
uint64_t virtio_irq_count(void);

/* Like virtq_transfer, but waits for the interrupt before looking at the used ring: the
 * interrupt status is acknowledged first (an edge only comes when the line was low). Returns
 * the length the device wrote, or -1; *irqs gets the interrupts that arrived. */
int64_t virtq_transfer_irq(struct virtq* q, const struct virtq_buf* bufs, int n,
                           uint64_t timeout_us, uint64_t* irqs);
