// Lays the ACPI tables out in the BIOS area and writes them into guest memory.
#include "arch/x86_64/acpi/acpi.hpp"

#include "arch/x86_64/acpi/dsdt.hpp"
#include "arch/x86_64/acpi/sdt.hpp"
#include "arch/x86_64/acpi/tables.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {

uint64_t align8(uint64_t addr) {
  return (addr + 7) & ~uint64_t{7};
}

constexpr uint64_t kRsdpLength = 36;
static_assert(kRsdpAddr + kRsdpLength <= kAcpiTablesAddr);

}  // namespace

Result<uint64_t> write_acpi_tables(GuestMemory& mem, const AcpiConfig& config) {
  // Tables whose bytes do not depend on where the others go come first.
  IGN_ASSIGN_OR_RETURN(auto madt, acpi::madt(config.num_vcpus));
  IGN_ASSIGN_OR_RETURN(auto dsdt, acpi::dsdt(config.virtio_devices, config.vmgenid));

  constexpr size_t kXsdtEntries = 2;  // FADT, MADT
  const uint64_t xsdt_addr = kAcpiTablesAddr;
  const uint64_t fadt_addr = align8(xsdt_addr + sizeof(acpi::SdtHeader) + 8 * kXsdtEntries);
  const uint64_t madt_addr = align8(fadt_addr + acpi::kFadtLength);
  const uint64_t dsdt_addr = align8(madt_addr + madt.size());
  const uint64_t end = dsdt_addr + dsdt.size();
  if (end > kAcpiTablesEnd)
    return err("ACPI tables need {} bytes, only {} fit below {:#x}", end - kAcpiTablesAddr,
               kAcpiTablesEnd - kAcpiTablesAddr, kAcpiTablesEnd);

  const uint64_t table_addrs[kXsdtEntries] = {fadt_addr, madt_addr};
  const auto xsdt = acpi::xsdt(table_addrs);
  const auto fadt = acpi::fadt(dsdt_addr);
  const auto rsdp = acpi::rsdp(xsdt_addr);

  struct Placed {
    uint64_t addr;
    const std::vector<uint8_t>& bytes;
  };
  for (const Placed& t : {Placed{kRsdpAddr, rsdp}, Placed{xsdt_addr, xsdt}, Placed{fadt_addr, fadt},
                          Placed{madt_addr, madt}, Placed{dsdt_addr, dsdt}}) {
    if (auto r = mem.write(t.addr, t.bytes); !r.ok())
      return context(r.error(), "writing ACPI tables");
  }
  return kRsdpAddr;
}

}  // namespace ignition::x86_64
