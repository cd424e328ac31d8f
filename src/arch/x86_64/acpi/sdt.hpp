// What every ACPI System Description Table shares: the 36-byte header, the checksum rule,
// the Generic Address Structure, and ignition's OEM identity.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ignition::x86_64::acpi {

// The tables are laid out as the guest reads them, in x86 byte order.
static_assert(std::endian::native == std::endian::little);

inline constexpr std::string_view kOemId = "IGNTN ";         // 6 bytes
inline constexpr std::string_view kOemTableId = "IGNITION";  // 8 bytes
inline constexpr uint32_t kOemRevision = 1;
inline constexpr std::string_view kCreatorId = "IGNT";  // 4 bytes
inline constexpr uint32_t kCreatorRevision = 1;

struct [[gnu::packed]] SdtHeader {
  char signature[4];
  uint32_t length;  // header included
  uint8_t revision;
  uint8_t checksum;  // makes the whole table sum to zero
  char oem_id[6];
  char oem_table_id[8];
  uint32_t oem_revision;
  char creator_id[4];
  uint32_t creator_revision;
};
static_assert(sizeof(SdtHeader) == 36);

// Generic Address Structure (ACPI 6.5 section 5.2.3.2).
struct [[gnu::packed]] Gas {
  uint8_t space_id;  // 0 system memory, 1 system I/O
  uint8_t bit_width;
  uint8_t bit_offset;
  uint8_t access_size;  // 1 byte, 2 word, 3 dword, 4 qword
  uint64_t address;
};
static_assert(sizeof(Gas) == 12);
inline constexpr uint8_t kGasSystemIo = 1;
inline constexpr uint8_t kGasByteAccess = 1;

// The 8-bit sum of `bytes`; a valid table or structure sums to zero.
uint8_t byte_sum(std::span<const uint8_t> bytes);
// The checksum byte for `bytes` whose checksum field still holds zero.
inline uint8_t checksum_for(std::span<const uint8_t> bytes) {
  return static_cast<uint8_t>(0x100 - byte_sum(bytes));
}

template <typename T>
std::span<const uint8_t> as_bytes(const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  return {reinterpret_cast<const uint8_t*>(&value), sizeof(T)};
}

// A complete table: ignition's header for `signature` (4 chars) and `revision`, then
// `body`, with length and checksum filled in.
std::vector<uint8_t> make_table(std::string_view signature, uint8_t revision,
                                std::span<const uint8_t> body);

// Copies `text` into a fixed-width, non-terminated id field.
template <size_t N>
void set_id(char (&field)[N], std::string_view text) {
  for (size_t i = 0; i < N; ++i) field[i] = i < text.size() ? text[i] : ' ';
}

}  // namespace ignition::x86_64::acpi
