/* Field offsets follow Linux Documentation/arch/x86/zero-page.rst and boot.rst, and Xen's
 * public/arch-x86/hvm/start_info.h. */
#include "bootinfo.h"

#include "ign_protocol.h"
#include "layout.h"
#include "string.h"

/* boot_params (zero page) */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_VERSION 0x206
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128

/* hvm_start_info */
#define PVH_MAGIC 0x336ec578
#define PVH_VERSION 0x04
#define PVH_NR_MODULES 0x0c
#define PVH_MODLIST_PADDR 0x10
#define PVH_CMDLINE_PADDR 0x18
#define PVH_RSDP_PADDR 0x20
#define PVH_MEMMAP_PADDR 0x28
#define PVH_MEMMAP_ENTRIES 0x30

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

/* Only the low 4 GiB is mapped (and RAM ends at the MMIO gap). */
static bool readable(uint64_t addr, uint64_t len) {
  return addr < MMIO_GAP_START && len <= MMIO_GAP_START - addr;
}

static void copy_cmdline(struct boot_info* bi, uint64_t addr) {
  bi->cmdline_addr = addr;
  if (!addr) return;
  if (!readable(addr, CMDLINE_MAX)) {
    bi->error = "cmdline-not-in-ram";
    return;
  }
  bi->cmdline_len = strnlen((const char*)addr, CMDLINE_MAX - 1);
  memcpy(bi->cmdline, (const char*)addr, bi->cmdline_len);
  bi->cmdline[bi->cmdline_len] = 0;
}

static void read_boot_params(struct boot_info* bi, uint64_t bp) {
  bi->boot_protocol = rd16(bp + BP_HDR_VERSION);
  bi->rsdp_hint = rd64(bp + BP_ACPI_RSDP_ADDR);
  copy_cmdline(bi, rd32(bp + BP_CMD_LINE_PTR) | (uint64_t)rd32(bp + BP_EXT_CMD_LINE_PTR) << 32);
  bi->initrd_addr = rd32(bp + BP_RAMDISK_IMAGE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_IMAGE) << 32;
  bi->initrd_size = rd32(bp + BP_RAMDISK_SIZE) | (uint64_t)rd32(bp + BP_EXT_RAMDISK_SIZE) << 32;

  int n = rd8(bp + BP_E820_ENTRIES);
  if (n > BP_E820_MAX) {
    bi->error = "e820_entries>128";
    n = BP_E820_MAX;
  }
  for (int i = 0; i < n; i++) {
    uint64_t e = bp + BP_E820_TABLE + 20 * i; /* packed: u64 addr, u64 size, u32 type */
    bi->memmap[i] = (struct memmap_entry){rd64(e), rd64(e + 8), rd32(e + 16)};
  }
  bi->memmap_count = n;
}

static void read_pvh(struct boot_info* bi, uint64_t si) {
  if (rd32(si) != PVH_MAGIC) {
    bi->error = "bad-pvh-magic";
    return;
  }
  copy_cmdline(bi, rd64(si + PVH_CMDLINE_PADDR));
  bi->rsdp_hint = rd64(si + PVH_RSDP_PADDR);
  if (rd32(si + PVH_NR_MODULES) > 0 && readable(rd64(si + PVH_MODLIST_PADDR), 32)) {
    uint64_t mod = rd64(si + PVH_MODLIST_PADDR); /* u64 paddr, u64 size, u64 cmdline, u64 rsvd */
    bi->initrd_addr = rd64(mod);
    bi->initrd_size = rd64(mod + 8);
  }
  if (rd32(si + PVH_VERSION) < 1) return; /* version 0 has no memory map */
  uint64_t map = rd64(si + PVH_MEMMAP_PADDR);
  uint32_t n = rd32(si + PVH_MEMMAP_ENTRIES);
  if (n > MAX_MEMMAP) {
    bi->error = "memmap_entries>128";
    n = MAX_MEMMAP;
  }
  if (!readable(map, 24ull * n)) {
    bi->error = "memmap-not-in-ram";
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    uint64_t e = map + 24 * i; /* u64 addr, u64 size, u32 type, u32 reserved */
    bi->memmap[i] = (struct memmap_entry){rd64(e), rd64(e + 8), rd32(e + 16)};
  }
  bi->memmap_count = (int)n;
}

void bootinfo_read(struct boot_info* bi, uint32_t entry, uint64_t addr) {
  static const char* const names[] = {
      [ENTRY_PVH] = IGN_ENTRY_PVH,
      [ENTRY_ELF64] = IGN_ENTRY_ELF64,
      [ENTRY_BZIMAGE64] = IGN_ENTRY_BZIMAGE64,
      [ENTRY_BZIMAGE32] = IGN_ENTRY_BZIMAGE32,
      [ENTRY_BZIMAGE16] = IGN_ENTRY_BZIMAGE16,
  };
  bi->entry = entry;
  bi->entry_name =
      entry < sizeof(names) / sizeof(names[0]) && names[entry] ? names[entry] : "unknown";
  bi->raw_addr = addr;
  if (!addr || !readable(addr, 4096)) {
    bi->error = "no-boot-info";
    return;
  }
  if (entry == ENTRY_PVH) {
    read_pvh(bi, addr);
  } else {
    read_boot_params(bi, addr);
  }
}
