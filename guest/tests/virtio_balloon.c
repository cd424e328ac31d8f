/* virtio-balloon: waits for the host to set a target (config num_pages), inflates by that many
 * pages (PFNs of pool pages the guest sets aside), reports `actual`, then waits for the host to
 * lower the target and deflates back to it. With VIRTIO_BALLOON_F_STATS_VQ it also hands the
 * device one statistics buffer (total and free memory), which a host can read back.
 * Before inflating, the guest writes to every page it is about to give away, as a guest that
 * used that memory would, so the host really holds those pages and can show it freed them
 * (balloon.touched=<pages> gpa=<first> bytes=<n>: the pages are contiguous). After deflating
 * it reads them back: balloon.reclaimed=zeroed (the host discarded them), kept (their old
 * contents) or mixed.
 * With ign.balloon.report=1 it instead checks free page reporting (VIRTIO_BALLOON_F_REPORTING,
 * which the device must offer): it fills a 2 MiB-aligned 2 MiB chunk with a pattern, reports
 * it on the reporting queue as one device-writable buffer as Linux does with a free 2 MiB page,
 * and once the device returns it checks that the chunk reads as zeros (the host discarded it):
 * balloon.reported=<bytes> zeroed=<yes|no>. */
#include "cmdline.h"
#include "cpu.h"
#include "pool.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_REPORTING 5
#define REPORT_CHUNK (2u << 20)
#define REPORT_MARK 0x74726f7065720000ull /* "\0\0report", plus the word's index */
#define BALLOON_CFG_NUM_PAGES 0
#define BALLOON_CFG_ACTUAL 4
#define BALLOON_PFN_SHIFT 12
#define PFNS_PER_REQUEST 256 /* as Linux sends them */
#define MAX_PAGES 16384      /* 64 MiB: more than any test asks for */
#define WAIT_US 10000000
#define REQUEST_TIMEOUT_US 2000000

#define TOUCH_MARK 0x6e6f6f6c6c616200ull /* "\0balloon", plus the page's index */

#define STAT_MEMFREE 4
#define STAT_MEMTOT 5
struct balloon_stat {
  uint16_t tag;
  uint64_t val;
} __attribute__((packed));

struct balloon {
  struct virtio_test t;
  struct virtq inflateq, deflateq, statsq, reportq;
  uint32_t* pfns; /* MAX_PAGES: the pages in the balloon, in order */
  uint8_t* pages; /* the memory they come from */
  uint32_t* request;
  uint32_t actual;
};

static uint32_t num_pages(const struct balloon* b) {
  return virtio_config_read32(&b->t.dev, BALLOON_CFG_NUM_PAGES);
}

/* Sends pfns[from, to) on q, PFNS_PER_REQUEST at a time. */
static bool send_pfns(struct balloon* b, struct virtq* q, uint32_t from, uint32_t to) {
  for (uint32_t i = from; i < to; i += PFNS_PER_REQUEST) {
    uint32_t n = to - i < PFNS_PER_REQUEST ? to - i : PFNS_PER_REQUEST;
    memcpy(b->request, b->pfns + i, n * sizeof(uint32_t));
    struct virtq_buf buf = {(uint64_t)b->request, n * (uint32_t)sizeof(uint32_t), false};
    if (virtq_transfer(q, &buf, 1, REQUEST_TIMEOUT_US) < 0) return false;
  }
  return true;
}

static volatile uint64_t* page_word(struct balloon* b, uint32_t i) {
  return (volatile uint64_t*)(b->pages + (uint64_t)i * PAGE_SIZE);
}

/* What the pages [from, to), back from the balloon, hold now. */
static void report_reclaimed(struct balloon* b, uint32_t from, uint32_t to) {
  uint32_t zeroed = 0, kept = 0;
  for (uint32_t i = from; i < to; i++) {
    uint64_t w = *page_word(b, i);
    zeroed += w == 0;
    kept += w == (TOUCH_MARK | i);
  }
  const char* what = zeroed == to - from ? "zeroed" : kept == to - from ? "kept" : "mixed";
  report_info("balloon.reclaimed=%s pages=%u zeroed=%u kept=%u", what, to - from, zeroed, kept);
}

