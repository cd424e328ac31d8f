/* timer: the local APIC timer in periodic mode must deliver interrupts to ring 0 while ring 3
 * spins (ring 3 cannot hlt). KVM's APIC bus runs at 1 GHz: 1,000,000 counts = 1 ms. */
#include "apic.h"
#include "cpu.h"
#include "report.h"
#include "ring0.h"
#include "tests.h"
#include "time.h"

#define TIMER_COUNT 1000000
#define WANT_TICKS 5
#define TIMEOUT_US 5000000
#define DIVIDE_BY_1 0xb

void test_timer(struct guest* g) {
  (void)g;
  uint64_t start = irq_counts[0];
  uint64_t t0 = rdtsc();
  lapic_write(LAPIC_TIMER_DIVIDE, DIVIDE_BY_1);
  lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LAPIC_TIMER_PERIODIC);
  lapic_write(LAPIC_TIMER_INITIAL, TIMER_COUNT);
  uint64_t deadline = deadline_after_us(TIMEOUT_US);
  while (irq_counts[0] - start < WANT_TICKS && !deadline_passed(deadline)) cpu_relax();
  lapic_write(LAPIC_TIMER_INITIAL, 0);
  lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
  uint64_t ticks = irq_counts[0] - start;
  uint64_t us = (rdtsc() - t0) * 1000 / tsc_khz();
  if (ticks >= WANT_TICKS) {
    report_pass(IGN_TEST_TIMER, "ticks=%lu us=%lu", ticks, us);
  } else {
    report_fail(IGN_TEST_TIMER, "ticks=%lu us=%lu", ticks, us);
  }
}
