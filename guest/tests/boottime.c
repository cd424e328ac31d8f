/* boottime: Firecracker's boot-timer device; the VMM logs the boot time when it sees this. */
#include "cpu.h"
#include "report.h"
#include "tests.h"

#define BOOT_TIMER_MAGIC 123

void test_boottime(struct guest* g) {
  (void)g;
  mmio_write8(BOOT_TIMER_ADDR, BOOT_TIMER_MAGIC);
  report_pass(IGN_TEST_BOOTTIME, "wrote=%d addr=0x%x", BOOT_TIMER_MAGIC, BOOT_TIMER_ADDR);
}
