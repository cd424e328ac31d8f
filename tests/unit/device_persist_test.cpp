// Snapshot state of every device. Each virtio device is driven through a real virtio-mmio
// transport, saved, restored into a fresh transport and device over the same guest
// memory, and then carries on as the guest expects: ring positions continue, no reset.
// Truncated, corrupt and mismatched state is refused with an error, never a crash. Also
// the serial port and the i8042.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "devices/legacy/i8042.hpp"
#include "devices/legacy/persist.hpp"
#include "devices/legacy/serial.hpp"
#include "devices/virtio/balloon/balloon.hpp"
#include "devices/virtio/balloon/persist.hpp"
#include "devices/virtio/balloon/request.hpp"
#include "devices/virtio/block/block.hpp"
#include "devices/virtio/block/persist.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/net/net.hpp"
#include "devices/virtio/net/persist.hpp"
#include "devices/virtio/rng/rng.hpp"
#include "devices/virtio/vsock/vsock.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices {
namespace {

template <typename T>
void patch(std::vector<uint8_t>& blob, size_t offset, T value) {
  ASSERT_LE(offset + sizeof(T), blob.size());
  std::memcpy(blob.data() + offset, &value, sizeof(T));
}

template <typename T>
T peek(const std::vector<uint8_t>& blob, size_t offset) {
  T v{};
  std::memcpy(&v, blob.data() + offset, sizeof(T));
  return v;
}

// Every strict prefix of a real blob must be refused, with a message.
void expect_truncations_refused(
    const std::vector<uint8_t>& blob,
    const std::function<Result<void>(std::span<const uint8_t>)>& restore) {
  ASSERT_FALSE(blob.empty());
  for (size_t n = 0; n < blob.size(); ++n) {
    auto r = restore(std::span(blob).first(n));
    ASSERT_FALSE(r.ok()) << "a blob cut to " << n << " of " << blob.size() << " bytes was accepted";
    EXPECT_FALSE(r.error().message.empty());
  }
}

// Restores every single-byte corruption of `blob` (three patterns per byte); none may
// crash. Returns the offsets at which every pattern was refused.
std::vector<size_t> restore_flipped(
    const std::vector<uint8_t>& blob,
    const std::function<Result<void>(std::span<const uint8_t>)>& restore) {
  std::vector<size_t> always_refused;
  for (size_t i = 0; i < blob.size(); ++i) {
    bool all = true;
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> bad = blob;
      bad[i] ^= mask;
      all &= !restore(bad).ok();
    }
    if (all) always_refused.push_back(i);
  }
  return always_refused;
}

bool contains(const std::vector<size_t>& v, size_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

namespace virtio {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kRam = 8 << 20;
constexpr uint64_t kData = 0x400000;  // request buffers
constexpr uint32_t kStatusReg = 0x70, kInterruptStatusReg = 0x60;
constexpr uint32_t kRunning = 15;  // ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK

// The transport state's layout, as this test reads mmio_transport.cpp's encoding.
namespace at {
constexpr size_t kType = 0, kStatus = 4, kDriverFeatures = 9, kInterrupt = 29, kQueueCount = 37,
                 kQueue0 = 45;
// Within a queue's 37 bytes.
constexpr size_t kMaxSize = 0, kSize = 2, kDesc = 5, kNextAvail = 29, kEventIdx = 33;
}  // namespace at

// Forwards the test driver's register accesses to whichever transport is current, so one
// driver (with its view of the rings) carries on across a restore, as the guest does.
struct SwitchBus final : BusDevice {
  void read(uint64_t offset, std::span<uint8_t> data) override { target->read(offset, data); }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    target->write(offset, data);
  }
  BusDevice* target = nullptr;
};

// One transport with its device, interrupt probe and event registrar.
struct Attached {
  UniqueFd irq_probe;
  std::unique_ptr<test::TestRegistrar> registrar;
  std::unique_ptr<MmioTransport> transport;
};

struct PersistTest : ::testing::Test {
  void SetUp() override {
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    driver = std::make_unique<test::VirtioTestDriver>(bus, *memory);
  }

  // Puts `device` behind a new transport over `mem` and makes it the driver's current one.
  MmioTransport& attach(std::unique_ptr<Device> device, GuestMemory* mem = nullptr) {
    auto irq = EventFd::create();
    EXPECT_TRUE(irq.ok());
    Attached a;
    a.irq_probe.reset(::dup(irq->fd()));
    a.registrar = std::make_unique<test::TestRegistrar>();
    a.transport = std::make_unique<MmioTransport>(std::move(device), mem ? *mem : *memory,
                                                  IrqLine(std::move(irq).value(), 5));
    EXPECT_TRUE(a.transport->register_events(*a.registrar).ok());
    bus.target = a.transport.get();
    attached = std::move(a);
    return *attached->transport;
  }
  MmioTransport& transport() { return *attached->transport; }
  test::TestRegistrar& registrar() { return *attached->registrar; }

  // Saves the current transport and drops it (closing its device's host resources, as
  // the process that took the snapshot would), leaving the driver without a device.
  std::vector<uint8_t> save_and_drop() {
    auto blob = transport().save_state();
    EXPECT_TRUE(blob.ok());
    attached.reset();
    bus.target = nullptr;
    return blob.ok() ? std::move(blob).value() : std::vector<uint8_t>{};
  }

  // Interrupts raised on the current transport's line since the last call.
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(attached->irq_probe.get(), &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  uint32_t status() { return driver->read_reg(kStatusReg); }

  std::unique_ptr<GuestMemory> memory;
  SwitchBus bus;
  std::unique_ptr<test::VirtioTestDriver> driver;
  std::optional<Attached> attached;
};

// ---- transport and queues, through virtio-rng ----

struct RngPersist : PersistTest {
  static constexpr uint16_t kQueue = 4;
  // One 64-byte entropy request at descriptor `index`; returns its used element.
  std::optional<std::pair<uint32_t, uint32_t>> entropy(uint16_t index) {
    driver->post(0, {{kData + 64ULL * index, 64, true}}, index);
    driver->kick(0);
    return driver->take_used(0);
  }
  // A running rng that served six requests through a ring of four: positions wrapped.
  std::vector<uint8_t> running_rng_state() {
    auto& t = attach(std::make_unique<Rng>());
    EXPECT_EQ(driver->start(kFeatureVersion1 | kFeatureRingEventIdx, {kQueue}), kRunning);
    for (uint16_t i = 0; i < 6; ++i) EXPECT_TRUE(entropy(i % kQueue));
    auto blob = t.save_state();
    EXPECT_TRUE(blob.ok());
    return blob.ok() ? std::move(blob).value() : std::vector<uint8_t>{};
  }
  Result<void> restore_fresh(std::span<const uint8_t> blob) {
    return attach(std::make_unique<Rng>()).restore_state(blob);
  }
};

TEST_F(RngPersist, CarriesOnWhereItStoppedWithoutAReset) {
  running_rng_state();
  std::vector<uint8_t> blob = save_and_drop();
  auto device = std::make_unique<Rng>();
  Rng* rng = device.get();
  auto& t = attach(std::move(device));
  auto restored = t.restore_state(blob);
  ASSERT_TRUE(restored.ok()) << restored.error().message;

  EXPECT_TRUE(t.activated());
  EXPECT_EQ(status(), kRunning);
  EXPECT_EQ(rng->bytes_served(), 6u * 64);
  auto again = t.save_state();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob) << "restoring is faithful: saving again gives the same state";

  // Six requests went through a ring of four: had the positions restarted at zero, the
  // device would see seven pending entries in a ring of four and ask for a reset.
  auto used = entropy(6 % kQueue);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 6u % kQueue);
  EXPECT_EQ(used->second, 64u);
  EXPECT_EQ(driver->used_idx(0), 7);
  EXPECT_EQ(status(), kRunning) << "no reset needed";
  EXPECT_EQ(rng->bytes_served(), 7u * 64);
}