static uint32_t wait_target(const struct balloon* b,
                            bool (*done)(uint32_t target, uint32_t actual)) {
  uint64_t deadline = deadline_after_us(WAIT_US);
  uint32_t target = num_pages(b);
  while (!done(target, b->actual) && !deadline_passed(deadline)) {
    cpu_relax();
    target = num_pages(b);
  }
  return target;
}
static bool target_above(uint32_t target, uint32_t actual) {
  return target > actual;
}
static bool target_below(uint32_t target, uint32_t actual) {
  return target < actual;
}

static void push_stats(struct balloon* b, struct guest* g) {
  uint64_t total = 0;
  for (int i = 0; i < g->boot.memmap_count; i++) {
    if (g->boot.memmap[i].type == E820_RAM) total += g->boot.memmap[i].size;
  }
  struct balloon_stat* s = pool_alloc(2 * sizeof(*s), 16);
  if (!s) return;
  s[0] = (struct balloon_stat){STAT_MEMTOT, total};
  s[1] = (struct balloon_stat){STAT_MEMFREE, pool_free_bytes()};
  struct virtq_buf buf = {(uint64_t)s, 2 * sizeof(*s), false};
  virtq_add(&b->statsq, &buf, 1);
  virtq_kick(&b->statsq); /* the device keeps it until it wants fresh numbers */
  report_info("balloon.stats=memtot:%lu,memfree:%lu", total, s[1].val);
}

static void run(struct balloon* b, struct guest* g) {
  const char* name = IGN_TEST_VIRTIO_BALLOON;
  if (virtio_has(&b->t.dev, VIRTIO_BALLOON_F_STATS_VQ)) push_stats(b, g);
  report_info("balloon.num_pages=%u actual=%u", num_pages(b),
              virtio_config_read32(&b->t.dev, BALLOON_CFG_ACTUAL));
  if (num_pages(b) == 0) report_info(IGN_INFO_BALLOON_READY);
  uint32_t target = wait_target(b, target_above);
  if (target == 0) {
    report_fail(name, "no-target");
    return;
  }
  if (target > MAX_PAGES) {
    report_fail(name, "target-too-large num_pages=%u max=%u", target, MAX_PAGES);
    return;
  }
  for (uint32_t i = 0; i < target; i++) {
    b->pfns[i] = (uint32_t)(((uint64_t)b->pages + (uint64_t)i * PAGE_SIZE) >> BALLOON_PFN_SHIFT);
    *page_word(b, i) = TOUCH_MARK | i;
  }
  report_info("balloon.touched=%u gpa=0x%lx bytes=%lu", target, (uint64_t)b->pages,
              (uint64_t)target * PAGE_SIZE);
  if (!send_pfns(b, &b->inflateq, 0, target)) {
    report_fail(name, "inflate-timeout status=0x%x", virtio_status(&b->t.dev));
    return;
  }
  b->actual = target;
  virtio_config_write32(&b->t.dev, BALLOON_CFG_ACTUAL, b->actual);
  report_info(IGN_INFO_BALLOON_INFLATED "=%u", b->actual);

  uint32_t lower = wait_target(b, target_below);
  if (lower >= b->actual) {
    report_fail(name, "no-deflate-request inflated=%u num_pages=%u", b->actual, lower);
    return;
  }
  /* Give back the most recently inflated pages first. */
  if (!send_pfns(b, &b->deflateq, lower, b->actual)) {
    report_fail(name, "deflate-timeout status=0x%x", virtio_status(&b->t.dev));
    return;
  }
  uint32_t deflated = b->actual - lower;
  b->actual = lower;
  virtio_config_write32(&b->t.dev, BALLOON_CFG_ACTUAL, b->actual);
  report_info("balloon.deflated=%u actual=%u", deflated, b->actual);
  report_reclaimed(b, lower, lower + deflated);
  report_pass(name, "inflated=%u deflated=%u actual=%u", target, deflated, b->actual);
}

static bool report_option(struct guest* g) {
  struct str v;
  uint64_t n = 0;
  return cmdline_option(&g->boot, IGN_OPT_BALLOON_REPORT, &v) && parse_u64(v, false, &n) && n == 1;
}

