/* cmdline: the kernel command line exactly as the guest sees it. */
#include "report.h"
#include "tests.h"

void test_cmdline(struct guest* g) {
  report_info("cmdline=%s", g->boot.cmdline);
  if (!g->boot.cmdline_addr) {
    report_fail(IGN_TEST_CMDLINE, "no-cmdline-pointer");
    return;
  }
  report_pass(IGN_TEST_CMDLINE, "len=%zu addr=0x%lx", g->boot.cmdline_len, g->boot.cmdline_addr);
}