TEST_F(RngPersist, SignalUsedQueuesInterruptsAndReplaysLostKicks) {
  running_rng_state();
  // A request the driver made available, whose kick the old process never handled.
  driver->post(0, {{kData, 64, true}}, 6 % kQueue);
  std::vector<uint8_t> blob = save_and_drop();
  auto& t = attach(std::make_unique<Rng>());
  ASSERT_TRUE(t.restore_state(blob).ok());
  irqs();
  driver->write_reg(0x64, 3);  // acknowledge whatever was pending when saved

  t.signal_used_queues();
  EXPECT_EQ(irqs(), 1u);
  EXPECT_EQ(driver->read_reg(kInterruptStatusReg) & kInterruptUsedRing, kInterruptUsedRing);
  auto used = driver->take_used(0);
  ASSERT_TRUE(used) << "the restored device looked at its ring again";
  EXPECT_EQ(used->first, 6u % kQueue);
  EXPECT_EQ(driver->used_idx(0), 7);
}

TEST_F(RngPersist, ADeviceNeverStartedRestoresAsNeverStarted) {
  attach(std::make_unique<Rng>());
  std::vector<uint8_t> blob = save_and_drop();
  auto& t = attach(std::make_unique<Rng>());
  ASSERT_TRUE(t.restore_state(blob).ok());
  EXPECT_FALSE(t.activated());
  EXPECT_EQ(status(), 0u);
  // The driver can start it as a new device, with rings from zero.
  ASSERT_EQ(driver->start(kFeatureVersion1, {kQueue}), kRunning);
  ASSERT_TRUE(entropy(0));
  EXPECT_EQ(driver->used_idx(0), 1);
}

TEST_F(RngPersist, AHalfDoneHandshakeRestoresAndCompletes) {
  auto& t = attach(std::make_unique<Rng>());
  driver->write_reg(kStatusReg, 1);
  driver->write_reg(kStatusReg, 3);
  driver->write_reg(0x24, 1);
  driver->write_reg(0x20, 1);  // VERSION_1
  driver->write_reg(kStatusReg, 11);
  driver->write_reg(0x30, 0);
  driver->write_reg(0x38, kQueue);
  driver->write_reg(0x80, 0x10000);
  driver->write_reg(0x90, 0x11000);
  driver->write_reg(0xa0, 0x12000);
  driver->write_reg(0x44, 1);
  ASSERT_FALSE(t.activated());
  std::vector<uint8_t> blob = save_and_drop();

  auto& fresh = attach(std::make_unique<Rng>());
  ASSERT_TRUE(fresh.restore_state(blob).ok());
  EXPECT_FALSE(fresh.activated()) << "not started before, not started now";
  EXPECT_EQ(status(), 11u);
  EXPECT_EQ(driver->read_reg(0x44), 1u) << "queue 0 is still ready";
  driver->write_reg(kStatusReg, kRunning);
  EXPECT_TRUE(fresh.activated()) << "DRIVER_OK starts it with the restored queue layout";
  EXPECT_EQ(status(), kRunning);
}

TEST_F(RngPersist, RefusesEveryTruncation) {
  std::vector<uint8_t> blob = running_rng_state();
  // A refused restore changes nothing, so one fresh transport takes every attempt.
  auto& fresh = attach(std::make_unique<Rng>());
  expect_truncations_refused(blob, [&](auto b) { return fresh.restore_state(b); });
  EXPECT_FALSE(fresh.activated());
  EXPECT_TRUE(fresh.restore_state(blob).ok()) << "and the whole blob still restores";
  EXPECT_TRUE(fresh.activated());
}

