/* See mmio.h. */
#include "mmio.h"

#include "cmdline.h"
#include "cpu.h"
#include "time.h"

#define RESET_TIMEOUT_US 1000000

uint32_t virtio_read(const struct virtio_dev* d, uint32_t reg) {
  return mmio_read32(d->base + reg);
}
void virtio_write(const struct virtio_dev* d, uint32_t reg, uint32_t value) {
  mmio_write32(d->base + reg, value);
}

const char* virtio_device_name(uint32_t id) {
  switch (id) {
    case VIRTIO_ID_NET:
      return "net";
    case VIRTIO_ID_BLOCK:
      return "blk";
    case VIRTIO_ID_CONSOLE:
      return "console";
    case VIRTIO_ID_RNG:
      return "rng";
    case VIRTIO_ID_BALLOON:
      return "balloon";
    case VIRTIO_ID_VSOCK:
      return "vsock";
  }
  return "other";
}

struct discovery {
  struct virtio_dev* devs;
  int max;
  int count;
};

/* Records the device at `base` if one answers there. */
static void probe(struct discovery* ds, uint64_t base, uint64_t size, uint32_t gsi,
                  const char* found_by) {
  if (ds->count >= ds->max) return;
  if (mmio_read32(base + VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC) return;
  uint32_t id = mmio_read32(base + VIRTIO_MMIO_DEVICE_ID);
  if (id == 0) return; /* an empty transport */
  ds->devs[ds->count++] = (struct virtio_dev){
      .base = base,
      .size = size,
      .gsi = gsi,
      .version = mmio_read32(base + VIRTIO_MMIO_VERSION),
      .device_id = id,
      .vendor_id = mmio_read32(base + VIRTIO_MMIO_VENDOR_ID),
      .found_by = found_by,
  };
}

/* virtio_mmio.device=<size>[KMG]@<base>:<irq>[:<id>] (Linux's syntax). */
static void from_cmdline(struct str v, void* ctx) {
  uint64_t size, base, irq;
  size_t n = parse_u64(v, true, &size);
  if (!n || n >= v.len || v.p[n] != '@') return;
  v.p += n + 1, v.len -= n + 1;
  n = parse_u64(v, false, &base);
  if (!n || n >= v.len || v.p[n] != ':') return;
  v.p += n + 1, v.len -= n + 1;
  if (!parse_u64(v, false, &irq)) return;
  /* The identity map covers 4 GiB; anything else cannot be reached from here. */
  if (base >= 0x100000000ull || base + size > 0x100000000ull) return;
  probe(ctx, base, size, (uint32_t)irq, "cmdline");
}

int virtio_discover(const struct guest* g, struct virtio_dev* devs, int max) {
  struct discovery ds = {devs, max, 0};
  cmdline_for_each(&g->boot, "virtio_mmio.device=", from_cmdline, &ds);
  struct str unused;
  if (cmdline_option(&g->boot, "virtio_mmio.device=", &unused)) return ds.count;

  for (uint32_t i = 0; i < IGNITION_VIRTIO_SLOTS; i++) {
    probe(&ds, IGNITION_VIRTIO_BASE + (uint64_t)i * IGNITION_VIRTIO_STRIDE, IGNITION_VIRTIO_STRIDE,
          IGNITION_VIRTIO_IRQ_BASE + i, "ignition-window");
  }
  uint32_t qemu_irq_base = g->acpi.ioapic_count >= 2 ? 24 : g->acpi.have_madt ? 16 : 5;
  uint32_t qemu_slots = g->acpi.ioapic_count >= 2 ? QEMU_VIRTIO_SLOTS : 8;
  for (uint32_t i = 0; i < qemu_slots; i++) {
    probe(&ds, QEMU_VIRTIO_BASE + (uint64_t)i * QEMU_VIRTIO_STRIDE, QEMU_VIRTIO_STRIDE,
          qemu_irq_base + i, "qemu-window");
  }
  return ds.count;
}

bool virtio_find(const struct guest* g, uint32_t device_id, struct virtio_dev* dev) {
  struct virtio_dev devs[VIRTIO_MAX_DEVICES];
  int n = virtio_discover(g, devs, VIRTIO_MAX_DEVICES);
  for (int i = 0; i < n; i++) {
    if (devs[i].device_id == device_id) {
      *dev = devs[i];
      return true;
    }
  }
  return false;
}

uint32_t virtio_status(const struct virtio_dev* d) {
  return virtio_read(d, VIRTIO_MMIO_STATUS);
}
void virtio_set_status(struct virtio_dev* d, uint32_t status) {
  virtio_write(d, VIRTIO_MMIO_STATUS, status);
}

void virtio_reset(struct virtio_dev* d) {
  virtio_set_status(d, 0);
  /* A device may finish resetting later; it reads 0 once done. */
  uint64_t deadline = deadline_after_us(RESET_TIMEOUT_US);
  while (virtio_status(d) != 0 && !deadline_passed(deadline)) cpu_relax();
}

static uint64_t read_device_features(const struct virtio_dev* d) {
  virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  uint64_t lo = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
  virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  uint64_t hi = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
  return lo | hi << 32;
}

static const char* fail(struct virtio_dev* d, const char* why) {
  virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_FAILED);
  return why;
}

