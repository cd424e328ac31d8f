/* reset: the VMM's in-process checkpoint and reset, checked from inside the guest. The guest
 * fills a set of pages with a pattern, asks the VMM for a checkpoint (reset port), then
 * loops: every pass first checks that all it changed in the previous pass is back as it was
 * at the checkpoint (the pages, a counter, a buffer the virtio-rng device filled by DMA, the
 * rng queue's indexes), then dirties `ign.reset.pages` pages, bumps the counter, reads
 * entropy into the buffer and asks for a reset, which lands it right after the checkpoint
 * again. The VMM counts resets outside the guest (a read of the port), which is how the
 * guest knows when `ign.reset.count` resets are done. */
#include "cmdline.h"
#include "cpu.h"
#include "layout.h"
#include "pool.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "virtio_common.h"

#define RESET_PORT 0x3c4
#define RESET_CHECKPOINT 1
#define RESET_RESET 2
#define MAX_PAGES 1024
#define RNG_BYTES 64
#define TIMEOUT_US 2000000

static uint64_t pattern(uint64_t page, uint64_t word) {
  return (page * 0x9E3779B97F4A7C15ULL) ^ (word * 0xC2B2AE3D27D4EB4FULL) ^ 0x5EED;
}

static uint64_t option(struct guest* g, const char* name, uint64_t fallback) {
  struct str v;
  uint64_t n;
  return cmdline_option(&g->boot, name, &v) && parse_u64(v, false, &n) ? n : fallback;
}

/* State the resets must roll back. Static, so it lives in the image's .bss. */
static volatile uint64_t passes_since_checkpoint;
static uint8_t rng_buf[RNG_BYTES] __attribute__((aligned(64)));

void test_reset(struct guest* g) {
  uint64_t pages = option(g, "ign.reset.pages=", 16);
  uint64_t target = option(g, "ign.reset.count=", 100);
  if (pages == 0 || pages > MAX_PAGES) {
    report_fail(IGN_TEST_RESET, "bad-option pages=%lu (1..%d)", pages, MAX_PAGES);
    return;
  }
  pool_init(&g->boot);
  uint64_t* area = pool_alloc(MAX_PAGES * PAGE_SIZE, PAGE_SIZE);
  if (!area) {
    report_fail(IGN_TEST_RESET, "no-memory");
    return;
  }
  const uint64_t words = PAGE_SIZE / 8;
  for (uint64_t p = 0; p < pages; p++)
    for (uint64_t w = 0; w < words; w++) area[p * words + w] = pattern(p, w);

  /* virtio-rng when the VM has one: its writes into rng_buf are device DMA, which the VMM
   * must roll back as well as the guest's own writes. */
  struct virtio_test t;
  struct virtq q;
  struct virtio_dev probe;
  bool rng = virtio_find(g, VIRTIO_ID_RNG, &probe);
  if (rng) {
    rng = virtio_test_open(&t, g, IGN_TEST_RESET, "reset.rng", VIRTIO_ID_RNG, 0) &&
          virtio_test_queue(&t, &q, 0, 8);
    if (!rng) return;
    virtio_driver_ok(&t.dev);
  }
  report_info("reset.pages=%lu count=%lu rng=%d", pages, target, rng);
  /* A port nobody claims reads as all ones: no reset port, no test. */
  if (inl(RESET_PORT) != 0) {
    report_fail(IGN_TEST_RESET, "no-reset-port value=0x%x", inl(RESET_PORT));
    return;
  }

  outl(RESET_PORT, RESET_CHECKPOINT);
  /* ---- every reset resumes here ---- */
  uint32_t resets = inl(RESET_PORT);
  if (passes_since_checkpoint != 0) {
    report_fail(IGN_TEST_RESET, "counter-kept value=%lu resets=%u", passes_since_checkpoint,
                resets);
    return;
  }
  for (uint64_t p = 0; p < pages; p++) {
    for (uint64_t w = 0; w < words; w++) {
      if (area[p * words + w] != pattern(p, w)) {
        report_fail(IGN_TEST_RESET, "page-kept page=%lu word=%lu resets=%u", p, w, resets);
        return;
      }
    }
  }
  for (int i = 0; i < RNG_BYTES; i++) {
    if (rng_buf[i] != 0) {
      report_fail(IGN_TEST_RESET, "dma-kept byte=%d resets=%u", i, resets);
      return;
    }
  }
  if (resets >= target) {
    if (rng) virtio_test_close(&t);
    if (resets != target) {
      report_fail(IGN_TEST_RESET, "overshot resets=%u count=%lu", resets, target);
      return;
    }
    report_pass(IGN_TEST_RESET, "resets=%u pages=%lu rng=%d", resets, pages, rng);
    return;
  }

  passes_since_checkpoint++;
  for (uint64_t p = 0; p < pages; p++) area[p * words] = resets + 1; /* one write a page */
  if (rng) {
    struct virtq_buf b = {(uint64_t)rng_buf, RNG_BYTES, true};
    int64_t len = virtq_transfer(&q, &b, 1, TIMEOUT_US);
    if (len <= 0) {
      report_fail(IGN_TEST_RESET, "rng-read-failed len=%ld resets=%u", len, resets);
      return;
    }
  }
  outl(RESET_PORT, RESET_RESET);
  report_fail(IGN_TEST_RESET, "reset-returned resets=%u", resets);
}
