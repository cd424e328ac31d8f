/* boot: we are in ring 3, port I/O works there (this report is proof), and we know which entry
 * point the VMM used. RFLAGS.IOPL reads 3 under VMX/SVM; a PVM-based KVM keeps the real IOPL
 * at 0 and grants ports through the TSS I/O bitmap instead, so IOPL is reported, not required. */
#include "cpu.h"
#include "report.h"
#include "tests.h"
#include "time.h"

void test_boot(struct guest* g) {
  unsigned cpl = read_cs() & 3;
  unsigned iopl = (read_rflags() >> 12) & 3;
  report_info("boot.cpl=%u", cpl);
  report_info("boot.iopl=%u", iopl);
  report_info("boot.info=0x%lx", g->boot.raw_addr);
  report_info("boot.protocol=0x%x", g->boot.boot_protocol);
  report_info("tsc.khz=%lu", tsc_khz());
  report_info("tsc.source=%s", tsc_khz_source());
  if (g->boot.error) {
    report_fail(IGN_TEST_BOOT, "entry=%s error=%s", g->boot.entry_name, g->boot.error);
  } else if (cpl != 3) {
    report_fail(IGN_TEST_BOOT, "entry=%s cpl=%u iopl=%u", g->boot.entry_name, cpl, iopl);
  } else {
    report_pass(IGN_TEST_BOOT, "entry=%s", g->boot.entry_name);
  }
}
