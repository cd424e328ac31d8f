/* ACPI discovery: finds the RSDP, checks every table's checksum and pulls out what the tests
 * need from the MADT (CPUs, I/O APIC, IRQ overrides) and the FADT (flags, sleep and reset
 * registers, DSDT). Read once at start-up; the acpi test reports it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

#define ACPI_MAX_TABLES 32
#define ACPI_MAX_IOAPICS 4

/* Generic Address Structure. */
struct acpi_gas {
  uint8_t space_id; /* 0 = system memory, 1 = system I/O */
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;
  uint64_t address;
} __attribute__((packed));

#define ACPI_SPACE_MEMORY 0
#define ACPI_SPACE_IO 1

struct acpi_table_ref {
  char signature[5];
  uint64_t addr;
  uint32_t length;
  bool checksum_ok;
};

struct acpi_ioapic {
  uint64_t base;
  uint32_t gsi_base;
};

struct acpi_info {
  const char* error; /* why discovery stopped, if it did */
  uint64_t rsdp;
  bool rsdp_from_hint;
  uint8_t rsdp_revision;
  bool rsdp_ok; /* 20-byte checksum, and the 36-byte extended one for revision >= 2 */

  /* RSDT/XSDT first, then the tables it lists, then the DSDT. */
  struct acpi_table_ref tables[ACPI_MAX_TABLES];
  int table_count;

  /* MADT */
  bool have_madt;
  uint64_t lapic_base;
  uint64_t ioapic_base; /* the first I/O APIC */
  uint32_t ioapic_gsi_base;
  int ioapic_count;
  struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS]; /* all of them, up to ACPI_MAX_IOAPICS */
  int cpu_count; /* enabled local APICs (the ids fit in apic_ids up to MAX_CPUS) */
  uint32_t apic_ids[MAX_CPUS];
  uint32_t serial_gsi; /* ISA IRQ 4 after interrupt source overrides */
  uint16_t serial_irq_flags;

  /* FADT */
  bool have_fadt;
  uint32_t fadt_flags;
  bool hw_reduced;
  bool have_sleep_control;
  struct acpi_gas sleep_control;
  bool reset_supported;
  struct acpi_gas reset_reg;
  uint8_t reset_value;
  bool have_dsdt;
  bool dsdt_ok;
  int s5_sleep_type; /* SLP_TYP of \_S5 from the DSDT, -1 if not found */
};

void acpi_discover(struct acpi_info* acpi, uint64_t rsdp_hint);
/* Writes `value` to a GAS register (I/O port or MMIO). */
bool acpi_gas_write(const struct acpi_gas* reg, uint8_t value);
