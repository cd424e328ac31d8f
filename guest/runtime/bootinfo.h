/* What the VMM or firmware told the guest at boot, whichever protocol it used: the Linux zero
 * page (boot_params) or Xen PVH's hvm_start_info. Copied out at start-up, because low memory
 * (e.g. the AP trampoline page) is reused later. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_MEMMAP 128
#define CMDLINE_MAX 65536
#define E820_RAM 1

struct memmap_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

struct boot_info {
  uint32_t entry;         /* ENTRY_* from layout.h */
  const char* entry_name; /* IGN_ENTRY_* */
  uint64_t raw_addr;      /* where boot_params / hvm_start_info was */
  const char* error;      /* set if the structure looked wrong (e.g. bad PVH magic) */
  uint16_t boot_protocol; /* boot_params.hdr.version, 0 for PVH */

  char cmdline[CMDLINE_MAX];
  size_t cmdline_len;
  uint64_t cmdline_addr;

  struct memmap_entry memmap[MAX_MEMMAP];
  int memmap_count;

  uint64_t rsdp_hint; /* acpi_rsdp_addr / rsdp_paddr, 0 if not given */
  uint64_t initrd_addr;
  uint64_t initrd_size;
};

void bootinfo_read(struct boot_info* bi, uint32_t entry, uint64_t addr);
