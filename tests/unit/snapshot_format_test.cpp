// The snapshot state file: CRC-64, the encoder/decoder, the container (round trip, and every
// way a file can be damaged or wrong), and the encodings of the seam's vCPU and VM state.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "snapshot/codec.hpp"
#include "snapshot/crc64.hpp"
#include "snapshot/hv_state_codec.hpp"
#include "snapshot/snapshot_file.hpp"

namespace ignition::snapshot {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytes_of(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ign-snap-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// A valid file of three sections, one of them empty.
SnapshotWriter sample_writer() {
  SnapshotWriter w("x86_64-kvm");
  EXPECT_TRUE(w.add_section("vcpu/0", bytes_of("registers")).ok());
  EXPECT_TRUE(w.add_section("empty", {}).ok());
  EXPECT_TRUE(w.add_section("devices", random_bytes(5000, 7)).ok());
  return w;
}

std::vector<uint8_t> sample_bytes() {
  auto bytes = sample_writer().serialize();
  EXPECT_TRUE(bytes.ok());
  return bytes.ok() ? *bytes : std::vector<uint8_t>{};
}

// Rewrites the checksum after a deliberate edit, as a (newer or buggy) writer would.
void reseal(std::vector<uint8_t>& file) {
  const uint64_t crc = crc64(std::span(file).first(file.size() - 8));
  std::memcpy(file.data() + file.size() - 8, &crc, 8);
}

std::string parse_error(std::vector<uint8_t> bytes) {
  auto r = SnapshotReader::parse(std::move(bytes), "test");
  return r.ok() ? "(parsed fine)" : r.error().message;
}

// ---- CRC-64 ----

TEST(Crc64Test, MatchesTheXzCheckValue) {
  EXPECT_EQ(crc64(bytes_of("123456789")), 0x995dc9bbdf1939faull);
  EXPECT_EQ(crc64({}), 0u);
  EXPECT_NE(crc64(bytes_of("a")), crc64(bytes_of("b")));
}

TEST(Crc64Test, RunsIncrementally) {
  const auto data = random_bytes(1000, 1);
  for (size_t split : {0u, 1u, 499u, 1000u}) {
    auto first = std::span(data).first(split);
    auto rest = std::span(data).subspan(split);
    EXPECT_EQ(crc64(rest, crc64(first)), crc64(data)) << split;
  }
}

// ---- encoder / decoder ----

struct Plain {
  uint32_t a;
  uint32_t b;
  uint64_t c;
};

std::vector<uint8_t> encode_sample() {
  Encoder e;
  e.u8(0xab);
  e.u16(0x1234);
  e.u32(0xdeadbeef);
  e.u64(0x0123456789abcdefull);
  e.boolean(true);
  e.str("hello");
  e.bytes(random_bytes(40, 3));
  e.pod(Plain{1, 2, 3});
  const std::vector<Plain> v = {{4, 5, 6}, {7, 8, 9}};
  e.pod_vector(std::span(v));
  return std::move(e).take();
}

TEST(CodecTest, RoundTrips) {
  const auto data = encode_sample();
  Decoder d(data);
  EXPECT_EQ(d.u8(), 0xab);
  EXPECT_EQ(d.u16(), 0x1234);
  EXPECT_EQ(d.u32(), 0xdeadbeefu);
  EXPECT_EQ(d.u64(), 0x0123456789abcdefull);
  EXPECT_TRUE(d.boolean());
  EXPECT_EQ(d.str(), "hello");
  EXPECT_EQ(d.bytes(), random_bytes(40, 3));
  auto p = d.pod<Plain>();
  EXPECT_EQ(p.a, 1u);
  EXPECT_EQ(p.c, 3u);
  auto v = d.pod_vector<Plain>();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].b, 8u);
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_TRUE(d.finish().ok());
}

TEST(CodecTest, LittleEndianOnTheWire) {
  Encoder e;
  e.u32(0x11223344);
  EXPECT_EQ(e.data(), (std::vector<uint8_t>{0x44, 0x33, 0x22, 0x11}));
}