TEST_F(RngPersist, SurvivesEveryFlippedByte) {
  std::vector<uint8_t> blob = running_rng_state();
  auto refused = restore_flipped(blob, [&](auto b) {
    auto r = restore_fresh(b);
    // Whatever was accepted must keep working (or ask for a reset), never crash.
    transport().signal_used_queues();
    driver->kick(0);
    return r;
  });
  for (size_t i = at::kType; i < at::kType + 4; ++i)
    EXPECT_TRUE(contains(refused, i)) << "device type byte " << i;
  for (size_t i = at::kQueueCount; i < at::kQueueCount + 8; ++i)
    EXPECT_TRUE(contains(refused, i)) << "queue count byte " << i;
  for (size_t i = at::kQueue0 + at::kMaxSize; i < at::kQueue0 + at::kMaxSize + 2; ++i)
    EXPECT_TRUE(contains(refused, i)) << "queue max size byte " << i;
  EXPECT_TRUE(contains(refused, blob.size() - 16)) << "the device state's length";
}

TEST_F(RngPersist, RefusesRandomGarbage) {
  std::mt19937 rng(1234);
  auto& fresh = attach(std::make_unique<Rng>());
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk(rng() % 160);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    EXPECT_FALSE(fresh.restore_state(junk).ok());
  }
}

TEST_F(RngPersist, ChecksRestoredQueuesAsActivationDoes) {
  std::vector<uint8_t> good = running_rng_state();
  const size_t q = at::kQueue0;
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> corrupt;
    const char* message;
  };
  std::vector<Case> cases = {
      {"descriptors outside RAM", [&](auto& b) { patch<uint64_t>(b, q + at::kDesc, kRam); },
       "outside guest RAM"},
      {"descriptors wrapping", [&](auto& b) { patch<uint64_t>(b, q + at::kDesc, ~0xfULL); },
       "outside guest RAM"},
      {"misaligned descriptors", [&](auto& b) { patch<uint64_t>(b, q + at::kDesc, 0x10008); },
       "misaligned"},
      {"size not a power of two", [&](auto& b) { patch<uint16_t>(b, q + at::kSize, 3); },
       "power of two"},
      {"size above the maximum", [&](auto& b) { patch<uint16_t>(b, q + at::kSize, 512); },
       "power of two"},
      {"more in flight than the ring holds",
       [&](auto& b) {
         patch<uint16_t>(b, q + at::kNextAvail, peek<uint16_t>(b, q + at::kNextAvail + 2) + 5);
       },
       "in flight"},
      {"event index not negotiated", [&](auto& b) { patch<uint8_t>(b, q + at::kEventIdx, 0); },
       "event index"},
      {"features never offered",
       [&](auto& b) { patch<uint64_t>(b, at::kDriverFeatures, kFeatureVersion1 | (1ULL << 40)); },
       "features"},
      {"a legacy driver", [&](auto& b) { patch<uint64_t>(b, at::kDriverFeatures, 0); }, "features"},
      {"unknown interrupt bits", [&](auto& b) { patch<uint32_t>(b, at::kInterrupt, 4); },
       "interrupt"},
      {"active without DRIVER_OK", [&](auto& b) { patch<uint32_t>(b, at::kStatus, 11); }, "status"},
      {"the wrong device type", [&](auto& b) { patch<uint32_t>(b, at::kType, 2); }, "block"},
      {"bytes after the end", [&](auto& b) { b.push_back(0); }, "unexpected bytes"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> bad = good;
    c.corrupt(bad);
    auto r = restore_fresh(bad);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.what << ": " << r.error().message;
    EXPECT_FALSE(transport().activated()) << c.what;
  }
  EXPECT_TRUE(restore_fresh(good).ok()) << "the uncorrupted state restores";
}

TEST_F(RngPersist, RefusesRingsOutsideASmallerGuestMemory) {
  // Rings near the top of 8 MiB, restored into a guest of 4 MiB.
  test::VirtioTestDriver high(bus, *memory, 0x700000);
  attach(std::make_unique<Rng>());
  ASSERT_EQ(high.start(kFeatureVersion1, {kQueue}), kRunning);
  std::vector<uint8_t> blob = save_and_drop();
  auto small = GuestMemory::create_anonymous({{0, 4 << 20}});
  ASSERT_TRUE(small.ok());
  auto r = attach(std::make_unique<Rng>(), &*small).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outside guest RAM"), std::string::npos) << r.error().message;
}

TEST_F(RngPersist, RefusesAUsedTransport) {
  std::vector<uint8_t> blob = running_rng_state();
  auto r = transport().restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("fresh"), std::string::npos) << r.error().message;
}

TEST_F(RngPersist, WithDeviceRunsUnderTheLockOnTheDevice) {
  running_rng_state();
  DeviceType seen{};
  transport().with_device([&](Device& d) { seen = d.type(); });
  EXPECT_EQ(seen, DeviceType::Rng);
}

// ---- virtio-blk ----

constexpr uint64_t kSector = 512;
constexpr uint32_t kBlkIn = 0, kBlkOut = 1;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/ign-persist-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

void make_file(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes)), 0);
  ::close(fd);
}

struct BlockPersist : PersistTest {
  static constexpr uint64_t kHdr = 0x300000, kStatusByte = 0x300100;
  void SetUp() override {
    PersistTest::SetUp();
    disk = dir.path + "/disk.img";
    make_file(disk, 64 * kSector);
    drive.drive_id = "rootfs";
    drive.path_on_host = disk;
    drive.cache_type = config::CacheType::kWriteback;
  }
  std::unique_ptr<Block> make(const config::Drive& d) {
    auto b = Block::create(d);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? std::move(b).value() : nullptr;
  }
  // One read or write of a sector through descriptors 0..2; returns the status byte.
  uint8_t request(uint32_t type, uint64_t sector, uint64_t data) {
    uint8_t hdr[16] = {};
    std::memcpy(hdr, &type, 4);
    std::memcpy(hdr + 8, &sector, 8);
    EXPECT_TRUE(memory->write(kHdr, hdr).ok());
    EXPECT_TRUE(memory->write_obj<uint8_t>(kStatusByte, 0xee).ok());
    driver->post(0, {{kHdr, 16, false}, {data, kSector, type == kBlkIn}, {kStatusByte, 1, true}});
    driver->kick(0);
    auto used = driver->take_used(0);
    EXPECT_TRUE(used);
    return memory->read_obj<uint8_t>(kStatusByte).value();
  }
  void start_running() {
    attach(make(drive));
    ASSERT_EQ(driver->start(driver->device_features(), {16}), kRunning);
    ASSERT_TRUE(memory->fill(kData, 0xab, kSector).ok());
    ASSERT_EQ(request(kBlkOut, 3, kData), 0);
    ASSERT_EQ(request(kBlkIn, 3, kData + kSector), 0);
  }

