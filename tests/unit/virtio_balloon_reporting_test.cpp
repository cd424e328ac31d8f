// virtio-balloon free page reporting (VIRTIO_BALLOON_F_REPORTING) through a real virtio-mmio
// transport and a host-side driver: the feature and its queue follow the configuration, a
// reported range really leaves the memfd and reads back as zeros, and a guest that reports
// garbage gets counted or reset, never the host's memory touched outside what it named.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <gtest/gtest.h>

#include "devices/virtio/balloon/balloon.hpp"
#include "devices/virtio/balloon/persist.hpp"
#include "devices/virtio/balloon/request.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kPage = 4096;
// Two RAM regions with a hole between them, like RAM below and above the MMIO gap.
constexpr uint64_t kLowSize = 8 * kMiB;
constexpr uint64_t kHighBase = 16 * kMiB, kHighSize = 8 * kMiB;
constexpr uint64_t kGuestMib = 16;
constexpr uint64_t kChunk = 4 * kMiB;  // 2 MiB-aligned free memory the tests report
constexpr uint64_t kTwoMib = 2 * kMiB;
constexpr uint16_t kStats = 2;
constexpr uint32_t kRunning = 15;  // ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
constexpr uint64_t kReportingFeatures = kFeatureVersion1 | kBalloonFeatureReporting;

config::Balloon balloon_config(bool reporting, uint16_t stats_s = 0) {
  config::Balloon c;
  c.stats_polling_interval_s = stats_s;
  c.free_page_reporting = reporting;
  return c;
}