// Decoding every prefix fails with "truncated" and never reads past it (ASan would see).
TEST(CodecTest, EveryTruncationIsAnError) {
  const auto data = encode_sample();
  for (size_t len = 0; len < data.size(); ++len) {
    std::vector<uint8_t> prefix(data.begin(), data.begin() + static_cast<ptrdiff_t>(len));
    Decoder d(prefix);
    d.u8();
    d.u16();
    d.u32();
    d.u64();
    d.boolean();
    d.str();
    d.bytes();
    d.pod<Plain>();
    d.pod_vector<Plain>();
    auto done = d.finish();
    ASSERT_FALSE(done.ok()) << len;
    EXPECT_NE(done.error().message.find("truncated"), std::string::npos) << done.error().message;
  }
}

TEST(CodecTest, HugeCountsAreRefusedBeforeAllocating) {
  Encoder e;
  e.u64(~0ull);  // a length/count no input can back
  e.u32(0);
  const auto data = std::move(e).take();
  {
    Decoder d(data);
    EXPECT_TRUE(d.bytes().empty());
    EXPECT_FALSE(d.finish().ok());
  }
  {
    Decoder d(data);
    EXPECT_TRUE(d.pod_vector<Plain>().empty());
    EXPECT_FALSE(d.ok());
  }
  {
    Decoder d(data);
    EXPECT_EQ(d.count(1), 0u);
    EXPECT_NE(d.finish().error().message.find("count"), std::string::npos);
  }
}

TEST(CodecTest, ErrorsAreStickyAndLeftoversAreErrors) {
  const std::vector<uint8_t> data = {2, 1, 0, 0, 0};
  Decoder d(data);
  EXPECT_FALSE(d.boolean());  // 2 is not a boolean
  EXPECT_EQ(d.u32(), 0u);     // after a failure: zeros, nothing consumed
  auto done = d.finish();
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.error().message.find("invalid boolean"), std::string::npos);

  Decoder leftover(data);
  leftover.u8();
  auto r = leftover.finish();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("4 unexpected bytes"), std::string::npos) << r.error().message;
}

// ---- the container ----

TEST(SnapshotFileTest, RoundTripsThroughAFile) {
  TempDir dir;
  const auto path = (dir / "state").string();
  ASSERT_TRUE(sample_writer().write(path).ok());

  auto r = SnapshotReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->version(), kFormatVersion);
  EXPECT_EQ(r->tag(), "x86_64-kvm");
  EXPECT_TRUE(r->expect_tag("x86_64-kvm").ok());
  EXPECT_EQ(r->section_names(), (std::vector<std::string>{"vcpu/0", "empty", "devices"}));
  auto vcpu = r->section("vcpu/0");
  ASSERT_TRUE(vcpu.ok());
  EXPECT_EQ(std::vector<uint8_t>(vcpu->begin(), vcpu->end()), bytes_of("registers"));
  auto empty = r->section("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto devices = r->section("devices");
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(std::vector<uint8_t>(devices->begin(), devices->end()), random_bytes(5000, 7));

  // The file starts with the magic and ends with the checksum of the rest.
  auto bytes = sample_bytes();
  EXPECT_EQ(std::memcmp(bytes.data(), "IGNSNAP\0", 8), 0);
  EXPECT_EQ(fs::file_size(path), bytes.size());
}

TEST(SnapshotFileTest, WriteReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  TempDir dir;
  const auto path = (dir / "state").string();
  write_file(path, bytes_of("old contents"));
  SnapshotWriter w("t");
  ASSERT_TRUE(w.add_section("a", bytes_of("new")).ok());
  ASSERT_TRUE(w.write(path).ok());
  auto r = SnapshotReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  // A write that cannot happen leaves nothing behind.
  auto bad = w.write((dir / "no-such-dir" / "state").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(SnapshotFileTest, WriterRefusesBadSectionNames) {
  SnapshotWriter w("t");
  EXPECT_TRUE(w.add_section("a", {}).ok());
  auto twice = w.add_section("a", {});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("twice"), std::string::npos);
  EXPECT_FALSE(w.add_section("", {}).ok());
  EXPECT_FALSE(w.add_section(std::string(256, 'x'), {}).ok());
  EXPECT_TRUE(w.add_section(std::string(255, 'x'), {}).ok());
}

TEST(SnapshotFileTest, MissingSectionIsAClearError) {
  auto r = SnapshotReader::parse(sample_bytes(), "state.snap");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->has_section("vcpu/1"));
  auto s = r->section("vcpu/1");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "snapshot state.snap has no 'vcpu/1' section");
}