  TempDir dir;
  std::string disk;
  config::Drive drive;
};

TEST_F(BlockPersist, CarriesOnWhereItStopped) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto& t = attach(make(drive));
  auto restored = t.restore_state(blob);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_TRUE(t.activated());
  auto again = t.save_state();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob);

  ASSERT_TRUE(memory->fill(kData + 2 * kSector, 0, kSector).ok());
  ASSERT_EQ(request(kBlkIn, 3, kData + 2 * kSector), 0);
  auto read = memory->slice(kData + 2 * kSector, kSector).value();
  EXPECT_EQ(std::count(read.begin(), read.end(), 0xab), static_cast<long>(kSector))
      << "the restored device reads what the old one wrote";
  EXPECT_EQ(driver->used_idx(0), 3);
  EXPECT_EQ(status(), kRunning);
}

TEST_F(BlockPersist, KeepsTheSavedRateLimits) {
  attach(make(drive));
  config::RateLimiter limits;
  limits.bandwidth = config::TokenBucket{1 << 20, std::nullopt, 100};
  limits.ops = config::TokenBucket{100, 10, 1000};
  transport().with_device([&](Device& d) { static_cast<Block&>(d).update_rate_limiter(limits); });
  std::vector<uint8_t> blob = save_and_drop();

  auto device = make(drive);
  Block* block = device.get();
  ASSERT_TRUE(attach(std::move(device)).restore_state(blob).ok());
  EXPECT_EQ(block->rate_limiter().config(), limits);

  // And no limits in the snapshot removes the ones the device was created with.
  attach(make(drive));
  blob = save_and_drop();
  config::Drive limited = drive;
  limited.rate_limiter = limits;
  device = make(limited);
  block = device.get();
  ASSERT_TRUE(attach(std::move(device)).restore_state(blob).ok());
  EXPECT_TRUE(block->rate_limiter().unlimited());
}

TEST_F(BlockPersist, RefusesADiskThatChangedSize) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  make_file(disk, 65 * kSector);
  auto r = attach(make(drive)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("65 sectors"), std::string::npos) << r.error().message;
}

TEST_F(BlockPersist, RefusesADiskThatIsGone) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto& t = attach(make(drive));
  std::filesystem::remove(disk);
  auto r = t.restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("backing file"), std::string::npos) << r.error().message;
  EXPECT_FALSE(t.activated());
}

TEST_F(BlockPersist, RefusesAnotherDrive) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  config::Drive other = drive;
  other.drive_id = "data";
  auto r = attach(make(other)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("rootfs"), std::string::npos) << r.error().message;

  config::Drive read_only = drive;
  read_only.is_read_only = true;
  r = attach(make(read_only)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("read-only"), std::string::npos) << r.error().message;

  // Unsafe caching offers no FLUSH, which the guest negotiated.
  config::Drive unsafe = drive;
  unsafe.cache_type = config::CacheType::kUnsafe;
  r = attach(make(unsafe)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("features"), std::string::npos) << r.error().message;
}

TEST_F(BlockPersist, RefusesEveryTruncationAndSurvivesFlips) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto device = make(drive);
  Block* block = device.get();
  auto& t = attach(std::move(device));
  expect_truncations_refused(blob, [&](auto b) { return t.restore_state(b); });

  // The device's own state on its own: every prefix refused, flips never crash.
  std::vector<uint8_t> own = block->save_state();
  expect_truncations_refused(own, [&](auto b) { return block->restore_state(b); });
  auto refused = restore_flipped(own, [&](auto b) { return make(drive)->restore_state(b); });
  EXPECT_TRUE(contains(refused, 0)) << "the drive id's length";
  EXPECT_TRUE(block->restore_state(own).ok());
}

TEST_F(BlockPersist, RefusesAnotherDeviceType) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto r = attach(std::make_unique<Rng>()).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("virtio-block device"), std::string::npos) << r.error().message;
}

// ---- virtio-net ----

// A network namespace of the test's own, so its TAPs never appear on the host.
class PrivateNetns {
 public:
  static std::optional<PrivateNetns> create() {
    UniqueFd ns;
    std::thread([&] {
      if (::unshare(CLONE_NEWNET) == 0)
        ns.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    }).join();
    if (!ns.valid()) return std::nullopt;
    return PrivateNetns(std::move(ns));
  }
  Result<Tap> open_tap(const std::string& name) const {
    std::optional<Result<Tap>> tap;
    std::thread([&] {
      if (::setns(ns_.get(), CLONE_NEWNET) == 0) tap.emplace(Tap::open(name));
    }).join();
    if (!tap) return err("setns: {}", errno_string());
    return std::move(*tap);
  }

 private:
  explicit PrivateNetns(UniqueFd ns) : ns_(std::move(ns)) {}
  UniqueFd ns_;
};

