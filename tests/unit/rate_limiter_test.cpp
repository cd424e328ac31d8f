// The token-bucket rate limiter with an injected clock: refill math, one-time burst,
// unlimited buckets, blocking with the timerfd armed, over-consumption and runtime updates.
#include <poll.h>
#include <sys/timerfd.h>

#include <gtest/gtest.h>

#include "devices/rate_limiter.hpp"

namespace ignition::devices {
namespace {

constexpr uint64_t kMs = 1'000'000;

config::TokenBucket bucket(uint64_t size, uint64_t refill_ms,
                           std::optional<uint64_t> burst = std::nullopt) {
  config::TokenBucket b;
  b.size = size;
  b.refill_time = refill_ms;
  b.one_time_burst = burst;
  return b;
}

struct RateLimiterTest : ::testing::Test {
  uint64_t now = 1'000 * kMs;  // arbitrary non-zero start
  Clock clock() {
    return [this] { return now; };
  }
  RateLimiter make(const config::RateLimiter& cfg) {
    auto limiter = RateLimiter::create(cfg, clock());
    EXPECT_TRUE(limiter.ok());
    return std::move(limiter).value();
  }
  // Nanoseconds until the limiter's timer fires; 0 when disarmed.
  static uint64_t timer_remaining(const RateLimiter& limiter) {
    itimerspec spec{};
    EXPECT_EQ(::timerfd_gettime(limiter.timer_fd(), &spec), 0);
    return spec.it_value.tv_sec * 1'000'000'000ULL + spec.it_value.tv_nsec;
  }
};

TEST_F(RateLimiterTest, UnconfiguredLimiterNeverLimits) {
  auto limiter = make({});
  EXPECT_TRUE(limiter.unlimited());
  EXPECT_GE(limiter.timer_fd(), 0) << "the timer exists so a later update can use it";
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.consume(1ULL << 40, TokenType::kBytes));
  EXPECT_TRUE(limiter.consume(UINT64_MAX, TokenType::kOps));
  EXPECT_FALSE(limiter.is_blocked());
  EXPECT_EQ(timer_remaining(limiter), 0u);
}

TEST_F(RateLimiterTest, DisabledBucketsDoNotLimit) {
  auto limiter = make({bucket(0, 100), bucket(100, 0)});
  EXPECT_TRUE(limiter.unlimited());
  EXPECT_TRUE(limiter.consume(1 << 20, TokenType::kBytes));
  EXPECT_TRUE(limiter.consume(1 << 20, TokenType::kOps));
}

TEST_F(RateLimiterTest, OnlyTheConfiguredTypeIsLimited) {
  auto limiter = make({bucket(1000, 1000), std::nullopt});
  EXPECT_TRUE(limiter.consume(1000, TokenType::kBytes));
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(limiter.consume(1'000'000, TokenType::kOps));
}

TEST_F(RateLimiterTest, RefillsProportionallyToElapsedTime) {
  // 1000 tokens per second = 1 token per ms.
  auto limiter = make({bucket(1000, 1000), std::nullopt});
  ASSERT_TRUE(limiter.consume(1000, TokenType::kBytes));
  EXPECT_EQ(limiter.bucket(TokenType::kBytes)->budget(), 0u);

  now += 250 * kMs;
  ASSERT_TRUE(limiter.consume(250, TokenType::kBytes));
  EXPECT_EQ(limiter.bucket(TokenType::kBytes)->budget(), 0u);

  // Fractions of a token carry over: 1.5 ms twice gives 3 tokens, not 2.
  now += 1'500'000;
  ASSERT_TRUE(limiter.consume(1, TokenType::kBytes));
  now += 1'500'000;
  EXPECT_TRUE(limiter.consume(2, TokenType::kBytes));
  EXPECT_EQ(limiter.bucket(TokenType::kBytes)->budget(), 0u);

  // A long idle period fills the bucket only up to its size.
  now += 3600'000 * kMs;
  EXPECT_TRUE(limiter.consume(1000, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(1, TokenType::kBytes));
}

TEST_F(RateLimiterTest, OneTimeBurstIsSpentFirstAndNeverRefilled) {
  auto limiter = make({std::nullopt, bucket(10, 1000, 5)});
  const auto& ops = limiter.bucket(TokenType::kOps);
  ASSERT_TRUE(limiter.consume(3, TokenType::kOps));
  EXPECT_EQ(ops->one_time_burst(), 2u);
  EXPECT_EQ(ops->budget(), 10u) << "the burst pays before the bucket";
  ASSERT_TRUE(limiter.consume(4, TokenType::kOps));
  EXPECT_EQ(ops->one_time_burst(), 0u);
  EXPECT_EQ(ops->budget(), 8u);
  ASSERT_TRUE(limiter.consume(8, TokenType::kOps));
  EXPECT_FALSE(limiter.consume(1, TokenType::kOps));

  limiter.on_timer();
  now += 1000 * kMs;
  EXPECT_TRUE(limiter.consume(10, TokenType::kOps));
  EXPECT_EQ(ops->one_time_burst(), 0u);
  EXPECT_FALSE(limiter.consume(1, TokenType::kOps)) << "the burst does not come back";
}

TEST_F(RateLimiterTest, RefusalTakesNothing) {
  auto limiter = make({bucket(10, 1000), std::nullopt});
  ASSERT_TRUE(limiter.consume(8, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(5, TokenType::kBytes));
  EXPECT_EQ(limiter.bucket(TokenType::kBytes)->budget(), 2u);
  limiter.on_timer();
  EXPECT_TRUE(limiter.consume(2, TokenType::kBytes));
}

TEST_F(RateLimiterTest, BlocksAndArmsTheTimerForTheMissingTokens) {
  // 100 tokens per 100 ms.
  auto limiter = make({bucket(100, 100), std::nullopt});
  ASSERT_TRUE(limiter.consume(100, TokenType::kBytes));
  EXPECT_FALSE(limiter.is_blocked());
  EXPECT_EQ(timer_remaining(limiter), 0u);

  EXPECT_FALSE(limiter.consume(40, TokenType::kBytes));
  EXPECT_TRUE(limiter.is_blocked());
  uint64_t remaining = timer_remaining(limiter);
  EXPECT_GT(remaining, 30 * kMs);
  EXPECT_LE(remaining, 40 * kMs) << "40 tokens take 40 ms to refill";

  // While blocked, everything is refused (even other types and small amounts), so waiting
  // requests keep their order.
  now += 1000 * kMs;
  EXPECT_FALSE(limiter.consume(1, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(1, TokenType::kOps));

  limiter.on_timer();
  EXPECT_FALSE(limiter.is_blocked());
  EXPECT_EQ(timer_remaining(limiter), 0u) << "on_timer disarms";
  EXPECT_TRUE(limiter.consume(40, TokenType::kBytes));
}

TEST_F(RateLimiterTest, TimerFdBecomesReadableWhenItFires) {
  auto limiter = make({bucket(1'000'000'000, 1), std::nullopt});  // 1e6 tokens per ns
  ASSERT_TRUE(limiter.consume(1'000'000'000, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(1000, TokenType::kBytes));  // ~1 ns of real time to wait
  pollfd pfd{limiter.timer_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 1000), 1);
  limiter.on_timer();
  EXPECT_FALSE(limiter.is_blocked());
  EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "on_timer drains the fd";
}

TEST_F(RateLimiterTest, ManualReplenishReturnsTokens) {
  auto limiter = make({std::nullopt, bucket(5, 1000)});
  ASSERT_TRUE(limiter.consume(5, TokenType::kOps));
  limiter.manual_replenish(2, TokenType::kOps);
  EXPECT_EQ(limiter.bucket(TokenType::kOps)->budget(), 2u);
  limiter.manual_replenish(100, TokenType::kOps);
  EXPECT_EQ(limiter.bucket(TokenType::kOps)->budget(), 5u) << "capped at the size";
  limiter.manual_replenish(100, TokenType::kBytes);  // unlimited: no-op, no crash
}

TEST_F(RateLimiterTest, OverConsumptionIsAllowedThenPaidBack) {
  // A request bigger than the bucket would otherwise wait forever.
  auto limiter = make({bucket(100, 100), std::nullopt});
  EXPECT_TRUE(limiter.consume(300, TokenType::kBytes));
  EXPECT_TRUE(limiter.is_blocked());
  uint64_t remaining = timer_remaining(limiter);
  EXPECT_GT(remaining, 190 * kMs);
  EXPECT_LE(remaining, 200 * kMs) << "200 tokens of debt at 1 token/ms";

  // The debt is real: after 150 ms there are still no tokens.
  limiter.on_timer();
  now += 150 * kMs;
  EXPECT_FALSE(limiter.consume(1, TokenType::kBytes));
  limiter.on_timer();
  now += 60 * kMs;  // 210 ms after: debt paid, 10 tokens credited
  EXPECT_TRUE(limiter.consume(10, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(1, TokenType::kBytes));
}

TEST_F(RateLimiterTest, UpdateChangesLimitsAtRuntime) {
  auto limiter = make({bucket(100, 1000), bucket(10, 1000)});
  ASSERT_TRUE(limiter.consume(100, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(50, TokenType::kBytes));
  EXPECT_TRUE(limiter.is_blocked());

  // Absent bucket: unchanged. Present: replaced and full; the blocked caller is told to
  // retry soon.
  config::RateLimiter change;
  change.bandwidth = bucket(1000, 1000);
  limiter.update(change);
  EXPECT_LE(timer_remaining(limiter), 1 * kMs);
  ASSERT_TRUE(limiter.bucket(TokenType::kOps));
  EXPECT_EQ(limiter.bucket(TokenType::kOps)->size(), 10u);
  EXPECT_EQ(limiter.bucket(TokenType::kBytes)->size(), 1000u);
  limiter.on_timer();
  EXPECT_TRUE(limiter.consume(1000, TokenType::kBytes));

  // Present but disabled: the limit goes away.
  config::RateLimiter remove;
  remove.ops = bucket(0, 0);
  limiter.update(remove);
  EXPECT_FALSE(limiter.bucket(TokenType::kOps));
  EXPECT_TRUE(limiter.consume(1'000'000, TokenType::kOps));

  config::RateLimiter expected;
  expected.bandwidth = bucket(1000, 1000);
  EXPECT_EQ(limiter.config(), expected);

  // From unlimited to limited after creation.
  auto open = make({});
  config::RateLimiter add;
  add.ops = bucket(1, 1000, 2);
  open.update(add);
  EXPECT_FALSE(open.unlimited());
  EXPECT_TRUE(open.consume(3, TokenType::kOps));
  EXPECT_FALSE(open.consume(1, TokenType::kOps));
  EXPECT_EQ(open.config().ops, add.ops);
}

TEST_F(RateLimiterTest, ExtremeValuesDoNotOverflow) {
  auto limiter = make({bucket(UINT64_MAX, UINT64_MAX), bucket(1, 1)});
  EXPECT_TRUE(limiter.consume(UINT64_MAX, TokenType::kBytes));
  EXPECT_FALSE(limiter.consume(UINT64_MAX, TokenType::kBytes));
  EXPECT_GT(timer_remaining(limiter), 0u);
  limiter.on_timer();
  now = UINT64_MAX / 2;
  EXPECT_TRUE(limiter.consume(1, TokenType::kOps));
  EXPECT_TRUE(limiter.consume(UINT64_MAX, TokenType::kOps)) << "over-consumption";
  EXPECT_TRUE(limiter.is_blocked());
}

}  // namespace
}  // namespace ignition::devices
