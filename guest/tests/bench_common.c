/* See bench_common.h. */
#include "bench_common.h"

#include "cmdline.h"
#include "report.h"
#include "time.h"

uint64_t bench_option(const struct guest* g, const char* prefix, uint64_t def, uint64_t min,
                      uint64_t max) {
  struct str s;
  uint64_t v = def;
  if (cmdline_option(&g->boot, prefix, &s) && parse_u64(s, true, &v) != s.len) v = def;
  return v < min ? min : v > max ? max : v;
}

uint64_t bench_ns(uint64_t ticks) {
  /* ticks * 10^6 / kHz, split so a run of minutes at a few GHz cannot overflow. */
  uint64_t khz = tsc_khz();
  return ticks / khz * 1000000 + ticks % khz * 1000000 / khz;
}

void bench_quiet(struct virtq* q) {
  if (q->event_idx) q->avail[2 + q->size] = (uint16_t)(q->last_used - 1);
}

void bench_report_clock(const char* key) {
  report_info("%s.clock=tsc khz=%lu source=%s ring=3 polled=yes", key, tsc_khz(), tsc_khz_source());
}
