/* kvmclock: if KVM offers kvmclock2, register a pvclock page (wrmsr, via syscall), read the
 * clock twice from ring 3 with a short spin between, and check that it advanced. */
#include "pvclock.h"
#include "report.h"
#include "tests.h"
#include "time.h"

#define SPIN_US 2000

static volatile struct pvclock clock __attribute__((aligned(64)));

void test_kvmclock(struct guest* g) {
  (void)g;
  if (!kvmclock_available()) {
    report_pass(IGN_TEST_KVMCLOCK, "skipped=no-kvmclock");
    return;
  }
  if (!pvclock_enable(&clock)) {
    pvclock_disable();
    report_fail(IGN_TEST_KVMCLOCK, "never-updated");
    return;
  }
  uint64_t t1 = pvclock_read_ns(&clock);
  delay_us(SPIN_US);
  uint64_t t2 = pvclock_read_ns(&clock);
  uint64_t khz = pvclock_tsc_khz(&clock);
  pvclock_disable();
  report_info("kvmclock.ns=%lu", t1);
  report_info("kvmclock.tsc_khz=%lu", khz);
  if (t2 > t1) {
    report_pass(IGN_TEST_KVMCLOCK, "delta_ns=%lu", t2 - t1);
  } else {
    report_fail(IGN_TEST_KVMCLOCK, "not-advancing t1=%lu t2=%lu", t1, t2);
  }
}
