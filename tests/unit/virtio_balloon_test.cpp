// virtio-balloon through a real virtio-mmio transport and a host-side driver: inflating
// really frees the memfd's pages, deflate and target updates, the statistics cycle driven
// by its timer, the API's rules, and a guest that sends garbage.
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>

#include <gtest/gtest.h>

#include "devices/virtio/balloon/balloon.hpp"
#include "devices/virtio/balloon/reclaim.hpp"
#include "devices/virtio/balloon/request.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1 << 20;
// Two RAM regions with a hole between them, like RAM below and above the MMIO gap.
constexpr uint64_t kLowSize = 8 * kMiB;
constexpr uint64_t kHighBase = 16 * kMiB, kHighSize = 8 * kMiB;
constexpr uint64_t kGuestMib = 16;
constexpr uint64_t kRequests = 0x100000;  // where the driver builds its request buffers
constexpr uint64_t kPages = 4 * kMiB;     // pages the tests balloon
constexpr uint32_t kPagesPfn = kPages >> 12;
constexpr uint32_t kHighPfn = kHighBase >> 12;
constexpr uint16_t kInflate = 0, kDeflate = 1, kStats = 2;
constexpr uint32_t kUsedRing = kInterruptUsedRing, kConfigIrq = kInterruptConfigChange;

config::Balloon balloon_config(uint32_t amount_mib, bool deflate_on_oom, uint16_t stats_s) {
  config::Balloon c;
  c.amount_mib = amount_mib;
  c.deflate_on_oom = deflate_on_oom;
  c.stats_polling_interval_s = stats_s;
  return c;
}

