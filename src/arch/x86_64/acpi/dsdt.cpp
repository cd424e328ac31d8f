// DSDT contents, following what Firecracker and Cloud Hypervisor give Linux guests.
#include "arch/x86_64/acpi/dsdt.hpp"

#include <set>

#include "arch/x86_64/acpi/aml.hpp"
#include "arch/x86_64/acpi/sdt.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64::acpi {

namespace {

constexpr size_t kMaxVirtioDevices = 1000;  // names V000..V999

// Under ACPI IRQ routing Linux learns the serial port's interrupt from here (8250_pnp
// claims PNP0501); hardware-reduced Linux maps no ISA IRQs by default.
aml::Term com1() {
  return aml::device(
      "COM1", {aml::name("_HID", aml::eisa_id("PNP0501")), aml::name("_UID", aml::integer(0)),
               aml::name("_DDN", aml::string("COM1")),
               aml::name("_CRS", aml::resource_template(
                                     {aml::io_port(kSerialCom1Port, kSerialCom1Port, 0, 8),
                                      aml::interrupt(kSerialCom1Irq, aml::Trigger::kEdge,
                                                     aml::Polarity::kActiveHigh,
                                                     aml::Sharing::kExclusive)}))});
}

// Linux's virtio_mmio driver matches LNRO0005 and takes its window and IRQ from _CRS.
aml::Term virtio_mmio(size_t index, const VirtioMmioSlot& slot) {
  return aml::device(
      fmt::format("V{:03}", index),
      {aml::name("_HID", aml::string("LNRO0005")), aml::name("_UID", aml::integer(index)),
       aml::name("_CCA", aml::integer(1)),  // DMA is cache-coherent
       aml::name("_CRS",
                 aml::resource_template(
                     {aml::memory32_fixed(static_cast<uint32_t>(slot.base),
                                          static_cast<uint32_t>(slot.size)),
                      aml::interrupt(slot.irq, aml::Trigger::kEdge, aml::Polarity::kActiveHigh,
                                     aml::Sharing::kExclusive)}))});
}

// Microsoft's "Virtual Machine Generation ID" spec: _CID "VM_Gen_Counter" names the
// device and the _HID is the hypervisor's own (in the ACPI-ID form iasl accepts, unlike
// Linux's other match, "VMGENCTR"). Linux binds through the _CID: ACPICA upper-cases it
// to the "VM_GEN_COUNTER" its vmgenid driver lists, as for QEMU's and Firecracker's.
// ADDR holds the ID's address as two 32-bit halves.
aml::Term vmgenid_device(const VmGenIdSlot& slot) {
  return aml::device("VGEN", {aml::name("_HID", aml::string("IGNT0001")),
                              aml::name("_CID", aml::string("VM_Gen_Counter")),
                              aml::name("_DDN", aml::string("VM_Gen_Counter")),
                              aml::name("ADDR", aml::package({aml::integer(slot.addr & 0xffffffff),
                                                              aml::integer(slot.addr >> 32)}))});
}

// Hardware-reduced ACPI has no GPE blocks; the Generic Event Device turns an interrupt
// into a call of _EVT (Arg0 = the GSI), which notifies VGEN, as Firecracker does.
aml::Term generic_event_device(const VmGenIdSlot& slot) {
  constexpr uint64_t kDeviceSpecificChange = 0x80;
  return aml::device(
      "GED_",
      {aml::name("_HID", aml::string("ACPI0013")),
       aml::name("_CRS", aml::resource_template({aml::interrupt(slot.gsi, aml::Trigger::kEdge,
                                                                aml::Polarity::kActiveHigh,
                                                                aml::Sharing::kExclusive)})),
       aml::method(
           "_EVT", 1, true,
           {aml::if_then(aml::equal(aml::arg(0), aml::integer(slot.gsi)),
                         {aml::notify("\\_SB_.VGEN", aml::integer(kDeviceSpecificChange))})})});
}

Result<void> check_slots(std::span<const VirtioMmioSlot> slots,
                         const std::optional<VmGenIdSlot>& vmgenid) {
  if (slots.size() > kMaxVirtioDevices)
    return err("DSDT: {} virtio devices, at most {}", slots.size(), kMaxVirtioDevices);
  std::set<uint32_t> irqs;
  if (vmgenid) {
    if (vmgenid->addr % 8 != 0)
      return err("VMGenID: address {:#x} is not 8-byte aligned", vmgenid->addr);
    if (vmgenid->gsi >= kIoapicPins || vmgenid->gsi == kSerialCom1Irq)
      return err("VMGenID: GSI {} is not a free IOAPIC pin", vmgenid->gsi);
    irqs.insert(vmgenid->gsi);
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    const VirtioMmioSlot& s = slots[i];
    if (s.size == 0 || s.size > 0xffffffff || s.base > 0x100000000 - s.size)
      return err("virtio device {}: window {:#x}+{:#x} must be non-empty and below 4 GiB", i,
                 s.base, s.size);
    if (s.irq >= kIoapicPins)
      return err("virtio device {}: IRQ {} is not an IOAPIC pin (0-{})", i, s.irq, kIoapicPins - 1);
    if (s.irq == kSerialCom1Irq || !irqs.insert(s.irq).second)
      return err("virtio device {}: IRQ {} is already taken", i, s.irq);
  }
  return {};
}

}  // namespace

Result<std::vector<uint8_t>> dsdt(std::span<const VirtioMmioSlot> virtio_devices,
                                  const std::optional<VmGenIdSlot>& vmgenid) {
  IGN_TRY(check_slots(virtio_devices, vmgenid));

  std::vector<aml::Term> system_bus{com1()};
  for (size_t i = 0; i < virtio_devices.size(); ++i)
    system_bus.push_back(virtio_mmio(i, virtio_devices[i]));
  if (vmgenid) {
    system_bus.push_back(vmgenid_device(*vmgenid));
    system_bus.push_back(generic_event_device(*vmgenid));
  }

  // \_S5_: SLP_TYPa, SLP_TYPb, two reserved. Hardware-reduced ACPI uses only SLP_TYPa.
  const uint64_t s5 = kSleepTypeS5;
  IGN_ASSIGN_OR_RETURN(
      auto body,
      aml::encode({aml::scope("\\_SB_", std::move(system_bus)),
                   aml::name("\\_S5_", aml::package({aml::integer(s5), aml::integer(s5),
                                                     aml::integer(0), aml::integer(0)}))}));
  // Revision 2: integers in this block are 64-bit.
  return make_table("DSDT", 2, body);
}

}  // namespace ignition::x86_64::acpi
