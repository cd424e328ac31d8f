// virtio-blk through a real virtio-mmio transport and a host-side test driver, backed by
// a temporary file: reads, writes, flush, GET_ID, discard / write-zeroes, read-only
// drives, range checks, malformed requests, rate limiting and switching the backing file.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "devices/virtio/block/block.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

using namespace block;

constexpr uint64_t kRam = 4 << 20;
constexpr uint64_t kHdr = 0x100000;     // request header(s)
constexpr uint64_t kStatus = 0x100800;  // status byte
constexpr uint64_t kData = 0x200000;    // data buffers, up to 1 MiB
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kDiskSectors = 128;
constexpr uint8_t kNoStatus = 0xee;  // what the status byte holds until the device answers

// Sector s of a test disk holds the byte (s * 7 + tag) everywhere.
uint8_t pattern(uint64_t sector, uint8_t tag) {
  return static_cast<uint8_t>(sector * 7 + tag);
}

// A temporary disk image, removed at the end of the test.
struct TempDisk {
  explicit TempDisk(uint64_t bytes, uint8_t tag = 1) {
    char name[] = "/tmp/ignition-blk-XXXXXX";
    int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    path = name;
    std::vector<uint8_t> content(bytes);
    for (uint64_t i = 0; i < bytes; ++i) content[i] = pattern(i / kSectorSize, tag);
    EXPECT_EQ(::pwrite(fd, content.data(), bytes, 0), static_cast<ssize_t>(bytes));
    ::close(fd);
  }
  ~TempDisk() { std::filesystem::remove(path); }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) const {
    std::vector<uint8_t> out(len);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
    ::close(fd);
    return out;
  }
  std::string path;
};

struct BlockTest : ::testing::Test {
  void SetUp() override {
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    disk = std::make_unique<TempDisk>(kDiskSectors * kSectorSize);
    drive.drive_id = "rootfs";
    drive.path_on_host = disk->path;
  }
  void TearDown() override {
    if (irq_probe >= 0) ::close(irq_probe);
  }

  // Creates the device from `drive` and puts a transport and a driver in front of it.
  void create() {
    auto device = Block::create(drive, [this] { return now; });
    ASSERT_TRUE(device.ok()) << device.error().message;
    block = device->get();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    if (irq_probe >= 0) ::close(irq_probe);
    irq_probe = ::dup(irq_fd->fd());
    transport = std::make_unique<MmioTransport>(std::move(device).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
    ASSERT_TRUE(transport->register_events(registrar).ok());
  }
  // Starts with every feature the device offers.
  void start() {
    create();
    ASSERT_EQ(driver->start(driver->device_features(), {64}), 15u);
  }

  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe, &n, sizeof(n)) == sizeof(n) ? n : 0;
  }
  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }
  uint64_t config64(uint64_t off) {
    return driver->read_reg(0x100 + off) | uint64_t{driver->read_reg(0x104 + off)} << 32;
  }
  uint32_t config32(uint64_t off) { return driver->read_reg(0x100 + off); }

  void write_header(uint32_t type, uint64_t sector, uint64_t at = kHdr) {
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    ASSERT_TRUE(memory->write(at, h).ok());
  }
  // Posts an arbitrary chain and kicks; returns the used length (nullopt: not completed).
  std::optional<uint32_t> submit(const std::vector<test::DriverBuffer>& chain) {
    (void)memory->write_obj<uint8_t>(kStatus, kNoStatus);
    driver->post(0, chain);
    driver->kick(0);
    auto used = driver->take_used(0);
    if (!used) return std::nullopt;
    return used->second;
  }
  // A well-formed request: header, `data` buffers, status byte. Returns the status.
  uint8_t request(uint32_t type, uint64_t sector, std::vector<test::DriverBuffer> data = {},
                  uint32_t* used_len = nullptr) {
    write_header(type, sector);
    std::vector<test::DriverBuffer> chain{{kHdr, 16, false}};
    chain.insert(chain.end(), data.begin(), data.end());
    chain.push_back({kStatus, 1, true});
    auto used = submit(chain);
    if (!used) return kNoStatus;
    if (used_len) *used_len = *used;
    return status();
  }
  uint8_t status() { return memory->read_obj<uint8_t>(kStatus).value(); }
  std::vector<uint8_t> guest(uint64_t gpa, uint64_t len) {
    std::vector<uint8_t> out(len);
    EXPECT_TRUE(memory->read(gpa, out).ok());
    return out;
  }
  // Writes DISCARD / WRITE_ZEROES ranges after the header.
  void write_ranges(const std::vector<std::array<uint64_t, 3>>& ranges) {
    for (size_t i = 0; i < ranges.size(); ++i) {
      uint8_t seg[16];
      uint32_t num = static_cast<uint32_t>(ranges[i][1]),
               flags = static_cast<uint32_t>(ranges[i][2]);
      std::memcpy(seg, &ranges[i][0], 8);
      std::memcpy(seg + 8, &num, 4);
      std::memcpy(seg + 12, &flags, 4);
      ASSERT_TRUE(memory->write(kData + 16 * i, seg).ok());
    }
  }

  uint64_t now = 5'000 * kMs;
  std::unique_ptr<GuestMemory> memory;
  std::unique_ptr<TempDisk> disk;
  config::Drive drive;
  Block* block = nullptr;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  test::TestRegistrar registrar;
  int irq_probe = -1;
};