struct BalloonFixture : ::testing::Test {
  // Builds the device and its transport; `stats_s` > 0 enables statistics.
  void make(uint32_t amount_mib = 0, bool deflate_on_oom = false, uint16_t stats_s = 0) {
    auto mem = GuestMemory::create_anonymous({{0, kLowSize}, {kHighBase, kHighSize}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    auto device = Balloon::create(balloon_config(amount_mib, deflate_on_oom, stats_s), kGuestMib);
    ASSERT_TRUE(device.ok()) << device.error().message;
    balloon = device->get();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    irq_probe = ::dup(irq_fd->fd());
    transport = std::make_unique<MmioTransport>(std::move(device).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    ASSERT_TRUE(transport->register_events(registrar).ok());
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
  }
  void TearDown() override {
    if (irq_probe >= 0) ::close(irq_probe);
  }
  void start(bool stats = false) {
    uint64_t features = kFeatureVersion1 | (stats ? kBalloonFeatureStatsVq : 0);
    std::vector<uint16_t> queues =
        stats ? std::vector<uint16_t>{16, 16, 16} : std::vector<uint16_t>{16, 16};
    ASSERT_EQ(driver->start(features, queues), 15u);
  }
  // The handshake up to FEATURES_OK with `queues` 16-entry queues set up and ready, the
  // rings laid out as start() does; DRIVER_OK is left to the test.
  void start_without_driver_ok(uint64_t features, uint16_t queues) {
    driver->start(features, std::vector<uint16_t>(queues, 16));
    driver->write_reg(0x70, 0);
    driver->write_reg(0x70, 1 | 2);
    driver->write_reg(0x24, 0);
    driver->write_reg(0x20, static_cast<uint32_t>(features));
    driver->write_reg(0x24, 1);
    driver->write_reg(0x20, static_cast<uint32_t>(features >> 32));
    driver->write_reg(0x70, 1 | 2 | 8);
    for (uint16_t q = 0; q < queues; ++q) {
      driver->write_reg(0x30, q);
      driver->write_reg(0x38, 16);
      driver->write_reg(0x80, static_cast<uint32_t>(driver->desc_addr(q)));
      driver->write_reg(0x90, static_cast<uint32_t>(driver->avail_addr(q)));
      driver->write_reg(0xa0, static_cast<uint32_t>(driver->used_addr(q)));
      driver->write_reg(0x44, 1);
    }
  }
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  uint32_t interrupt_status() { return driver->read_reg(0x60); }
  void ack_interrupts() { driver->write_reg(0x64, 3); }
  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }
  uint32_t config32(uint64_t offset) {
    uint32_t v = 0;
    transport->read(0x100 + offset, {reinterpret_cast<uint8_t*>(&v), 4});
    return v;
  }
  void write_config32(uint64_t offset, uint32_t v) {
    transport->write(0x100 + offset, {reinterpret_cast<const uint8_t*>(&v), 4});
  }
  // Posts a PFN array on queue `q` (built at `at`) and kicks it.
  void send_pfns(uint16_t q, const std::vector<uint32_t>& pfns, uint64_t at = kRequests,
                 uint16_t first = 0) {
    uint32_t len = static_cast<uint32_t>(pfns.size() * 4);
    ASSERT_TRUE(memory->write(at, {reinterpret_cast<const uint8_t*>(pfns.data()), len}).ok());
    driver->post(q, {{at, len, false}}, first);
    driver->kick(q);
  }
  // Writes a statistics report at `at` and returns its length.
  uint32_t write_stats(uint64_t at, const std::vector<std::pair<uint16_t, uint64_t>>& entries) {
    std::vector<uint8_t> raw(entries.size() * 10);
    for (size_t i = 0; i < entries.size(); ++i) {
      std::memcpy(&raw[i * 10], &entries[i].first, 2);
      std::memcpy(&raw[i * 10 + 2], &entries[i].second, 8);
    }
    EXPECT_TRUE(memory->write(at, raw).ok());
    return static_cast<uint32_t>(raw.size());
  }
  uint64_t allocated_bytes() {
    struct stat st {};
    EXPECT_EQ(::fstat(memory->fd(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  bool all_equal(uint64_t gpa, uint64_t len, uint8_t value) {
    auto bytes = memory->slice(gpa, len).value();
    return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
  }

  std::unique_ptr<GuestMemory> memory;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  test::TestRegistrar registrar;
  Balloon* balloon = nullptr;
  int irq_probe = -1;
};

TEST(BalloonCreate, ChecksTheConfiguration) {
  EXPECT_TRUE(Balloon::create(balloon_config(16, false, 0), 16).ok());
  EXPECT_FALSE(Balloon::create(balloon_config(17, false, 0), 16).ok()) << "bigger than the guest";
  auto hinting = balloon_config(0, false, 0);
  hinting.free_page_hinting = true;
  EXPECT_FALSE(Balloon::create(hinting, 16).ok());
  auto reporting = balloon_config(0, false, 0);
  reporting.free_page_reporting = true;
  EXPECT_TRUE(Balloon::create(reporting, 16).ok()) << "free page reporting is supported";
}

TEST(BalloonCreate, FeaturesAndQueuesFollowTheConfiguration) {
  auto plain = Balloon::create(balloon_config(0, false, 0), 16).value();
  EXPECT_EQ(plain->type(), DeviceType::Balloon);
  EXPECT_EQ(plain->features(), kFeatureVersion1);
  EXPECT_EQ(plain->queue_max_sizes().size(), 2u) << "no statistics queue when they are off";
  EXPECT_LT(plain->stats_timer_fd(), 0);

  auto full = Balloon::create(balloon_config(8, true, 5), 16).value();
  EXPECT_EQ(full->features(),
            kFeatureVersion1 | kBalloonFeatureDeflateOnOom | kBalloonFeatureStatsVq);
  EXPECT_EQ(full->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 256}));
  auto cfg = full->config();
  EXPECT_EQ(cfg.amount_mib, 8u);
  EXPECT_TRUE(cfg.deflate_on_oom);
  EXPECT_EQ(cfg.stats_polling_interval_s, 5);
}

TEST(BalloonRequest, CoalescesPfnsIntoSortedRuns) {
  auto ranges = coalesce_pfns({7, 3, 4, 5, 5, 10, 0xffffffff, 6, 11});
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[0].first_pfn, 3u);
  EXPECT_EQ(ranges[0].count, 5u);  // 3..7, the duplicate 5 counted once
  EXPECT_EQ(ranges[1].first_pfn, 10u);
  EXPECT_EQ(ranges[1].count, 2u);
  EXPECT_EQ(ranges[2].first_pfn, 0xffffffffu);
  EXPECT_EQ(ranges[2].count, 1u);
  EXPECT_TRUE(coalesce_pfns({}).empty());
}

TEST_F(BalloonFixture, IdentifiesAsABalloonWithTheRightQueues) {
  make(0, true, 0);
  EXPECT_EQ(driver->read_reg(0x008), 5u);
  uint64_t features = driver->device_features();
  EXPECT_TRUE(features & kFeatureVersion1);
  EXPECT_TRUE(features & kBalloonFeatureDeflateOnOom);
  EXPECT_FALSE(features & kBalloonFeatureStatsVq);
  driver->write_reg(0x30, 1);
  EXPECT_EQ(driver->read_reg(0x034), 256u);
  driver->write_reg(0x30, 2);
  EXPECT_EQ(driver->read_reg(0x034), 0u) << "no statistics queue";
}

TEST_F(BalloonFixture, RefusesToStartWithoutItsQueues) {
  make(0, false, 1);
  EXPECT_TRUE(driver->start(kFeatureVersion1, {16}) & kStatusNeedsReset) << "no deflate queue";
  EXPECT_TRUE(driver->start(kFeatureVersion1 | kBalloonFeatureStatsVq, {16, 16}) &
              kStatusNeedsReset)
      << "statistics accepted, but no statistics queue";
  EXPECT_FALSE(balloon->update_target(1).ok()) << "never became active";
  EXPECT_EQ(driver->start(kFeatureVersion1 | kBalloonFeatureStatsVq, {16, 16, 16}), 15u);
}

TEST_F(BalloonFixture, ConfigSpaceHasTargetAndDriverWrittenActual) {
  make(4);
  EXPECT_EQ(config32(0), 4u * 256);
  EXPECT_EQ(config32(4), 0u);
  write_config32(4, 300);
  EXPECT_EQ(config32(4), 300u);
  EXPECT_EQ(balloon->actual_pages(), 300u);
  write_config32(0, 12345);
  EXPECT_EQ(config32(0), 1024u) << "num_pages belongs to the device";
  write_config32(0x40, 7);
  EXPECT_EQ(config32(8), 0u) << "nothing beyond the two fields";
  uint8_t byte = 0;
  transport->read(0x100 + 1, {&byte, 1});
  EXPECT_EQ(byte, 4) << "byte access to num_pages (1024 = 0x400)";
}

TEST_F(BalloonFixture, InflateReturnsPagesToTheHost) {
  make();
  start();
  constexpr uint32_t kCount = 64;
  // The guest touches 64 pages plus a neighbour on each side.
  ASSERT_TRUE(memory->fill(kPages - 4096, 0xab, (kCount + 2) * 4096ULL).ok());
  ASSERT_TRUE(memory->fill(kRequests, 0, 4096).ok());  // the request's page, allocated now
  uint64_t touched = allocated_bytes();
  ASSERT_GE(touched, (kCount + 2) * 4096ULL);

  // Shuffled, with a duplicate: the device sorts and merges them.
  std::vector<uint32_t> pfns(kCount);
  std::iota(pfns.begin(), pfns.end(), kPagesPfn);
  std::reverse(pfns.begin(), pfns.begin() + 20);
  pfns.push_back(kPagesPfn + 3);
  send_pfns(kInflate, pfns);

  auto used = driver->take_used(kInflate);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->second, 0u);
  EXPECT_EQ(irqs(), 1u);
  EXPECT_TRUE(interrupt_status() & kUsedRing);
  // Exactly the ballooned pages are gone (reading them below would fault them back in).
  EXPECT_LE(allocated_bytes(), touched - kCount * 4096ULL) << "the memfd gave the pages back";
  EXPECT_TRUE(all_equal(kPages, kCount * 4096ULL, 0)) << "ballooned pages read back as zero";
  EXPECT_TRUE(all_equal(kPages - 4096, 4096, 0xab)) << "the page before is untouched";
  EXPECT_TRUE(all_equal(kPages + kCount * 4096ULL, 4096, 0xab)) << "the page after too";
  auto c = balloon->counters();
  EXPECT_EQ(c.inflate_requests, 1u);
  EXPECT_EQ(c.pages_discarded, kCount);
  EXPECT_EQ(c.bad_pfns, 0u);
  EXPECT_FALSE(needs_reset());
}

TEST_F(BalloonFixture, InflateWorksInEveryRegion) {
  make();
  start();
  ASSERT_TRUE(memory->fill(kHighBase + 8 * 4096, 0x5a, 4 * 4096).ok());
  ASSERT_TRUE(memory->fill(kRequests, 0, 4096).ok());  // the request's page, allocated now
  uint64_t touched = allocated_bytes();
  send_pfns(kInflate, {kHighPfn + 8, kHighPfn + 9, kHighPfn + 10, kHighPfn + 11});
  ASSERT_TRUE(driver->take_used(kInflate));
  EXPECT_LE(allocated_bytes(), touched - 4 * 4096);
  // Reading a hole faults a fresh page in: check the contents only after the accounting.
  EXPECT_TRUE(all_equal(kHighBase + 8 * 4096, 4 * 4096, 0));
  EXPECT_EQ(balloon->counters().pages_discarded, 4u);
}

TEST_F(BalloonFixture, BadPfnsAreSkippedAndCounted) {
  make();
  start();
  ASSERT_TRUE(memory->fill(kPages, 0xab, 2 * 4096).ok());
  uint32_t in_hole = (kLowSize >> 12) + 1;  // between the two regions
  uint32_t beyond = (kHighBase + kHighSize) >> 12;
  send_pfns(kInflate, {kPagesPfn, in_hole, beyond, 0xffffffff, kPagesPfn + 1});
  ASSERT_TRUE(driver->take_used(kInflate));
  auto c = balloon->counters();
  EXPECT_EQ(c.bad_pfns, 3u);
  EXPECT_EQ(c.pages_discarded, 2u) << "the good PFNs of the same request still count";
  EXPECT_TRUE(all_equal(kPages, 2 * 4096, 0));
  EXPECT_FALSE(needs_reset());
}

TEST_F(BalloonFixture, MalformedInflateRequestsAreSkipped) {
  make();
  start();
  ASSERT_TRUE(memory->fill(kPages, 0xab, 4096).ok());
  ASSERT_TRUE(memory->write_obj<uint32_t>(kRequests, kPagesPfn).ok());
  struct Case {
    const char* name;
    std::vector<test::DriverBuffer> buffers;
  };
  std::vector<Case> cases = {
      {"not whole PFNs", {{kRequests, 6, false}}},
      {"device-writable PFN array", {{kRequests, 4, true}}},
      {"readable then writable", {{kRequests, 4, false}, {kRequests + 64, 4, true}}},
      {"more PFNs than a request may hold", {{kRequests, 257 * 4, false}}},
      {"giant array", {{0, static_cast<uint32_t>(kLowSize), false}}},
  };
  uint16_t slot = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    driver->post(kInflate, c.buffers, slot);
    slot = static_cast<uint16_t>(slot + c.buffers.size());
    driver->kick(kInflate);
    auto used = driver->take_used(kInflate);
    ASSERT_TRUE(used) << "acknowledged, not dropped";
    EXPECT_FALSE(needs_reset());
    EXPECT_TRUE(all_equal(kPages, 4096, 0xab)) << "nothing freed";
  }
  EXPECT_EQ(balloon->counters().malformed_requests, cases.size());
  EXPECT_EQ(balloon->counters().pages_discarded, 0u);
  // A PFN array split over two readable buffers is fine.
  ASSERT_TRUE(memory->write_obj<uint32_t>(kRequests + 0x100, kPagesPfn).ok());
  driver->post(kInflate, {{kRequests + 0x100, 2, false}, {kRequests + 0x102, 2, false}}, slot);
  driver->kick(kInflate);
  ASSERT_TRUE(driver->take_used(kInflate));
  EXPECT_EQ(balloon->counters().pages_discarded, 1u);
  EXPECT_TRUE(all_equal(kPages, 4096, 0));
}

TEST_F(BalloonFixture, BrokenRingNeedsReset) {
  make();
  start();
  driver->publish(kInflate, 99);  // head beyond the queue size
  driver->kick(kInflate);
  EXPECT_TRUE(needs_reset());
  start();
  EXPECT_FALSE(needs_reset());
  send_pfns(kDeflate, {kPagesPfn});
  EXPECT_TRUE(driver->take_used(kDeflate)) << "works again after the driver resets it";
}

TEST_F(BalloonFixture, DeflateIsAcknowledged) {
  make();
  start();
  ASSERT_TRUE(memory->fill(kPages, 0xcd, 4096).ok());
  send_pfns(kDeflate, {kPagesPfn, kPagesPfn + 1});
  auto used = driver->take_used(kDeflate);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->second, 0u);
  EXPECT_EQ(irqs(), 1u);
  EXPECT_TRUE(all_equal(kPages, 4096, 0xcd)) << "deflate leaves memory alone";
  driver->post(kDeflate, {{kRequests, 4, true}}, 1);  // malformed: still acknowledged
  driver->kick(kDeflate);
  EXPECT_TRUE(driver->take_used(kDeflate));
  auto c = balloon->counters();
  EXPECT_EQ(c.deflate_requests, 2u);
  EXPECT_EQ(c.malformed_requests, 1u);
}

