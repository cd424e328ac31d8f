/* acpi: RSDP, XSDT and every table found with valid checksums; MADT lists CPUs and an I/O
 * APIC; the FADT is hardware-reduced (as on Firecracker and QEMU microvm); a DSDT exists. */
#include "acpi.h"

#include "print.h"
#include "report.h"
#include "tests.h"

static const char* space_name(uint8_t id) {
  return id == ACPI_SPACE_IO ? "io" : id == ACPI_SPACE_MEMORY ? "mem" : "other";
}

void test_acpi(struct guest* g) {
  const struct acpi_info* a = &g->acpi;
  if (!a->rsdp) {
    report_fail(IGN_TEST_ACPI, "%s", a->error);
    return;
  }
  report_info("acpi.rsdp=0x%lx", a->rsdp);
  report_info("acpi.rsdp.revision=%u", a->rsdp_revision);
  report_info("acpi.rsdp.source=%s", a->rsdp_from_hint ? "boot-info" : "scan");

  char names[5 * (ACPI_MAX_TABLES + 1)];
  struct strbuf list = {names, sizeof(names), 0};
  sbprintf(&list, "RSDP");
  char bad[5 * ACPI_MAX_TABLES];
  struct strbuf bad_list = {bad, sizeof(bad), 0};
  bad[0] = 0;
  for (int i = 0; i < a->table_count; i++) {
    sbprintf(&list, ",%s", a->tables[i].signature);
    if (!a->tables[i].checksum_ok)
      sbprintf(&bad_list, "%s%s", bad_list.len ? "," : "", a->tables[i].signature);
  }
  report_info("acpi.tables=%s", names);

  if (a->have_madt) {
    report_info("acpi.cpus=%d", a->cpu_count);
    report_info("acpi.lapic=0x%lx", a->lapic_base);
    report_info("acpi.ioapic=0x%lx", a->ioapic_base);
    report_info("acpi.ioapics=%d", a->ioapic_count);
  }
  if (a->have_fadt) {
    report_info("acpi.hw_reduced=%d", a->hw_reduced);
    if (a->have_sleep_control) {
      report_info("acpi.sleep_control=%s:0x%lx", space_name(a->sleep_control.space_id),
                  a->sleep_control.address);
    } else {
      report_info("acpi.sleep_control=none");
    }
    if (a->reset_supported) {
      report_info("acpi.reset=%s:0x%lx:0x%x", space_name(a->reset_reg.space_id),
                  a->reset_reg.address, a->reset_value);
    }
    report_info("acpi.s5=%d", a->s5_sleep_type);
  }

  if (a->error) {
    report_fail(IGN_TEST_ACPI, "%s", a->error);
  } else if (!a->rsdp_ok) {
    report_fail(IGN_TEST_ACPI, "bad-rsdp-checksum");
  } else if (bad[0]) {
    report_fail(IGN_TEST_ACPI, "bad-checksum=%s", bad);
  } else if (!a->have_madt || a->cpu_count == 0 || a->ioapic_count == 0) {
    report_fail(IGN_TEST_ACPI, "madt-missing-or-empty");
  } else if (!a->have_fadt) {
    report_fail(IGN_TEST_ACPI, "no-fadt");
  } else if (!a->hw_reduced) {
    report_fail(IGN_TEST_ACPI, "fadt-not-hw-reduced flags=0x%x", a->fadt_flags);
  } else if (!a->have_dsdt) {
    report_fail(IGN_TEST_ACPI, "no-dsdt");
  } else {
    report_pass(IGN_TEST_ACPI, "tables=%d cpus=%d", a->table_count + 1, a->cpu_count);
  }
}
