/* vmgenid: finds the Virtual Machine Generation ID device in the DSDT's AML (_CID
 * "VM_Gen_Counter", Name (ADDR, Package { low, high })), reports the 16-byte ID and checks it
 * is not all zeros, then routes the Generic Event Device's GSI (ACPI0013's _CRS) to the CPU.
 * Run again later in the same boot (ign.tests=vmgenid,boottime,vmgenid with a snapshot at
 * the ready point), it reports whether the ID changed since and fails if it changed without
 * the GED interrupt (the host writes a new ID and raises it on every restore). Passes as
 * skipped without the device (QEMU). */
#include "apic.h"
#include "cpu.h"
#include "report.h"
#include "ring0.h"
#include "string.h"
#include "tests.h"
#include "time.h"

#define ID_SIZE 16
#define GRACE_US 200000 /* for an interrupt still in flight when the ID already changed */

struct aml_span {
  const uint8_t* p;
  const uint8_t* end;
};

/* First occurrence of `needle` in [from, s->end), or NULL. */
static const uint8_t* find(const struct aml_span* s, const uint8_t* from, const void* needle,
                           size_t len) {
  for (const uint8_t* p = from; p + len <= s->end; p++) {
    if (memcmp(p, needle, len) == 0) return p;
  }
  return NULL;
}

/* An AML integer (ZeroOp, OneOp, OnesOp or a Byte/Word/DWord/QWord constant) at *p;
 * advances *p past it. */
static bool aml_integer(const struct aml_span* s, const uint8_t** p, uint64_t* value) {
  static const int kSizes[] = {[0x0a] = 1, [0x0b] = 2, [0x0c] = 4, [0x0e] = 8};
  if (*p >= s->end) return false;
  uint8_t op = **p;
  if (op == 0x00 || op == 0x01 || op == 0xff) {
    *value = op == 0xff ? ~0ull : op;
    *p += 1;
    return true;
  }
  if (op >= sizeof(kSizes) / sizeof(kSizes[0]) || !kSizes[op]) return false;
  int n = kSizes[op];
  if (*p + 1 + n > s->end) return false;
  *value = 0;
  for (int i = 0; i < n; i++) *value |= (uint64_t)(*p)[1 + i] << (8 * i);
  *p += 1 + n;
  return true;
}

/* Name (ADDR, Package (2) { low, high }): NameOp "ADDR" PackageOp PkgLength 2 low high. */
static bool find_addr(const struct aml_span* s, uint64_t* addr) {
  static const uint8_t kName[] = {0x08, 'A', 'D', 'D', 'R', 0x12};
  for (const uint8_t* p = find(s, s->p, kName, sizeof(kName)); p;
       p = find(s, p + 1, kName, sizeof(kName))) {
    const uint8_t* q = p + sizeof(kName);
    if (q >= s->end) return false;
    q += 1 + (*q >> 6); /* PkgLength: lead byte + 0-3 follow bytes */
    if (q >= s->end || *q++ != 2) continue;
    uint64_t low, high;
    if (!aml_integer(s, &q, &low) || !aml_integer(s, &q, &high)) continue;
    *addr = (low & 0xffffffffu) | high << 32;
    return true;
  }
  return false;
}

/* The GSI in the Generic Event Device's _CRS: the first Extended Interrupt descriptor
 * (0x89, length 6, flags, count) after its _HID. */
static bool find_ged_gsi(const struct aml_span* s, uint32_t* gsi) {
  const uint8_t* hid = find(s, s->p, "ACPI0013", 8);
  if (!hid) return false;
  static const uint8_t kIrq[] = {0x89, 0x06, 0x00};
  const uint8_t* d = find(s, hid, kIrq, sizeof(kIrq));
  if (!d || d + 9 > s->end || d[4] != 1) return false;
  *gsi = (uint32_t)d[5] | (uint32_t)d[6] << 8 | (uint32_t)d[7] << 16 | (uint32_t)d[8] << 24;
  return true;
}

static void read_id(uint64_t addr, uint8_t id[ID_SIZE]) {
  const volatile uint8_t* p = (const volatile uint8_t*)addr;
  for (int i = 0; i < ID_SIZE; i++) id[i] = p[i];
}

static bool all_zero(const uint8_t id[ID_SIZE]) {
  for (int i = 0; i < ID_SIZE; i++) {
    if (id[i]) return false;
  }
  return true;
}

