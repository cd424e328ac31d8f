/* e820: the memory map. RAM must cover the guest's own image at 1 MiB, and nothing usable may
 * sit in the 32-bit MMIO gap [0xd0000000, 4 GiB). */
#include "report.h"
#include "tests.h"

#define GAP_END 0x100000000ull

void test_e820(struct guest* g) {
  const struct boot_info* b = &g->boot;
  uint64_t image_end = (uint64_t)_end;
  bool covers_image = false;
  int in_gap = -1;
  for (int i = 0; i < b->memmap_count; i++) {
    const struct memmap_entry* e = &b->memmap[i];
    report_info("e820=0x%lx:0x%lx:%u", e->addr, e->size, e->type);
    if (e->type != E820_RAM) continue;
    uint64_t end = e->addr + e->size;
    if (e->addr <= LOAD_ADDR && end >= image_end) covers_image = true;
    if (e->addr < GAP_END && end > MMIO_GAP_START) in_gap = i;
  }
  report_info("e820.count=%d", b->memmap_count);
  if (b->memmap_count == 0) {
    report_fail(IGN_TEST_E820, "empty");
  } else if (!covers_image) {
    report_fail(IGN_TEST_E820, "no-ram-at-1MiB image_end=0x%lx", image_end);
  } else if (in_gap >= 0) {
    report_fail(IGN_TEST_E820, "ram-in-mmio-gap entry=%d", in_gap);
  } else {
    report_pass(IGN_TEST_E820, "entries=%d", b->memmap_count);
  }
}
