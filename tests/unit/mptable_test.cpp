// MP table: found where Linux scans for it, checksums right, and its entries parsed back
// as Linux's mpparse does (processors, BSP flag, bus, IOAPIC, interrupt routing).
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {
namespace {

using Bytes = std::vector<uint8_t>;

GuestMemory make_memory(uint64_t size = 1 << 20) {
  auto mem = GuestMemory::create_anonymous({{0, size}});
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

Bytes read_bytes(const GuestMemory& mem, uint64_t gpa, uint64_t len) {
  Bytes out(len);
  auto r = mem.read(gpa, out);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

uint8_t sum(const Bytes& b) {
  uint8_t s = 0;
  for (uint8_t x : b) s = static_cast<uint8_t>(s + x);
  return s;
}

template <typename T>
T load(const Bytes& b, size_t offset) {
  T value;
  std::memcpy(&value, b.data() + offset, sizeof(T));
  return value;
}

// Linux's smp_scan_config(): a 16-byte-aligned "_MP_" with length 1, a zero checksum and
// spec revision 1 or 4, in the last KiB below 640 KiB.
std::optional<uint64_t> scan_for_floating_pointer(const GuestMemory& mem) {
  const uint64_t base = 639 * 0x400;
  Bytes area = read_bytes(mem, base, 0x400);
  for (size_t off = 0; off + 16 <= area.size(); off += 16) {
    Bytes mpf(area.begin() + off, area.begin() + off + 16);
    if (std::memcmp(mpf.data(), "_MP_", 4) == 0 && mpf[8] == 1 && sum(mpf) == 0 &&
        (mpf[9] == 1 || mpf[9] == 4))
      return base + off;
  }
  return std::nullopt;
}

struct Processor {
  uint8_t apic_id;
  uint8_t flags;
};
struct Interrupt {
  uint8_t type, irq_type, bus, source_irq, dest_apic, dest_pin;
};
struct Parsed {
  uint64_t config_addr = 0;
  uint16_t length = 0;
  std::vector<Processor> cpus;
  std::vector<std::string> buses;
  std::vector<std::pair<uint8_t, uint32_t>> ioapics;  // id, address
  std::vector<Interrupt> irqs;                        // types 3 and 4
  size_t entries = 0;
  uint16_t entry_count = 0;
};

// Linux's smp_check_mpc() and smp_read_mpc(), as assertions.
Parsed parse(const GuestMemory& mem) {
  Parsed p;
  auto mpf_addr = scan_for_floating_pointer(mem);
  EXPECT_TRUE(mpf_addr.has_value()) << "no MP floating pointer where Linux looks";
  if (!mpf_addr) return p;
  EXPECT_EQ(*mpf_addr, kMptableAddr);
  Bytes mpf = read_bytes(mem, *mpf_addr, 16);
  EXPECT_EQ(mpf[11], 0) << "feature byte 1: 0 means a configuration table follows";
  p.config_addr = load<uint32_t>(mpf, 4);

  Bytes header = read_bytes(mem, p.config_addr, 44);
  EXPECT_EQ(std::string(header.begin(), header.begin() + 4), "PCMP");
  p.length = load<uint16_t>(header, 4);
  EXPECT_EQ(header[6], 4) << "spec 1.4";
  EXPECT_EQ(load<uint32_t>(header, 36), kLapicAddr);
  EXPECT_EQ(std::string(header.begin() + 8, header.begin() + 16), "IGNTN   ");
  p.entry_count = load<uint16_t>(header, 34);

  Bytes table = read_bytes(mem, p.config_addr, p.length);
  EXPECT_EQ(sum(table), 0) << "configuration table checksum";
  for (size_t off = 44; off < table.size(); ++p.entries) {
    const uint8_t type = table[off];
    const size_t len = type == 0 ? 20 : 8;
    EXPECT_LE(type, 4) << "unknown entry type at " << off;
    if (type > 4 || off + len > table.size()) {
      ADD_FAILURE() << "entry at " << off << " overruns the table";
      break;
    }
    switch (type) {
      case 0:
        p.cpus.push_back({table[off + 1], table[off + 3]});
        break;
      case 1:
        p.buses.emplace_back(table.begin() + off + 2, table.begin() + off + 8);
        break;
      case 2:
        EXPECT_EQ(table[off + 3] & 1, 1) << "IOAPIC usable";
        p.ioapics.emplace_back(table[off + 1], load<uint32_t>(table, off + 4));
        break;
      default:
        p.irqs.push_back(
            {type, table[off + 1], table[off + 4], table[off + 5], table[off + 6], table[off + 7]});
    }
    off += len;
  }
  return p;
}

class Mptable : public testing::TestWithParam<uint32_t> {};

TEST_P(Mptable, ParsesBackAsLinuxReadsIt) {
  const uint32_t vcpus = GetParam();
  GuestMemory mem = make_memory();
  auto r = write_mptable(mem, vcpus);
  ASSERT_TRUE(r.ok()) << r.error().message;

  Parsed p = parse(mem);
  EXPECT_EQ(p.config_addr, kMptableAddr + 16);
  EXPECT_EQ(p.entries, p.entry_count) << "header's entry count";
  EXPECT_EQ(16 + p.length, mptable_size(vcpus));
  EXPECT_LE(kMptableAddr + mptable_size(vcpus), kBiosRomStart);

  ASSERT_EQ(p.cpus.size(), vcpus);
  for (uint32_t i = 0; i < vcpus; ++i) {
    EXPECT_EQ(p.cpus[i].apic_id, i);
    EXPECT_TRUE(p.cpus[i].flags & 1) << "cpu " << i << " enabled";
    EXPECT_EQ(bool(p.cpus[i].flags & 2), i == 0) << "only cpu 0 is the BSP";
  }
  ASSERT_EQ(p.buses, std::vector<std::string>{"ISA   "});
  ASSERT_EQ(p.ioapics.size(), 1u);
  const uint8_t ioapic_id = p.ioapics[0].first;
  EXPECT_EQ(p.ioapics[0].second, kIoapicAddr);
  EXPECT_GE(ioapic_id, vcpus) << "IOAPIC id must not collide with a local APIC id";

  // ISA IRQ n -> IOAPIC pin n for every pin, as KVM routes them; then LINT0/LINT1.
  ASSERT_EQ(p.irqs.size(), kIoapicPins + 2);
  for (uint32_t pin = 0; pin < kIoapicPins; ++pin) {
    const Interrupt& irq = p.irqs[pin];
    EXPECT_EQ(irq.type, 3);
    EXPECT_EQ(irq.irq_type, 0) << "INT";
    EXPECT_EQ(irq.source_irq, pin);
    EXPECT_EQ(irq.dest_apic, ioapic_id);
    EXPECT_EQ(irq.dest_pin, pin);
  }
  const Interrupt& extint = p.irqs[kIoapicPins];
  EXPECT_EQ(extint.type, 4);
  EXPECT_EQ(extint.irq_type, 3) << "ExtINT";
  EXPECT_EQ(extint.dest_pin, 0) << "LINT0";
  const Interrupt& nmi = p.irqs[kIoapicPins + 1];
  EXPECT_EQ(nmi.type, 4);
  EXPECT_EQ(nmi.irq_type, 1) << "NMI";
  EXPECT_EQ(nmi.dest_apic, 0xff) << "all CPUs";
  EXPECT_EQ(nmi.dest_pin, 1) << "LINT1";
}

INSTANTIATE_TEST_SUITE_P(Vcpus, Mptable, testing::Values(1u, 2u, 4u, 37u, 38u, 128u, 254u));

TEST(MptableLayout, SmallGuestsStayInsideTheEbdaKib) {
  // Up to 37 vCPUs the whole table lies in the 1 KiB Linux scans, as on real hardware.
  EXPECT_LE(kMptableAddr + mptable_size(37), kEbdaStart + 0x400);
  EXPECT_GT(kMptableAddr + mptable_size(38), kEbdaStart + 0x400);
}

TEST(MptableErrors, VcpuCount) {
  GuestMemory mem = make_memory();
  EXPECT_FALSE(write_mptable(mem, 0).ok());
  auto r = write_mptable(mem, kMptableMaxVcpus + 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("255"), std::string::npos) << r.error().message;
}

TEST(MptableErrors, MemoryTooSmall) {
  GuestMemory mem = make_memory(0x80000);  // 512 KiB: no RAM at the EBDA
  EXPECT_FALSE(write_mptable(mem, 1).ok());
}

TEST(MptableErrors, RewritingForFewerCpusLeavesNoStaleProcessors) {
  GuestMemory mem = make_memory();
  ASSERT_TRUE(write_mptable(mem, 8).ok());
  ASSERT_TRUE(write_mptable(mem, 2).ok());
  EXPECT_EQ(parse(mem).cpus.size(), 2u);
}

}  // namespace
}  // namespace ignition::x86_64