TEST_F(BlockTest, OffersFeaturesAndConfigForAWritableUnsafeDrive) {
  create();
  EXPECT_EQ(driver->read_reg(0x008), 2u) << "device id: block";
  uint64_t f = driver->device_features();
  EXPECT_TRUE(f & kFeatureVersion1);
  EXPECT_TRUE(f & kFeatureRingEventIdx);
  EXPECT_TRUE(f & kFeatureSegMax);
  EXPECT_TRUE(f & kFeatureBlkSize);
  EXPECT_FALSE(f & kFeatureRo);
  EXPECT_FALSE(f & kFeatureFlush) << "Unsafe does not offer flush";
  EXPECT_TRUE(f & kFeatureDiscard) << "ext4 /tmp can punch holes";
  EXPECT_TRUE(f & kFeatureWriteZeroes);
  EXPECT_EQ(config64(kConfigCapacity), kDiskSectors);
  EXPECT_EQ(config32(kConfigSegMax), Block::kSegMax);
  EXPECT_EQ(config32(kConfigBlkSize), 512u);
  EXPECT_EQ(config32(kConfigMaxDiscardSeg), Block::kMaxRangeSegments);
  EXPECT_EQ(config32(kConfigMaxWriteZeroesSectors), UINT32_MAX);
  EXPECT_EQ(config32(kConfigSize), 0u) << "past the config space reads zero";
  driver->write_reg(0x30, 0);
  EXPECT_EQ(driver->read_reg(0x034), Block::kQueueSize);
}

TEST_F(BlockTest, ReadOnlyWritebackDriveOffersRoAndFlushButNoDiscard) {
  drive.is_read_only = true;
  drive.cache_type = config::CacheType::kWriteback;
  create();
  uint64_t f = driver->device_features();
  EXPECT_TRUE(f & kFeatureRo);
  EXPECT_TRUE(f & kFeatureFlush);
  EXPECT_FALSE(f & kFeatureDiscard);
  EXPECT_FALSE(f & kFeatureWriteZeroes);
}

TEST_F(BlockTest, ReadsTheFileAcrossSegments) {
  start();
  (void)memory->fill(kData, 0, 8 * kSectorSize);
  uint32_t used = 0;
  // 8 sectors from sector 3 in three unevenly sized descriptors.
  ASSERT_EQ(
      request(
          kTypeIn, 3,
          {{kData, 1000, true}, {kData + 1000, 2000, true}, {kData + 3000, 8 * 512 - 3000, true}},
          &used),
      kStatusOk);
  EXPECT_EQ(used, 8 * 512 + 1u) << "data plus the status byte";
  auto data = guest(kData, 8 * kSectorSize);
  for (uint64_t i = 0; i < data.size(); ++i)
    ASSERT_EQ(data[i], pattern(3 + i / kSectorSize, 1)) << "byte " << i;
  EXPECT_EQ(block->counters().reads, 1u);
  EXPECT_EQ(block->counters().read_bytes, 8 * kSectorSize);
  EXPECT_GE(irqs(), 1u);
}

