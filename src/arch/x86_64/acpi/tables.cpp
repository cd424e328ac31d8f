// RSDP, XSDT, FADT and MADT layouts from ACPI 6.5 chapter 5.2.
#include "arch/x86_64/acpi/tables.hpp"

#include <cstring>

#include "arch/x86_64/acpi/acpi.hpp"
#include "arch/x86_64/acpi/sdt.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64::acpi {

namespace {

struct [[gnu::packed]] Rsdp {
  char signature[8];
  uint8_t checksum;  // over the first 20 bytes (the ACPI 1.0 structure)
  char oem_id[6];
  uint8_t revision;
  uint32_t rsdt_addr;
  uint32_t length;
  uint64_t xsdt_addr;
  uint8_t extended_checksum;  // over all 36 bytes
  uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
constexpr size_t kRsdpV1Length = 20;

// The FADT after its header (ACPI 6.5 table 5.9); offsets in comments are from the
// table's start.
struct [[gnu::packed]] FadtBody {
  uint32_t firmware_ctrl;  // 36
  uint32_t dsdt;
  uint8_t reserved0;
  uint8_t preferred_pm_profile;
  uint16_t sci_int;
  uint32_t smi_cmd;  // 48
  uint8_t acpi_enable;
  uint8_t acpi_disable;
  uint8_t s4bios_req;
  uint8_t pstate_cnt;
  uint32_t pm1a_evt_blk;  // 56
  uint32_t pm1b_evt_blk;
  uint32_t pm1a_cnt_blk;
  uint32_t pm1b_cnt_blk;
  uint32_t pm2_cnt_blk;
  uint32_t pm_tmr_blk;
  uint32_t gpe0_blk;
  uint32_t gpe1_blk;
  uint8_t pm1_evt_len;  // 88
  uint8_t pm1_cnt_len;
  uint8_t pm2_cnt_len;
  uint8_t pm_tmr_len;
  uint8_t gpe0_blk_len;
  uint8_t gpe1_blk_len;
  uint8_t gpe1_base;
  uint8_t cst_cnt;
  uint16_t p_lvl2_lat;  // 96
  uint16_t p_lvl3_lat;
  uint16_t flush_size;
  uint16_t flush_stride;
  uint8_t duty_offset;  // 104
  uint8_t duty_width;
  uint8_t day_alrm;
  uint8_t mon_alrm;
  uint8_t century;
  uint16_t iapc_boot_arch;  // 109
  uint8_t reserved1;
  uint32_t flags;  // 112
  Gas reset_reg;   // 116
  uint8_t reset_value;
  uint16_t arm_boot_arch;
  uint8_t fadt_minor_version;  // 131
  uint64_t x_firmware_ctrl;    // 132
  uint64_t x_dsdt;             // 140
  Gas x_pm1a_evt_blk;          // 148
  Gas x_pm1b_evt_blk;
  Gas x_pm1a_cnt_blk;
  Gas x_pm1b_cnt_blk;
  Gas x_pm2_cnt_blk;
  Gas x_pm_tmr_blk;
  Gas x_gpe0_blk;
  Gas x_gpe1_blk;
  Gas sleep_control_reg;         // 244
  Gas sleep_status_reg;          // 256
  char hypervisor_vendor_id[8];  // 268
};
static_assert(sizeof(SdtHeader) + sizeof(FadtBody) == kFadtLength);

// FADT flags (ACPI 6.5 table 5.10).
constexpr uint32_t kFadtPwrButton = 1u << 4;  // no fixed power button
constexpr uint32_t kFadtSlpButton = 1u << 5;  // no fixed sleep button
constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;
// IA-PC boot architecture flags (table 5.11). Left clear: LEGACY_DEVICES (no ISA devices
// to enumerate beyond the DSDT) and 8042 (the i8042 driver then only probes if the DSDT
// lists a PS/2 controller; a `reboot=k` reset writes port 0x64 directly either way).
constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;  // don't poke VGA memory or ports

struct [[gnu::packed]] MadtHeader {
  uint32_t local_apic_addr;
  uint32_t flags;  // PCAT_COMPAT clear: hardware-reduced Linux ignores the 8259s anyway
};
struct [[gnu::packed]] MadtLocalApic {
  uint8_t type = 0;
  uint8_t length = 8;
  uint8_t processor_uid;
  uint8_t apic_id;
  uint32_t flags;  // bit 0: enabled
};
struct [[gnu::packed]] MadtIoApic {
  uint8_t type = 1;
  uint8_t length = 12;
  uint8_t ioapic_id;
  uint8_t reserved = 0;
  uint32_t address;
  uint32_t gsi_base;
};
struct [[gnu::packed]] MadtInterruptOverride {
  uint8_t type = 2;
  uint8_t length = 10;
  uint8_t bus = 0;  // ISA
  uint8_t source_irq;
  uint32_t gsi;
  uint16_t flags;  // 0: polarity and trigger conform to the bus (ISA: edge, active high)
};
static_assert(sizeof(MadtLocalApic) == 8 && sizeof(MadtIoApic) == 12 &&
              sizeof(MadtInterruptOverride) == 10);
constexpr uint32_t kMadtEnabled = 1;

template <typename T>
void append_struct(std::vector<uint8_t>& out, const T& value) {
  auto bytes = as_bytes(value);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

Gas sleep_port_register() {
  return Gas{kGasSystemIo, 8, 0, kGasByteAccess, kAcpiSleepPort};
}

}  // namespace

std::vector<uint8_t> rsdp(uint64_t xsdt_addr) {
  Rsdp r{};
  set_id(r.signature, "RSD PTR ");
  set_id(r.oem_id, kOemId);
  r.revision = 2;
  r.length = sizeof(Rsdp);
  r.xsdt_addr = xsdt_addr;
  r.checksum = checksum_for(as_bytes(r).first(kRsdpV1Length));
  r.extended_checksum = checksum_for(as_bytes(r));
  auto bytes = as_bytes(r);
  return {bytes.begin(), bytes.end()};
}

std::vector<uint8_t> xsdt(std::span<const uint64_t> table_addrs) {
  std::vector<uint8_t> body(table_addrs.size() * sizeof(uint64_t));
  if (!body.empty()) std::memcpy(body.data(), table_addrs.data(), body.size());
  return make_table("XSDT", 1, body);
}

std::vector<uint8_t> fadt(uint64_t dsdt_addr) {
  FadtBody f{};
  f.flags = kFadtHwReducedAcpi | kFadtPwrButton | kFadtSlpButton;
  f.iapc_boot_arch = kBootArchVgaNotPresent;
  f.fadt_minor_version = 5;  // ACPI 6.5
  f.x_dsdt = dsdt_addr;
  // Hardware-reduced ACPI has no PM1 blocks: Linux powers off by writing SLP_TYP|SLP_EN
  // to the sleep control register, and only offers S5 when both registers exist.
  f.sleep_control_reg = sleep_port_register();
  f.sleep_status_reg = sleep_port_register();
  set_id(f.hypervisor_vendor_id, "IGNITION");
  return make_table("FACP", 6, as_bytes(f));
}

Result<std::vector<uint8_t>> madt(uint32_t num_vcpus) {
  if (num_vcpus == 0) return err("MADT: need at least one vCPU");
  if (num_vcpus > kAcpiMaxVcpus)
    return err("MADT: {} vCPUs is more than the {} xAPIC ids allow", num_vcpus, kAcpiMaxVcpus);

  std::vector<uint8_t> body;
  append_struct(body, MadtHeader{static_cast<uint32_t>(kLapicAddr), 0});
  for (uint32_t i = 0; i < num_vcpus; ++i) {
    MadtLocalApic lapic{};
    lapic.processor_uid = static_cast<uint8_t>(i);
    lapic.apic_id = static_cast<uint8_t>(i);
    lapic.flags = kMadtEnabled;
    append_struct(body, lapic);
  }
  MadtIoApic ioapic{};
  ioapic.ioapic_id = static_cast<uint8_t>(num_vcpus);  // first id no vCPU uses
  ioapic.address = static_cast<uint32_t>(kIoapicAddr);
  ioapic.gsi_base = 0;
  append_struct(body, ioapic);
  // Hardware-reduced Linux sets up no identity ISA IRQ mappings (it has no legacy PIC),
  // so the 8250 driver's fixed IRQ 4 needs this override to reach GSI 4; the DSDT's COM1
  // device says the same for the PNP driver. Never add one for IRQ 0: Linux would take
  // it for the SCI (FADT SCI_INT is 0).
  MadtInterruptOverride serial{};
  serial.source_irq = static_cast<uint8_t>(kSerialCom1Irq);
  serial.gsi = kSerialCom1Irq;
  serial.flags = 0;
  append_struct(body, serial);
  return make_table("APIC", 5, body);
}

}  // namespace ignition::x86_64::acpi