struct NetPersist : PersistTest {
  static constexpr uint64_t kTxFrame = 0x300000, kRxBuf = 0x500000;
  void SetUp() override {
    PersistTest::SetUp();
    ns = PrivateNetns::create();
    if (!ns) GTEST_SKIP() << "needs root and /dev/net/tun for a private TAP";
    cfg.iface_id = "eth0";
    cfg.host_dev_name = "ignpersist0";
    cfg.guest_mac = config::MacAddress{{2, 0, 0, 0, 0, 7}};
    cfg.mtu = 1400;
  }
  std::unique_ptr<Net> make(const config::NetworkInterface& c) {
    auto tap = ns->open_tap(c.host_dev_name);
    EXPECT_TRUE(tap.ok()) << (tap.ok() ? "" : tap.error().message);
    if (!tap.ok()) return nullptr;
    auto net = Net::create(c, std::move(tap).value());
    EXPECT_TRUE(net.ok());
    return net.ok() ? std::move(net).value() : nullptr;
  }
  // One frame on the TX queue (header and a minimal Ethernet frame) at descriptor `index`.
  void transmit(uint16_t index) {
    std::vector<uint8_t> frame(net::kHdrSize + 60, 0);
    std::memcpy(frame.data() + net::kHdrSize + 6, cfg.guest_mac->bytes.data(), 6);
    ASSERT_TRUE(memory->write(kTxFrame, frame).ok());
    driver->post(Net::kTxQueue, {{kTxFrame, static_cast<uint32_t>(frame.size()), false}}, index);
    driver->kick(Net::kTxQueue);
    ASSERT_TRUE(driver->take_used(Net::kTxQueue)) << "every TX frame is returned";
  }
  static constexpr uint64_t kNegotiated =
      kFeatureVersion1 | kFeatureRingEventIdx | net::kFeatureCsum | net::kFeatureGuestCsum |
      net::kFeatureGuestTso4 | net::kFeatureMrgRxbuf | net::kFeatureMac | net::kFeatureMtu;

  std::optional<PrivateNetns> ns;
  config::NetworkInterface cfg;
};

TEST_F(NetPersist, CarriesOnWithTheSavedMacAndOffloads) {
  attach(make(cfg));
  ASSERT_EQ(driver->start(kNegotiated, {16, 16}), kRunning);
  for (uint16_t i = 0; i < 3; ++i) transmit(i);
  for (uint16_t i = 0; i < 4; ++i)
    driver->post(Net::kRxQueue, {{kRxBuf + 0x1000ULL * i, 0x1000, true}}, i);
  driver->kick(Net::kRxQueue);
  config::RateLimiter limits;
  limits.bandwidth = config::TokenBucket{1 << 30, std::nullopt, 1000};
  transport().with_device(
      [&](Device& d) { static_cast<Net&>(d).update_rate_limiters(limits, std::nullopt); });
  std::vector<uint8_t> blob = save_and_drop();

  // A clone configured with another MAC still shows the guest the one it read.
  config::NetworkInterface clone = cfg;
  clone.guest_mac = config::MacAddress{{2, 0, 0, 0, 0, 9}};
  clone.mtu.reset();
  auto device = make(clone);
  ASSERT_TRUE(device);
  Net* net = device.get();
  EXPECT_EQ(net->tap().offload(), 0u);
  auto& t = attach(std::move(device));
  auto restored = t.restore_state(blob);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_TRUE(t.activated());
  auto again = t.save_state();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob);
  EXPECT_EQ(net->tap().offload(), kTapOffloadCsum | kTapOffloadTso4)
      << "TUNSETOFFLOAD applied again for what the guest negotiated";
  for (uint32_t i = 0; i < 6; ++i)
    EXPECT_EQ(driver->read_reg(0x100 + i) & 0xff, cfg.guest_mac->bytes[i]) << "MAC byte " << i;
  uint16_t mtu = 0;
  t.read(0x100 + 10, {reinterpret_cast<uint8_t*>(&mtu), 2});
  EXPECT_EQ(mtu, 1400);
  EXPECT_EQ(net->rx_rate_limiter(), limits);
  EXPECT_EQ(net->tx_rate_limiter(), config::RateLimiter{});

  transmit(3);
  EXPECT_EQ(driver->used_idx(Net::kTxQueue), 4);
  EXPECT_EQ(status(), kRunning);
}

TEST_F(NetPersist, RefusesAnotherInterfaceAndBadState) {
  attach(make(cfg));
  ASSERT_EQ(driver->start(kNegotiated, {16, 16}), kRunning);
  std::vector<uint8_t> blob = save_and_drop();
  config::NetworkInterface other = cfg;
  other.iface_id = "eth1";
  auto r = attach(make(other)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("eth0"), std::string::npos) << r.error().message;
  attached.reset();

  auto device = make(cfg);
  ASSERT_TRUE(device);
  Net* net = device.get();
  auto& t = attach(std::move(device));
  expect_truncations_refused(blob, [&](auto b) { return t.restore_state(b); });
  std::vector<uint8_t> own = net->save_state();
  expect_truncations_refused(own, [&](auto b) { return net->restore_state(b); });
  restore_flipped(own, [&](auto b) { return net->restore_state(b); });
  auto decoded = net::decode_state(own);
  ASSERT_TRUE(decoded.ok());
  net::NetState bad = *decoded;
  bad.mtu = 20;
  EXPECT_FALSE(net->restore_state(net::encode_state(bad)).ok()) << "an MTU the API refuses";
  bad = *decoded;
  bad.features |= net::kFeatureStatus;
  EXPECT_FALSE(net->restore_state(net::encode_state(bad)).ok()) << "a feature never offered";
  bad = *decoded;
  bad.mac.reset();
  EXPECT_FALSE(net->restore_state(net::encode_state(bad)).ok()) << "MAC offered, none to show";
  EXPECT_TRUE(t.restore_state(blob).ok()) << "no failed attempt left a trace";
}

// ---- virtio-vsock ----

constexpr uint32_t kVsockHdr = 44;
constexpr uint16_t kOpRequest = 1, kOpResponse = 2;

struct VsockPersist : PersistTest {
  static constexpr uint16_t kRxSize = 8, kTxSize = 8, kEvSize = 4;
  static constexpr uint64_t kRxBase = 0x300000, kTxBase = 0x380000, kEvBase = 0x3f0000;
  static constexpr uint32_t kRxLen = kVsockHdr + 1024;
  static constexpr uint64_t kCid = 3;