TEST_F(BlockTest, ReadsTheLastSectorAndManySegments) {
  start();
  ASSERT_EQ(request(kTypeIn, kDiskSectors - 1, {{kData, 512, true}}), kStatusOk);
  EXPECT_EQ(guest(kData, 512), std::vector<uint8_t>(512, pattern(kDiskSectors - 1, 1)));

  std::vector<test::DriverBuffer> segs;
  for (uint64_t i = 0; i < 60; ++i) segs.push_back({kData + i * 512, 512, true});
  ASSERT_EQ(request(kTypeIn, 10, segs), kStatusOk);
  for (uint64_t i = 0; i < 60; ++i)
    ASSERT_EQ(guest(kData + i * 512, 1)[0], pattern(10 + i, 1)) << "segment " << i;
}

TEST_F(BlockTest, WritesReachTheHostFileBeforeCompletion) {
  start();
  (void)memory->fill(kData, 0xab, 1024);
  (void)memory->fill(kData + 1024, 0xcd, 1024);
  uint32_t used = 0;
  ASSERT_EQ(request(kTypeOut, 10, {{kData, 1024, false}, {kData + 1024, 1024, false}}, &used),
            kStatusOk);
  EXPECT_EQ(used, 1u) << "only the status byte was written";
  // Read through a separate descriptor while the device is still alive: no caching in
  // the VMM, the data is in the file.
  EXPECT_EQ(disk->read(10 * 512, 1024), std::vector<uint8_t>(1024, 0xab));
  EXPECT_EQ(disk->read(12 * 512, 1024), std::vector<uint8_t>(1024, 0xcd));
  EXPECT_EQ(disk->read(9 * 512, 512), std::vector<uint8_t>(512, pattern(9, 1)));
  EXPECT_EQ(disk->read(14 * 512, 512), std::vector<uint8_t>(512, pattern(14, 1)));
  EXPECT_EQ(block->counters().writes, 1u);
  EXPECT_EQ(block->counters().write_bytes, 2048u);

  // And read back through the device.
  (void)memory->fill(kData + 0x10000, 0, 2048);
  ASSERT_EQ(request(kTypeIn, 10, {{kData + 0x10000, 2048, true}}), kStatusOk);
  EXPECT_EQ(guest(kData + 0x10000, 1024), std::vector<uint8_t>(1024, 0xab));

  // Dropping the device loses nothing.
  transport.reset();
  EXPECT_EQ(disk->read(10 * 512, 1024), std::vector<uint8_t>(1024, 0xab));
}

TEST_F(BlockTest, FlushSucceedsWithWritebackAndIsANoOpWithUnsafe) {
  drive.cache_type = config::CacheType::kWriteback;
  start();
  EXPECT_EQ(request(kTypeFlush, 0), kStatusOk);
  EXPECT_EQ(block->counters().flushes, 1u);
  EXPECT_EQ(request(kTypeFlush, 0, {{kData, 512, false}}), kStatusIoErr) << "flush has no data";

  drive.cache_type = config::CacheType::kUnsafe;
  start();
  EXPECT_FALSE(driver->device_features() & kFeatureFlush);
  EXPECT_EQ(request(kTypeFlush, 0), kStatusOk) << "not offered, but answered (Firecracker)";
}

TEST_F(BlockTest, GetIdAnswersTheDriveId) {
  start();
  (void)memory->fill(kData, 0xff, 64);
  uint32_t used = 0;
  ASSERT_EQ(request(kTypeGetId, 0, {{kData, kIdBytes, true}}, &used), kStatusOk);
  EXPECT_EQ(used, kIdBytes + 1);
  auto id = guest(kData, kIdBytes);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data()), 6), "rootfs");
  EXPECT_EQ(std::count(id.begin() + 6, id.end(), 0), 14) << "NUL-padded";
  EXPECT_EQ(guest(kData + kIdBytes, 1)[0], 0xff) << "nothing past 20 bytes";

  // A long id is cut at 20 bytes, without a terminator.
  drive.drive_id = "a_drive_id_longer_than_twenty_bytes";
  start();
  ASSERT_EQ(request(kTypeGetId, 0, {{kData, 64, true}}, &used), kStatusOk);
  EXPECT_EQ(used, kIdBytes + 1);
  auto long_id = guest(kData, 21);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(long_id.data()), 20), "a_drive_id_longer_th");
  EXPECT_EQ(long_id[20], 0xff);
}