TEST_F(BalloonFixture, TargetUpdateRaisesAConfigInterrupt) {
  make(2);
  EXPECT_FALSE(balloon->update_target(4).ok()) << "the driver has not started the device";
  start();
  uint32_t generation = driver->read_reg(0xfc);
  ASSERT_TRUE(balloon->update_target(6).ok());
  EXPECT_EQ(config32(0), 6u * 256) << "visible at once";
  EXPECT_EQ(registrar.pump(), 1) << "the event loop sends the interrupt";
  EXPECT_EQ(irqs(), 1u);
  EXPECT_TRUE(interrupt_status() & kConfigIrq);
  EXPECT_NE(driver->read_reg(0xfc), generation);
  EXPECT_EQ(balloon->config().amount_mib, 6u);

  EXPECT_FALSE(balloon->update_target(kGuestMib + 1).ok()) << "bigger than the guest";
  EXPECT_EQ(config32(0), 6u * 256);
  ASSERT_TRUE(balloon->update_target(0).ok());
  EXPECT_EQ(config32(0), 0u);
}

TEST_F(BalloonFixture, TargetSurvivesADriverResetButActualDoesNot) {
  make(2);
  start();
  write_config32(4, 512);
  ASSERT_TRUE(balloon->update_target(3).ok());
  driver->write_reg(0x70, 0);
  EXPECT_EQ(config32(0), 3u * 256);
  EXPECT_EQ(config32(4), 0u);
  EXPECT_FALSE(balloon->update_target(1).ok()) << "inactive again";
  registrar.pump();
  EXPECT_EQ(irqs(), 0u) << "no config interrupt for a device that was reset";
}