  std::unique_ptr<Vsock> make(uint32_t cid = kCid) {
    auto v = Vsock::create({cid, dir.path + "/v.sock"});
    EXPECT_TRUE(v.ok()) << v.error().message;
    return v.ok() ? std::move(v).value() : nullptr;
  }
  void start() {
    ASSERT_EQ(driver->start(kFeatureVersion1 | kFeatureRingEventIdx, {kRxSize, kTxSize, kEvSize}),
              kRunning);
    for (uint16_t i = 0; i < kRxSize; ++i)
      driver->post(0, {{kRxBase + kRxLen * i, kRxLen, true}}, i);
    driver->kick(0);
    for (uint16_t i = 0; i < 2; ++i) post_event(i);
    driver->kick(2);
  }
  void post_event(uint16_t i) {
    ASSERT_TRUE(memory->fill(kEvBase + 8 * i, 0xff, 8).ok());
    driver->post(2, {{kEvBase + 8ULL * i, 8, true}}, i);
  }
  // Sends a header-only packet from guest port `src` to host port `dst`.
  void send(uint32_t src, uint32_t dst, uint16_t op, uint16_t index) {
    uint8_t h[kVsockHdr] = {};
    uint64_t src_cid = kCid, dst_cid = 2;
    uint16_t type = 1;
    uint32_t buf_alloc = 65536;
    std::memcpy(h, &src_cid, 8);
    std::memcpy(h + 8, &dst_cid, 8);
    std::memcpy(h + 16, &src, 4);
    std::memcpy(h + 20, &dst, 4);
    std::memcpy(h + 28, &type, 2);
    std::memcpy(h + 30, &op, 2);
    std::memcpy(h + 36, &buf_alloc, 4);
    ASSERT_TRUE(memory->write(kTxBase + 0x100ULL * index, h).ok());
    driver->post(1, {{kTxBase + 0x100ULL * index, kVsockHdr, false}}, index);
    driver->kick(1);
    ASSERT_TRUE(driver->take_used(1));
  }
  // The next packet on the rx queue within `timeout` (op, src port, dst port).
  std::optional<std::array<uint32_t, 3>> receive(std::chrono::milliseconds timeout = 1000ms) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto used = driver->take_used(0)) {
        uint64_t gpa = kRxBase + kRxLen * used->first;
        uint32_t src = memory->read_obj<uint32_t>(gpa + 16).value();
        uint32_t dst = memory->read_obj<uint32_t>(gpa + 20).value();
        uint16_t op = memory->read_obj<uint16_t>(gpa + 30).value();
        driver->post(0, {{gpa, kRxLen, true}}, static_cast<uint16_t>(used->first));
        driver->kick(0);
        return std::array<uint32_t, 3>{op, src, dst};
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      registrar().pump(5ms);
    }
  }
  UniqueFd host_connect(uint32_t guest_port) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir.path + "/v.sock";
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string line = fmt::format("CONNECT {}\n", guest_port);
    EXPECT_EQ(::send(fd.get(), line.data(), line.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(line.size()));
    return fd;
  }

  TempDir dir;
};

TEST_F(VsockPersist, ResetsTheTransportAndCarriesOn) {
  attach(make());
  start();
  UniqueFd client = host_connect(52);
  auto req = receive();
  ASSERT_TRUE(req);
  EXPECT_EQ((*req)[0], kOpRequest);
  send(52, (*req)[1], kOpResponse, 0);
  uint16_t rx_used = driver->used_idx(0), tx_used = driver->used_idx(1);
  std::vector<uint8_t> blob = save_and_drop();

  auto& t = attach(make());
  auto restored = t.restore_state(blob);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_TRUE(t.activated());
  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET in the first event buffer: the guest drops its sockets.
  auto event = driver->take_used(2);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->first, 0u);
  EXPECT_EQ(event->second, 4u);
  EXPECT_EQ(memory->read_obj<uint32_t>(kEvBase).value(), 0u);

  // Nothing reaches the guest until it has handled the reset, replayed kicks or not.
  UniqueFd next = host_connect(60);
  t.signal_used_queues();
  EXPECT_FALSE(receive(100ms));
  post_event(0);
  driver->kick(2);
  req = receive();
  ASSERT_TRUE(req);
  EXPECT_EQ((*req)[0], kOpRequest);
  EXPECT_EQ((*req)[2], 60u);
  EXPECT_EQ(driver->used_idx(0), rx_used + 1) << "rx positions continue";
  send(60, (*req)[1], kOpResponse, 1);
  EXPECT_EQ(driver->used_idx(1), tx_used + 1) << "tx positions continue";
  EXPECT_EQ(status(), kRunning);
}

TEST_F(VsockPersist, ANeverStartedDeviceSendsNoReset) {
  attach(make());
  std::vector<uint8_t> blob = save_and_drop();
  auto& t = attach(make());
  ASSERT_TRUE(t.restore_state(blob).ok());
  EXPECT_FALSE(t.activated());
  start();
  EXPECT_FALSE(driver->take_used(2)) << "no transport reset for a fresh start";
}

TEST_F(VsockPersist, RefusesAnotherCidAndBadState) {
  attach(make());
  start();
  std::vector<uint8_t> blob = save_and_drop();
  auto r = attach(make(4)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("CID"), std::string::npos) << r.error().message;
  attached.reset();

  auto device = make();
  Vsock* vsock = device.get();
  auto& t = attach(std::move(device));
  expect_truncations_refused(blob, [&](auto b) { return t.restore_state(b); });
  std::vector<uint8_t> own = vsock->save_state();
  expect_truncations_refused(own, [&](auto b) { return vsock->restore_state(b); });
  auto refused = restore_flipped(own, [&](auto b) { return vsock->restore_state(b); });
  EXPECT_TRUE(contains(refused, 0)) << "the CID";
}

// ---- virtio-balloon ----

