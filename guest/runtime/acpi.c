/* Table layouts: ACPI 6.x spec, chapter 5.2 (RSDP 5.2.5, XSDT 5.2.8, FADT 5.2.9, MADT 5.2.12). */
#include "acpi.h"

#include "cpu.h"
#include "string.h"

#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_DSDT 40
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL 244
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_FLAG_HW_REDUCED (1u << 20)

#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_OVERRIDE 5

static uint8_t rd8(uint64_t a) {
  return *(const volatile uint8_t*)a;
}
static uint16_t rd16(uint64_t a) {
  return *(const volatile uint16_t*)a;
}
static uint32_t rd32(uint64_t a) {
  return *(const volatile uint32_t*)a;
}
static uint64_t rd64(uint64_t a) {
  return *(const volatile uint64_t*)a;
}

/* Only the low 4 GiB is mapped; a table claiming more than this is corrupt. */
#define MAPPED_END 0x100000000ull
#define MAX_TABLE_LENGTH (16u << 20)

static bool readable(uint64_t addr, uint64_t len) {
  return addr < MAPPED_END && len <= MAPPED_END - addr;
}

static bool checksum_ok(uint64_t addr, uint32_t len) {
  uint8_t sum = 0;
  for (uint32_t i = 0; i < len; i++) sum += rd8(addr + i);
  return sum == 0;
}

static bool is_rsdp(uint64_t addr) {
  return memcmp((const void*)addr, "RSD PTR ", 8) == 0 && checksum_ok(addr, 20);
}

static uint64_t find_rsdp(struct acpi_info* acpi, uint64_t hint) {
  if (hint && is_rsdp(hint)) {
    acpi->rsdp_from_hint = true;
    return hint;
  }
  for (uint64_t a = 0xe0000; a < 0x100000; a += 16) {
    if (is_rsdp(a)) return a;
  }
  return 0;
}

static struct acpi_table_ref* add_table(struct acpi_info* acpi, uint64_t addr) {
  if (acpi->table_count == ACPI_MAX_TABLES || !addr || !readable(addr, 36)) return 0;
  struct acpi_table_ref* t = &acpi->tables[acpi->table_count++];
  memcpy(t->signature, (const void*)addr, 4);
  t->signature[4] = 0;
  t->addr = addr;
  t->length = rd32(addr + 4);
  bool sane = t->length >= 36 && t->length <= MAX_TABLE_LENGTH && readable(addr, t->length);
  if (!sane) t->length = 36; /* keep later parsing inside the header */
  t->checksum_ok = sane && checksum_ok(addr, t->length);
  return t;
}

static void parse_madt(struct acpi_info* acpi, uint64_t madt, uint32_t len) {
  acpi->have_madt = true;
  acpi->lapic_base = rd32(madt + 36);
  acpi->serial_gsi = 4;
  for (uint64_t p = madt + 44; p + 2 <= madt + len && rd8(p + 1) >= 2; p += rd8(p + 1)) {
    switch (rd8(p)) {
      case MADT_LAPIC:
        if (rd32(p + 4) & 1) { /* enabled */
          if (acpi->cpu_count < MAX_CPUS) acpi->apic_ids[acpi->cpu_count] = rd8(p + 3);
          acpi->cpu_count++;
        }
        break;
      case MADT_IOAPIC:
        if (acpi->ioapic_count < ACPI_MAX_IOAPICS) {
          acpi->ioapics[acpi->ioapic_count].base = rd32(p + 4);
          acpi->ioapics[acpi->ioapic_count].gsi_base = rd32(p + 8);
        }
        if (acpi->ioapic_count++ == 0) {
          acpi->ioapic_base = rd32(p + 4);
          acpi->ioapic_gsi_base = rd32(p + 8);
        }
        break;
      case MADT_ISO:
        if (rd8(p + 3) == 4) { /* source IRQ 4: COM1 */
          acpi->serial_gsi = rd32(p + 4);
          acpi->serial_irq_flags = rd16(p + 8);
        }
        break;
      case MADT_LAPIC_OVERRIDE:
        acpi->lapic_base = rd64(p + 4);
        break;
    }
  }
}

/* Finds Name(_S5, Package(){ SLP_TYPa, ... }) in the DSDT's AML and returns SLP_TYPa.
 * Enough AML for the way firmware and VMMs write it; -1 if it looks different. */