TEST_F(BalloonFixture, StatisticsRoundTrip) {
  make(4, false, 2);
  EXPECT_TRUE(registrar.watches(balloon->stats_timer_fd()));
  // Like Linux, the driver posts its first report before DRIVER_OK: the kick is lost and
  // the report waits in the ring until the device starts.
  start_without_driver_ok(kFeatureVersion1 | kBalloonFeatureStatsVq, 3);
  uint32_t len = write_stats(kRequests, {{kStatMemFree, 1000}, {kStatMemTotal, 4000}, {99, 1}});
  driver->post(kStats, {{kRequests, len, false}});
  driver->kick(kStats);
  EXPECT_FALSE(balloon->latest_stats()->free_memory);
  driver->write_reg(0x70, 15);
  ASSERT_EQ(driver->read_reg(0x70), 15u);
  EXPECT_FALSE(driver->take_used(kStats)) << "the device holds the buffer";
  write_config32(4, 512);

  auto stats = balloon->latest_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->free_memory, 1000u);
  EXPECT_EQ(stats->total_memory, 4000u);
  EXPECT_FALSE(stats->swap_in) << "unreported values stay absent";
  EXPECT_EQ(stats->target_pages, 1024u);
  EXPECT_EQ(stats->target_mib, 4u);
  EXPECT_EQ(stats->actual_pages, 512u);
  EXPECT_EQ(stats->actual_mib, 2u);
  EXPECT_EQ(balloon->counters().stats_report_errors, 1u) << "the unknown tag";

  // The timer is armed with the configured period; a tick returns the buffer.
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(balloon->stats_timer_fd(), &armed), 0);
  EXPECT_EQ(armed.it_interval.tv_sec, 2);
  EXPECT_TRUE(armed.it_value.tv_sec > 0 || armed.it_value.tv_nsec > 0);
  registrar.fire(balloon->stats_timer_fd());
  auto used = driver->take_used(kStats);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 0u);
  EXPECT_EQ(irqs(), 1u);

  // The driver answers with a fresh report.
  len = write_stats(kRequests + 0x100, {{kStatMemFree, 777}, {kStatOomKill, 3}});
  driver->post(kStats, {{kRequests + 0x100, len, false}}, 1);
  driver->kick(kStats);
  stats = balloon->latest_stats();
  EXPECT_EQ(stats->free_memory, 777u);
  EXPECT_EQ(stats->total_memory, 4000u) << "not re-reported: the old value stays";
  EXPECT_EQ(stats->oom_kill, 3u);
  EXPECT_EQ(balloon->counters().stats_reports, 2u);

  // A tick with no buffer held does nothing.
  registrar.fire(balloon->stats_timer_fd());
  registrar.fire(balloon->stats_timer_fd());
  EXPECT_TRUE(driver->take_used(kStats));
  EXPECT_FALSE(driver->take_used(kStats));
  EXPECT_FALSE(needs_reset());
}

