/* virtio-pmem: the device's memory region (config start/size) is read and written with plain
 * loads and stores from ring 3, then made durable with a FLUSH request. The host prepared the
 * file (IGN_PMEM_TAG | i in word i) and checks after the run that the rewritten words reached
 * it. With ign.pmem.ro=1 the region is read-only: a store must not change it. */
#include "cmdline.h"
#include "layout.h"
#include "report.h"
#include "tests.h"
#include "virtio_common.h"

#define TIMEOUT_US 2000000
#define PMEM_REQ_FLUSH 0

static bool read_only_mode(struct guest* g) {
  struct str v;
  uint64_t n = 0;
  return cmdline_option(&g->boot, IGN_OPT_PMEM_RO, &v) && parse_u64(v, false, &n) && n == 1;
}

/* The first word that does not hold IGN_PMEM_TAG | i, or `words` when all do. */
static uint64_t first_mismatch(volatile const uint64_t* region, uint64_t words) {
  for (uint64_t i = 0; i < words; i++) {
    if (region[i] != (IGN_PMEM_TAG | i)) return i;
  }
  return words;
}

/* One FLUSH request; returns the device's ret (0 = durable), or -1 on no answer. */
static int64_t flush(struct virtq* q) {
  static volatile uint32_t req, resp;
  req = PMEM_REQ_FLUSH;
  resp = 0xffffffffu;
  struct virtq_buf bufs[2] = {{(uint64_t)&req, 4, false}, {(uint64_t)&resp, 4, true}};
  int64_t len = virtq_transfer(q, bufs, 2, TIMEOUT_US);
  return len == 4 ? (int64_t)resp : -1;
}

void test_virtio_pmem(struct guest* g) {
  struct virtio_test t;
  struct virtq q;
  if (!virtio_test_open(&t, g, IGN_TEST_VIRTIO_PMEM, "pmem", VIRTIO_ID_PMEM, 0) ||
      !virtio_test_queue(&t, &q, 0, 8)) {
    virtio_test_close(&t);
    return;
  }
  virtio_driver_ok(&t.dev);
  uint64_t start = virtio_config_read64(&t.dev, 0);
  uint64_t size = virtio_config_read64(&t.dev, 8);
  report_info("pmem.start=0x%lx size=0x%lx", start, size);
  if (size == 0 || start % (2u << 20) != 0 || start + size > MMIO_GAP_START) {
    virtio_test_close(&t);
    report_fail(IGN_TEST_VIRTIO_PMEM, "bad-region start=0x%lx size=0x%lx", start, size);
    return;
  }
  volatile uint64_t* region = (volatile uint64_t*)start;
  uint64_t words = (size < IGN_PMEM_CHECK_BYTES ? size : IGN_PMEM_CHECK_BYTES) / 8;
  uint64_t bad = first_mismatch(region, words);
  if (bad != words) {
    virtio_test_close(&t);
    report_fail(IGN_TEST_VIRTIO_PMEM, "content word=%lu got=0x%lx", bad, region[bad]);
    return;
  }

  if (read_only_mode(g)) {
    region[0] = IGN_PMEM_WRITE_TAG; /* becomes an MMIO write the VMM drops */
    bool stuck = region[0] != IGN_PMEM_TAG;
    int64_t ret = flush(&q);
    virtio_test_close(&t);
    report_info("pmem.ro_write=%s", stuck ? "stuck" : "dropped");
    if (stuck || ret != 0) {
      report_fail(IGN_TEST_VIRTIO_PMEM, "read-only write=%s flush=%ld", stuck ? "stuck" : "dropped",
                  ret);
    } else {
      report_pass(IGN_TEST_VIRTIO_PMEM, "checked=%lu ro=1", words * 8);
    }
    return;
  }

  for (uint64_t i = 0; i < IGN_PMEM_WRITE_BYTES / 8; i++) region[i] = IGN_PMEM_WRITE_TAG | i;
  int64_t ret = flush(&q);
  virtio_test_close(&t);
  report_info("pmem.flush=%ld", ret);
  if (ret != 0) {
    report_fail(IGN_TEST_VIRTIO_PMEM, "flush ret=%ld", ret);
  } else {
    report_pass(IGN_TEST_VIRTIO_PMEM, "checked=%lu written=%u", words * 8, IGN_PMEM_WRITE_BYTES);
  }
}
