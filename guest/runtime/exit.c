/* Each exit path falls back to the next more forceful one if the VMM ignores it, so a guest
 * never just stops: reboot -> ACPI reset register -> triple fault; shutdown -> reboot. */
#include "exit.h"

#include "cpu.h"
#include "report.h"
#include "syscall.h"
#include "time.h"

#define I8042_COMMAND 0x64
#define I8042_RESET_CPU 0xfe
#define ACPI_SLP_EN (1u << 5)
#define ACPI_S5_DEFAULT 5
/* How long to wait for the VMM to act on a request before trying the next way out. */
#define EXIT_GRACE_US 10000

static void reboot(const struct acpi_info* acpi) {
  outb(I8042_COMMAND, I8042_RESET_CPU);
  delay_us(EXIT_GRACE_US);
  if (acpi->reset_supported) {
    acpi_gas_write(&acpi->reset_reg, acpi->reset_value);
    delay_us(EXIT_GRACE_US);
  }
  sys_triple_fault();
}

static void shutdown(const struct acpi_info* acpi) {
  if (acpi->have_sleep_control) {
    int slp_typ = acpi->s5_sleep_type >= 0 ? acpi->s5_sleep_type : ACPI_S5_DEFAULT;
    acpi_gas_write(&acpi->sleep_control, (uint8_t)((slp_typ << 2) | ACPI_SLP_EN));
    delay_us(EXIT_GRACE_US);
    report_info("exit.shutdown=ignored");
  } else {
    report_info("exit.shutdown=no-sleep-control-register");
  }
  reboot(acpi);
}

void guest_exit(const struct guest* g) {
  switch (g->exit_mode) {
    case EXIT_SHUTDOWN:
      shutdown(&g->acpi);
      break;
    case EXIT_TRIPLE_FAULT:
      sys_triple_fault();
    case EXIT_HANG:
      for (;;) cpu_relax();
    case EXIT_REBOOT:
      break;
  }
  reboot(&g->acpi);
  __builtin_unreachable();
}