static int find_s5(uint64_t dsdt, uint32_t len) {
  for (uint64_t p = dsdt + 36; p + 8 < dsdt + len; p++) {
    if (memcmp((const void*)p, "_S5_", 4) != 0 || rd8(p + 4) != 0x12) continue; /* PackageOp */
    uint64_t q = p + 5;
    q += 1 + (rd8(q) >> 6); /* PkgLength: lead byte + 0-3 follow bytes */
    q += 1;                 /* NumElements */
    uint8_t op = rd8(q);
    if (op == 0x0a) return rd8(q + 1);       /* BytePrefix */
    if (op == 0x00 || op == 0x01) return op; /* ZeroOp, OneOp */
    return -1;
  }
  return -1;
}

/* Returns the DSDT address. */
static uint64_t parse_fadt(struct acpi_info* acpi, uint64_t fadt, uint32_t len) {
  acpi->have_fadt = true;
  acpi->fadt_flags = rd32(fadt + FADT_FLAGS);
  acpi->hw_reduced = acpi->fadt_flags & FADT_FLAG_HW_REDUCED;
  if (len >= FADT_RESET_VALUE + 1 && (acpi->fadt_flags & FADT_FLAG_RESET_REG_SUP)) {
    memcpy(&acpi->reset_reg, (const void*)(fadt + FADT_RESET_REG), sizeof(acpi->reset_reg));
    acpi->reset_value = rd8(fadt + FADT_RESET_VALUE);
    acpi->reset_supported = acpi->reset_reg.address != 0;
  }
  if (len >= FADT_SLEEP_CONTROL + sizeof(struct acpi_gas)) {
    memcpy(&acpi->sleep_control, (const void*)(fadt + FADT_SLEEP_CONTROL),
           sizeof(acpi->sleep_control));
    acpi->have_sleep_control = acpi->sleep_control.address != 0;
  }
  uint64_t dsdt = len >= FADT_X_DSDT + 8 ? rd64(fadt + FADT_X_DSDT) : 0;
  if (!dsdt) dsdt = rd32(fadt + FADT_DSDT);
  return dsdt;
}

static void add_dsdt(struct acpi_info* acpi, uint64_t dsdt) {
  struct acpi_table_ref* t = add_table(acpi, dsdt);
  if (!t) return;
  acpi->have_dsdt = memcmp(t->signature, "DSDT", 4) == 0;
  acpi->dsdt_ok = acpi->have_dsdt && t->checksum_ok;
  if (acpi->have_dsdt) acpi->s5_sleep_type = find_s5(dsdt, t->length);
}

void acpi_discover(struct acpi_info* acpi, uint64_t rsdp_hint) {
  memset(acpi, 0, sizeof(*acpi));
  acpi->s5_sleep_type = -1;
  acpi->lapic_base = DEFAULT_LAPIC_BASE;
  acpi->ioapic_base = DEFAULT_IOAPIC_BASE;
  acpi->serial_gsi = 4;

  uint64_t rsdp = find_rsdp(acpi, rsdp_hint);
  if (!rsdp) {
    acpi->error = "no-rsdp";
    return;
  }
  acpi->rsdp = rsdp;
  acpi->rsdp_revision = rd8(rsdp + 15);
  bool xsdt = acpi->rsdp_revision >= 2 && rd64(rsdp + 24);
  acpi->rsdp_ok = acpi->rsdp_revision < 2 || (rd32(rsdp + 20) >= 36 && checksum_ok(rsdp, 36));

  uint64_t root = xsdt ? rd64(rsdp + 24) : rd32(rsdp + 16);
  struct acpi_table_ref* r = add_table(acpi, root);
  if (!r || !r->checksum_ok || memcmp(r->signature, xsdt ? "XSDT" : "RSDT", 4) != 0) {
    acpi->error = "bad-root-table";
    return;
  }
  unsigned entry_size = xsdt ? 8 : 4;
  uint32_t n = (r->length - 36) / entry_size;
  uint64_t dsdt = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t e = root + 36 + i * entry_size;
    struct acpi_table_ref* t = add_table(acpi, xsdt ? rd64(e) : rd32(e));
    if (!t) continue;
    if (memcmp(t->signature, "APIC", 4) == 0) parse_madt(acpi, t->addr, t->length);
    if (memcmp(t->signature, "FACP", 4) == 0) dsdt = parse_fadt(acpi, t->addr, t->length);
  }
  if (dsdt) add_dsdt(acpi, dsdt);
}

bool acpi_gas_write(const struct acpi_gas* reg, uint8_t value) {
  switch (reg->space_id) {
    case ACPI_SPACE_IO:
      outb((uint16_t)reg->address, value);
      return true;
    case ACPI_SPACE_MEMORY:
      mmio_write8(reg->address, value);
      return true;
    default:
      return false;
  }
}