TEST_F(BlockTest, ReadOnlyDriveRejectsWritesWithIoErr) {
  drive.is_read_only = true;
  start();
  (void)memory->fill(kData, 0x55, 512);
  EXPECT_EQ(request(kTypeOut, 0, {{kData, 512, false}}), kStatusIoErr);
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1))) << "file unchanged";
  EXPECT_EQ(request(kTypeIn, 0, {{kData, 512, true}}), kStatusOk) << "reads still work";
  write_ranges({{0, 8, 0}});
  EXPECT_EQ(request(kTypeWriteZeroes, 0, {{kData, 16, false}}), kStatusUnsupp);
  EXPECT_EQ(request(kTypeDiscard, 0, {{kData, 16, false}}), kStatusUnsupp);
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1)));
  EXPECT_EQ(block->counters().invalid_requests, 3u);
  EXPECT_FALSE(needs_reset());
}

TEST_F(BlockTest, OutOfRangeAndOverflowingSectorsAreIoErr) {
  start();
  EXPECT_EQ(request(kTypeIn, kDiskSectors, {{kData, 512, true}}), kStatusIoErr);
  EXPECT_EQ(request(kTypeIn, kDiskSectors - 1, {{kData, 1024, true}}), kStatusIoErr)
      << "straddles the end";
  EXPECT_EQ(request(kTypeOut, kDiskSectors - 1, {{kData, 1024, false}}), kStatusIoErr);
  EXPECT_EQ(request(kTypeIn, UINT64_MAX, {{kData, 512, true}}), kStatusIoErr);
  // sector * 512 wraps to a small offset: must not be read as sector 0.
  EXPECT_EQ(request(kTypeOut, 1ULL << 55, {{kData, 512, false}}), kStatusIoErr);
  EXPECT_EQ(request(kTypeIn, UINT64_MAX - 1, {{kData, 4096, true}}), kStatusIoErr);
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1)));
  EXPECT_EQ(block->counters().invalid_requests, 6u);
  EXPECT_EQ(block->counters().reads + block->counters().writes, 0u);
  EXPECT_FALSE(needs_reset());
  EXPECT_EQ(request(kTypeIn, 0, {{kData, 512, true}}), kStatusOk) << "still serving";
}

TEST_F(BlockTest, MalformedRequestsGetAnErrorStatus) {
  start();
  auto answered = [&](const std::vector<test::DriverBuffer>& chain) -> uint8_t {
    auto used = submit(chain);
    EXPECT_TRUE(used) << "a request with a status byte is always answered";
    EXPECT_EQ(used.value_or(0), 1u);
    return status();
  };
  write_header(kTypeIn, 0);
  // The header is device-writable.
  EXPECT_EQ(answered({{kHdr, 16, true}, {kData, 512, true}, {kStatus, 1, true}}), kStatusIoErr);
  // The header is too short.
  EXPECT_EQ(answered({{kHdr, 8, false}, {kStatus, 1, true}}), kStatusIoErr);
  // IN with device-readable data.
  EXPECT_EQ(answered({{kHdr, 16, false}, {kData, 512, false}, {kStatus, 1, true}}), kStatusIoErr);
  // Data not a multiple of 512 bytes.
  EXPECT_EQ(answered({{kHdr, 16, false}, {kData, 100, true}, {kStatus, 1, true}}), kStatusIoErr);
  // OUT with device-writable data: nothing is written to the file.
  write_header(kTypeOut, 0);
  (void)memory->fill(kData, 0x77, 512);
  EXPECT_EQ(answered({{kHdr, 16, false}, {kData, 512, true}, {kStatus, 1, true}}), kStatusIoErr);
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1)));
  // GET_ID with device-readable data.
  write_header(kTypeGetId, 0);
  EXPECT_EQ(answered({{kHdr, 16, false}, {kData, 20, false}, {kStatus, 1, true}}), kStatusIoErr);
  // Unknown types.
  for (uint32_t type : {2u, 5u, 10u, 14u, 0xffffffffu}) {
    write_header(type, 0);
    EXPECT_EQ(answered({{kHdr, 16, false}, {kStatus, 1, true}}), kStatusUnsupp) << type;
  }
  EXPECT_FALSE(needs_reset());
  EXPECT_EQ(block->counters().reads + block->counters().writes, 0u);
  EXPECT_EQ(request(kTypeIn, 0, {{kData, 512, true}}), kStatusOk) << "still serving";
}

TEST_F(BlockTest, AcceptsAnyDescriptorLayout) {
  start();
  // The header split over two descriptors, the status byte at the end of the data buffer.
  write_header(kTypeIn, 4);
  (void)memory->fill(kData, 0, 513);
  (void)memory->write_obj<uint8_t>(kData + 512, kNoStatus);
  driver->post(0, {{kHdr, 10, false}, {kHdr + 10, 6, false}, {kData, 513, true}});
  driver->kick(0);
  auto used = driver->take_used(0);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->second, 513u);
  EXPECT_EQ(guest(kData + 512, 1)[0], kStatusOk);
  EXPECT_EQ(guest(kData, 512), std::vector<uint8_t>(512, pattern(4, 1)));
}

