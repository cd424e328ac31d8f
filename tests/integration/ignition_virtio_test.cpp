// The test guests' virtio driver against ignition's own devices: the same guest tests
// that pass on QEMU's devices (qemu_virtio_test.cpp) must pass here.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/net_peer.hpp"
#include "support/paths.hpp"
#include "support/pattern_disk.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

struct VmRun {
  ProcessResult process;
  GuestReport report;
  std::string explain() const { return process.describe() + "\n" + process.output; }
};

class IgnitionVirtio : public ::testing::Test {
 protected:
  // Per-test names: CTest runs the tests of this file in parallel processes.
  std::string path(const std::string& name) {
    return ::testing::TempDir() + "ign-virtio-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
           std::to_string(::getpid()) + "-" + name;
  }

  // Boots the test guest with `devices` (JSON members for the config file) and `tests`;
  // `prefix` wraps the command (e.g. to run inside a network namespace).
  VmRun boot(const std::string& devices, const std::string& tests, const std::string& extra = "",
             std::vector<std::string> prefix = {}) {
    std::string config = path("vm.json");
    std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                          << guest_image("ignition-test.elf") << R"(", "boot_args": "ign.tests=)"
                          << tests << " " << extra << R"("},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128})"
                          << (devices.empty() ? "" : ", ") << devices << "}";
    ProcessOptions options;
    options.argv = prefix;
    options.argv.insert(options.argv.end(), {ignition_binary(), "--config-file", config});
    options.timeout = std::chrono::seconds(60);
    auto result = run_process(options);
    EXPECT_TRUE(result.ok());
    if (!result.ok()) return {};
    return {*result, parse_guest_report(result->output)};
  }

  std::string drive(const std::string& id, const std::string& file, bool root, bool ro) {
    return R"({"drive_id": ")" + id + R"(", "path_on_host": ")" + file +
           R"(", "is_root_device": )" + (root ? "true" : "false") + R"(, "is_read_only": )" +
           (ro ? "true" : "false") + R"(, "cache_type": "Writeback"})";
  }
};

TEST_F(IgnitionVirtio, DevicesAreFoundOnTheCommandLine) {
  std::string disk = path("disk0.img");
  write_pattern_disk(disk);
  auto run = boot(R"("drives": [)" + drive("rootfs", disk, true, false) + R"(], "entropy": {})",
                  std::string(IGN_TEST_CMDLINE) + "," + IGN_TEST_VIRTIO_DEVICES);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  EXPECT_TRUE(run.report.passed(IGN_TEST_VIRTIO_DEVICES)) << run.explain();
  EXPECT_EQ(run.report.info("virtio.count"), "2") << run.explain();
  auto cmdline = run.report.info("cmdline").value_or("");
  EXPECT_NE(cmdline.find("virtio_mmio.device=4K@0xd0001000:5"), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find("virtio_mmio.device=4K@0xd0002000:6"), std::string::npos) << cmdline;
}

TEST_F(IgnitionVirtio, RngGivesEntropyPolledAndByInterrupt) {
  auto run = boot(R"("entropy": {})", IGN_TEST_VIRTIO_RNG);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  EXPECT_TRUE(run.report.passed(IGN_TEST_VIRTIO_RNG)) << run.explain();
  // "0x120000000 offered=...": VERSION_1 and EVENT_IDX negotiated.
  uint64_t features = std::stoull(run.report.info("rng.features").value_or("0"), nullptr, 16);
  EXPECT_EQ(features, (1ULL << 32) | (1ULL << 29)) << run.explain();
}

TEST_F(IgnitionVirtio, BlkReadsWritesFlushesAndRefusesOutOfRange) {
  std::string disk = path("disk1.img");
  write_pattern_disk(disk);
  auto run =
      boot(R"("drives": [)" + drive("ign_blk_0", disk, true, false) + "]", IGN_TEST_VIRTIO_BLK);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  const auto& r = run.report;
  ASSERT_TRUE(r.passed(IGN_TEST_VIRTIO_BLK)) << run.explain();
  EXPECT_EQ(r.info("blk.capacity"), std::to_string(kPatternDiskSectors));
  EXPECT_EQ(r.info("blk.ro"), "0");
  EXPECT_EQ(r.info("blk.flush"), "ok");
  EXPECT_EQ(r.info("blk.id"), "ign_blk_0");
  EXPECT_EQ(r.info("blk.straddle"), "ioerr");
  EXPECT_GE(std::stoi(r.info("blk.irqs").value_or("0")), 1);
  EXPECT_EQ(first_unexpected_sector(disk, true), -1) << "the guest's writes reached the file";
}