TEST(SnapshotFileTest, TagMismatchIsAClearError) {
  auto r = SnapshotReader::parse(sample_bytes(), "s");
  ASSERT_TRUE(r.ok());
  auto t = r->expect_tag("aarch64-kvm");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message,
            "snapshot s holds 'x86_64-kvm' state; this host restores 'aarch64-kvm'");
}

TEST(SnapshotFileTest, TruncationAtEveryLengthIsAnError) {
  const auto full = sample_bytes();
  for (size_t len = 0; len < full.size(); ++len) {
    const std::string e =
        parse_error(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(len)));
    if (len == 0) {
      EXPECT_NE(e.find("empty"), std::string::npos) << e;
    } else {
      ASSERT_NE(e.find("truncated"), std::string::npos) << len << ": " << e;
    }
  }
  // And through a file, at a few lengths.
  TempDir dir;
  for (size_t len : {size_t{3}, size_t{20}, full.size() - 1}) {
    const auto path = dir / ("cut" + std::to_string(len));
    write_file(path,
               std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(len)));
    auto r = SnapshotReader::open(path.string());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(path.string()), std::string::npos) << r.error().message;
  }
}

TEST(SnapshotFileTest, AFlippedByteAnywhereIsDetected) {
  const auto full = sample_bytes();
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      auto bad = full;
      bad[i] ^= mask;
      const std::string e = parse_error(bad);
      if (i < 8) {
        ASSERT_NE(e.find("not an ignition snapshot"), std::string::npos) << i << ": " << e;
      } else if (i >= 12 && i < 20) {  // the length field
        ASSERT_TRUE(e.find("truncated") != std::string::npos ||
                    e.find("header records") != std::string::npos)
            << i << ": " << e;
      } else {
        ASSERT_NE(e.find("checksum mismatch"), std::string::npos) << i << ": " << e;
      }
    }
  }
}

TEST(SnapshotFileTest, WrongMagicIsNotAnIgnitionSnapshot) {
  EXPECT_NE(parse_error(bytes_of("\x7f"
                                 "ELF and some more bytes than a header needs......"))
                .find("not an ignition snapshot"),
            std::string::npos);
  EXPECT_NE(parse_error(bytes_of("IGNSNAQ")).find("not an ignition snapshot"), std::string::npos);
}

TEST(SnapshotFileTest, NewerVersionIsRefusedByNumber) {
  auto bytes = sample_bytes();
  const uint32_t newer = kFormatVersion + 1;
  std::memcpy(bytes.data() + 8, &newer, 4);
  reseal(bytes);
  EXPECT_EQ(parse_error(bytes),
            fmt::format("snapshot test: snapshot format version {} is newer than this ignition "
                        "supports ({})",
                        newer, kFormatVersion));
  const uint32_t zero = 0;
  std::memcpy(bytes.data() + 8, &zero, 4);
  reseal(bytes);
  EXPECT_NE(parse_error(bytes).find("unknown snapshot format version 0"), std::string::npos);
}