TEST_F(BlockTest, RequestWithoutStatusByteNeedsReset) {
  start();
  write_header(kTypeIn, 0);
  driver->post(0, {{kHdr, 16, false}, {kData, 512, false}});
  driver->kick(0);
  EXPECT_FALSE(driver->take_used(0));
  EXPECT_TRUE(needs_reset());
}

TEST_F(BlockTest, ReadOnlyStatusBufferNeedsReset) {
  start();
  write_header(kTypeFlush, 0);
  driver->post(0, {{kHdr, 16, false}, {kStatus, 1, false}});
  driver->kick(0);
  EXPECT_FALSE(driver->take_used(0));
  EXPECT_TRUE(needs_reset());
}

TEST_F(BlockTest, StatusBufferBeforeDataNeedsReset) {
  // IN whose "status" is readable and comes after writable data: the queue rejects the
  // chain (readable after writable), the device never sees it.
  start();
  write_header(kTypeIn, 0);
  driver->post(0, {{kHdr, 16, false}, {kData, 512, true}, {kStatus, 1, false}});
  driver->kick(0);
  EXPECT_FALSE(driver->take_used(0));
  EXPECT_TRUE(needs_reset());
  EXPECT_EQ(block->counters().reads, 0u);
}

TEST_F(BlockTest, WriteZeroesAndDiscardChangeTheFile) {
  start();
  write_ranges({{4, 4, 0}, {20, 2, kRangeFlagUnmap}});
  EXPECT_EQ(request(kTypeWriteZeroes, 0, {{kData, 32, false}}), kStatusOk);
  EXPECT_EQ(disk->read(4 * 512, 4 * 512), std::vector<uint8_t>(4 * 512, 0));
  EXPECT_EQ(disk->read(20 * 512, 2 * 512), std::vector<uint8_t>(2 * 512, 0));
  EXPECT_EQ(disk->read(3 * 512, 512), std::vector<uint8_t>(512, pattern(3, 1)));
  EXPECT_EQ(disk->read(8 * 512, 512), std::vector<uint8_t>(512, pattern(8, 1)));
  EXPECT_EQ(disk->read(22 * 512, 512), std::vector<uint8_t>(512, pattern(22, 1)));

  // Discard punches a hole (whole 4 KiB blocks: sectors 32..47); the size stays.
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(disk->path.c_str(), &before), 0);
  write_ranges({{32, 16, 0}});
  EXPECT_EQ(request(kTypeDiscard, 0, {{kData, 16, false}}), kStatusOk);
  ASSERT_EQ(::stat(disk->path.c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_LT(after.st_blocks, before.st_blocks) << "blocks were deallocated";
  EXPECT_EQ(disk->read(32 * 512, 16 * 512), std::vector<uint8_t>(16 * 512, 0));
  EXPECT_EQ(disk->read(48 * 512, 512), std::vector<uint8_t>(512, pattern(48, 1)));
  EXPECT_EQ(block->counters().discards, 1u);
  EXPECT_EQ(block->counters().write_zeroes, 1u);
}

TEST_F(BlockTest, BadDiscardAndWriteZeroesRequests) {
  start();
  auto ranges_request = [&](uint32_t type, const std::vector<std::array<uint64_t, 3>>& r) {
    write_ranges(r);
    return request(type, 0, {{kData, static_cast<uint32_t>(16 * r.size()), false}});
  };
  EXPECT_EQ(ranges_request(kTypeDiscard, {{0, 8, kRangeFlagUnmap}}), kStatusUnsupp);
  EXPECT_EQ(ranges_request(kTypeWriteZeroes, {{0, 8, 2}}), kStatusUnsupp) << "unknown flag";
  EXPECT_EQ(ranges_request(kTypeDiscard, {{kDiskSectors - 4, 8, 0}}), kStatusIoErr);
  EXPECT_EQ(ranges_request(kTypeWriteZeroes, {{0, 1, 0}, {UINT64_MAX - 1, 8, 0}}), kStatusIoErr);
  std::vector<std::array<uint64_t, 3>> many(Block::kMaxRangeSegments + 1, {0, 1, 0});
  EXPECT_EQ(ranges_request(kTypeWriteZeroes, many), kStatusIoErr);
  write_ranges({{0, 8, 0}});
  EXPECT_EQ(request(kTypeWriteZeroes, 0, {{kData, 12, false}}), kStatusIoErr) << "partial range";
  EXPECT_EQ(request(kTypeWriteZeroes, 0), kStatusIoErr) << "no ranges";
  EXPECT_EQ(request(kTypeDiscard, 0, {{kData, 16, true}}), kStatusIoErr) << "writable ranges";
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1))) << "nothing zeroed";
  EXPECT_EQ(block->counters().write_zeroes + block->counters().discards, 0u);
  EXPECT_FALSE(needs_reset());
}