TEST_F(IgnitionVirtio, BlkReadOnlyDriveRefusesWrites) {
  std::string disk = path("disk2.img");
  write_pattern_disk(disk);
  auto run = boot(R"("drives": [)" + drive("ro", disk, true, true) + "]",
                  std::string(IGN_TEST_CMDLINE) + "," + IGN_TEST_VIRTIO_BLK);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  ASSERT_TRUE(run.report.passed(IGN_TEST_VIRTIO_BLK)) << run.explain();
  // The root drive is named on the command line, as Firecracker does.
  EXPECT_NE(run.report.info("cmdline").value_or("").find(" root=/dev/vda ro"), std::string::npos)
      << run.explain();
  EXPECT_EQ(run.report.info("blk.ro"), "1");
  EXPECT_EQ(run.report.info("blk.ro_write"), "ioerr");
  EXPECT_EQ(first_unexpected_sector(disk, false), -1) << "a read-only disk is unchanged";
}

// A pmem file: IGN_PMEM_TAG | i in word i, then `tail` bytes more (not a whole word).
void write_pmem_file(const std::string& path, uint64_t words, size_t tail) {
  std::vector<uint64_t> data(words);
  for (uint64_t i = 0; i < words; ++i) data[i] = IGN_PMEM_TAG | i;
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(words * 8));
  out << std::string(tail, 'x');
}

std::vector<uint64_t> read_words(const std::string& path, uint64_t words) {
  std::vector<uint64_t> data(words);
  std::ifstream(path, std::ios::binary)
      .read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(words * 8));
  return data;
}

std::string pmem(const std::string& id, const std::string& file, bool root, bool ro) {
  return R"({"id": ")" + id + R"(", "path_on_host": ")" + file + R"(", "root_device": )" +
         (root ? "true" : "false") + R"(, "read_only": )" + (ro ? "true" : "false") + "}";
}

// The guest reads the file through the pmem region after its RAM, rewrites its first 4 KiB
// and flushes; the writes are in the file when the VM is gone, and nothing else changed.
TEST_F(IgnitionVirtio, PmemMapsTheFileIntoTheGuestAndFlushesItsWrites) {
  std::string file = path("pmem.img");
  const uint64_t words = (3u << 20) / 8;  // 3 MiB and 5 bytes: a 4 MiB region
  write_pmem_file(file, words, 5);
  auto run = boot(R"("pmem": [)" + pmem("pm0", file, true, false) + "]",
                  std::string(IGN_TEST_CMDLINE) + "," + IGN_TEST_VIRTIO_PMEM);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  ASSERT_TRUE(run.report.passed(IGN_TEST_VIRTIO_PMEM)) << run.explain();
  EXPECT_EQ(run.report.info("pmem.start"), "0x8000000 size=0x400000")
      << "right after the 128 MiB of RAM, rounded up to 2 MiB";
  EXPECT_NE(run.report.info("cmdline").value_or("").find(" root=/dev/pmem0 rw"), std::string::npos)
      << run.explain();
  auto data = read_words(file, words);
  for (uint64_t i = 0; i < words; ++i) {
    uint64_t want = i < IGN_PMEM_WRITE_BYTES / 8 ? (IGN_PMEM_WRITE_TAG | i) : (IGN_PMEM_TAG | i);
    ASSERT_EQ(data[i], want) << "word " << i;
  }
  EXPECT_EQ(std::filesystem::file_size(file), words * 8 + 5) << "the file keeps its size";
}

// read_only: the region is a read-only memory slot; a guest store does not reach the file.
TEST_F(IgnitionVirtio, PmemReadOnlyDropsTheGuestsWrites) {
  std::string file = path("pmem-ro.img");
  const uint64_t words = (2u << 20) / 8;
  write_pmem_file(file, words, 0);
  auto run = boot(R"("pmem": [)" + pmem("pm0", file, false, true) + "]", IGN_TEST_VIRTIO_PMEM,
                  std::string(IGN_OPT_PMEM_RO) + "1");
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  EXPECT_TRUE(run.report.passed(IGN_TEST_VIRTIO_PMEM)) << run.explain();
  EXPECT_EQ(run.report.info("pmem.ro_write"), "dropped") << run.explain();
  auto data = read_words(file, words);
  for (uint64_t i = 0; i < words; ++i) ASSERT_EQ(data[i], IGN_PMEM_TAG | i) << "word " << i;
}