// A correctly sealed file whose section table lies is still refused, not read past.
TEST(SnapshotFileTest, BadSectionTableBehindAValidChecksum) {
  const auto full = sample_bytes();
  const size_t count_at = 20 + 2 + std::string("x86_64-kvm").size();
  {
    auto bytes = full;
    const uint32_t count = 1000;
    std::memcpy(bytes.data() + count_at, &count, 4);
    reseal(bytes);
    EXPECT_NE(parse_error(bytes).find("bad section table"), std::string::npos)
        << parse_error(bytes);
  }
  {
    auto bytes = full;  // one section fewer than there are: leftover bytes
    const uint32_t count = 2;
    std::memcpy(bytes.data() + count_at, &count, 4);
    reseal(bytes);
    EXPECT_NE(parse_error(bytes).find("unexpected bytes"), std::string::npos) << parse_error(bytes);
  }
  {
    SnapshotWriter w("t");  // a payload length pointing past the end
    ASSERT_TRUE(w.add_section("a", bytes_of("xyz")).ok());
    auto bytes = *w.serialize();
    const uint64_t huge = 1ull << 40;
    std::memcpy(bytes.data() + 20 + 2 + 1 + 4 + 2 + 1, &huge, 8);
    reseal(bytes);
    EXPECT_NE(parse_error(bytes).find("truncated"), std::string::npos) << parse_error(bytes);
  }
  {
    SnapshotWriter w("t");  // two sections renamed alike
    ASSERT_TRUE(w.add_section("a", {}).ok());
    ASSERT_TRUE(w.add_section("b", {}).ok());
    auto bytes = *w.serialize();
    auto pos = std::find(bytes.begin() + 28, bytes.end() - 8, 'b');
    ASSERT_NE(pos, bytes.end() - 8);
    *pos = 'a';
    reseal(bytes);
    EXPECT_NE(parse_error(bytes).find("appears twice"), std::string::npos) << parse_error(bytes);
  }
}

TEST(SnapshotFileTest, EmptyFileDirectoryAndMissingFile) {
  TempDir dir;
  write_file(dir / "empty", {});
  auto empty = SnapshotReader::open((dir / "empty").string());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("empty (0 bytes)"), std::string::npos)
      << empty.error().message;

  auto directory = SnapshotReader::open(dir.path().string());
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().message.find("is a directory"), std::string::npos)
      << directory.error().message;

  const auto missing_path = (dir / "missing").string();
  auto missing = SnapshotReader::open(missing_path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "cannot open snapshot " + missing_path + ": No such file or directory");
}

// ---- the seam's state ----

hv::VcpuState sample_vcpu_state() {
  hv::VcpuState s;
  s.cpuid = {{0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},
             {7, 0, hv::kCpuidFlagSignificantIndex, 0, 0x1, 0x2, 0x3}};
  s.mp_state = hv::MpState::Halted;
  s.regs.rax = 1;
  s.regs.r15 = 15;
  s.regs.rip = 0x100000;
  s.regs.rflags = 0x202;
  s.sregs.cs = {0x1000, 0xffffffff, 0x8, 0xb, 1, 0, 0, 1, 1, 1, 0, 0};
  s.sregs.tr.unusable = 1;
  s.sregs.gdt = {0x500, 31};
  s.sregs.idt = {0x520, 7};
  s.sregs.cr3 = 0x9000;
  s.sregs.efer = 0x500;
  s.sregs.apic_base = 0xfee00900;
  s.sregs.interrupt_bitmap = {0, 1ull << 3, 0, 1ull << 63};
  s.xsave = random_bytes(4096, 11);
  s.xcrs = {{0, 7}};
  s.debug_regs = {{1, 2, 3, 4}, 0xffff0ff0, 0x400, 0};
  for (size_t i = 0; i < s.lapic.regs.size(); ++i) s.lapic.regs[i] = static_cast<uint8_t>(i * 7);
  s.msrs = {{0x10, 123456789}, {0xc0000082, 0xffffffff81000000}, {0x6e0, 42}};
  s.events = random_bytes(64, 12);
  s.tsc_khz = 2'400'000;
  return s;
}