TEST_F(BlockTest, DiscardNotNegotiatedIsUnsupported) {
  create();
  uint64_t f = driver->device_features() & ~(kFeatureDiscard | kFeatureWriteZeroes);
  ASSERT_EQ(driver->start(f, {64}), 15u);
  write_ranges({{0, 8, 0}});
  EXPECT_EQ(request(kTypeDiscard, 0, {{kData, 16, false}}), kStatusUnsupp);
  EXPECT_EQ(request(kTypeWriteZeroes, 0, {{kData, 16, false}}), kStatusUnsupp);
  EXPECT_EQ(disk->read(0, 512), std::vector<uint8_t>(512, pattern(0, 1)));
}

TEST_F(BlockTest, RateLimiterThrottlesOpsAndResumesOnItsTimer) {
  config::RateLimiter limits;
  limits.ops = config::TokenBucket{2, std::nullopt, 1000};  // 2 ops per second
  drive.rate_limiter = limits;
  start();
  ASSERT_EQ(registrar.watched(), 1u) << "the limiter's timer is registered";
  int timer_fd = registrar.fds().front();
  EXPECT_EQ(timer_fd, block->rate_limiter().timer_fd());

  // Three reads at once: two pass, the third waits in the ring.
  for (uint16_t i = 0; i < 3; ++i) {
    write_header(kTypeIn, i, kHdr + 16 * i);
    driver->post(
        0, {{kHdr + 16ULL * i, 16, false}, {kData + 512ULL * i, 512, true}, {kStatus + i, 1, true}},
        static_cast<uint16_t>(3 * i));
  }
  driver->kick(0);
  EXPECT_EQ(driver->used_idx(0), 2u);
  EXPECT_TRUE(block->rate_limiter().is_blocked());
  EXPECT_EQ(block->counters().throttled, 1u);
  itimerspec spec{};
  ASSERT_EQ(::timerfd_gettime(timer_fd, &spec), 0);
  EXPECT_TRUE(spec.it_value.tv_sec != 0 || spec.it_value.tv_nsec != 0) << "timer armed";

  // Kicks while blocked do nothing.
  driver->kick(0);
  EXPECT_EQ(driver->used_idx(0), 2u);

  // Half a second later one token is back; the timer handler resumes the queue.
  now += 500 * kMs;
  registrar.fire(timer_fd);
  EXPECT_EQ(driver->used_idx(0), 3u);
  EXPECT_EQ(guest(kStatus + 2, 1)[0], kStatusOk);
  EXPECT_EQ(guest(kData + 1024, 512), std::vector<uint8_t>(512, pattern(2, 1)));
  EXPECT_EQ(block->counters().reads, 3u);
}

TEST_F(BlockTest, RateLimiterThrottlesBandwidthAndCanBeLifted) {
  config::RateLimiter limits;
  limits.bandwidth = config::TokenBucket{4096, std::nullopt, 1000};
  limits.ops = config::TokenBucket{100, std::nullopt, 1000};
  drive.rate_limiter = limits;
  start();
  ASSERT_EQ(request(kTypeIn, 0, {{kData, 4096, true}}), kStatusOk);
  EXPECT_EQ(request(kTypeIn, 8, {{kData, 512, true}}), kNoStatus) << "throttled";
  EXPECT_EQ(block->rate_limiter().bucket(TokenType::kOps)->budget(), 99u)
      << "the held-back request's op was given back";
  EXPECT_EQ(block->counters().throttled, 1u);

  // PATCH: no more bandwidth limit; the blocked queue resumes on the timer.
  config::RateLimiter lift;
  lift.bandwidth = config::TokenBucket{0, std::nullopt, 0};
  block->update_rate_limiter(lift);
  EXPECT_FALSE(block->rate_limiter().bucket(TokenType::kBytes));
  EXPECT_TRUE(block->rate_limiter().bucket(TokenType::kOps));
  registrar.fire(block->rate_limiter().timer_fd());
  auto used = driver->take_used(0);
  ASSERT_TRUE(used);
  EXPECT_EQ(status(), kStatusOk);
  EXPECT_EQ(request(kTypeIn, 0, {{kData, 65536, true}}), kStatusOk);
}

