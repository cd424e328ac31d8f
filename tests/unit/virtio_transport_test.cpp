// The virtio-mmio transport and split virtqueue, driven by a host-side test driver:
// the handshake, a real request through virtio-rng, and a driver that breaks every rule.
#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/rng/rng.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

constexpr uint64_t kRam = 4 << 20;
constexpr uint16_t kNext = 1, kWrite = 2;

struct TransportFixture : ::testing::Test {
  void SetUp() override {
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    irq_probe = ::dup(irq_fd->fd());
    auto device = std::make_unique<Rng>();
    rng = device.get();
    transport = std::make_unique<MmioTransport>(std::move(device), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
  }
  void TearDown() override { ::close(irq_probe); }
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }
  // Starts the device with a 16-entry queue and checks it is running.
  void start() { ASSERT_EQ(driver->start(kFeatureVersion1, {16}), 15u); }

  std::unique_ptr<GuestMemory> memory;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  Rng* rng = nullptr;
  int irq_probe = -1;
};

TEST_F(TransportFixture, IdentifiesAsAModernRngDevice) {
  EXPECT_EQ(driver->read_reg(0x000), 0x74726976u);
  EXPECT_EQ(driver->read_reg(0x004), 2u);
  EXPECT_EQ(driver->read_reg(0x008), 4u);
  EXPECT_TRUE(driver->device_features() & kFeatureVersion1);
  driver->write_reg(0x30, 0);
  EXPECT_EQ(driver->read_reg(0x034), Rng::kQueueSize);
  driver->write_reg(0x30, 1);
  EXPECT_EQ(driver->read_reg(0x034), 0u) << "no second queue";
}

TEST_F(TransportFixture, RefusesFeaturesItDidNotOffer) {
  uint32_t status = driver->start(kFeatureVersion1 | (1ULL << 40), {16});
  EXPECT_FALSE(status & kStatusFeaturesOk);
  EXPECT_TRUE(status & kStatusFailed);
}

TEST_F(TransportFixture, RefusesLegacyDrivers) {
  uint32_t status = driver->start(0, {16});
  EXPECT_FALSE(status & kStatusFeaturesOk);
}

TEST_F(TransportFixture, ServesEntropyAndInterrupts) {
  start();
  (void)memory->fill(0x200000, 0, 4096);
  driver->post(0, {{0x200000, 64, true}, {0x200100, 64, true}});
  driver->kick(0);
  auto used = driver->take_used(0);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 0u);
  EXPECT_EQ(used->second, 128u);
  auto bytes = memory->slice(0x200000, 64).value();
  EXPECT_NE(std::count(bytes.begin(), bytes.end(), 0), 64) << "entropy, not zeros";
  EXPECT_EQ(irqs(), 1u);
  EXPECT_EQ(driver->read_reg(0x060) & kInterruptUsedRing, kInterruptUsedRing);
  driver->write_reg(0x064, kInterruptUsedRing);
  EXPECT_EQ(driver->read_reg(0x060), 0u);
  EXPECT_EQ(rng->bytes_served(), 128u);
}

TEST_F(TransportFixture, NoInterruptWhenTheDriverSuppressesIt) {
  start();
  (void)memory->write_obj<uint16_t>(driver->avail_addr(0), 1);  // VRING_AVAIL_F_NO_INTERRUPT
  driver->post(0, {{0x200000, 16, true}});
  driver->kick(0);
  EXPECT_TRUE(driver->take_used(0));
  EXPECT_EQ(irqs(), 0u);
}

TEST_F(TransportFixture, EventIdxSuppressesInterruptsUntilUsedEvent) {
  ASSERT_EQ(driver->start(kFeatureVersion1 | kFeatureRingEventIdx, {16}) & 4u, 4u);
  uint64_t used_event = driver->avail_addr(0) + 4 + 2 * 16;
  (void)memory->write_obj<uint16_t>(used_event, 2);  // interrupt when used idx passes 2
  for (uint16_t i = 0; i < 4; ++i) {
    driver->post(0, {{0x200000, 8, true}}, i);
    driver->kick(0);
  }
  EXPECT_EQ(driver->used_idx(0), 4);
  EXPECT_EQ(irqs(), 2u) << "the first completion, and the one crossing used_event";
  // avail_event tells the driver the device wants a kick for the next entry.
  EXPECT_EQ(memory->read_obj<uint16_t>(driver->used_addr(0) + 4 + 8 * 16).value(), 4);
}

