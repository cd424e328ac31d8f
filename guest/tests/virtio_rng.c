/* virtio-rng: two reads of RNG_BYTES, the first polled and the second completed by the
 * device's interrupt; they must differ and not be all zero. A device may return fewer bytes
 * than asked for, so each read loops until its buffer is full. */
#include "cpu.h"
#include "irq.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "virtio_common.h"

#define RNG_BYTES 64
#define TIMEOUT_US 2000000
#define MAX_REQUESTS 64

/* Fills buf; returns false on a timeout or a device that keeps returning nothing. */
static bool fill(struct virtq* q, uint8_t* buf, bool use_irq, uint64_t* irqs, int* requests) {
  size_t got = 0;
  while (got < RNG_BYTES && *requests < MAX_REQUESTS) {
    struct virtq_buf b = {(uint64_t)(buf + got), (uint32_t)(RNG_BYTES - got), true};
    uint64_t n = 0;
    int64_t len = use_irq ? virtq_transfer_irq(q, &b, 1, TIMEOUT_US, &n)
                          : virtq_transfer(q, &b, 1, TIMEOUT_US);
    *irqs += n;
    ++*requests;
    if (len < 0 || (uint64_t)len > RNG_BYTES - got) return false;
    got += (size_t)len;
  }
  return got == RNG_BYTES;
}

static bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i]) return false;
  }
  return true;
}

void test_virtio_rng(struct guest* g) {
  struct virtio_test t;
  struct virtq q;
  if (!virtio_test_open(&t, g, IGN_TEST_VIRTIO_RNG, "rng", VIRTIO_ID_RNG,
                        VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX)) ||
      !virtio_test_queue(&t, &q, 0, 8)) {
    virtio_test_close(&t);
    return;
  }
  virtio_driver_ok(&t.dev);
  static uint8_t a[RNG_BYTES], b[RNG_BYTES];
  memset(a, 0, sizeof(a));
  memset(b, 0, sizeof(b));
  uint64_t irqs = 0;
  int requests = 0;
  bool routed = virtio_irq_route(g, &t.dev);
  bool ok_a = fill(&q, a, false, &irqs, &requests);
  bool ok_b = routed && fill(&q, b, true, &irqs, &requests);
  virtio_irq_mask(g, &t.dev);
  uint32_t status = virtio_status(&t.dev);
  virtio_test_close(&t);

  report_info("rng.bytes=%d requests=%d irqs=%lu", (ok_a ? RNG_BYTES : 0) + (ok_b ? RNG_BYTES : 0),
              requests, irqs);
  if (!ok_a) {
    report_fail(IGN_TEST_VIRTIO_RNG, "polled-read-failed status=0x%x", status);
  } else if (!routed) {
    report_fail(IGN_TEST_VIRTIO_RNG, "no-ioapic-for-gsi gsi=%u", t.dev.gsi);
  } else if (!ok_b) {
    report_fail(IGN_TEST_VIRTIO_RNG, "irq-read-failed irqs=%lu status=0x%x", irqs, status);
  } else if (memcmp(a, b, RNG_BYTES) == 0) {
    report_fail(IGN_TEST_VIRTIO_RNG, "reads-equal");
  } else if (all_zero(a, RNG_BYTES) || all_zero(b, RNG_BYTES)) {
    report_fail(IGN_TEST_VIRTIO_RNG, "all-zero");
  } else {
    report_pass(IGN_TEST_VIRTIO_RNG, "bytes=%d requests=%d irqs=%lu", 2 * RNG_BYTES, requests,
                irqs);
  }
}