TEST_F(BlockTest, UpdatePathSwitchesFileAndCapacity) {
  start();
  TempDisk bigger(256 * kSectorSize, 9);
  uint32_t generation = driver->read_reg(0xfc);
  irqs();
  ASSERT_TRUE(block->update_path(bigger.path).ok());
  EXPECT_EQ(block->path(), bigger.path);
  EXPECT_EQ(config64(kConfigCapacity), 256u);
  EXPECT_NE(driver->read_reg(0xfc), generation);
  EXPECT_TRUE(driver->read_reg(0x60) & kInterruptConfigChange);
  EXPECT_EQ(irqs(), 1u);

  ASSERT_EQ(request(kTypeIn, 200, {{kData, 512, true}}), kStatusOk);
  EXPECT_EQ(guest(kData, 512), std::vector<uint8_t>(512, pattern(200, 9)));
  (void)memory->fill(kData, 0x31, 512);
  ASSERT_EQ(request(kTypeOut, 1, {{kData, 512, false}}), kStatusOk);
  EXPECT_EQ(bigger.read(512, 512), std::vector<uint8_t>(512, 0x31));
  EXPECT_EQ(disk->read(512, 512), std::vector<uint8_t>(512, pattern(1, 1))) << "old file kept";

  // A file that cannot be opened leaves the current one in place.
  auto failed = block->update_path("/nonexistent/disk.img");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("rootfs"), std::string::npos) << failed.error().message;
  EXPECT_EQ(block->path(), bigger.path);
  EXPECT_EQ(request(kTypeIn, 255, {{kData, 512, true}}), kStatusOk);
}

TEST_F(BlockTest, UpdatePathBeforeActivationNeedsNoInterrupt) {
  create();
  TempDisk smaller(16 * kSectorSize, 3);
  ASSERT_TRUE(block->update_path(smaller.path).ok());
  EXPECT_EQ(config64(kConfigCapacity), 16u);
  EXPECT_EQ(irqs(), 0u);
}

TEST_F(BlockTest, CapacityRoundsDownAPartialLastSector) {
  disk = std::make_unique<TempDisk>(10 * kSectorSize + 100);
  drive.path_on_host = disk->path;
  start();
  EXPECT_EQ(config64(kConfigCapacity), 10u);
  EXPECT_EQ(request(kTypeIn, 9, {{kData, 512, true}}), kStatusOk);
  EXPECT_EQ(request(kTypeIn, 10, {{kData, 512, true}}), kStatusIoErr);
}

TEST_F(BlockTest, CreationErrors) {
  config::Drive d = drive;
  d.io_engine = config::IoEngine::kAsync;
  auto r = Block::create(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("Async is not supported"), std::string::npos);

  d = drive;
  d.path_on_host.reset();
  d.socket = "/tmp/vhost.sock";
  EXPECT_FALSE(Block::create(d).ok());

  d = drive;
  d.path_on_host.reset();
  EXPECT_FALSE(Block::create(d).ok());

  d = drive;
  d.path_on_host = "/nonexistent/disk.img";
  r = Block::create(d);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/disk.img"), std::string::npos);

  d = drive;
  d.path_on_host = "/tmp";
  EXPECT_FALSE(Block::create(d).ok()) << "a directory is not a disk";
}

TEST_F(BlockTest, ResetAndRestart) {
  start();
  ASSERT_EQ(request(kTypeIn, 0, {{kData, 512, true}}), kStatusOk);
  driver->write_reg(0x70, 0);
  driver->kick(0);  // ignored while reset
  ASSERT_EQ(driver->start(driver->device_features(), {64}), 15u);
  EXPECT_EQ(request(kTypeIn, 1, {{kData, 512, true}}), kStatusOk);
  EXPECT_EQ(guest(kData, 512), std::vector<uint8_t>(512, pattern(1, 1)));
}

}  // namespace
}  // namespace ignition::devices::virtio
