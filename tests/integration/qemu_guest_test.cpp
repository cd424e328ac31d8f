// Boots the freestanding test guests (guest/) under QEMU's microvm machine with KVM: an
// independent VMM, so these tests check the guest images themselves and give the reference
// report that ignition's own boot tests compare against.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <gtest/gtest.h>

#include "../../guest/include/ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kTimeout = 30s;
constexpr const char* kQemu = "qemu-system-x86_64";

struct QemuRun {
  ProcessResult process;
  GuestReport report;
};

struct QemuOptions {
  std::string cmdline;
  // -no-reboot turns a guest reset into QEMU exiting; without it the guest boots again.
  bool no_reboot = true;
  std::string initrd;
  std::vector<std::string> extra_args;
  LineHandler on_line;
  std::chrono::milliseconds timeout = kTimeout;
};

// microvm with ACPI (MADT, FADT with a GED sleep/reset register) and without the legacy
// PIC/PIT/RTC, which the guest does not use. "-arch-capabilities": QEMU cannot set that MSR
// on these KVM hosts.
std::vector<std::string> qemu_argv(const std::string& image, const QemuOptions& o) {
  std::vector<std::string> argv = {kQemu,
                                   "-M",
                                   "microvm,acpi=on,pit=off,pic=off,rtc=off",
                                   "-accel",
                                   "kvm",
                                   "-cpu",
                                   "host,-arch-capabilities",
                                   "-m",
                                   "128",
                                   "-smp",
                                   "2",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-nographic",
                                   "-serial",
                                   "stdio",
                                   "-kernel",
                                   image,
                                   "-append",
                                   o.cmdline};
  if (o.no_reboot) argv.push_back("-no-reboot");
  if (!o.initrd.empty()) argv.insert(argv.end(), {"-initrd", o.initrd});
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

QemuRun run_qemu(const std::string& image_name, const QemuOptions& o) {
  ProcessOptions p;
  p.argv = qemu_argv(guest_image(image_name), o);
  p.on_line = o.on_line;
  p.timeout = o.timeout;
  auto result = run_process(p);
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message;
    return {};
  }
  QemuRun run{std::move(*result), {}};
  run.report = parse_guest_report(run.process.output);
  return run;
}

std::string explain(const QemuRun& run) {
  return run.process.describe() + "\n" + run.report.summary() + "\n--- console:\n" +
         run.process.output;
}

class QemuGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!find_program(kQemu)) GTEST_SKIP() << kQemu << " is not installed";
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
    struct stat st;
    if (::stat(guest_image("ignition-test-pvh.elf").c_str(), &st) != 0) {
      GTEST_SKIP() << "guest images not built (target guest_images)";
    }
  }

  // The default test set, booted through PVH; shared by the tests that only read its report.
  static const QemuRun& default_run() {
    static const QemuRun run = [] {
      QemuOptions o;
      o.cmdline = "console=ttyS0 ign.exit=reboot";
      QemuRun r = run_qemu("ignition-test-pvh.elf", o);
      std::cout << "[ qemu ] default PVH run: " << r.process.describe() << "\n";
      return r;
    }();
    return run;
  }
};