// Snapshotted at its ready point, before it used the device, the guest finds its pmem device
// on the restored machine, mapped again over the same file.
TEST_F(IgnitionVirtio, PmemWorksOnARestoredMachine) {
  std::string file = path("pmem-snap.img"), store = path("store"), config = path("snap.json");
  const uint64_t words = (2u << 20) / 8;
  write_pmem_file(file, words, 0);
  std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                        << guest_image("ignition-test.elf")
                        << R"(", "boot_args": "ign.tests=boot,boottime,virtio-pmem"},
      "machine-config": {"vcpu_count": 1, "mem_size_mib": 128}, "pmem": [)"
                        << pmem("pm0", file, false, false) << "]}";
  ProcessOptions snap;
  snap.argv = {ignition_binary(), "--store", store, "snapshot", "base", "--config-file", config};
  auto base = run_process(snap);
  ASSERT_TRUE(base.ok() && base->exited_ok()) << (base.ok() ? base->output : "");
  EXPECT_FALSE(parse_guest_report(base->output).passed(IGN_TEST_VIRTIO_PMEM))
      << "the snapshot is taken before the pmem test";
  ProcessOptions restore;
  restore.argv = {ignition_binary(), "--store", store, "restore", "base"};
  auto run = run_process(restore);
  ASSERT_TRUE(run.ok() && run->exited_ok()) << (run.ok() ? run->output : "");
  auto report = parse_guest_report(run->output);
  EXPECT_EQ(report.boots, 0) << run->output;
  EXPECT_TRUE(report.passed(IGN_TEST_VIRTIO_PMEM)) << run->output;
  EXPECT_EQ(read_words(file, 1)[0], IGN_PMEM_WRITE_TAG) << "the restored guest wrote the file";
  std::filesystem::remove_all(store);
}

TEST_F(IgnitionVirtio, EvilDriverIsRejectedAndTheDeviceRecovers) {
  std::string disk = path("disk3.img");
  write_pattern_disk(disk);
  for (std::string device : {"rng", "blk"}) {
    SCOPED_TRACE(device);
    auto run = boot(R"("drives": [)" + drive("evil", disk, true, false) + R"(], "entropy": {})",
                    IGN_TEST_VIRTIO_EVIL, std::string(IGN_OPT_EVIL_DEVICE) + device);
    ASSERT_TRUE(run.process.exited_ok()) << "the VMM must survive\n" << run.explain();
    const auto& r = run.report;
    ASSERT_TRUE(r.complete()) << run.explain();
    EXPECT_TRUE(r.passed(IGN_TEST_VIRTIO_EVIL)) << run.explain();
    for (const char* wild : {"beyond_ram", "mmio_gap", "addr_wrap", "looped_chain",
                             "next_out_of_range", "head_out_of_range", "avail_idx_jump"}) {
      auto what = r.info(std::string("evil.") + wild).value_or("");
      EXPECT_NE(what.find("-> rejected"), std::string::npos) << wild << ": " << what;
    }
    EXPECT_EQ(r.info("evil.recovered").value_or("").rfind("yes ", 0), 0u) << run.explain();
  }
}

TEST_F(IgnitionVirtio, NetResolvesArpAndGetsItsUdpEchoed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace and a TAP device";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/net/tun";
  auto python = find_program("python3");
  if (!find_program("ip") || !python) GTEST_SKIP() << "needs iproute2 and python3";
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();

  std::atomic<bool> peer_ready{false};
  std::optional<ProcessResult> peer;
  std::thread peer_thread([&] {
    ProcessOptions p;
    p.argv = ns.exec({*python, "-c", kEchoPeer, "10.0.2.15", "10.0.2.2", NetNamespace::kTap});
    p.timeout = std::chrono::seconds(40);
    p.on_line = [&](std::string_view line) {
      if (line == "ready") peer_ready = true;
      return LineAction{};
    };
    auto r = run_process(p);
    if (r.ok()) peer = std::move(*r);
  });
  for (int i = 0; i < 500 && !peer_ready; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  auto run =
      boot(std::string(R"("network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")") +
               NetNamespace::kTap + R"(", "guest_mac": "52:54:00:12:34:56"}])",
           IGN_TEST_VIRTIO_NET,
           std::string(IGN_OPT_IP) + "10.0.2.15/24 " + IGN_OPT_PEER + "10.0.2.2", ns.exec({}));
  peer_thread.join();
  ASSERT_TRUE(peer_ready);
  ASSERT_TRUE(peer.has_value());
  const auto& r = run.report;
  ASSERT_TRUE(r.complete()) << run.explain() << "\n--- peer:\n" << peer->output;
  EXPECT_TRUE(r.passed(IGN_TEST_VIRTIO_NET)) << run.explain() << "\n--- peer:\n" << peer->output;
  EXPECT_EQ(r.info("net.mac"), "52:54:00:12:34:56");
  EXPECT_EQ(r.info("net.echo").value_or("").rfind("ignition virtio-net echo ", 0), 0u);
  EXPECT_NE(peer->output.find("arp-reply 52:54:00:12:34:56"), std::string::npos) << peer->output;
  EXPECT_NE(peer->output.find("echoed ignition virtio-net echo "), std::string::npos)
      << peer->output;
}

}  // namespace
}  // namespace ignition::test