TEST_F(BalloonFixture, StatsIntervalChangeAsksForStatsAtOnce) {
  make(0, false, 30);
  start(true);
  uint32_t len = write_stats(kRequests, {{kStatSwapIn, 1}});
  driver->post(kStats, {{kRequests, len, false}});
  driver->kick(kStats);
  ASSERT_TRUE(balloon->update_stats_interval(1).ok());
  EXPECT_EQ(balloon->config().stats_polling_interval_s, 1);
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(balloon->stats_timer_fd(), &armed), 0);
  EXPECT_EQ(armed.it_interval.tv_sec, 1);
  // The real timer fires almost at once (not after a period).
  EXPECT_EQ(registrar.pump(1000ms), 1);
  EXPECT_TRUE(driver->take_used(kStats));
}

TEST_F(BalloonFixture, StatisticsCannotBeToggledAfterBoot) {
  make(0, false, 5);
  EXPECT_FALSE(balloon->update_stats_interval(0).ok());
  EXPECT_TRUE(balloon->update_stats_interval(5).ok()) << "unchanged is fine";
  EXPECT_TRUE(balloon->update_stats_interval(7).ok());
  EXPECT_EQ(balloon->config().stats_polling_interval_s, 7);

  auto off = Balloon::create(balloon_config(0, false, 0), 16).value();
  EXPECT_FALSE(off->update_stats_interval(3).ok());
  EXPECT_TRUE(off->update_stats_interval(0).ok());
  EXPECT_FALSE(off->latest_stats().ok()) << "statistics are disabled";
}