uint64_t parse_hex(const std::string& s) {
  return std::stoull(s, nullptr, 16);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <typename T>
T load(const std::string& data, size_t offset) {
  T v{};
  if (offset + sizeof(T) <= data.size()) std::memcpy(&v, data.data() + offset, sizeof(T));
  return v;
}

constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;

struct ElfSegment {
  uint32_t type;
  uint64_t offset;
  uint64_t paddr;
  uint64_t filesz;
};

std::vector<ElfSegment> elf_segments(const std::string& elf) {
  std::vector<ElfSegment> segments;
  auto phoff = load<uint64_t>(elf, 0x20);
  auto phentsize = load<uint16_t>(elf, 0x36);
  auto phnum = load<uint16_t>(elf, 0x38);
  for (uint16_t i = 0; i < phnum; i++) {
    size_t ph = phoff + size_t{i} * phentsize;
    segments.push_back({load<uint32_t>(elf, ph), load<uint64_t>(elf, ph + 0x08),
                        load<uint64_t>(elf, ph + 0x18), load<uint64_t>(elf, ph + 0x20)});
  }
  return segments;
}

// The protected-mode payload of a bzImage: everything after the setup sectors.
std::string bzimage_payload(const std::string& bz) {
  size_t setup_sects = static_cast<uint8_t>(bz.at(0x1f1));
  return bz.substr((setup_sects + 1) * 512);
}

uint64_t fnv1a64(const std::string& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

TEST_F(QemuGuestTest, DefaultRunPassesEveryTest) {
  const QemuRun& run = default_run();
  const GuestReport& r = run.report;
  ASSERT_TRUE(run.process.exited_ok()) << explain(run);
  ASSERT_TRUE(r.complete()) << explain(run);
  EXPECT_EQ(r.boots, 1) << explain(run);
  EXPECT_EQ(r.entry, IGN_ENTRY_PVH);
  EXPECT_TRUE(r.fails.empty()) << explain(run);
  EXPECT_TRUE(r.malformed.empty()) << explain(run);
  for (const char* test :
       {IGN_TEST_BOOT, IGN_TEST_CMDLINE, IGN_TEST_E820, IGN_TEST_INITRD, IGN_TEST_ACPI,
        IGN_TEST_SMP, IGN_TEST_TIMER, IGN_TEST_SERIAL_IRQ, IGN_TEST_KVMCLOCK, IGN_TEST_BOOTTIME}) {
    EXPECT_TRUE(r.passed(test)) << test << "\n" << explain(run);
  }
  EXPECT_FALSE(r.passed(IGN_TEST_ECHO)) << "manual tests are not in the default set";
  RecordProperty("qemu_default_run_ms", static_cast<int>(run.process.elapsed.count()));
}

TEST_F(QemuGuestTest, RunsInRing3) {
  const GuestReport& r = default_run().report;
  EXPECT_EQ(r.info("boot.cpl"), "3") << explain(default_run());
  EXPECT_EQ(r.info("boot.protocol"), "0x0");  // PVH has no boot_params header
}

TEST_F(QemuGuestTest, E820MapsRamAroundTheImageAndNothingInTheGap) {
  const QemuRun& run = default_run();
  bool ram_at_1mib = false;
  auto entries = run.report.infos_for("e820");
  ASSERT_FALSE(entries.empty()) << explain(run);
  for (const auto& e : entries) {
    // addr:size:type
    size_t c1 = e.find(':');
    size_t c2 = e.find(':', c1 + 1);
    ASSERT_NE(c2, std::string::npos) << e;
    uint64_t addr = parse_hex(e.substr(0, c1));
    uint64_t size = parse_hex(e.substr(c1 + 1, c2 - c1 - 1));
    int type = std::stoi(e.substr(c2 + 1));
    if (type != 1) continue;
    if (addr <= 0x100000 && addr + size >= 120 * 1024 * 1024) ram_at_1mib = true;
    EXPECT_FALSE(addr < 0x100000000ull && addr + size > 0xd0000000ull) << e;
  }
  EXPECT_TRUE(ram_at_1mib) << "no usable RAM from 1 MiB covering most of -m 128\n" << explain(run);
  EXPECT_EQ(run.report.info("e820.count"), std::to_string(entries.size()));
}

TEST_F(QemuGuestTest, AcpiTablesDescribeTheMicrovm) {
  const QemuRun& run = default_run();
  const GuestReport& r = run.report;
  EXPECT_EQ(r.info("acpi.cpus"), "2") << explain(run);
  EXPECT_EQ(r.info("acpi.tables"), "RSDP,XSDT,FACP,APIC,DSDT");
  EXPECT_EQ(r.info("acpi.ioapic"), "0xfec00000");
  EXPECT_EQ(r.info("acpi.lapic"), "0xfee00000");
  EXPECT_EQ(r.info("acpi.hw_reduced"), "1");
  // microvm's FADT points at its GED device's MMIO sleep register.
  EXPECT_EQ(r.info("acpi.sleep_control").value_or("").rfind("mem:0x", 0), 0u);
  EXPECT_EQ(r.info("acpi.s5"), "5");
}

TEST_F(QemuGuestTest, SmpStartsEveryCpu) {
  const QemuRun& run = default_run();
  EXPECT_EQ(run.report.info("cpus.online"), "2") << explain(run);
  EXPECT_EQ(run.report.pass_detail(IGN_TEST_SMP), "online=2");
}

TEST_F(QemuGuestTest, InterruptsArrive) {
  const QemuRun& run = default_run();
  auto timer = run.report.pass_detail(IGN_TEST_TIMER);
  ASSERT_TRUE(timer) << explain(run);
  EXPECT_GE(std::stoi(detail_field(*timer, "ticks").value_or("0")), 5);
  auto serial = run.report.pass_detail(IGN_TEST_SERIAL_IRQ);
  ASSERT_TRUE(serial) << explain(run);
  EXPECT_GE(std::stoi(detail_field(*serial, "irqs").value_or("0")), 1);
  EXPECT_EQ(detail_field(*serial, "gsi"), "4");
}

TEST_F(QemuGuestTest, KvmclockAdvances) {
  const QemuRun& run = default_run();
  auto detail = run.report.pass_detail(IGN_TEST_KVMCLOCK);
  ASSERT_TRUE(detail) << explain(run);
  EXPECT_EQ(detail_field(*detail, "skipped"), std::nullopt) << "QEMU/KVM offers kvmclock";
  EXPECT_GT(std::stoull(detail_field(*detail, "delta_ns").value_or("0")), 0u);
}

TEST_F(QemuGuestTest, ReportsTheCommandLineAsGiven) {
  QemuOptions o;
  o.cmdline = "ign.tests=cmdline,boot ign.exit=reboot quoted=\"a b\" unicode=\xc3\xa9 x";
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  ASSERT_TRUE(run.report.complete()) << explain(run);
  EXPECT_EQ(run.report.info("cmdline"), o.cmdline);
  // ign.tests= selects and orders the tests.
  ASSERT_EQ(run.report.passes.size(), 2u) << explain(run);
  EXPECT_EQ(run.report.passes[0].test, IGN_TEST_CMDLINE);
  EXPECT_EQ(run.report.passes[1].test, IGN_TEST_BOOT);
}

TEST_F(QemuGuestTest, UnknownTestIsAFailure) {
  QemuOptions o;
  o.cmdline = "ign.tests=boot,no-such-test";
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  ASSERT_TRUE(run.report.complete()) << explain(run);
  EXPECT_EQ(run.report.fail_detail("no-such-test"), "unknown-test");
  EXPECT_EQ(run.report.end_fail, 1);
}

TEST_F(QemuGuestTest, BzImageBootsThroughItsRealModeSetup) {
  QemuOptions o;
  o.cmdline = "console=ttyS0";
  QemuRun run = run_qemu("ignition-test.bzImage", o);
  const GuestReport& r = run.report;
  ASSERT_TRUE(r.complete()) << explain(run);
  // QEMU's firmware enters a bzImage in real mode; the guest's setup code then jumps to the
  // payload's bz_entry16 with boot_params it built (E820 from the BIOS).
  EXPECT_EQ(r.entry, IGN_ENTRY_BZIMAGE16);
  EXPECT_EQ(r.info("boot.protocol"), "0x20e");
  EXPECT_TRUE(r.fails.empty()) << explain(run);
  EXPECT_TRUE(r.passed(IGN_TEST_E820)) << explain(run);
  EXPECT_EQ(r.info("cpus.online"), "2") << explain(run);
}

TEST_F(QemuGuestTest, InitrdArrivesIntact) {
  std::string data;
  for (int i = 0; i < 100000; i++) data.push_back(static_cast<char>((i * 7919) >> 3));
  std::string path = ::testing::TempDir() + "ignition-guest-initrd.bin";
  std::ofstream(path, std::ios::binary) << data;
  char want[32];
  std::snprintf(want, sizeof(want), "0x%016llx", static_cast<unsigned long long>(fnv1a64(data)));

  for (const char* image : {"ignition-test-pvh.elf", "ignition-test.bzImage"}) {
    QemuOptions o;
    o.cmdline = "ign.tests=initrd";
    o.initrd = path;
    QemuRun run = run_qemu(image, o);
    auto detail = run.report.pass_detail(IGN_TEST_INITRD);
    ASSERT_TRUE(detail) << image << "\n" << explain(run);
    EXPECT_EQ(detail_field(*detail, "size"), std::to_string(data.size())) << image;
    EXPECT_EQ(detail_field(*detail, "fnv1a64"), want) << image;
  }
  ::unlink(path.c_str());
}

TEST_F(QemuGuestTest, EchoesALineTypedOnTheConsole) {
  QemuOptions o;
  o.cmdline = "ign.tests=echo";
  o.on_line = [](std::string_view line) {
    LineAction a;
    if (line == IGN_LINE_INFO " " IGN_INFO_ECHO_READY) a.write = "hello ignition\n";
    return a;
  };
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  ASSERT_TRUE(run.report.complete()) << explain(run);
  EXPECT_EQ(run.report.info("echo"), "hello ignition") << explain(run);
  EXPECT_TRUE(run.report.passed(IGN_TEST_ECHO));
}

TEST_F(QemuGuestTest, ExceptionsAreReported) {
  QemuOptions o;
  o.cmdline = "ign.tests=boot,fault,cmdline";
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  // The fault ends the run: cmdline never runs, IGN-END still comes, then the guest reboots.
  ASSERT_TRUE(run.report.complete()) << explain(run);
  EXPECT_TRUE(run.process.exited_ok()) << explain(run);
  auto detail = run.report.fail_detail(IGN_FAIL_EXCEPTION);
  ASSERT_TRUE(detail) << explain(run);
  EXPECT_EQ(detail_field(*detail, "vector"), "6");  // #UD
  EXPECT_EQ(detail_field(*detail, "cs"), "0x23");   // raised in ring 3
  EXPECT_FALSE(run.report.passed(IGN_TEST_CMDLINE));
}

// A reset (as opposed to a power-off) is seen as the guest booting a second time; QEMU is
// stopped there.
QemuRun run_until_second_boot(const std::string& exit_mode) {
  QemuOptions o;
  o.cmdline = "ign.tests=boot ign.exit=" + exit_mode;
  o.no_reboot = false;
  o.timeout = 10s;
  o.on_line = [boots = 0](std::string_view line) mutable {
    LineAction a;
    if (line.rfind(IGN_LINE_BEGIN " ", 0) == 0) a.kill = ++boots == 2;
    return a;
  };
  return run_qemu("ignition-test-pvh.elf", o);
}

TEST_F(QemuGuestTest, RebootResetsTheMachine) {
  QemuRun run = run_until_second_boot(IGN_EXIT_REBOOT);
  EXPECT_TRUE(run.process.killed) << explain(run);
  EXPECT_EQ(run.report.boots, 2) << explain(run);
  EXPECT_NE(run.process.output.find(IGN_LINE_END " pass=1 fail=0"), std::string::npos);
}

TEST_F(QemuGuestTest, TripleFaultResetsTheMachine) {
  QemuRun run = run_until_second_boot(IGN_EXIT_TRIPLE_FAULT);
  EXPECT_TRUE(run.process.killed) << explain(run);
  EXPECT_EQ(run.report.boots, 2) << explain(run);
  EXPECT_NE(run.process.output.find(IGN_LINE_END " pass=1 fail=0"), std::string::npos);
}

// Shutdown: without -no-reboot a reset would boot the guest again (a second IGN-BEGIN, and
// no exit until the timeout); ACPI S5 through the FADT's sleep register ends QEMU.
TEST_F(QemuGuestTest, ShutdownPowersOff) {
  QemuOptions o;
  o.cmdline = "ign.tests=boot ign.exit=shutdown";
  o.no_reboot = false;
  o.timeout = 10s;
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  EXPECT_TRUE(run.process.exited_ok()) << explain(run);
  EXPECT_EQ(run.report.boots, 1) << explain(run);
  EXPECT_TRUE(run.report.complete());
  EXPECT_FALSE(run.report.has_info("exit.shutdown")) << "the sleep register was ignored";
}

TEST_F(QemuGuestTest, HangKeepsRunningAfterTheReport) {
  QemuOptions o;
  o.cmdline = "ign.tests=boot ign.exit=hang";
  o.timeout = 2500ms;
  QemuRun run = run_qemu("ignition-test-pvh.elf", o);
  EXPECT_TRUE(run.report.complete()) << explain(run);
  EXPECT_TRUE(run.process.timed_out) << explain(run);
}

// The other entry points (elf64, bzimage64, bzimage32) are what ignition and Firecracker use,
// but QEMU cannot enter them directly: a stand-in loader (guest/tools/entry_shim.S) boots as
// PVH, builds boot_params and jumps there, with the image loaded by `-device loader`.
TEST_F(QemuGuestTest, EveryDirectBootEntryPointWorks) {
  std::string payload_path = ::testing::TempDir() + "ignition-guest-payload.bin";
  std::ofstream(payload_path, std::ios::binary)
      << bzimage_payload(read_file(guest_image("ignition-test.bzImage")));
  struct Case {
    const char* entry;
    std::string loader;
  };
  const Case cases[] = {
      {IGN_ENTRY_ELF64, "loader,file=" + guest_image("ignition-test.elf")},
      {IGN_ENTRY_BZIMAGE64, "loader,file=" + payload_path + ",addr=0x100000,force-raw=on"},
      {IGN_ENTRY_BZIMAGE32, "loader,file=" + payload_path + ",addr=0x100000,force-raw=on"},
  };
  for (const Case& c : cases) {
    QemuOptions o;
    o.cmdline = "ign.tests=boot,cmdline,e820,acpi,smp,timer,serial-irq";
    o.extra_args = {"-device", c.loader};
    QemuRun run = run_qemu(std::string("shims/entry-shim-") + c.entry + ".elf", o);
    EXPECT_EQ(run.report.entry, c.entry) << explain(run);
    EXPECT_TRUE(run.report.complete()) << explain(run);
    EXPECT_TRUE(run.report.fails.empty()) << explain(run);
    EXPECT_EQ(run.report.passes.size(), 7u) << explain(run);
    EXPECT_EQ(run.report.info("boot.info"), "0x7000");  // the shim's boot_params
  }
  ::unlink(payload_path.c_str());
}

// The image files themselves, checked against the boot protocols (no VM needed).
class GuestImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    if (::stat(guest_image("ignition-test.bzImage").c_str(), &st) != 0) {
      GTEST_SKIP() << "guest images not built (target guest_images)";
    }
  }
};

