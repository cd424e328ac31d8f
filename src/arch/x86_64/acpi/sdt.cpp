// Header and checksum plumbing shared by the ACPI tables.
#include "arch/x86_64/acpi/sdt.hpp"

#include <cstring>

namespace ignition::x86_64::acpi {

uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return sum;
}

std::vector<uint8_t> make_table(std::string_view signature, uint8_t revision,
                                std::span<const uint8_t> body) {
  SdtHeader header{};
  set_id(header.signature, signature);
  header.length = static_cast<uint32_t>(sizeof(SdtHeader) + body.size());
  header.revision = revision;
  set_id(header.oem_id, kOemId);
  set_id(header.oem_table_id, kOemTableId);
  header.oem_revision = kOemRevision;
  set_id(header.creator_id, kCreatorId);
  header.creator_revision = kCreatorRevision;

  std::vector<uint8_t> table(sizeof(SdtHeader) + body.size());
  std::memcpy(table.data(), &header, sizeof(header));
  if (!body.empty()) std::memcpy(table.data() + sizeof(header), body.data(), body.size());
  table[offsetof(SdtHeader, checksum)] = checksum_for(table);
  return table;
}

}  // namespace ignition::x86_64::acpi