const char* virtio_init(struct virtio_dev* d, uint64_t wanted) {
  if (virtio_read(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC) return "no-magic";
  if (virtio_read(d, VIRTIO_MMIO_VERSION) != VIRTIO_MMIO_VERSION_MODERN) return "legacy-transport";
  virtio_reset(d);
  if (virtio_status(d) != 0) return "reset-stuck";
  virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
  virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  d->device_features = read_device_features(d);
  if (!(d->device_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))) return fail(d, "no-version-1");
  d->features = d->device_features & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
  virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
  virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> 32));
  virtio_set_status(d,
                    VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
  if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) return fail(d, "features-not-ok");
  return 0;
}

void virtio_driver_ok(struct virtio_dev* d) {
  virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

uint32_t virtio_ack_interrupt(struct virtio_dev* d) {
  uint32_t bits = virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
  if (bits) virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, bits);
  return bits;
}

/* Config fields are read with accesses of their own width (the spec requires it of
 * virtio-mmio drivers); a field that changed meanwhile is read again, a bounded number of
 * times so that a device whose generation never settles cannot hang the guest. */
#define CONFIG_RETRIES 100
#define CONFIG_ADDR(d, off) ((d)->base + VIRTIO_MMIO_CONFIG + (off))
#define CONFIG_READ(type, d, off)                                                          \
  do {                                                                                     \
    for (int tries = 0;; tries++) {                                                        \
      uint32_t gen = virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);                        \
      type v = *(volatile type*)CONFIG_ADDR(d, off);                                       \
      if (virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION) == gen || tries == CONFIG_RETRIES) \
        return v;                                                                          \
    }                                                                                      \
  } while (0)

uint8_t virtio_config_read8(const struct virtio_dev* d, uint32_t off) {
  CONFIG_READ(uint8_t, d, off);
}
uint16_t virtio_config_read16(const struct virtio_dev* d, uint32_t off) {
  CONFIG_READ(uint16_t, d, off);
}
uint32_t virtio_config_read32(const struct virtio_dev* d, uint32_t off) {
  CONFIG_READ(uint32_t, d, off);
}

uint64_t virtio_config_read64(const struct virtio_dev* d, uint32_t off) {
  for (int tries = 0;; tries++) {
    uint32_t gen = virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
    uint64_t lo = *(volatile uint32_t*)CONFIG_ADDR(d, off);
    uint64_t hi = *(volatile uint32_t*)CONFIG_ADDR(d, off + 4);
    if (virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION) == gen || tries == CONFIG_RETRIES)
      return lo | hi << 32;
  }
}

void virtio_config_write32(const struct virtio_dev* d, uint32_t off, uint32_t value) {
  mmio_write32(CONFIG_ADDR(d, off), value);
}