TEST(HvStateCodecTest, VcpuStateRoundTrips) {
  const auto s = sample_vcpu_state();
  const auto bytes = encode_vcpu_state(s);
  auto d = decode_vcpu_state(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_EQ(d->cpuid.size(), 2u);
  EXPECT_EQ(d->cpuid[0].ebx, 0x756e6547u);
  EXPECT_EQ(d->cpuid[1].flags, hv::kCpuidFlagSignificantIndex);
  EXPECT_EQ(d->mp_state, hv::MpState::Halted);
  EXPECT_EQ(d->regs.r15, 15u);
  EXPECT_EQ(d->regs.rip, 0x100000u);
  EXPECT_EQ(d->sregs.cs.base, 0x1000u);
  EXPECT_EQ(d->sregs.cs.l, 1);
  EXPECT_EQ(d->sregs.cs.avl, 0);
  EXPECT_EQ(d->sregs.tr.unusable, 1);
  EXPECT_EQ(d->sregs.idt.limit, 7);
  EXPECT_EQ(d->sregs.apic_base, 0xfee00900u);
  EXPECT_EQ(d->sregs.interrupt_bitmap, s.sregs.interrupt_bitmap);
  EXPECT_EQ(d->xsave, s.xsave);
  ASSERT_EQ(d->xcrs.size(), 1u);
  EXPECT_EQ(d->xcrs[0].value, 7u);
  EXPECT_EQ(d->debug_regs.db, s.debug_regs.db);
  EXPECT_EQ(d->debug_regs.dr6, 0xffff0ff0u);
  EXPECT_EQ(d->lapic.regs, s.lapic.regs);
  ASSERT_EQ(d->msrs.size(), 3u);
  EXPECT_EQ(d->msrs[1].index, 0xc0000082u);
  EXPECT_EQ(d->msrs[1].value, 0xffffffff81000000u);
  EXPECT_EQ(d->events, s.events);
  EXPECT_EQ(d->tsc_khz, s.tsc_khz);
  // Everything, including fields not checked above, survives: re-encoding is identical.
  EXPECT_EQ(encode_vcpu_state(*d), bytes);

  auto no_tsc = s;
  no_tsc.tsc_khz.reset();
  auto d2 = decode_vcpu_state(encode_vcpu_state(no_tsc));
  ASSERT_TRUE(d2.ok());
  EXPECT_FALSE(d2->tsc_khz.has_value());
}

TEST(HvStateCodecTest, VmStateRoundTrips) {
  hv::VmState s;
  s.pic_master = random_bytes(512, 1);
  s.pic_slave = random_bytes(512, 2);
  s.ioapic = random_bytes(512, 3);
  s.pit = random_bytes(112, 4);
  s.clock = {123456789, hv::kClockRealtime | hv::kClockTscStable, 1700000000000000000, 99};
  const auto bytes = encode_vm_state(s);
  auto d = decode_vm_state(bytes);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->pic_master, s.pic_master);
  EXPECT_EQ(d->pic_slave, s.pic_slave);
  EXPECT_EQ(d->ioapic, s.ioapic);
  EXPECT_EQ(d->pit, s.pit);
  EXPECT_EQ(d->clock.ns, 123456789u);
  EXPECT_EQ(d->clock.flags, hv::kClockRealtime | hv::kClockTscStable);
  EXPECT_EQ(d->clock.realtime_ns, 1700000000000000000u);
  EXPECT_EQ(d->clock.host_tsc, 99u);
}

TEST(HvStateCodecTest, TruncatedOrPaddedStateIsRefused) {
  const auto vcpu = encode_vcpu_state(sample_vcpu_state());
  for (size_t len = 0; len < vcpu.size(); ++len) {
    auto r = decode_vcpu_state(std::span(vcpu).first(len));
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_NE(r.error().message.find("vCPU state: truncated"), std::string::npos)
        << r.error().message;
  }
  auto padded = vcpu;
  padded.push_back(0);
  EXPECT_FALSE(decode_vcpu_state(padded).ok());

  hv::VmState vm_state;
  vm_state.pit = random_bytes(112, 4);
  const auto vm = encode_vm_state(vm_state);
  for (size_t len = 0; len < vm.size(); ++len)
    ASSERT_FALSE(decode_vm_state(std::span(vm).first(len)).ok()) << len;
}

}  // namespace
}  // namespace ignition::snapshot
