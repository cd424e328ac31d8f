// virtio-pmem through a real virtio-mmio transport and a host-side test driver, backed by
// a temporary file: the mapping, the config space, FLUSH, malformed requests, creation
// errors, snapshots and the rate limiter.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/pmem/persist.hpp"
#include "devices/virtio/pmem/pmem.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

using namespace pmem;

constexpr uint64_t kRam = 4 << 20;
constexpr uint64_t kReq = 0x100000;   // struct virtio_pmem_req
constexpr uint64_t kResp = 0x100800;  // struct virtio_pmem_resp
constexpr uint64_t kGpa = 1ULL << 32;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMs = 1'000'000;
constexpr uint32_t kNoAnswer = 0xdeadbeef;  // what the response holds until the device answers
constexpr uint32_t kRunning = 15;

uint8_t pattern(uint64_t i) {
  return static_cast<uint8_t>(i * 13 + 7);
}

// A temporary backing file, removed at the end of the test.
struct TempFile {
  explicit TempFile(uint64_t bytes) {
    char name[] = "/tmp/ignition-pmem-XXXXXX";
    int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    path = name;
    std::vector<uint8_t> content(bytes);
    for (uint64_t i = 0; i < bytes; ++i) content[i] = pattern(i);
    EXPECT_EQ(::pwrite(fd, content.data(), bytes, 0), static_cast<ssize_t>(bytes));
    ::close(fd);
  }
  ~TempFile() { std::filesystem::remove(path); }
  std::vector<uint8_t> read(uint64_t offset, uint64_t len) const {
    std::vector<uint8_t> out(len);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
    ::close(fd);
    return out;
  }
  uint64_t size() const { return std::filesystem::file_size(path); }
  std::string path;
};

