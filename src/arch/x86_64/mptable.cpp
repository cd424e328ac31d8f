// MP table layout from the Intel MultiProcessor Specification 1.4, chapter 4.
#include "arch/x86_64/mptable.hpp"

#include <cstring>
#include <vector>

#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {

struct [[gnu::packed]] MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table_addr;
  uint8_t length;  // in 16-byte units
  uint8_t spec_rev;
  uint8_t checksum;
  uint8_t features[5];  // all zero: a configuration table is present, no IMCR
};

struct [[gnu::packed]] MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;    // header and base entries
  uint8_t spec_rev;
  uint8_t checksum;
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_addr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_table_length;
  uint8_t ext_table_checksum;
  uint8_t reserved;
};

struct [[gnu::packed]] MpProcessor {
  uint8_t type = 0;
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;  // bit 0 enabled, bit 1 bootstrap processor
  uint32_t signature;
  uint32_t feature_flags;
  uint32_t reserved[2];
};

struct [[gnu::packed]] MpBus {
  uint8_t type = 1;
  uint8_t bus_id;
  char bus_type[6];
};

struct [[gnu::packed]] MpIoApic {
  uint8_t type = 2;
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;  // bit 0 usable
  uint32_t address;
};

// I/O interrupt (type 3) and local interrupt (type 4) assignments share one layout.
struct [[gnu::packed]] MpInterrupt {
  uint8_t type;
  uint8_t irq_type;  // 0 INT, 1 NMI, 2 SMI, 3 ExtINT
  uint16_t flags;    // 0: polarity and trigger conform to the bus
  uint8_t source_bus;
  uint8_t source_irq;
  uint8_t dest_apic;  // type 3: IOAPIC id; type 4: local APIC id, 0xff for all
  uint8_t dest_pin;   // IOAPIC INTIN# or LINTIN#
};

static_assert(sizeof(MpFloatingPointer) == 16 && sizeof(MpConfigHeader) == 44 &&
              sizeof(MpProcessor) == 20 && sizeof(MpBus) == 8 && sizeof(MpIoApic) == 8 &&
              sizeof(MpInterrupt) == 8);

constexpr uint8_t kSpecRev = 4;         // MP spec 1.4
constexpr uint8_t kApicVersion = 0x14;  // what KVM's local APIC reports
constexpr uint8_t kCpuEnabled = 1 << 0;
constexpr uint8_t kCpuBootstrap = 1 << 1;
constexpr uint32_t kCpuSignature = 0x600;  // family 6, as Firecracker reports
constexpr uint32_t kCpuFeatureFpu = 1 << 0;
constexpr uint32_t kCpuFeatureApic = 1 << 9;
constexpr uint8_t kIoApicUsable = 1;
constexpr uint8_t kIoInterrupt = 3;
constexpr uint8_t kLocalInterrupt = 4;
constexpr uint8_t kIrqInt = 0;
constexpr uint8_t kIrqNmi = 1;
constexpr uint8_t kIrqExtInt = 3;
constexpr uint8_t kIsaBus = 0;
constexpr uint8_t kAllLocalApics = 0xff;
// The table may run past the EBDA into the VGA/option-ROM hole (reserved in the e820
// map and by Linux) but not into the BIOS area, where the ACPI tables live.
constexpr uint64_t kMptableLimit = kBiosRomStart;

uint8_t byte_sum(const uint8_t* p, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + p[i]);
  return sum;
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

template <size_t N>
void set_id(char (&field)[N], const char* text) {
  const size_t len = std::strlen(text);
  for (size_t i = 0; i < N; ++i) field[i] = i < len ? text[i] : ' ';
}