TEST_F(GuestImageTest, ElfIsAPlainVmlinuxStyleImage) {
  std::string elf = read_file(guest_image("ignition-test.elf"));
  ASSERT_EQ(elf.substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_EQ(elf[4], 2) << "ELF64";
  EXPECT_EQ(load<uint16_t>(elf, 0x12), 62) << "x86-64";
  EXPECT_EQ(load<uint64_t>(elf, 0x18), 0x100240u) << "64-bit entry at load address + 0x240";
  int loads = 0;
  for (const auto& seg : elf_segments(elf)) {
    EXPECT_NE(seg.type, kPtNote) << "the plain ELF must not carry a PVH note";
    if (seg.type == kPtLoad) {
      loads++;
      EXPECT_GE(seg.paddr, 0x100000u) << "loaded at or above 1 MiB";
    }
  }
  EXPECT_GE(loads, 1);
}

TEST_F(GuestImageTest, PvhElfHasTheXenEntryNote) {
  std::string elf = read_file(guest_image("ignition-test-pvh.elf"));
  bool found = false;
  for (const auto& seg : elf_segments(elf)) {
    if (seg.type != kPtNote) continue;
    // namesz, descsz, type, "Xen\0", then the 32-bit entry point (as a 64-bit value)
    EXPECT_EQ(load<uint32_t>(elf, seg.offset), 4u);
    EXPECT_EQ(load<uint32_t>(elf, seg.offset + 8), 18u) << "XEN_ELFNOTE_PHYS32_ENTRY";
    EXPECT_EQ(elf.substr(seg.offset + 12, 4), std::string("Xen\0", 4));
    EXPECT_EQ(load<uint64_t>(elf, seg.offset + 16), 0x100020u);
    found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(GuestImageTest, BzImageHasALinuxSetupHeader) {
  std::string bz = read_file(guest_image("ignition-test.bzImage"));
  ASSERT_GT(bz.size(), 0x1000u);
  EXPECT_EQ(load<uint16_t>(bz, 0x1fe), 0xaa55);
  EXPECT_EQ(bz.substr(0x202, 4), "HdrS");
  EXPECT_GE(load<uint16_t>(bz, 0x206), 0x020c) << "boot protocol >= 2.12 (64-bit entry)";
  EXPECT_TRUE(load<uint8_t>(bz, 0x211) & 0x01) << "LOADED_HIGH";
  EXPECT_TRUE(load<uint16_t>(bz, 0x236) & 0x01) << "XLF_KERNEL_64";
  EXPECT_EQ(load<uint32_t>(bz, 0x214), 0x100000u) << "code32_start";
  EXPECT_GE(load<uint8_t>(bz, 0x1f1), 1) << "setup_sects";
  std::string payload = bzimage_payload(bz);
  EXPECT_GE(uint64_t{load<uint32_t>(bz, 0x1f4)} * 16, payload.size()) << "syssize";
  EXPECT_GE(load<uint32_t>(bz, 0x260), payload.size()) << "init_size covers the payload";
  // The payload is the ELF's loadable bytes from 1 MiB on: same entry code at the same spot.
  std::string elf = read_file(guest_image("ignition-test.elf"));
  for (const auto& seg : elf_segments(elf)) {
    if (seg.type != kPtLoad || seg.filesz == 0) continue;
    EXPECT_EQ(payload.substr(seg.paddr - 0x100000, seg.filesz), elf.substr(seg.offset, seg.filesz))
        << "segment at " << std::hex << seg.paddr;
  }
}

}  // namespace
}  // namespace ignition::test
