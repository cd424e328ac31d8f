// The Linux x86 zero page (struct boot_params) and its setup header, laid out as in
// Documentation/arch/x86/zero-page.rst and boot.rst, and the writer that fills it for the
// 64-bit boot protocol.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/x86_64/boot/boot_info.hpp"
#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;      // in both the bzImage and boot_params
inline constexpr uint32_t kSetupHeaderMagic = 0x53726448;  // "HdrS" at 0x202
inline constexpr uint16_t kBootFlagMagic = 0xaa55;
inline constexpr uint8_t kLoaderTypeUndefined = 0xff;
inline constexpr uint8_t kLoadFlagLoadedHigh = 1 << 0;
inline constexpr uint16_t kXlfKernel64 = 1 << 0;
// What an ELF kernel gets for kernel_alignment (Firecracker's value; must be non-zero).
inline constexpr uint32_t kDefaultKernelAlignment = 0x01000000;
inline constexpr size_t kE820MaxEntriesZeroPage = 128;

#pragma pack(push, 1)

struct SetupHeader {
  uint8_t setup_sects;
  uint16_t root_flags;
  uint32_t syssize;
  uint16_t ram_size;
  uint16_t vid_mode;
  uint16_t root_dev;
  uint16_t boot_flag;
  uint16_t jump;
  uint32_t header;
  uint16_t version;
  uint32_t realmode_swtch;
  uint16_t start_sys_seg;
  uint16_t kernel_version;
  uint8_t type_of_loader;
  uint8_t loadflags;
  uint16_t setup_move_size;
  uint32_t code32_start;
  uint32_t ramdisk_image;
  uint32_t ramdisk_size;
  uint32_t bootsect_kludge;
  uint16_t heap_end_ptr;
  uint8_t ext_loader_ver;
  uint8_t ext_loader_type;
  uint32_t cmd_line_ptr;
  uint32_t initrd_addr_max;
  uint32_t kernel_alignment;
  uint8_t relocatable_kernel;
  uint8_t min_alignment;
  uint16_t xloadflags;
  uint32_t cmdline_size;
  uint32_t hardware_subarch;
  uint64_t hardware_subarch_data;
  uint32_t payload_offset;
  uint32_t payload_length;
  uint64_t setup_data;
  uint64_t pref_address;
  uint32_t init_size;
  uint32_t handover_offset;
  uint32_t kernel_info_offset;
};

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

struct BootParams {
  uint8_t screen_info[0x40];
  uint8_t apm_bios_info[0x14];
  uint8_t pad2[4];
  uint64_t tboot_addr;
  uint8_t ist_info[0x10];
  uint64_t acpi_rsdp_addr;  // boot protocol 2.14
  uint8_t pad3[8];
  uint8_t hd0_info[16];
  uint8_t hd1_info[16];
  uint8_t sys_desc_table[0x10];
  uint8_t olpc_ofw_header[0x10];
  uint32_t ext_ramdisk_image;
  uint32_t ext_ramdisk_size;
  uint32_t ext_cmd_line_ptr;
  uint8_t pad4[112];
  uint32_t cc_blob_address;
  uint8_t edid_info[0x80];
  uint8_t efi_info[0x20];
  uint32_t alt_mem_k;
  uint32_t scratch;
  uint8_t e820_entries;
  uint8_t eddbuf_entries;
  uint8_t edd_mbr_sig_buf_entries;
  uint8_t kbd_status;
  uint8_t secure_boot;
  uint8_t pad5[2];
  uint8_t sentinel;  // must stay 0, or the kernel zeroes fields it thinks are stale
  uint8_t pad6[1];
  SetupHeader hdr;
  uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
  uint32_t edd_mbr_sig_buffer[16];
  E820Entry e820_table[kE820MaxEntriesZeroPage];
  uint8_t pad8[48];
  uint8_t eddbuf[6 * 82];
  uint8_t pad9[276];
};

#pragma pack(pop)

static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);
static_assert(sizeof(E820Entry) == 20);
static_assert(sizeof(BootParams) == 0x1000);
// Setup header fields at their boot.rst offsets (relative to the header at 0x1f1).
static_assert(offsetof(SetupHeader, boot_flag) == 0x1fe - 0x1f1);
static_assert(offsetof(SetupHeader, header) == 0x202 - 0x1f1);
static_assert(offsetof(SetupHeader, version) == 0x206 - 0x1f1);
static_assert(offsetof(SetupHeader, type_of_loader) == 0x210 - 0x1f1);
static_assert(offsetof(SetupHeader, loadflags) == 0x211 - 0x1f1);
static_assert(offsetof(SetupHeader, code32_start) == 0x214 - 0x1f1);
static_assert(offsetof(SetupHeader, ramdisk_image) == 0x218 - 0x1f1);
static_assert(offsetof(SetupHeader, ramdisk_size) == 0x21c - 0x1f1);
static_assert(offsetof(SetupHeader, cmd_line_ptr) == 0x228 - 0x1f1);
static_assert(offsetof(SetupHeader, initrd_addr_max) == 0x22c - 0x1f1);
static_assert(offsetof(SetupHeader, kernel_alignment) == 0x230 - 0x1f1);
static_assert(offsetof(SetupHeader, relocatable_kernel) == 0x234 - 0x1f1);
static_assert(offsetof(SetupHeader, xloadflags) == 0x236 - 0x1f1);
static_assert(offsetof(SetupHeader, cmdline_size) == 0x238 - 0x1f1);
static_assert(offsetof(SetupHeader, setup_data) == 0x250 - 0x1f1);
static_assert(offsetof(SetupHeader, pref_address) == 0x258 - 0x1f1);
static_assert(offsetof(SetupHeader, init_size) == 0x260 - 0x1f1);
static_assert(offsetof(SetupHeader, kernel_info_offset) == 0x268 - 0x1f1);
// The zero page fields we fill (zero-page.rst).
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(BootParams, cc_blob_address) == 0x13c);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, sentinel) == 0x1ef);
static_assert(offsetof(BootParams, hdr) == kSetupHeaderOffset);
static_assert(offsetof(BootParams, edd_mbr_sig_buffer) == 0x290);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);
static_assert(offsetof(BootParams, eddbuf) == 0xd00);

// Builds the zero page for `kernel` (its setup header if it is a bzImage, Firecracker's
// defaults otherwise) with the command line pointer, initrd, e820 map and RSDP address.
Result<BootParams> build_boot_params(const GuestMemory& mem, const LoadedKernel& kernel,
                                     const BootInfo& info);
// Builds it and writes it at kBootParamsAddr. The command line itself is written by
// write_boot_info.
Result<void> write_boot_params(GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info);

}  // namespace ignition::x86_64