// The configuration table's base entries, in the order the spec asks for.
std::vector<uint8_t> entries(uint32_t num_vcpus, uint8_t ioapic_id) {
  std::vector<uint8_t> out;
  for (uint32_t i = 0; i < num_vcpus; ++i) {
    MpProcessor cpu{};
    cpu.apic_id = static_cast<uint8_t>(i);
    cpu.apic_version = kApicVersion;
    cpu.flags = kCpuEnabled | (i == 0 ? kCpuBootstrap : 0);
    cpu.signature = kCpuSignature;
    cpu.feature_flags = kCpuFeatureFpu | kCpuFeatureApic;
    append(out, cpu);
  }
  MpBus bus{};
  bus.bus_id = kIsaBus;
  set_id(bus.bus_type, "ISA");
  append(out, bus);
  append(out,
         MpIoApic{2, ioapic_id, kApicVersion, kIoApicUsable, static_cast<uint32_t>(kIoapicAddr)});
  for (uint32_t irq = 0; irq < kIoapicPins; ++irq) {
    append(out, MpInterrupt{kIoInterrupt, kIrqInt, 0, kIsaBus, static_cast<uint8_t>(irq), ioapic_id,
                            static_cast<uint8_t>(irq)});
  }
  // Virtual-wire mode: the 8259s reach the BSP's LINT0, NMIs every CPU's LINT1.
  append(out, MpInterrupt{kLocalInterrupt, kIrqExtInt, 0, kIsaBus, 0, 0, 0});
  append(out, MpInterrupt{kLocalInterrupt, kIrqNmi, 0, kIsaBus, 0, kAllLocalApics, 1});
  return out;
}

uint16_t entry_count(uint32_t num_vcpus) {
  return static_cast<uint16_t>(num_vcpus + 1 /* bus */ + 1 /* IOAPIC */ + kIoapicPins + 2);
}

}  // namespace

uint64_t mptable_size(uint32_t num_vcpus) {
  return sizeof(MpFloatingPointer) + sizeof(MpConfigHeader) + num_vcpus * sizeof(MpProcessor) +
         sizeof(MpBus) + sizeof(MpIoApic) + (kIoapicPins + 2) * sizeof(MpInterrupt);
}

Result<void> write_mptable(GuestMemory& mem, uint32_t num_vcpus) {
  if (num_vcpus == 0) return err("MP table: need at least one vCPU");
  if (num_vcpus > kMptableMaxVcpus)
    return err("MP table: {} vCPUs is more than the {} xAPIC ids allow", num_vcpus,
               kMptableMaxVcpus);
  if (kMptableAddr + mptable_size(num_vcpus) > kMptableLimit)
    return err("MP table for {} vCPUs ({} bytes) does not fit below {:#x}", num_vcpus,
               mptable_size(num_vcpus), kMptableLimit);

  const auto ioapic_id = static_cast<uint8_t>(num_vcpus);  // first id no vCPU uses
  const uint64_t config_addr = kMptableAddr + sizeof(MpFloatingPointer);

  std::vector<uint8_t> body = entries(num_vcpus, ioapic_id);
  MpConfigHeader header{};
  set_id(header.signature, "PCMP");
  header.length = static_cast<uint16_t>(sizeof(header) + body.size());
  header.spec_rev = kSpecRev;
  set_id(header.oem_id, "IGNTN");
  set_id(header.product_id, "IGNITION");
  header.entry_count = entry_count(num_vcpus);
  header.lapic_addr = static_cast<uint32_t>(kLapicAddr);
  std::vector<uint8_t> config;
  append(config, header);
  config.insert(config.end(), body.begin(), body.end());
  config[offsetof(MpConfigHeader, checksum)] =
      static_cast<uint8_t>(0x100 - byte_sum(config.data(), config.size()));

  MpFloatingPointer pointer{};
  set_id(pointer.signature, "_MP_");
  pointer.config_table_addr = static_cast<uint32_t>(config_addr);
  pointer.length = 1;
  pointer.spec_rev = kSpecRev;
  pointer.checksum = static_cast<uint8_t>(
      0x100 - byte_sum(reinterpret_cast<const uint8_t*>(&pointer), sizeof(pointer)));

  if (auto r = mem.write_obj(kMptableAddr, pointer); !r.ok())
    return context(r.error(), "writing the MP floating pointer");
  if (auto r = mem.write(config_addr, config); !r.ok())
    return context(r.error(), "writing the MP configuration table");
  return {};
}

}  // namespace ignition::x86_64