struct BalloonPersist : PersistTest {
  static constexpr uint64_t kReq = 0x300000;
  static constexpr uint16_t kInflate = 0, kStats = 2;
  std::unique_ptr<Balloon> make(bool deflate_on_oom = true, uint16_t stats_s = 1) {
    config::Balloon c;
    c.deflate_on_oom = deflate_on_oom;
    c.stats_polling_interval_s = stats_s;
    auto b = Balloon::create(c, kRam >> 20);
    EXPECT_TRUE(b.ok()) << b.error().message;
    return b.ok() ? std::move(b).value() : nullptr;
  }
  void inflate(uint32_t first_pfn, uint16_t index) {
    uint32_t pfns[4] = {first_pfn, first_pfn + 1, first_pfn + 2, first_pfn + 3};
    ASSERT_TRUE(memory
                    ->write(kReq + 0x100ULL * index,
                            std::span<const uint8_t>(reinterpret_cast<uint8_t*>(pfns), 16))
                    .ok());
    driver->post(kInflate, {{kReq + 0x100ULL * index, 16, false}}, index);
    driver->kick(kInflate);
    ASSERT_TRUE(driver->take_used(kInflate));
  }
  // A running balloon holding a statistics report, with a target and an actual size.
  Balloon* start_running() {
    auto device = make();
    Balloon* b = device.get();
    attach(std::move(device));
    EXPECT_EQ(driver->start(kFeatureVersion1 | kBalloonFeatureStatsVq | kBalloonFeatureDeflateOnOom,
                            {16, 16, 16}),
              kRunning);
    uint8_t stat[10];
    uint16_t tag = kStatMemFree;
    uint64_t value = 12345;
    std::memcpy(stat, &tag, 2);
    std::memcpy(stat + 2, &value, 8);
    EXPECT_TRUE(memory->write(kReq + 0x1000, stat).ok());
    driver->post(kStats, {{kReq + 0x1000, 10, false}}, 5);
    driver->kick(kStats);
    EXPECT_FALSE(driver->take_used(kStats)) << "the device holds the report";
    inflate(0x600, 0);
    EXPECT_TRUE(b->update_target(4).ok());
    uint32_t actual = 1024;
    transport().write(0x100 + 4, {reinterpret_cast<uint8_t*>(&actual), 4});
    return b;
  }
};

TEST_F(BalloonPersist, CarriesOnHoldingTheStatisticsBuffer) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto device = make();
  Balloon* balloon = device.get();
  auto& t = attach(std::move(device));
  auto restored = t.restore_state(blob);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_TRUE(t.activated());
  auto again = t.save_state();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, blob);

  EXPECT_EQ(driver->read_reg(0x100), 4u * 256) << "target";
  EXPECT_EQ(driver->read_reg(0x104), 1024u) << "actual";
  auto stats = balloon->latest_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->free_memory, 12345u);
  EXPECT_EQ(stats->target_mib, 4u);
  EXPECT_EQ(balloon->config().stats_polling_interval_s, 1);

  // The timer returns the held report, asking for a fresh one.
  registrar().fire(balloon->stats_timer_fd());
  auto used = driver->take_used(kStats);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 5u);
  inflate(0x700, 1);
  EXPECT_EQ(driver->used_idx(kInflate), 2);
  EXPECT_EQ(status(), kRunning);
  EXPECT_TRUE(balloon->update_target(2).ok()) << "active again: the API may change the target";
}

TEST_F(BalloonPersist, RefusesAnotherConfigurationAndBadState) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  auto r = attach(make(/*deflate_on_oom=*/false)).restore_state(blob);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("features"), std::string::npos) << r.error().message;
  r = attach(make(true, /*stats_s=*/0)).restore_state(blob);
  ASSERT_FALSE(r.ok()) << "statistics off means one queue fewer";

  auto device = make();
  Balloon* balloon = device.get();
  auto& t = attach(std::move(device));
  expect_truncations_refused(blob, [&](auto b) { return t.restore_state(b); });
  std::vector<uint8_t> own = balloon->save_state();
  expect_truncations_refused(own, [&](auto b) { return balloon->restore_state(b); });
  restore_flipped(own, [&](auto b) { return make()->restore_state(b); });

  // Values only the live paths' rules forbid.
  auto decoded = balloon::decode_state(own);
  ASSERT_TRUE(decoded.ok());
  auto refuse = [&](const char* what, auto change, const char* message) {
    balloon::BalloonState s = *decoded;
    change(s);
    auto bad = make()->restore_state(balloon::encode_state(s));
    ASSERT_FALSE(bad.ok()) << what;
    EXPECT_NE(bad.error().message.find(message), std::string::npos) << bad.error().message;
  };
  refuse(
      "a target above guest RAM", [](auto& s) { s.num_pages = 9 * 256; }, "target");
  refuse(
      "a target of partial MiB", [](auto& s) { s.num_pages = 100; }, "target");
  refuse(
      "statistics turned off", [](auto& s) { s.stats_interval_s = 0; }, "statistics");
  refuse(
      "a held buffer beyond the ring", [](auto& s) { s.stats_head = 256; }, "buffer");
  EXPECT_TRUE(t.restore_state(blob).ok());
}