// The VmFlags line of the /proc/self/smaps entry that starts at `addr`.
std::string vm_flags(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_entry = false;
  while (std::getline(smaps, line)) {
    size_t dash = line.find('-');
    if (dash != std::string::npos && dash > 0 && line.find(' ') > dash &&
        std::isxdigit(static_cast<unsigned char>(line[0]))) {
      in_entry =
          std::stoull(line.substr(0, dash), nullptr, 16) == reinterpret_cast<uintptr_t>(addr);
      continue;
    }
    if (in_entry && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}
bool has_flag(const std::string& flags, const std::string& flag) {
  std::istringstream in(flags);
  std::string word;
  while (in >> word)
    if (word == flag) return true;
  return false;
}

struct PmemTest : ::testing::Test {
  void SetUp() override {
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
    file = std::make_unique<TempFile>(kMiB + 123);
    cfg.id = "pmem0";
    cfg.path_on_host = file->path;
  }

  // Creates the device from `cfg` and puts a transport and a driver in front of it.
  void create() {
    auto device = Pmem::create(cfg, kGpa, [this] { return now; });
    ASSERT_TRUE(device.ok()) << device.error().message;
    pmem = device->get();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    transport = std::make_unique<MmioTransport>(std::move(device).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
    registrar.clear();
    ASSERT_TRUE(transport->register_events(registrar).ok());
  }
  void start() {
    create();
    ASSERT_EQ(driver->start(driver->device_features(), {64}), kRunning);
  }

  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }
  uint32_t guest32(uint64_t gpa) { return memory->read_obj<uint32_t>(gpa).value(); }
  void put32(uint64_t gpa, uint32_t v) { ASSERT_TRUE(memory->write_obj<uint32_t>(gpa, v).ok()); }

  // Posts `chain` (from descriptor `first`) and kicks; returns the used length, if used.
  std::optional<uint32_t> submit(const std::vector<test::DriverBuffer>& chain, uint16_t first = 0) {
    driver->post(0, chain, first);
    driver->kick(0);
    auto used = driver->take_used(0);
    if (!used) return std::nullopt;
    return used->second;
  }
  // A well-formed request of `type`; returns the device's answer (kNoAnswer if none).
  uint32_t request(uint32_t type = kReqTypeFlush) {
    put32(kReq, type);
    put32(kResp, kNoAnswer);
    auto used = submit({{kReq, 4, false}, {kResp, 4, true}});
    if (!used) return kNoAnswer;
    EXPECT_EQ(*used, 4u);
    return guest32(kResp);
  }

  uint64_t now = 5'000 * kMs;
  std::unique_ptr<GuestMemory> memory;
  std::unique_ptr<TempFile> file;
  config::Pmem cfg;
  Pmem* pmem = nullptr;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  test::TestRegistrar registrar;
};

TEST_F(PmemTest, IdentifiesItselfAndDescribesItsRegion) {
  create();
  EXPECT_EQ(driver->read_reg(0x008), 27u) << "device id: pmem";
  EXPECT_EQ(driver->device_features(), kFeatureVersion1) << "nothing beyond VERSION_1";
  driver->write_reg(0x30, 0);
  EXPECT_EQ(driver->read_reg(0x034), 256u);
  EXPECT_EQ(pmem->gpa(), kGpa);
  EXPECT_EQ(pmem->size(), 2 * kMiB);

  // le64 start, le64 size, read in 32-bit halves as Linux's virtio_cread does.
  EXPECT_EQ(driver->read_reg(0x100), static_cast<uint32_t>(kGpa));
  EXPECT_EQ(driver->read_reg(0x104), static_cast<uint32_t>(kGpa >> 32));
  EXPECT_EQ(driver->read_reg(0x108), static_cast<uint32_t>(2 * kMiB));
  EXPECT_EQ(driver->read_reg(0x10c), 0u);
  // Any width and offset inside the structure, zero beyond it.
  uint64_t wide = 0;
  transport->read(0x108, {reinterpret_cast<uint8_t*>(&wide), 8});
  EXPECT_EQ(wide, 2 * kMiB);
  uint8_t byte = 0xff;
  transport->read(0x104, {&byte, 1});
  EXPECT_EQ(byte, 1u) << "the low byte of start's high half";
  uint8_t straddle[4] = {0xff, 0xff, 0xff, 0xff};
  transport->read(0x10e, straddle);
  EXPECT_EQ(straddle[0], 0u);
  EXPECT_EQ(straddle[1], 0u);
  EXPECT_EQ(straddle[2], 0u) << "past the end";
  EXPECT_EQ(driver->read_reg(0x110), 0u);
  EXPECT_EQ(driver->read_reg(0x1fc), 0u);
  // Writes are ignored.
  driver->write_reg(0x108, 0x1234);
  EXPECT_EQ(driver->read_reg(0x108), static_cast<uint32_t>(2 * kMiB));
}

TEST_F(PmemTest, MapsTheFileAndZeroFillsUpToTheAlignment) {
  file = std::make_unique<TempFile>(3 * kMiB + 5);
  cfg.path_on_host = file->path;
  create();
  EXPECT_EQ(pmem->size(), 4 * kMiB);
  EXPECT_EQ(pmem->file_size(), 3 * kMiB + 5);
  std::vector<uint8_t> content(pmem->host(), pmem->host() + 3 * kMiB + 5);
  EXPECT_EQ(content, file->read(0, 3 * kMiB + 5));
  bool tail_zero = true;
  for (uint64_t i = 3 * kMiB + 5; i < 4 * kMiB; ++i) tail_zero &= pmem->host()[i] == 0;
  EXPECT_TRUE(tail_zero);
  // The tail is the device's own memory: writing it neither faults nor grows the file.
  pmem->host()[4 * kMiB - 1] = 0xab;
  pmem->host()[3 * kMiB + 5] = 0xcd;  // past the end, inside the file's last page
  start();
  EXPECT_EQ(request(), kRespOk);
  EXPECT_EQ(file->size(), 3 * kMiB + 5);
}

TEST_F(PmemTest, AnExactlyAlignedFileIsMappedWhole) {
  file = std::make_unique<TempFile>(2 * kMiB);
  cfg.path_on_host = file->path;
  create();
  EXPECT_EQ(pmem->size(), 2 * kMiB);
  EXPECT_EQ(pmem->host()[2 * kMiB - 1], pattern(2 * kMiB - 1));
}

// The file shares the page cache with the mapping, so this shows the writes are the file's and
// FLUSH answers 0; that fdatasync made them durable is beyond what a test can observe.
TEST_F(PmemTest, WritesThroughTheMappingAreTheFilesAndFlushAnswersZero) {
  start();
  std::memset(pmem->host() + 4096, 0x5a, 8192);
  pmem->host()[kMiB + 122] = 0x11;  // the file's last byte
  EXPECT_EQ(request(), kRespOk);
  EXPECT_EQ(file->read(4096, 8192), std::vector<uint8_t>(8192, 0x5a));
  EXPECT_EQ(file->read(kMiB + 122, 1)[0], 0x11);
  EXPECT_EQ(file->read(0, 1)[0], pattern(0)) << "the rest untouched";
  EXPECT_EQ(pmem->counters().flushes, 1u);
  EXPECT_FALSE(needs_reset());
  // The file's changes show through the mapping, too (MAP_SHARED).
  int fd = ::open(file->path.c_str(), O_RDWR | O_CLOEXEC);
  uint8_t v = 0x99;
  ASSERT_EQ(::pwrite(fd, &v, 1, 100), 1);
  ::close(fd);
  EXPECT_EQ(pmem->host()[100], 0x99);
}

TEST_F(PmemTest, ReadOnlyMapsWithoutWriteAccessAndFlushesTrivially) {
  cfg.read_only = true;
  start();
  EXPECT_TRUE(pmem->read_only());
  std::string flags = vm_flags(pmem->host());
  ASSERT_FALSE(flags.empty()) << "the mapping is in /proc/self/smaps";
  EXPECT_TRUE(has_flag(flags, "rd")) << flags;
  EXPECT_FALSE(has_flag(flags, "wr")) << flags;
  // Opened O_RDONLY: the kernel drops may-write (and with it shared) from the mapping, so
  // not even mprotect could make it writable.
  EXPECT_FALSE(has_flag(flags, "mw")) << flags;
  std::string tail = vm_flags(pmem->host() + kMiB + 4096);
  ASSERT_FALSE(tail.empty());
  EXPECT_FALSE(has_flag(tail, "wr")) << tail;
  EXPECT_EQ(pmem->host()[5], pattern(5));
  EXPECT_EQ(request(), kRespOk);
  EXPECT_EQ(pmem->counters().flushes, 1u);
}

TEST_F(PmemTest, ReadWriteMapsWithWriteAccess) {
  create();  // the counterpart of the test above: the smaps check can tell them apart
  std::string flags = vm_flags(pmem->host());
  ASSERT_FALSE(flags.empty());
  EXPECT_TRUE(has_flag(flags, "wr")) << flags;
  EXPECT_TRUE(has_flag(flags, "mw")) << flags;
  EXPECT_TRUE(has_flag(flags, "sh")) << flags;
}

TEST_F(PmemTest, MalformedRequestsAreAnsweredWithAnError) {
  start();
  auto answered = [&](const std::vector<test::DriverBuffer>& chain, uint64_t resp_at = kResp) {
    put32(resp_at, kNoAnswer);
    auto used = submit(chain);
    EXPECT_TRUE(used) << "a request with room for an answer is always answered";
    EXPECT_EQ(used.value_or(0), 4u);
    return guest32(resp_at);
  };
  put32(kReq, kReqTypeFlush);
  // The request is too short or too long.
  EXPECT_EQ(answered({{kReq, 2, false}, {kResp, 4, true}}), kRespError);
  EXPECT_EQ(answered({{kReq, 8, false}, {kResp, 4, true}}), kRespError);
  EXPECT_EQ(answered({{kReq, 2, false}, {kReq + 2, 4, false}, {kResp, 4, true}}), kRespError);
  // The response is too long.
  EXPECT_EQ(answered({{kReq, 4, false}, {kResp, 8, true}}), kRespError);
  // No request at all: only writable buffers (the request one device-writable).
  EXPECT_EQ(answered({{kReq, 4, true}, {kResp, 4, true}}, kReq), kRespError);
  EXPECT_EQ(answered({{kResp, 4, true}}), kRespError);
  // Unknown types.
  for (uint32_t type : {1u, 2u, 0x80000000u, 0xffffffffu}) {
    put32(kReq, type);
    EXPECT_EQ(answered({{kReq, 4, false}, {kResp, 4, true}}), kRespError) << type;
  }
  EXPECT_EQ(pmem->counters().invalid_requests, 10u);
  EXPECT_EQ(pmem->counters().flushes, 0u);
  EXPECT_FALSE(needs_reset());
  // Split over descriptors is still a well-formed request.
  put32(kReq, kReqTypeFlush);
  EXPECT_EQ(
      answered({{kReq, 1, false}, {kReq + 1, 3, false}, {kResp, 2, true}, {kResp + 2, 2, true}}),
      kRespOk);
  EXPECT_EQ(request(), kRespOk) << "still serving";
  EXPECT_EQ(pmem->counters().flushes, 2u);
}

TEST_F(PmemTest, RequestWithoutRoomForTheAnswerNeedsReset) {
  start();
  put32(kReq, kReqTypeFlush);
  EXPECT_FALSE(submit({{kReq, 4, false}, {kResp, 4, false}}));
  EXPECT_TRUE(needs_reset());
  EXPECT_EQ(pmem->counters().flushes, 0u);
}

TEST_F(PmemTest, TooShortAResponseNeedsReset) {
  start();
  put32(kReq, kReqTypeFlush);
  put32(kResp, kNoAnswer);
  EXPECT_FALSE(submit({{kReq, 4, false}, {kResp, 3, true}}));
  EXPECT_TRUE(needs_reset());
  EXPECT_EQ(guest32(kResp), kNoAnswer) << "nothing written";
}

TEST_F(PmemTest, ResponseBeforeRequestNeedsReset) {
  // Readable after writable: the queue rejects the chain, the device never sees it.
  start();
  put32(kReq, kReqTypeFlush);
  EXPECT_FALSE(submit({{kResp, 4, true}, {kReq, 4, false}}));
  EXPECT_TRUE(needs_reset());
  EXPECT_EQ(pmem->counters().flushes, 0u);
}

TEST_F(PmemTest, CreationErrorsAreClear) {
  auto fails = [&](const config::Pmem& c, uint64_t gpa) -> std::string {
    auto device = Pmem::create(c, gpa);
    EXPECT_FALSE(device.ok());
    return device.ok() ? "" : device.error().message;
  };
  config::Pmem missing = cfg;
  missing.path_on_host = "/tmp/ignition-pmem-does-not-exist";
  std::string e = fails(missing, kGpa);
  EXPECT_NE(e.find("pmem0"), std::string::npos) << e;
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;

  TempFile empty(0);
  config::Pmem empty_cfg = cfg;
  empty_cfg.path_on_host = empty.path;
  e = fails(empty_cfg, kGpa);
  EXPECT_NE(e.find("empty"), std::string::npos) << e;

  config::Pmem dir = cfg;
  dir.path_on_host = "/tmp";
  dir.read_only = true;  // O_RDONLY opens a directory; the type check must catch it
  e = fails(dir, kGpa);
  EXPECT_NE(e.find("directory"), std::string::npos) << e;
  dir.read_only = false;
  EXPECT_FALSE(fails(dir, kGpa).empty());

  for (uint64_t gpa : {kGpa + 4096, kGpa + kMiB, uint64_t{1}}) {
    e = fails(cfg, gpa);
    EXPECT_NE(e.find("not aligned"), std::string::npos) << e;
  }
  e = fails(cfg, UINT64_MAX - Pmem::kAlignment + 1);
  EXPECT_NE(e.find("address space"), std::string::npos) << e;

  config::Pmem bad_limits = cfg;
  bad_limits.rate_limiter = config::RateLimiter{};
  EXPECT_TRUE(Pmem::create(bad_limits, 0).ok()) << "an empty limiter limits nothing";
}

TEST_F(PmemTest, SnapshotRestoresIntoAFreshDeviceOverTheSameFile) {
  cfg.rate_limiter = config::RateLimiter{std::nullopt, config::TokenBucket{10, std::nullopt, 100}};
  start();
  EXPECT_EQ(request(), kRespOk);
  auto saved = transport->save_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message;

  config::Pmem fresh_cfg = cfg;
  fresh_cfg.rate_limiter.reset();  // the snapshot's limits win
  auto device = Pmem::create(fresh_cfg, kGpa, [this] { return now; });
  ASSERT_TRUE(device.ok());
  Pmem* fresh = device->get();
  auto irq_fd = EventFd::create();
  ASSERT_TRUE(irq_fd.ok());
  MmioTransport restored(std::move(device).value(), *memory, IrqLine(std::move(irq_fd).value(), 5));
  ASSERT_TRUE(restored.restore_state(*saved).ok());
  ASSERT_TRUE(fresh->rate_limiter().bucket(TokenType::kOps));
  EXPECT_EQ(fresh->rate_limiter().bucket(TokenType::kOps)->size(), 10u);
  EXPECT_FALSE(fresh->rate_limiter().bucket(TokenType::kBytes));

  // The restored queue carries on where the old one stopped: the rings are in guest
  // memory, so the old driver posts and the new transport is kicked.
  test::VirtioTestDriver again(restored, *memory);
  EXPECT_EQ(again.read_reg(0x70), kRunning);
  fresh->host()[7] = 0x42;
  put32(kReq, kReqTypeFlush);
  put32(kResp, kNoAnswer);
  driver->post(0, {{kReq, 4, false}, {kResp, 4, true}}, 2);
  again.kick(0);
  auto used = driver->take_used(0);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->first, 2u);
  EXPECT_EQ(guest32(kResp), kRespOk);
  EXPECT_EQ(fresh->counters().flushes, 1u);
  EXPECT_EQ(file->read(7, 1)[0], 0x42);
}

TEST_F(PmemTest, StateRoundTripsAndMismatchesAreRejected) {
  cfg.rate_limiter = config::RateLimiter{config::TokenBucket{4096, 100, 50}, std::nullopt};
  create();
  std::vector<uint8_t> state = pmem->save_state();
  auto decoded = decode_state(state);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->id, "pmem0");
  EXPECT_EQ(decoded->path, file->path);
  EXPECT_EQ(decoded->gpa, kGpa);
  EXPECT_EQ(decoded->size, 2 * kMiB);
  EXPECT_EQ(decoded->file_size, kMiB + 123);
  EXPECT_FALSE(decoded->read_only);
  EXPECT_EQ(decoded->rate_limiter, *cfg.rate_limiter);
  EXPECT_TRUE(pmem->restore_state(state).ok());

  auto restore_into = [&](const config::Pmem& c, uint64_t gpa) -> std::string {
    auto device = Pmem::create(c, gpa);
    EXPECT_TRUE(device.ok()) << device.error().message;
    if (!device.ok()) return "";
    auto restored = (*device)->restore_state(state);
    return restored.ok() ? "" : restored.error().message;
  };
  EXPECT_EQ(restore_into(cfg, kGpa), "");

  config::Pmem other_id = cfg;
  other_id.id = "pmem1";
  EXPECT_NE(restore_into(other_id, kGpa).find("pmem0"), std::string::npos);
  EXPECT_NE(restore_into(cfg, kGpa + Pmem::kAlignment).find("0x100000000"), std::string::npos);
  config::Pmem ro = cfg;
  ro.read_only = true;
  EXPECT_NE(restore_into(ro, kGpa).find("read-write in the snapshot"), std::string::npos);

  // The file grew: another mapped size.
  TempFile bigger(3 * kMiB);
  config::Pmem grown = cfg;
  grown.path_on_host = bigger.path;
  std::string e = restore_into(grown, kGpa);
  EXPECT_NE(e.find(std::to_string(3 * kMiB) + " bytes"), std::string::npos) << e;
  EXPECT_NE(e.find(std::to_string(kMiB + 123) + " bytes"), std::string::npos) << e;
  // Same mapped size, other file size: the guest's contents would differ.
  TempFile slightly(kMiB + 124);
  grown.path_on_host = slightly.path;
  EXPECT_NE(restore_into(grown, kGpa).find("the snapshot's file was"), std::string::npos);

  // Damaged bytes are rejected.
  for (size_t cut : {size_t{0}, size_t{5}, state.size() - 1}) {
    auto device = Pmem::create(cfg, kGpa);
    ASSERT_TRUE(device.ok());
    EXPECT_FALSE((*device)->restore_state(std::span(state).first(cut)).ok()) << cut;
  }
}