static void run_report(struct balloon* b) {
  const char* name = IGN_TEST_VIRTIO_BALLOON;
  volatile uint64_t* chunk = pool_alloc_untouched(REPORT_CHUNK, REPORT_CHUNK);
  if (!chunk) {
    report_fail(name, "out-of-memory free=%lu", pool_free_bytes());
    return;
  }
  const uint64_t words = REPORT_CHUNK / sizeof(uint64_t);
  for (uint64_t i = 0; i < words; i++) chunk[i] = REPORT_MARK | i;
  /* The device only names these pages free; it writes nothing, so the used length is 0. */
  struct virtq_buf buf = {(uint64_t)chunk, REPORT_CHUNK, true};
  int64_t written = virtq_transfer(&b->reportq, &buf, 1, REQUEST_TIMEOUT_US);
  if (written < 0) {
    report_fail(name, "report-timeout status=0x%x", virtio_status(&b->t.dev));
    return;
  }
  uint64_t zero = 0, kept = 0;
  for (uint64_t i = 0; i < words; i++) {
    uint64_t w = chunk[i];
    zero += w == 0;
    kept += w == (REPORT_MARK | i);
  }
  bool zeroed = zero == words;
  report_info(IGN_INFO_BALLOON_REPORTED "=%u zeroed=%s gpa=0x%lx used_len=%ld kept_words=%lu",
              REPORT_CHUNK, zeroed ? "yes" : "no", (uint64_t)chunk, written, kept);
  if (zeroed)
    report_pass(name, "reported=%u zeroed=yes", REPORT_CHUNK);
  else
    report_fail(name, "reported-not-zeroed zero_words=%lu kept_words=%lu of=%lu", zero, kept,
                words);
}

void test_virtio_balloon(struct guest* g) {
  struct balloon b = {0};
  bool report = report_option(g);
  uint64_t wanted = VIRTIO_BIT(VIRTIO_BALLOON_F_STATS_VQ) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
  if (report) wanted |= VIRTIO_BIT(VIRTIO_BALLOON_F_REPORTING);
  if (!virtio_test_open(&b.t, g, IGN_TEST_VIRTIO_BALLOON, "balloon", VIRTIO_ID_BALLOON, wanted) ||
      !virtio_test_queue(&b.t, &b.inflateq, 0, 64) ||
      !virtio_test_queue(&b.t, &b.deflateq, 1, 64) ||
      (virtio_has(&b.t.dev, VIRTIO_BALLOON_F_STATS_VQ) &&
       !virtio_test_queue(&b.t, &b.statsq, 2, 8))) {
    virtio_test_close(&b.t);
    return;
  }
  if (report) {
    if (!virtio_has(&b.t.dev, VIRTIO_BALLOON_F_REPORTING)) {
      report_fail(IGN_TEST_VIRTIO_BALLOON, "reporting-not-offered offered=0x%lx",
                  b.t.dev.device_features);
      virtio_test_close(&b.t);
      return;
    }
    /* Queues are numbered among the negotiated ones: reporting follows statistics if any. */
    uint16_t index = virtio_has(&b.t.dev, VIRTIO_BALLOON_F_STATS_VQ) ? 3 : 2;
    if (virtio_test_queue(&b.t, &b.reportq, index, 32)) {
      virtio_driver_ok(&b.t.dev);
      if (virtio_has(&b.t.dev, VIRTIO_BALLOON_F_STATS_VQ)) push_stats(&b, g);
      run_report(&b);
    }
    virtio_test_close(&b.t);
    return;
  }
  b.pfns = pool_alloc(MAX_PAGES * sizeof(uint32_t), PAGE_SIZE);
  b.request = pool_alloc(PFNS_PER_REQUEST * sizeof(uint32_t), PAGE_SIZE);
  b.pages = pool_alloc_untouched((uint64_t)MAX_PAGES * PAGE_SIZE, PAGE_SIZE);
  if (!b.pfns || !b.request || !b.pages) {
    report_fail(IGN_TEST_VIRTIO_BALLOON, "out-of-memory free=%lu", pool_free_bytes());
  } else {
    virtio_driver_ok(&b.t.dev);
    run(&b, g);
  }
  virtio_test_close(&b.t);
}
