/* The virtio-mmio transport (version 2 only) as ring-3 code drives it: finding devices (the
 * kernel command line's virtio_mmio.device= entries, else scanning the MMIO windows ignition
 * and QEMU microvm use), the initialisation sequence up to FEATURES_OK, queue registers,
 * DRIVER_OK, interrupt acknowledgement and the device-specific config space. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "virtio.h"

#define VIRTIO_MAX_DEVICES 32

/* ignition's window (like Firecracker's): one 4 KiB slot per device, IRQ 5 + slot. */
#define IGNITION_VIRTIO_BASE 0xd0001000ull
#define IGNITION_VIRTIO_STRIDE 0x1000
#define IGNITION_VIRTIO_SLOTS 32
#define IGNITION_VIRTIO_IRQ_BASE 5
/* QEMU microvm (hw/i386/microvm.{h,c}): 512-byte slots from 0xfeb00000; IRQ 24 + slot with a
 * second I/O APIC (24 slots), else 16 + slot with ACPI, else 5 + slot (8 slots). */
#define QEMU_VIRTIO_BASE 0xfeb00000ull
#define QEMU_VIRTIO_STRIDE 0x200
#define QEMU_VIRTIO_SLOTS 24

struct virtio_dev {
  uint64_t base;
  uint64_t size;
  uint32_t gsi; /* the interrupt line, a GSI (I/O APIC input) */
  uint32_t version;
  uint32_t device_id;
  uint32_t vendor_id;
  const char* found_by;     /* "cmdline", "ignition-window" or "qemu-window" */
  uint64_t device_features; /* what the device offers */
  uint64_t features;        /* what was negotiated */
};

/* Every device with a virtio magic value and a nonzero device ID, up to `max`. Uses the
 * command line's entries if there are any, else scans both windows. */
int virtio_discover(const struct guest* g, struct virtio_dev* devs, int max);
/* The first device of this type; false if there is none. */
bool virtio_find(const struct guest* g, uint32_t device_id, struct virtio_dev* dev);
const char* virtio_device_name(uint32_t device_id);

/* Reset, ACKNOWLEDGE, DRIVER, negotiate (offered & (wanted | VERSION_1)), FEATURES_OK and
 * check that it stuck. Returns 0, or why it failed ("legacy-transport", "no-version-1",
 * "features-not-ok", ...); on failure the status is left with FAILED set. */
const char* virtio_init(struct virtio_dev* d, uint64_t wanted);
void virtio_driver_ok(struct virtio_dev* d);
void virtio_reset(struct virtio_dev* d);
uint32_t virtio_status(const struct virtio_dev* d);
void virtio_set_status(struct virtio_dev* d, uint32_t status);
static inline bool virtio_has(const struct virtio_dev* d, int bit) {
  return (d->features >> bit) & 1;
}

/* Raw register access. */
uint32_t virtio_read(const struct virtio_dev* d, uint32_t reg);
void virtio_write(const struct virtio_dev* d, uint32_t reg, uint32_t value);

/* Reads InterruptStatus and acknowledges every bit that was set; returns them. */
uint32_t virtio_ack_interrupt(struct virtio_dev* d);

/* Device config space (offsets from 0x100), read consistently against ConfigGeneration. */
uint8_t virtio_config_read8(const struct virtio_dev* d, uint32_t off);
uint16_t virtio_config_read16(const struct virtio_dev* d, uint32_t off);
uint32_t virtio_config_read32(const struct virtio_dev* d, uint32_t off);
uint64_t virtio_config_read64(const struct virtio_dev* d, uint32_t off);
void virtio_config_write32(const struct virtio_dev* d, uint32_t off, uint32_t value);
