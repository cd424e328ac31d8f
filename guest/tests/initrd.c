/* initrd: where the initial ramdisk landed and an FNV-1a hash of it, so the host can check
 * that every byte arrived. Passes as skipped when there is none. */
#include "report.h"
#include "tests.h"

static uint64_t fnv1a64(const volatile uint8_t* p, uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void test_initrd(struct guest* g) {
  const struct boot_info* b = &g->boot;
  if (!b->initrd_size) {
    report_pass(IGN_TEST_INITRD, "skipped=no-initrd");
    return;
  }
  if (b->initrd_addr + b->initrd_size > MMIO_GAP_START) {
    report_fail(IGN_TEST_INITRD, "beyond-mapped-ram addr=0x%lx size=0x%lx", b->initrd_addr,
                b->initrd_size);
    return;
  }
  uint64_t hash = fnv1a64((const volatile uint8_t*)b->initrd_addr, b->initrd_size);
  report_info("initrd=0x%lx:0x%lx", b->initrd_addr, b->initrd_size);
  report_pass(IGN_TEST_INITRD, "size=%lu fnv1a64=0x%016lx", b->initrd_size, hash);
}
