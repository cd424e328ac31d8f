// virtio-rng's rate limiter, through a real virtio-mmio transport and the host-side test
// driver: requests beyond the ops or bandwidth budget wait in the ring, in order, and are
// served when the limiter's timer says the tokens are back.
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/rng/rng.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

constexpr uint64_t kRam = 4 << 20;
constexpr uint64_t kData = 0x200000;
constexpr uint64_t kMs = 1'000'000;
constexpr uint16_t kQueue = 16;
constexpr uint32_t kRunning = 15;

config::TokenBucket bucket(uint64_t size, uint64_t refill_ms) {
  return config::TokenBucket{size, std::nullopt, refill_ms};
}

struct RngLimiterTest : ::testing::Test {
  // Creates the device with `limits` and the test's clock (or the real one), starts it.
  void start(std::optional<config::RateLimiter> limits, bool real_clock = false) {
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    Clock clock;
    if (!real_clock) clock = [this] { return now; };
    auto device = Rng::create(config::Entropy{limits}, clock);
    ASSERT_TRUE(device.ok()) << device.error().message;
    rng = device->get();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    transport = std::make_unique<MmioTransport>(std::move(device).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
    ASSERT_TRUE(transport->register_events(registrar).ok());
    ASSERT_EQ(driver->start(kFeatureVersion1, {kQueue}), kRunning);
  }

  // Posts `count` requests of `len` bytes each (descriptors from next_desc) and kicks once.
  void request(int count, uint32_t len) {
    for (int i = 0; i < count; ++i) {
      uint16_t d = next_desc++ % kQueue;
      driver->post(0, {{kData + 0x10000ULL * d, len, true}}, d);
    }
    driver->kick(0);
  }
  // Fires the limiter's timer as the event loop would when it expires.
  void fire_timer() {
    ASSERT_EQ(registrar.watched(), 1u) << "the limiter's timerfd is registered";
    registrar.fire(registrar.fds().front(), POLLIN);
  }
  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }

  uint64_t now = 1'000 * kMs;
  std::unique_ptr<GuestMemory> memory;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  test::TestRegistrar registrar;
  Rng* rng = nullptr;
  uint16_t next_desc = 0;
};

TEST_F(RngLimiterTest, OpsBeyondTheBudgetWaitForTheRefill) {
  config::RateLimiter limits;
  limits.ops = bucket(2, 1000);  // 2 requests per second
  start(limits);
  request(4, 64);
  EXPECT_EQ(driver->used_idx(0), 2) << "the bucket held two requests";
  EXPECT_TRUE(rng->rate_limited());
  EXPECT_EQ(rng->bytes_served(), 128u);

  // A kick while blocked serves nothing: the waiting requests keep their place.
  driver->kick(0);
  EXPECT_EQ(driver->used_idx(0), 2);

  now += 500 * kMs;  // one op refilled
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 3);
  EXPECT_TRUE(rng->rate_limited()) << "the fourth still waits";
  now += 500 * kMs;
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 4);
  EXPECT_EQ(rng->bytes_served(), 256u);
  EXPECT_GE(rng->throttled(), 2u);
  // Completed in order: descriptor 0, 1, 2, 3.
  for (uint32_t head = 0; head < 4; ++head) {
    auto used = driver->take_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->first, head);
    EXPECT_EQ(used->second, 64u);
  }
  EXPECT_FALSE(needs_reset());
}

TEST_F(RngLimiterTest, BytesBeyondTheBandwidthWaitForTheRefill) {
  config::RateLimiter limits;
  limits.bandwidth = bucket(1024, 100);  // 1 KiB per 100 ms
  start(limits);
  request(4, 512);
  EXPECT_EQ(driver->used_idx(0), 2);
  EXPECT_EQ(rng->bytes_served(), 1024u);

  now += 25 * kMs;  // 256 bytes: not enough for a 512-byte request
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 2);
  now += 25 * kMs;  // 512 now
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 3);
  now += 50 * kMs;
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 4);
  EXPECT_EQ(rng->bytes_served(), 2048u);
}

