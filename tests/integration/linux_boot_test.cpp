// Boots Debian's stock cloud kernel (assets from scripts/guest-assets.sh) under ignition and
// checks, from the kernel's own log, that it accepted our boot parameters; init is checked
// only on hosts whose KVM can run the kernel that far (see docs/linux-guests.md).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "arch/x86_64/layout.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition {
namespace {

namespace fs = std::filesystem;

constexpr int kVcpus = 2;
constexpr uint64_t kMemMib = 256;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kPage = 4096;
// What ignition must hand over and the kernel must echo. noxsave: this KVM cannot emulate
// xrstor. No keep_bootcon: the real console would print everything a second time.
const std::string kCmdline = "console=ttyS0 earlyprintk=serial,ttyS0 ignore_loglevel noxsave";
// This host reaches the emulation stop 150-190 s after start from the bzImage (its
// decompressor alone takes ~100 s) when the machine is otherwise quiet, ~100 s from the ELF;
// more under load. A KVM that runs the kernel needs seconds. Stays under CTest's 300 s.
constexpr int kDefaultTimeoutSeconds = 280;

fs::path assets_dir() {
  if (const char* dir = std::getenv("IGNITION_GUEST_ASSETS")) return dir;
  return fs::path(test::source_dir()) / "assets";
}

// vmlinuz (the bzImage) by default; "vmlinux" boots the ELF that guest-assets.sh
// decompresses from it, skipping ~100 s of emulated decompressor here.
std::string kernel_file() {
  const char* name = std::getenv("IGNITION_LINUX_KERNEL");
  return name && *name ? name : "vmlinuz";
}

int timeout_seconds() {
  if (const char* s = std::getenv("IGNITION_LINUX_BOOT_TIMEOUT")) return std::atoi(s);
  return kDefaultTimeoutSeconds;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::optional<std::smatch> find_line(const std::vector<std::string>& lines, const std::regex& re) {
  for (const auto& line : lines) {
    std::smatch m;
    if (std::regex_search(line, m, re)) return m;
  }
  return std::nullopt;
}

std::string tail(const std::vector<std::string>& lines, size_t n) {
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += "  | " + lines[i] + "\n";
  return out;
}

double seconds(const test::ProcessResult& r) {
  return r.elapsed.count() / 1000.0;
}

uint64_t hex(const std::string& s) {
  return std::stoull(s, nullptr, 16);
}

struct MemRange {
  uint64_t start, end;  // inclusive, as the kernel prints them
};

// Failures recorded so far in this test: a check block counts as verified when it
// added none.
int failures() {
  const auto* result = ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int n = 0;
  for (int i = 0; i < result->total_part_count(); ++i) n += result->GetTestPartResult(i).failed();
  return n;
}

// What the kernel's log proved, for the one-line report at the end.
class Facts {
 public:
  void verified(const std::string& what) { verified_.push_back(what); }
  std::string summary() const {
    std::string out;
    for (const auto& v : verified_) out += (out.empty() ? "" : "; ") + v;
    return out.empty() ? "nothing" : out;
  }

 private:
  std::vector<std::string> verified_;
};

// "Command line: ..." — the kernel's echo of boot_params.cmd_line_ptr.
void check_cmdline(const std::vector<std::string>& log, Facts& facts) {
  const int before = failures();
  auto m = find_line(log, std::regex(R"(\] Command line: (.*)$)"));
  ASSERT_TRUE(m) << "kernel never printed its command line";
  EXPECT_NE((*m)[1].str().find(kCmdline), std::string::npos)
      << "kernel saw \"" << (*m)[1] << "\", expected it to contain \"" << kCmdline << "\"";
  if (failures() == before) facts.verified("command line echoed");
}

// The e820 map from the zero page: the usable RAM is the configured RAM, minus at most
// the low-memory holes, and nothing usable sits in the 32-bit MMIO gap.
std::vector<MemRange> check_e820(const std::vector<std::string>& log, Facts& facts) {
  std::regex re(R"(BIOS-e820: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\] (.+)$)");
  const int before = failures();
  std::vector<MemRange> usable;
  for (const auto& line : log) {
    std::smatch m;
    if (std::regex_search(line, m, re) && m[3] == "usable")
      usable.push_back({hex(m[1]), hex(m[2])});
  }
  EXPECT_FALSE(usable.empty()) << "no 'BIOS-e820: [mem ...] usable' lines";
  if (usable.empty()) return usable;

  const uint64_t mem = kMemMib * kMiB;
  const auto ram = x86_64::ram_ranges(mem);
  uint64_t total = 0;
  for (const auto& u : usable) {
    total += u.end - u.start + 1;
    EXPECT_TRUE(u.end < x86_64::kMmioGapStart || u.start >= x86_64::kMmioGapEnd)
        << std::hex << "usable RAM 0x" << u.start << "-0x" << u.end << " in the MMIO gap";
    bool inside = false;
    for (const auto& r : ram) inside |= u.start >= r.gpa && u.end < r.gpa + r.size;
    EXPECT_TRUE(inside) << std::hex << "usable 0x" << u.start << "-0x" << u.end
                        << " is not guest RAM";
  }
  EXPECT_LE(total, mem);
  EXPECT_GE(total, mem - kMiB) << "usable RAM " << total << " bytes, configured " << mem;
  EXPECT_EQ(usable.back().end + 1, ram.back().gpa + ram.back().size) << "top of RAM";
  if (failures() == before) {
    char what[96];
    std::snprintf(what, sizeof what, "e820 (%zu usable ranges, %.1f of %llu MiB)", usable.size(),
                  double(total) / kMiB, (unsigned long long)kMemMib);
    facts.verified(what);
  }
  return usable;
}

// "RAMDISK: [mem start-end]": the kernel found the initrd where the zero page said, with
// the size (page-rounded) of the file we passed.
void check_initrd(const std::vector<std::string>& log, const std::vector<MemRange>& usable,
                  uint64_t initrd_size, Facts& facts) {
  const int before = failures();
  auto m = find_line(log, std::regex(R"(RAMDISK: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\])"));
  ASSERT_TRUE(m) << "kernel did not report the initrd (no 'RAMDISK: [mem ...]' line)";
  MemRange rd{hex((*m)[1]), hex((*m)[2])};
  EXPECT_EQ(rd.start % kPage, 0u);
  EXPECT_EQ(rd.end + 1 - rd.start, (initrd_size + kPage - 1) / kPage * kPage)
      << "initrd file is " << initrd_size << " bytes";
  bool in_ram = false;
  for (const auto& u : usable) in_ram |= rd.start >= u.start && rd.end <= u.end;
  EXPECT_TRUE(in_ram) << "initrd is not in usable RAM";
  if (failures() == before)
    facts.verified("initrd (" + std::to_string(initrd_size) + " bytes at " + (*m)[1].str() + ")");
}

// The early ACPI table walk: every table ignition builds, reached from our RSDP.
void check_acpi(const std::vector<std::string>& log, Facts& facts) {
  const int before = failures();
  for (const char* sig : {"RSDP", "XSDT", "FACP", "APIC", "DSDT"}) {
    auto m = find_line(log, std::regex(std::string(R"(ACPI: )") + sig + R"( 0x([0-9A-F]+) )"));
    EXPECT_TRUE(m) << "no 'ACPI: " << sig << "' line";
    if (m && std::string(sig) == "RSDP") {
      EXPECT_EQ(hex((*m)[1]), x86_64::kRsdpAddr) << "RSDP is not the one ignition placed";
    }
  }
  std::regex bad(R"(ACPI (BIOS )?(Error|Exception|Warning)|Incorrect checksum|ACPI: .*Invalid)");
  for (const auto& line : log) EXPECT_FALSE(std::regex_search(line, bad)) << line;
  if (failures() == before) facts.verified("ACPI RSDP/XSDT/FACP/APIC/DSDT, no errors");
}

// The CPU count comes from the MADT (the MP table is only a fallback Linux ignores here).
void check_cpus(const std::vector<std::string>& log, Facts& facts) {
  const int before = failures();
  EXPECT_TRUE(find_line(log, std::regex(R"(ACPI: Using ACPI \(MADT\) for SMP configuration)")))
      << "kernel did not take its CPUs from the MADT";
  auto m = find_line(log, std::regex(R"(smpboot: Allowing (\d+) CPUs, (\d+) hotplug CPUs)"));
  ASSERT_TRUE(m) << "no 'smpboot: Allowing N CPUs' line";
  EXPECT_EQ(std::stoi((*m)[1]), kVcpus);
  EXPECT_EQ(std::stoi((*m)[2]), 0);
  if (failures() == before) facts.verified(std::to_string(kVcpus) + " CPUs from the MADT");
}

// ignition's report of a vCPU stopped by a KVM emulation failure, e.g.
// "ignition: guest stopped: vCPU 0: KVM_EXIT_INTERNAL_ERROR: emulation failure (suberror 1)
//  at RIP 0xffffffff8305e26c (64-bit mode, CPL 0), bytes: cc 90 90 ...".
struct EmulationStop {
  std::string rip;
  std::string instruction;
};

// The instruction this KVM gave up on, named when it is one of the known ones.
std::string name_instruction(const std::string& bytes) {
  if (bytes.rfind("cc", 0) == 0) return "int3";
  if (bytes.substr(0, 15).find("0f c7") != std::string::npos) return "cmpxchg16b";
  if (bytes.substr(0, 15).find("0f ae") != std::string::npos) return "xsave family";
  return bytes.empty() ? "instruction bytes unknown" : "bytes " + bytes.substr(0, 23);
}

std::optional<EmulationStop> find_emulation_stop(const std::vector<std::string>& output) {
  std::regex stop(R"(guest stopped: vCPU \d+: KVM_EXIT_INTERNAL_ERROR: emulation failure)");
  for (const auto& line : output) {
    if (!std::regex_search(line, stop)) continue;
    std::smatch rip, bytes;
    std::regex_search(line, rip, std::regex(R"(at RIP (0x[0-9a-f]+))"));
    std::regex_search(line, bytes, std::regex(R"((bytes|insn): ([0-9a-f]{2}( [0-9a-f]{2})*))"));
    return EmulationStop{rip.empty() ? "unknown" : rip[1].str(),
                         name_instruction(bytes.empty() ? "" : bytes[2].str())};
  }
  return std::nullopt;
}

TEST(LinuxBoot, StockKernelAcceptsBootParameters) {
  // For runs that cannot spend the minutes this takes here (e.g. a second, sanitized pass).
  if (std::getenv("IGNITION_SKIP_LINUX_BOOT")) GTEST_SKIP() << "IGNITION_SKIP_LINUX_BOOT is set";
  const fs::path kernel = assets_dir() / kernel_file();
  const fs::path initrd = assets_dir() / "initrd.cpio.gz";
  if (!fs::exists(kernel) || !fs::exists(initrd))
    GTEST_SKIP() << "Linux guest assets missing (" << kernel << ", " << initrd
                 << "): run scripts/guest-assets.sh";

  test::ProcessOptions options;
  options.argv = {test::ignition_binary(),
                  "run",
                  "--kernel",
                  kernel.string(),
                  "--initrd",
                  initrd.string(),
                  "--vcpus",
                  std::to_string(kVcpus),
                  "--mem-mib",
                  std::to_string(kMemMib),
                  "--cmdline",
                  kCmdline};
  options.timeout = std::chrono::seconds(timeout_seconds());
  auto run = test::run_process(options);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const test::ProcessResult& r = *run;
  // Kept for reading after a failure: the kernel log is the only evidence there is.
  std::ofstream("linux_boot_console.log") << r.output;

  // Console and ignition's own messages, interleaved as written.
  const auto log = lines_of(r.output);
  Facts facts;
  // Nothing from the kernel at all (still in the bzImage decompressor, or never entered):
  // one clear failure instead of one per missing line.
  if (!find_line(log, std::regex(R"(\] Linux version )"))) {
    FAIL() << "the kernel printed nothing (no 'Linux version' line): " << r.describe()
           << "\nlast output lines:\n"
           << tail(log, 30);
  }
  check_cmdline(log, facts);
  auto usable = check_e820(log, facts);
  check_initrd(log, usable, fs::file_size(initrd), facts);
  check_acpi(log, facts);
  check_cpus(log, facts);

  const bool reached_init = r.output.find("IGNITION-INIT-OK") != std::string::npos;
  const auto emulation_stop = find_emulation_stop(log);

  const int before_ending = failures();
  if (reached_init) {
    // A KVM that runs the kernel: init's own report, and a clean power-off.
    EXPECT_FALSE(r.timed_out) << "init ran but the VM did not power off";
    EXPECT_TRUE(r.exited_ok()) << "ignition should exit 0 after poweroff -f: " << r.describe();
    EXPECT_NE(r.output.find("IGNITION-NPROC=" + std::to_string(kVcpus)), std::string::npos)
        << "init did not see " << kVcpus << " CPUs";
    // Past the point this host reaches: the APs started (INIT/SIPI) and the DSDT's AML loaded.
    EXPECT_TRUE(find_line(log, std::regex("smp: Brought up 1 node, " + std::to_string(kVcpus))))
        << "not all vCPUs came up";
    EXPECT_TRUE(find_line(log, std::regex("ACPI AML tables successfully acquired and loaded")))
        << "the DSDT was not loaded";
    auto cmd = find_line(log, std::regex(R"(IGNITION-CMDLINE=(.*)$)"));
    EXPECT_TRUE(cmd && (*cmd)[1].str().find(kCmdline) != std::string::npos);
    if (failures() == before_ending)
      facts.verified("both CPUs up, DSDT loaded, init ran with " + std::to_string(kVcpus) +
                     " CPUs");
    std::printf("case: full boot (init reached) of %s in %.0f s\nverified: %s\n",
                kernel.filename().c_str(), seconds(r), facts.summary().c_str());
  } else if (emulation_stop) {
    // This host's KVM: the kernel gets past the boot parameters, then meets an
    // instruction the nested hypervisor cannot emulate.
    EXPECT_TRUE(r.exited && r.exit_code == 2)
        << "ignition exits 2 when the guest stops on a fault: " << r.describe();
    std::string where = emulation_stop->rip + " (" + emulation_stop->instruction + ")";
    std::printf(
        "case: KVM emulation stop, %s, after %.0f s\nverified: %s; not verified on this host: init "
        "(KVM emulation stop at RIP %s)\n",
        kernel.filename().c_str(), seconds(r), facts.summary().c_str(), where.c_str());
  } else {
    ADD_FAILURE() << "boot ended neither in init nor in the known emulation stop: " << r.describe()
                  << "\nverified so far: " << facts.summary() << "\nlast output lines:\n"
                  << tail(log, 30);
  }
  // Not failures (a real machine's firmware draws some too), but worth a look.
  std::regex complaint(R"(\[Firmware Bug\]|\[Firmware Warn\]|WARNING:)");
  for (const auto& line : log)
    if (std::regex_search(line, complaint)) std::printf("kernel complained: %s\n", line.c_str());
  RecordProperty("verified", facts.summary());
  if (HasFailure() && (reached_init || emulation_stop.has_value()))
    std::printf("last console lines:\n%s", tail(log, 25).c_str());
}

}  // namespace
}  // namespace ignition
