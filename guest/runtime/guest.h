/* The guest's view of its machine, gathered once at start-up and handed to every test. */
#pragma once

#include <stdint.h>

#include "acpi.h"
#include "bootinfo.h"

enum exit_mode { EXIT_REBOOT, EXIT_SHUTDOWN, EXIT_TRIPLE_FAULT, EXIT_HANG };

struct guest {
  struct boot_info boot;
  struct acpi_info acpi;
  enum exit_mode exit_mode;
  uint32_t bsp_apic_id;
};

/* End of the loaded image (.bss included), from link.ld. */
extern char _end[];