TEST_F(RngLimiterTest, ARequestLargerThanTheBucketGoesThroughAndPaysItsDebt) {
  config::RateLimiter limits;
  limits.bandwidth = bucket(1024, 100);
  start(limits);
  request(1, 4096);  // four buckets' worth
  EXPECT_EQ(driver->used_idx(0), 1) << "never stuck forever";
  EXPECT_EQ(rng->bytes_served(), 4096u);
  request(1, 16);
  EXPECT_EQ(driver->used_idx(0), 1) << "in debt for 3 KiB";
  now += 299 * kMs;
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 1);
  now += 3 * kMs;  // the debt is paid at 300 ms, the 16 bytes take 1.6 ms more
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 2);
}

TEST_F(RngLimiterTest, BothBucketsMustAllowAndARefusedByteChargeGivesTheOpBack) {
  config::RateLimiter limits;
  limits.ops = bucket(3, 1000);
  limits.bandwidth = bucket(1000, 1000);
  start(limits);
  request(3, 400);  // ops allow 3, bytes 2
  EXPECT_EQ(driver->used_idx(0), 2);
  now += 400 * kMs;  // 400 bytes back (and 1.2 ops)
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 3) << "the refused request's op was returned, not lost";
}

TEST_F(RngLimiterTest, TheChargeIsWhatIsServedAtMost64KiB) {
  config::RateLimiter limits;
  limits.bandwidth = bucket(Rng::kMaxRequestBytes, 1000);
  start(limits);
  request(1, 1 << 20);  // asks for 1 MiB, gets 64 KiB, pays 64 KiB
  EXPECT_EQ(driver->used_idx(0), 1);
  EXPECT_EQ(rng->bytes_served(), Rng::kMaxRequestBytes);
  request(1, 16);
  EXPECT_EQ(driver->used_idx(0), 1) << "the bucket is empty";
  EXPECT_TRUE(rng->rate_limited());
}

TEST_F(RngLimiterTest, TheTimerFdWakesTheQueueInRealTime) {
  config::RateLimiter limits;
  limits.ops = bucket(1, 20);  // one request per 20 ms
  start(limits, /*real_clock=*/true);
  request(2, 32);
  EXPECT_EQ(driver->used_idx(0), 1);
  ASSERT_EQ(registrar.watched(), 1u);
  pollfd p{registrar.fds().front(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1) << "the timer fires once the op is back";
  fire_timer();
  EXPECT_EQ(driver->used_idx(0), 2);
  EXPECT_FALSE(rng->rate_limited());
}

TEST_F(RngLimiterTest, NoLimiterOrADisabledOneLimitsNothing) {
  for (std::optional<config::RateLimiter> limits :
       {std::optional<config::RateLimiter>{},
        std::optional(config::RateLimiter{bucket(0, 100), bucket(5, 0)})}) {
    registrar.clear();
    next_desc = 0;
    start(limits);
    EXPECT_EQ(registrar.watched(), 0u) << "no timer to watch";
    request(kQueue, 4096);
    EXPECT_EQ(driver->used_idx(0), kQueue);
    EXPECT_EQ(rng->throttled(), 0u);
  }
}

TEST_F(RngLimiterTest, ALimitedDeviceSavesAndRestoresItsState) {
  config::RateLimiter limits;
  limits.ops = bucket(1, 1000);
  start(limits);
  request(2, 64);
  auto saved = transport->save_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message;

  auto device = Rng::create(config::Entropy{limits}, [this] { return now; });
  ASSERT_TRUE(device.ok());
  Rng* fresh = device->get();
  auto irq_fd = EventFd::create();
  ASSERT_TRUE(irq_fd.ok());
  MmioTransport restored(std::move(device).value(), *memory, IrqLine(std::move(irq_fd).value(), 5));
  ASSERT_TRUE(restored.restore_state(*saved).ok());
  EXPECT_EQ(fresh->bytes_served(), 64u);
  // A restored limiter starts full: the waiting request is served on the next kick.
  test::VirtioTestDriver again(restored, *memory);
  again.kick(0);
  EXPECT_EQ(fresh->bytes_served(), 128u);
}

}  // namespace
}  // namespace ignition::devices::virtio
