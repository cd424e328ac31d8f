/* What the device benchmarks (bench_*.c) share: numeric options, TSC ticks to nanoseconds,
 * and polled queues that ask the device for no interrupts at all. */
#pragma once

#include <stdint.h>

#include "guest.h"
#include "virtq.h"

/* The value of option `prefix` (K/M/G suffixes allowed), or `def` when absent or unparsable;
 * clamped to [min, max]. */
uint64_t bench_option(const struct guest* g, const char* prefix, uint64_t def, uint64_t min,
                      uint64_t max);
/* TSC ticks to nanoseconds at the rate time.c found. */
uint64_t bench_ns(uint64_t ticks);
/* With VIRTIO_F_RING_EVENT_IDX, sets used_event one behind what the driver has consumed, so
 * the device raises no interrupt until the used index wraps (what Linux writes to disable
 * callbacks). Call after every virtq_pop, which moves used_event forward again. */
void bench_quiet(struct virtq* q);
/* Reports bench.tsc=<kHz> source=<...> and where the benchmark runs (ring 3, polled). */
void bench_report_clock(const char* key);