TEST_F(BalloonFixture, DriverWithoutStatisticsLeavesTheTimerOff) {
  make(0, false, 1);
  start(false);  // the driver does not accept STATS_VQ
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(balloon->stats_timer_fd(), &armed), 0);
  EXPECT_EQ(armed.it_value.tv_sec + armed.it_value.tv_nsec, 0);
  driver->kick(kStats);  // a kick on a queue it never set up
  registrar.fire(balloon->stats_timer_fd());
  EXPECT_FALSE(needs_reset());
  send_pfns(kDeflate, {1});
  EXPECT_TRUE(driver->take_used(kDeflate));
}

TEST_F(BalloonFixture, MalformedStatisticsAreHeldButNotParsed) {
  make(0, false, 1);
  start(true);
  struct Case {
    const char* name;
    std::vector<test::DriverBuffer> buffers;
  };
  write_stats(kRequests, {{kStatMemFree, 42}, {kStatMemTotal, 43}});
  std::vector<Case> cases = {
      {"partial entry", {{kRequests, 15, false}}},
      {"device-writable", {{kRequests, 10, true}}},
      {"too many entries", {{kRequests, 257 * 10, false}}},
      {"giant", {{0, static_cast<uint32_t>(kLowSize), false}}},
  };
  uint16_t slot = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    driver->post(kStats, cases[i].buffers, slot);
    driver->kick(kStats);
    // A second buffer makes the device return the one it held.
    if (i > 0) {
      auto used = driver->take_used(kStats);
      ASSERT_TRUE(used);
      EXPECT_EQ(used->first, slot - 1u);
    }
    slot = static_cast<uint16_t>(slot + 1);
    EXPECT_FALSE(needs_reset());
  }
  EXPECT_FALSE(balloon->latest_stats()->free_memory);
  EXPECT_EQ(balloon->counters().stats_report_errors, cases.size());
  registrar.fire(balloon->stats_timer_fd());
  auto last = driver->take_used(kStats);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->first, slot - 1u) << "the last one is still returned";
  // A report split over two readable buffers is fine.
  driver->post(kStats, {{kRequests, 4, false}, {kRequests + 4, 16, false}}, slot);
  driver->kick(kStats);
  EXPECT_EQ(balloon->latest_stats()->free_memory, 42u);
  EXPECT_EQ(balloon->latest_stats()->total_memory, 43u);
}