TEST_F(PmemTest, RateLimiterMakesTheSecondFlushWait) {
  cfg.rate_limiter = config::RateLimiter{std::nullopt, config::TokenBucket{1, std::nullopt, 100}};
  start();
  ASSERT_EQ(registrar.watched(), 1u) << "the limiter's timerfd is watched";
  put32(kReq, kReqTypeFlush);
  put32(kResp, kNoAnswer);
  put32(kResp + 4, kNoAnswer);
  driver->post(0, {{kReq, 4, false}, {kResp, 4, true}}, 0);
  driver->post(0, {{kReq, 4, false}, {kResp + 4, 4, true}}, 2);
  driver->kick(0);
  EXPECT_EQ(driver->used_idx(0), 1);
  EXPECT_EQ(guest32(kResp), kRespOk);
  EXPECT_EQ(guest32(kResp + 4), kNoAnswer) << "the second flush waits";
  EXPECT_TRUE(pmem->rate_limiter().is_blocked());
  EXPECT_EQ(pmem->counters().throttled, 1u);

  driver->kick(0);  // a kick while blocked serves nothing
  EXPECT_EQ(driver->used_idx(0), 1);
  now += 50 * kMs;
  registrar.fire(pmem->rate_limiter().timer_fd());
  EXPECT_EQ(driver->used_idx(0), 1) << "half the refill time: still waiting";
  now += 50 * kMs;
  registrar.fire(pmem->rate_limiter().timer_fd());
  EXPECT_EQ(driver->used_idx(0), 2);
  EXPECT_EQ(guest32(kResp + 4), kRespOk);
  EXPECT_EQ(pmem->counters().flushes, 2u);
  EXPECT_FALSE(needs_reset());

  // Malformed requests cost nothing: they never reach the file.
  put32(kReq + 8, 7);
  put32(kResp + 8, kNoAnswer);
  EXPECT_TRUE(submit({{kReq + 8, 4, false}, {kResp + 8, 4, true}}, 4));
  EXPECT_EQ(guest32(kResp + 8), kRespError);
}

TEST_F(PmemTest, RateLimiterCanBeLiftedAtRuntime) {
  cfg.rate_limiter = config::RateLimiter{std::nullopt, config::TokenBucket{1, std::nullopt, 1000}};
  start();
  EXPECT_EQ(request(), kRespOk);
  EXPECT_EQ(request(), kNoAnswer) << "throttled";
  config::RateLimiter lift;
  lift.ops = config::TokenBucket{};  // present and disabled: no limit
  pmem->update_rate_limiter(lift);
  EXPECT_FALSE(pmem->rate_limiter().bucket(TokenType::kOps));
  pmem->on_rate_limiter_timer();
  EXPECT_EQ(guest32(kResp), kRespOk) << "the waiting flush went through";
  EXPECT_TRUE(driver->take_used(0));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(request(), kRespOk);
}

}  // namespace
}  // namespace ignition::devices::virtio