// Lets one driver (and its ring bookkeeping) carry on over a restored transport.
struct SwitchBus final : BusDevice {
  void read(uint64_t offset, std::span<uint8_t> data) override { target->read(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    target->write(offset, data);
  }
  BusDevice* target = nullptr;
};

struct ReportingFixture : ::testing::Test {
  void SetUp() override {
    auto mem = GuestMemory::create_anonymous({{0, kLowSize}, {kHighBase, kHighSize}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    driver = std::make_unique<test::VirtioTestDriver>(bus, *memory);
  }
  void TearDown() override {
    if (irq_probe >= 0) ::close(irq_probe);
  }
  // A balloon (reporting on unless said otherwise) behind a fresh transport, which becomes
  // the driver's.
  MmioTransport& make(bool reporting = true, uint16_t stats_s = 0) {
    auto device = Balloon::create(balloon_config(reporting, stats_s), kGuestMib);
    EXPECT_TRUE(device.ok()) << device.error().message;
    balloon = device->get();
    auto irq_fd = EventFd::create();
    EXPECT_TRUE(irq_fd.ok());
    if (irq_probe >= 0) ::close(irq_probe);
    irq_probe = ::dup(irq_fd->fd());
    transport = std::make_unique<MmioTransport>(std::move(device).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    bus.target = transport.get();
    return *transport;
  }
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }
  uint64_t allocated_bytes() {
    struct stat st {};
    EXPECT_EQ(::fstat(memory->fd(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks) * 512;
  }
  // Whether the memfd has no page at [gpa, gpa+len) of the low region (file offset = gpa).
  bool hole_at(uint64_t gpa, uint64_t len) {
    off_t data = ::lseek(memory->fd(), static_cast<off_t>(gpa), SEEK_DATA);
    return data < 0 || static_cast<uint64_t>(data) >= gpa + len;
  }
  bool all_equal(uint64_t gpa, uint64_t len, uint8_t value) {
    auto bytes = memory->slice(gpa, len).value();
    return std::all_of(bytes.begin(), bytes.end(), [value](uint8_t b) { return b == value; });
  }
  // Posts one report on queue `q` and kicks it.
  void report(uint16_t q, const std::vector<test::DriverBuffer>& buffers, uint16_t first = 0) {
    driver->post(q, buffers, first);
    driver->kick(q);
  }

  std::unique_ptr<GuestMemory> memory;
  SwitchBus bus;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  Balloon* balloon = nullptr;
  int irq_probe = -1;
};

TEST(BalloonReportingCreate, OfferedOnlyWhenConfigured) {
  auto plain = Balloon::create(balloon_config(false), 16).value();
  EXPECT_FALSE(plain->features() & kBalloonFeatureReporting);
  EXPECT_EQ(plain->queue_max_sizes().size(), 2u);
  EXPECT_FALSE(plain->config().free_page_reporting);

  auto reporting = Balloon::create(balloon_config(true), 16).value();
  EXPECT_EQ(reporting->features(), kReportingFeatures);
  EXPECT_EQ(reporting->queue_max_sizes(), (std::vector<uint16_t>{256, 256, 256}));
  EXPECT_TRUE(reporting->config().free_page_reporting);

  auto both = Balloon::create(balloon_config(true, 5), 16).value();
  EXPECT_EQ(both->features(), kReportingFeatures | kBalloonFeatureStatsVq);
  EXPECT_EQ(both->queue_max_sizes().size(), 4u) << "inflate, deflate, stats, reporting";

  auto hinting = balloon_config(true);
  hinting.free_page_hinting = true;
  EXPECT_FALSE(Balloon::create(hinting, 16).ok()) << "hinting stays refused";
}

TEST(BalloonReportingRequest, TrimsUnalignedRangesAndSkipsReadableBuffers) {
  DescriptorChain chain;
  chain.buffers = {{0x1000, 0x3000, true},     // pages 1..3
                   {0x10010, 0x2000, true},    // misaligned start: page 0x11 only
                   {0x20000, 0x1800, true},    // misaligned length: page 0x20 only
                   {0x30008, 0x100, true},     // inside one page: nothing
                   {0x40000, 0x1000, false}};  // device-readable: nothing
  FreePageReport r = read_free_page_report(chain);
  ASSERT_EQ(r.ranges.size(), 3u);
  EXPECT_EQ(r.ranges[0].first_pfn, 1u);
  EXPECT_EQ(r.ranges[0].count, 3u);
  EXPECT_EQ(r.ranges[1].first_pfn, 0x11u);
  EXPECT_EQ(r.ranges[1].count, 1u);
  EXPECT_EQ(r.ranges[2].first_pfn, 0x20u);
  EXPECT_EQ(r.ranges[2].count, 1u);
  EXPECT_EQ(r.malformed, 4u);
}

TEST_F(ReportingFixture, DeviceOffersTheFeatureAndItsQueue) {
  make();
  EXPECT_TRUE(driver->device_features() & kBalloonFeatureReporting);
  driver->write_reg(0x30, 2);
  EXPECT_EQ(driver->read_reg(0x034), 256u) << "the reporting queue";
  driver->write_reg(0x30, 3);
  EXPECT_EQ(driver->read_reg(0x034), 0u);

  make(false);
  EXPECT_FALSE(driver->device_features() & kBalloonFeatureReporting);
  driver->write_reg(0x30, 2);
  EXPECT_EQ(driver->read_reg(0x034), 0u) << "no queue without the feature";
}

TEST_F(ReportingFixture, RefusesToStartWithoutTheReportingQueue) {
  make();
  EXPECT_TRUE(driver->start(kReportingFeatures, {16, 16}) & kStatusNeedsReset)
      << "reporting accepted, but no queue for it";
  EXPECT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  EXPECT_EQ(driver->start(kFeatureVersion1, {16, 16}), kRunning) << "declining it is fine";
}

TEST_F(ReportingFixture, ReportedRangeGoesBackToTheHost) {
  make();
  ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  // The guest used the chunk and a page on each side of it.
  ASSERT_TRUE(memory->fill(kChunk - kPage, 0xab, kTwoMib + 2 * kPage).ok());
  uint64_t touched = allocated_bytes();
  ASSERT_GE(touched, kTwoMib + 2 * kPage);
  ASSERT_FALSE(hole_at(kChunk, kTwoMib));

  report(kStats, {{kChunk, static_cast<uint32_t>(kTwoMib), true}});
  auto used = driver->take_used(kStats);
  ASSERT_TRUE(used) << "the report comes back";
  EXPECT_EQ(used->second, 0u) << "the device writes nothing";
  EXPECT_EQ(irqs(), 1u);
  EXPECT_FALSE(needs_reset());
  // Accounting first: reading the range below faults fresh pages in.
  EXPECT_LE(allocated_bytes(), touched - kTwoMib) << "the memfd gave the pages back";
  EXPECT_TRUE(hole_at(kChunk, kTwoMib)) << "a hole where the range was";
  EXPECT_TRUE(all_equal(kChunk, kTwoMib, 0)) << "reported pages read back as zeros";
  EXPECT_TRUE(all_equal(kChunk - kPage, kPage, 0xab)) << "the page before is untouched";
  EXPECT_TRUE(all_equal(kChunk + kTwoMib, kPage, 0xab)) << "the page after too";
  // The guest may use the pages again at once.
  ASSERT_TRUE(memory->fill(kChunk, 0x11, kPage).ok());
  EXPECT_TRUE(all_equal(kChunk, kPage, 0x11));

  BalloonCounters c = balloon->counters();
  EXPECT_EQ(c.free_page_reports, 1u);
  EXPECT_EQ(c.free_pages_reported, kTwoMib / kPage);
  EXPECT_EQ(c.free_page_report_errors, 0u);
  EXPECT_EQ(c.pages_discarded, 0u) << "inflate's counter is its own";
  EXPECT_EQ(c.inflate_requests, 0u);
}

TEST_F(ReportingFixture, OneChainMayNameRangesInEveryRegion) {
  make();
  ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  ASSERT_TRUE(memory->fill(kChunk, 0x5a, 16 * kPage).ok());
  ASSERT_TRUE(memory->fill(kHighBase + kMiB, 0x5a, 8 * kPage).ok());
  report(kStats, {{kChunk, 16 * kPage, true}, {kHighBase + kMiB, 8 * kPage, true}});
  ASSERT_TRUE(driver->take_used(kStats));
  EXPECT_EQ(balloon->counters().free_pages_reported, 24u);
  EXPECT_TRUE(all_equal(kChunk, 16 * kPage, 0));
  EXPECT_TRUE(all_equal(kHighBase + kMiB, 8 * kPage, 0));
}

TEST_F(ReportingFixture, FollowsTheStatisticsQueueWhenTheDriverTakesStatistics) {
  make(true, /*stats_s=*/5);
  ASSERT_TRUE(memory->fill(kChunk, 0xcd, 4 * kPage).ok());
  ASSERT_EQ(driver->start(kReportingFeatures | kBalloonFeatureStatsVq, {16, 16, 16, 16}), kRunning);
  report(3, {{kChunk, 4 * kPage, true}});
  ASSERT_TRUE(driver->take_used(3));
  EXPECT_EQ(balloon->counters().free_pages_reported, 4u);
  EXPECT_TRUE(all_equal(kChunk, 4 * kPage, 0));
}

TEST_F(ReportingFixture, IsQueueTwoWhenTheDriverDeclinesStatistics) {
  // Linux numbers only the queues of negotiated features.
  make(true, /*stats_s=*/5);
  ASSERT_TRUE(memory->fill(kChunk, 0xcd, 4 * kPage).ok());
  ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  report(2, {{kChunk, 4 * kPage, true}});
  ASSERT_TRUE(driver->take_used(2));
  EXPECT_EQ(balloon->counters().free_pages_reported, 4u);
  EXPECT_EQ(balloon->counters().stats_reports, 0u) << "not taken for a statistics report";
  EXPECT_TRUE(all_equal(kChunk, 4 * kPage, 0));
}

TEST_F(ReportingFixture, NothingIsReportedWhenTheDriverDeclinesIt) {
  make();
  ASSERT_TRUE(memory->fill(kChunk, 0xab, kPage).ok());
  ASSERT_EQ(driver->start(kFeatureVersion1, {16, 16}), kRunning);
  driver->kick(2);  // no such queue for this driver
  EXPECT_FALSE(needs_reset());
  EXPECT_EQ(balloon->counters().free_page_reports, 0u);
  EXPECT_TRUE(all_equal(kChunk, kPage, 0xab));
}

TEST_F(ReportingFixture, MalformedBuffersAreCountedAndNeverOverreach) {
  make();
  ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  ASSERT_TRUE(memory->fill(kChunk, 0xab, 8 * kPage).ok());
  struct Case {
    const char* name;
    std::vector<test::DriverBuffer> buffers;
    uint64_t errors;
  };
  std::vector<Case> cases = {
      {"device-readable range", {{kChunk, 2 * kPage, false}}, 1},
      {"readable then writable", {{kChunk, kPage, false}, {kChunk + kPage, 8, true}}, 2},
      {"part of one page", {{kChunk + 8, 100, true}}, 1},
  };
  uint16_t slot = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    uint64_t before = balloon->counters().free_page_report_errors;
    report(kStats, c.buffers, slot);
    slot = static_cast<uint16_t>(slot + c.buffers.size());
    auto used = driver->take_used(kStats);
    ASSERT_TRUE(used) << "returned, not dropped";
    EXPECT_EQ(used->second, 0u);
    EXPECT_FALSE(needs_reset());
    EXPECT_EQ(balloon->counters().free_page_report_errors - before, c.errors);
    EXPECT_TRUE(all_equal(kChunk, 8 * kPage, 0xab)) << "nothing freed";
  }
  EXPECT_EQ(balloon->counters().free_pages_reported, 0u);
  EXPECT_EQ(balloon->counters().free_page_reports, cases.size());

  // Misaligned at both ends: only the whole page inside goes.
  report(kStats, {{kChunk + kPage + 100, static_cast<uint32_t>(2 * kPage), true}}, slot);
  ASSERT_TRUE(driver->take_used(kStats));
  EXPECT_TRUE(all_equal(kChunk + kPage, kPage, 0xab)) << "the partly named page stays";
  EXPECT_TRUE(all_equal(kChunk + 2 * kPage, kPage, 0)) << "the whole page goes";
  EXPECT_TRUE(all_equal(kChunk + 3 * kPage, kPage, 0xab)) << "the partly named page stays";
  EXPECT_EQ(balloon->counters().free_pages_reported, 1u);
  EXPECT_EQ(balloon->counters().free_page_report_errors, 5u);
  EXPECT_FALSE(needs_reset());
}

TEST_F(ReportingFixture, RangesOutsideRamAreRefusedByTheQueue) {
  struct Case {
    const char* name;
    uint64_t gpa;
    uint64_t len;
  };
  for (const Case& c : {Case{"runs past the low region", kLowSize - kPage, 2 * kPage},
                        Case{"in the hole", kLowSize + kMiB, kPage},
                        Case{"past the end of RAM", kHighBase + kHighSize - kPage, 4 * kPage},
                        Case{"wraps", ~0ULL - kPage + 1, 2 * kPage}}) {
    SCOPED_TRACE(c.name);
    make();
    ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
    ASSERT_TRUE(memory->fill(kLowSize - kPage, 0xab, kPage).ok());
    ASSERT_TRUE(memory->fill(kHighBase + kHighSize - kPage, 0xab, kPage).ok());
    report(kStats, {{c.gpa, static_cast<uint32_t>(c.len), true}});
    EXPECT_TRUE(needs_reset()) << "a buffer outside guest RAM breaks the ring";
    EXPECT_FALSE(driver->take_used(kStats));
    EXPECT_EQ(balloon->counters().free_pages_reported, 0u);
    EXPECT_TRUE(all_equal(kLowSize - kPage, kPage, 0xab)) << "nothing freed";
    EXPECT_TRUE(all_equal(kHighBase + kHighSize - kPage, kPage, 0xab)) << "nothing freed";
    // The device stays quiet until the driver resets it, then works again.
    driver->kick(0);
    EXPECT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
    report(kStats, {{kChunk, static_cast<uint32_t>(kPage), true}});
    EXPECT_TRUE(driver->take_used(kStats));
  }
}

TEST_F(ReportingFixture, SnapshotKeepsTheFeatureAndTheQueue) {
  make();
  ASSERT_EQ(driver->start(kReportingFeatures, {16, 16, 16}), kRunning);
  report(kStats, {{kChunk, static_cast<uint32_t>(kPage), true}});
  ASSERT_TRUE(driver->take_used(kStats));
  auto saved_device = balloon::decode_state(balloon->save_state());
  ASSERT_TRUE(saved_device.ok());
  EXPECT_TRUE(saved_device->features & kBalloonFeatureReporting) << "the bit travels";
  auto blob = transport->save_state();
  ASSERT_TRUE(blob.ok());

  // Into a device configured without reporting: refused.
  auto r = make(false).restore_state(*blob);
  EXPECT_FALSE(r.ok());

  // Into one configured the same: the reporting queue works on, from where it was.
  ASSERT_TRUE(make().restore_state(*blob).ok());
  EXPECT_TRUE(transport->activated());
  ASSERT_TRUE(memory->fill(kChunk + kMiB, 0xab, 2 * kPage).ok());
  report(kStats, {{kChunk + kMiB, static_cast<uint32_t>(2 * kPage), true}}, 1);
  auto used = driver->take_used(kStats);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 1u);
  EXPECT_EQ(driver->used_idx(kStats), 2) << "after the one used before the snapshot";
  EXPECT_EQ(balloon->counters().free_pages_reported, 2u);
  EXPECT_TRUE(all_equal(kChunk + kMiB, 2 * kPage, 0));
}

TEST_F(ReportingFixture, StateWithoutReportingStillRestores) {
  // A snapshot from before reporting existed: a balloon without the feature.
  make(false);
  ASSERT_EQ(driver->start(kFeatureVersion1, {16, 16}), kRunning);
  auto blob = transport->save_state();
  ASSERT_TRUE(blob.ok());
  ASSERT_TRUE(make(false).restore_state(*blob).ok());
  EXPECT_TRUE(transport->activated());
  EXPECT_FALSE(make().restore_state(*blob).ok()) << "a reporting balloon is another device";
}

}  // namespace
}  // namespace ignition::devices::virtio