TEST_F(BalloonFixture, BrokenStatisticsRingNeedsReset) {
  make(0, false, 1);
  start(true);
  driver->publish(kStats, 200);
  driver->kick(kStats);
  EXPECT_TRUE(needs_reset());
  registrar.fire(balloon->stats_timer_fd());  // the device stays quiet until reset
  start(true);
  EXPECT_FALSE(needs_reset());
}

TEST_F(BalloonFixture, NoStatisticsRequestsWhileWaitingForReset) {
  make(0, false, 1);
  start(true);
  uint32_t len = write_stats(kRequests, {{kStatMemFree, 5}});
  driver->post(kStats, {{kRequests, len, false}});
  driver->kick(kStats);
  driver->publish(kInflate, 77);  // breaks the inflate ring
  driver->kick(kInflate);
  ASSERT_TRUE(needs_reset());
  registrar.fire(balloon->stats_timer_fd());
  EXPECT_FALSE(driver->take_used(kStats)) << "the device stays quiet until reset";
}

TEST_F(BalloonFixture, ResetClearsStatisticsAndStopsTheTimer) {
  make(0, false, 1);
  start(true);
  uint32_t len = write_stats(kRequests, {{kStatMemFree, 5}});
  driver->post(kStats, {{kRequests, len, false}});
  driver->kick(kStats);
  EXPECT_EQ(balloon->latest_stats()->free_memory, 5u);
  driver->write_reg(0x70, 0);
  EXPECT_FALSE(balloon->latest_stats()->free_memory);
  itimerspec armed{};
  ASSERT_EQ(::timerfd_gettime(balloon->stats_timer_fd(), &armed), 0);
  EXPECT_EQ(armed.it_value.tv_sec + armed.it_value.tv_nsec, 0);
  registrar.fire(balloon->stats_timer_fd());  // a late tick after reset is harmless
  EXPECT_EQ(driver->used_idx(kStats), 0u);
}

TEST(BalloonReclaim, RefusesRangesOutsideRamOrUnaligned) {
  auto mem = GuestMemory::create_anonymous({{0, 1 * kMiB}, {2 * kMiB, 1 * kMiB}}).value();
  ASSERT_TRUE(mem.fill(kMiB - 4096, 0x11, 4096).ok());
  EXPECT_FALSE(discard_guest_ram(mem, kMiB - 4096, 8192).ok()) << "runs into the hole";
  EXPECT_FALSE(discard_guest_ram(mem, 100, 4096).ok());
  EXPECT_FALSE(discard_guest_ram(mem, 0, 100).ok());
  EXPECT_FALSE(discard_guest_ram(mem, ~0ULL & ~4095ULL, 8192).ok()) << "wraps";
  auto page = mem.slice(kMiB - 4096, 4096).value();
  EXPECT_EQ(page[0], 0x11) << "a refused range is not partly discarded";
  EXPECT_TRUE(discard_guest_ram(mem, kMiB - 4096, 4096).ok());
  EXPECT_EQ(page[0], 0);
}

TEST(BalloonReclaim, SpansRegionsThatTouch) {
  // Two regions adjacent in guest-physical space, laid out in reverse in the memfd.
  auto mem = GuestMemory::create_anonymous({{kMiB, kMiB}, {0, kMiB}}).value();
  ASSERT_TRUE(mem.fill(0, 0x22, 2 * kMiB).ok());
  EXPECT_TRUE(discard_guest_ram(mem, kMiB - 8192, 4 * 4096).ok());
  std::vector<uint8_t> out(6 * 4096);
  ASSERT_TRUE(mem.read(kMiB - 3 * 4096, out).ok());
  EXPECT_EQ(out[0], 0x22);
  EXPECT_TRUE(
      std::all_of(out.begin() + 4096, out.begin() + 5 * 4096, [](uint8_t b) { return b == 0; }));
  EXPECT_EQ(out[5 * 4096], 0x22);
}

}  // namespace
}  // namespace ignition::devices::virtio