TEST_F(TransportFixture, IgnoresQueueChangesWhileRunning) {
  start();
  driver->write_reg(0x30, 0);
  driver->write_reg(0x38, 4);
  driver->write_reg(0x80, 0xdead000);
  driver->post(0, {{0x200000, 8, true}});
  driver->kick(0);
  EXPECT_TRUE(driver->take_used(0)) << "the original layout is still in force";
  EXPECT_FALSE(needs_reset());
}

TEST_F(TransportFixture, RingsOutsideRamNeedReset) {
  driver->write_reg(0x70, 0);
  driver->write_reg(0x70, 3);
  driver->write_reg(0x20, 0);
  driver->write_reg(0x24, 1);
  driver->write_reg(0x20, 1);  // VERSION_1
  driver->write_reg(0x70, 11);
  driver->write_reg(0x30, 0);
  driver->write_reg(0x38, 16);
  driver->write_reg(0x80, 0xd0000000);  // the MMIO gap
  driver->write_reg(0x44, 1);
  driver->write_reg(0x70, 15);
  EXPECT_TRUE(needs_reset());
}

TEST_F(TransportFixture, BadQueueSizeNeedsReset) {
  EXPECT_TRUE(driver->start(kFeatureVersion1, {12}) & kStatusNeedsReset) << "not a power of 2";
  EXPECT_TRUE(driver->start(kFeatureVersion1, {1024}) & kStatusNeedsReset) << "above the max";
}

struct EvilCase {
  const char* name;
  std::function<void(test::VirtioTestDriver&)> act;
};

TEST_F(TransportFixture, MaliciousChainsNeedResetAndNeverTouchHostMemory) {
  std::vector<EvilCase> cases = {
      {"head beyond queue size", [](auto& d) { d.publish(0, 16); }},
      {"buffer outside RAM",
       [](auto& d) {
         d.post(0, {{kRam - 8, 64, true}});
       }},
      {"buffer in the MMIO gap",
       [](auto& d) {
         d.post(0, {{0xd0000000, 64, true}});
       }},
      {"length wraps",
       [](auto& d) {
         d.post(0, {{0x200000, 0xffffffff, true}});
       }},
      {"descriptor loop",
       [](auto& d) {
         d.write_descriptor(0, 0, 0x200000, 8, kNext | kWrite, 1);
         d.write_descriptor(0, 1, 0x200008, 8, kNext | kWrite, 0);
         d.publish(0, 0);
       }},
      {"next beyond queue size",
       [](auto& d) {
         d.write_descriptor(0, 0, 0x200000, 8, kNext | kWrite, 200);
         d.publish(0, 0);
       }},
      {"indirect table outside RAM",
       [](auto& d) {
         d.write_descriptor(0, 0, kRam + 0x1000, 64, 4, 0);
         d.publish(0, 0);
       }},
      {"avail index runs ahead",
       [](auto& d) {
         d.publish(0, 0);
         for (int i = 0; i < 40; ++i) d.publish(0, 0);
       }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    start();
    c.act(*driver);
    driver->kick(0);
    EXPECT_TRUE(needs_reset());
    EXPECT_GE(driver->read_reg(0x060) & kInterruptConfigChange, kInterruptConfigChange);
    // Further kicks are ignored until the driver resets; then the device works again.
    driver->kick(0);
    start();
    EXPECT_FALSE(needs_reset());
    driver->post(0, {{0x200000, 8, true}});
    driver->kick(0);
    EXPECT_TRUE(driver->take_used(0));
  }
}

}  // namespace
}  // namespace ignition::devices::virtio