/* The ID as 32 hex digits, bytes in memory order. */
static void report_id(const char* key, const uint8_t id[ID_SIZE]) {
  static const char kHex[] = "0123456789abcdef";
  char text[2 * ID_SIZE + 1];
  for (int i = 0; i < ID_SIZE; i++) {
    text[2 * i] = kHex[id[i] >> 4];
    text[2 * i + 1] = kHex[id[i] & 0xf];
  }
  text[2 * ID_SIZE] = 0;
  report_info("%s=%s", key, text);
}

/* What the previous run saw; kept in RAM, so a restored snapshot remembers it. */
static struct {
  bool armed;
  uint8_t id[ID_SIZE];
  uint64_t irqs; /* irq_counts[2] then */
} last;

/* Routes the GED's GSI to VEC_VIRTIO (edge, counted in irq_counts[2]); false if the DSDT
 * has no GED or its GSI is not on the I/O APIC. */
static bool route_ged(struct guest* g, const struct aml_span* dsdt) {
  const struct acpi_info* a = &g->acpi;
  uint32_t gsi;
  if (!find_ged_gsi(dsdt, &gsi)) return false;
  uint32_t pins = ((ioapic_read(a->ioapic_base, 1) >> 16) & 0xff) + 1; /* IOAPICVER */
  if (gsi < a->ioapic_gsi_base || gsi - a->ioapic_gsi_base >= pins) return false;
  ioapic_route(a->ioapic_base, gsi - a->ioapic_gsi_base, VEC_VIRTIO, g->bsp_apic_id,
               0 /* edge, active high */);
  report_info("vmgenid.gsi=%u", gsi);
  return true;
}

void test_vmgenid(struct guest* g) {
  const struct acpi_info* a = &g->acpi;
  struct aml_span dsdt = {NULL, NULL};
  for (int i = 0; i < a->table_count; i++) {
    const struct acpi_table_ref* t = &a->tables[i];
    if (memcmp(t->signature, "DSDT", 4) == 0 && t->checksum_ok && t->length > 36) {
      dsdt.p = (const uint8_t*)t->addr + 36; /* the AML after the header */
      dsdt.end = (const uint8_t*)t->addr + t->length;
    }
  }
  if (!dsdt.p) {
    report_fail(IGN_TEST_VMGENID, "no-dsdt");
    return;
  }
  if (!find(&dsdt, dsdt.p, "VM_Gen_Counter", 14)) {
    report_pass(IGN_TEST_VMGENID, "skipped=no-vmgenid");
    return;
  }
  uint64_t addr;
  if (!find_addr(&dsdt, &addr)) {
    report_fail(IGN_TEST_VMGENID, "no-addr");
    return;
  }
  report_info("vmgenid.addr=0x%lx", addr);
  if (addr % 8 || addr + ID_SIZE > MMIO_GAP_START) {
    report_fail(IGN_TEST_VMGENID, "bad-addr addr=0x%lx", addr);
    return;
  }
  uint8_t id[ID_SIZE];
  read_id(addr, id);
  report_id(IGN_INFO_VMGENID_ID, id);
  if (all_zero(id)) {
    report_fail(IGN_TEST_VMGENID, "zero-id addr=0x%lx", addr);
    return;
  }

  if (!last.armed) {
    if (!route_ged(g, &dsdt)) {
      report_fail(IGN_TEST_VMGENID, "no-ged-interrupt");
      return;
    }
    memcpy(last.id, id, ID_SIZE);
    last.irqs = irq_counts[2];
    last.armed = true;
    report_pass(IGN_TEST_VMGENID, "addr=0x%lx", addr);
    return;
  }

  bool changed = memcmp(id, last.id, ID_SIZE) != 0;
  if (changed && irq_counts[2] == last.irqs) {
    /* The host raises the interrupt right after writing the ID; give it time to land. */
    uint64_t deadline = deadline_after_us(GRACE_US);
    while (irq_counts[2] == last.irqs && !deadline_passed(deadline)) cpu_relax();
  }
  uint64_t irqs = irq_counts[2] - last.irqs;
  memcpy(last.id, id, ID_SIZE);
  last.irqs = irq_counts[2];
  report_info(IGN_INFO_VMGENID_CHANGED "=%s", changed ? "yes" : "no");
  report_info("vmgenid.irqs=%lu", irqs);
  if (changed && !irqs) {
    report_fail(IGN_TEST_VMGENID, "changed-without-interrupt");
  } else {
    report_pass(IGN_TEST_VMGENID, "addr=0x%lx changed=%s irqs=%lu", addr, changed ? "yes" : "no",
                irqs);
  }
}