TEST_F(BalloonPersist, RefusesAHeldBufferOutsideTheRestoredQueue) {
  start_running();
  std::vector<uint8_t> blob = save_and_drop();
  // The device state is the tail of the transport state: point its held buffer at entry
  // 200 of a 16-entry queue, re-encoded whole.
  auto device = make();
  auto decoded = balloon::decode_state(
      std::span(blob).subspan(blob.size() - balloon::encode_state({}).size()));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  balloon::BalloonState s = *decoded;
  ASSERT_EQ(s.stats_head, 5);
  s.stats_head = 200;
  std::vector<uint8_t> own = balloon::encode_state(s);
  std::vector<uint8_t> bad(blob.begin(), blob.end() - static_cast<long>(own.size()));
  bad.insert(bad.end(), own.begin(), own.end());
  auto r = attach(std::move(device)).restore_state(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("statistics buffer 200"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace virtio

// ---- legacy devices ----

namespace {

constexpr uint8_t kData = 0, kIer = 1, kFcr = 2, kLcr = 3, kLsr = 5, kScr = 7;

struct SerialPersist : ::testing::Test {
  std::unique_ptr<Serial> make() {
    auto irq = EventFd::create();
    auto space = EventFd::create();
    EXPECT_TRUE(irq.ok() && space.ok());
    irq_probe.reset(::dup(irq->fd()));
    return std::make_unique<Serial>(IrqLine(std::move(irq).value(), 4), -1,
                                    std::move(space).value());
  }
  static uint8_t in(Serial& s, uint8_t reg) {
    uint8_t v = 0;
    s.read(reg, {&v, 1});
    return v;
  }
  static void out(Serial& s, uint8_t reg, uint8_t v) { s.write(reg, {&v, 1}); }
  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe.get(), &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  UniqueFd irq_probe;
};

TEST_F(SerialPersist, UnreadInputAndRegistersSurvive) {
  auto serial = make();
  out(*serial, kLcr, 0x83);   // DLAB
  out(*serial, kData, 0x01);  // 115200 baud
  out(*serial, kIer, 0x00);
  out(*serial, kLcr, 0x03);
  out(*serial, kScr, 0x5a);
  out(*serial, kFcr, 0x01);
  out(*serial, kIer, 0x01);  // data-ready interrupt
  std::string hello = "hello";
  ASSERT_EQ(serial->enqueue_input({reinterpret_cast<const uint8_t*>(hello.data()), 5}), 5u);
  EXPECT_EQ(in(*serial, kData), 'h');
  std::vector<uint8_t> blob = serial->save_state();

  auto fresh = make();
  ASSERT_TRUE(fresh->restore_state(blob).ok());
  EXPECT_EQ(irqs(), 1u) << "pending data-ready raised again";
  std::string rest;
  while (in(*fresh, kLsr) & 0x01) rest += static_cast<char>(in(*fresh, kData));
  EXPECT_EQ(rest, "ello");
  EXPECT_EQ(in(*fresh, kIer), 0x01);
  EXPECT_EQ(in(*fresh, kScr), 0x5a);
  EXPECT_EQ(in(*fresh, kFcr) & 0xc0, 0xc0) << "FIFOs still enabled";
  out(*fresh, kLcr, 0x83);
  EXPECT_EQ(in(*fresh, kData), 0x01) << "divisor latch";
  EXPECT_EQ(fresh->save_state().size(), blob.size() - 4) << "four bytes fewer in the FIFO";
}

TEST_F(SerialPersist, RefusesBadStateAndChangesNothing) {
  auto serial = make();
  out(*serial, kScr, 0x11);
  std::string hi = "hi";
  serial->enqueue_input({reinterpret_cast<const uint8_t*>(hi.data()), 2});
  std::vector<uint8_t> blob = serial->save_state();
  auto fresh = make();
  out(*fresh, kScr, 0x22);
  expect_truncations_refused(blob, [&](auto b) { return fresh->restore_state(b); });
  restore_flipped(blob, [&](auto b) { return make()->restore_state(b); });

  auto state = decode_serial_state(blob);
  ASSERT_TRUE(state.ok());
  SerialState bad = *state;
  bad.ier = 0xff;
  EXPECT_FALSE(fresh->restore_state(encode_state(bad)).ok());
  bad = *state;
  bad.mcr = 0x20;
  EXPECT_FALSE(fresh->restore_state(encode_state(bad)).ok());
  bad = *state;
  bad.rx_fifo.assign(Serial::kFifoSize + 1, 'x');
  EXPECT_FALSE(fresh->restore_state(encode_state(bad)).ok());
  EXPECT_EQ(in(*fresh, kScr), 0x22) << "refused state left the device alone";
  EXPECT_FALSE(in(*fresh, kLsr) & 0x01);
}

struct I8042Persist : ::testing::Test {
  I8042Persist() : exit(std::move(EventFd::create()).value()) {}
  static uint8_t in(I8042& k, uint64_t port) {
    uint8_t v = 0;
    k.read(port, {&v, 1});
    return v;
  }
  static void out(I8042& k, uint64_t port, uint8_t v) { k.write(port, {&v, 1}); }
  VmExitRequest exit;
};

TEST_F(I8042Persist, CommandByteAndOutputSurvive) {
  I8042 kbd(exit);
  out(kbd, 4, 0x60);  // write command byte
  out(kbd, 0, 0x47);
  out(kbd, 4, 0x20);  // read it: now in the output buffer
  I8042 fresh(exit);
  ASSERT_TRUE(fresh.restore_state(kbd.save_state()).ok());
  EXPECT_TRUE(in(fresh, 4) & 0x01) << "output buffer full";
  EXPECT_EQ(in(fresh, 0), 0x47);
  out(fresh, 4, 0x20);
  EXPECT_EQ(in(fresh, 0), 0x47);

  // A command waiting for its data byte waits on.
  out(kbd, 4, 0x60);
  I8042 waiting(exit);
  ASSERT_TRUE(waiting.restore_state(kbd.save_state()).ok());
  out(waiting, 0, 0x11);
  out(waiting, 4, 0x20);
  EXPECT_EQ(in(waiting, 0), 0x11);
}

TEST_F(I8042Persist, RefusesBadState) {
  I8042 kbd(exit);
  std::vector<uint8_t> blob = kbd.save_state();
  expect_truncations_refused(blob, [&](auto b) { return kbd.restore_state(b); });
  auto state = decode_i8042_state(blob);
  ASSERT_TRUE(state.ok());
  I8042State bad = *state;
  bad.pending_command = 0xfe;  // a reset is not a command that waits
  EXPECT_FALSE(kbd.restore_state(encode_state(bad)).ok());
  EXPECT_EQ(exit.reason(), ExitReason::None);
}

}  // namespace
}  // namespace ignition::devices
