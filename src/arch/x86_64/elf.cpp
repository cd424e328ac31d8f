#include "arch/x86_64/elf.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <optional>
#include <vector>

#include "arch/x86_64/boot/guest_ram.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {

// The ELF64 structures we read (System V gABI), little-endian only.
struct Elf64Ehdr {
  uint8_t e_ident[16];
  uint16_t e_type;
  uint16_t e_machine;
  uint32_t e_version;
  uint64_t e_entry;
  uint64_t e_phoff;
  uint64_t e_shoff;
  uint32_t e_flags;
  uint16_t e_ehsize;
  uint16_t e_phentsize;
  uint16_t e_phnum;
  uint16_t e_shentsize;
  uint16_t e_shnum;
  uint16_t e_shstrndx;
};
static_assert(sizeof(Elf64Ehdr) == 64);
static_assert(offsetof(Elf64Ehdr, e_entry) == 24);
static_assert(offsetof(Elf64Ehdr, e_phoff) == 32);
static_assert(offsetof(Elf64Ehdr, e_phentsize) == 54);
static_assert(offsetof(Elf64Ehdr, e_phnum) == 56);

struct Elf64Phdr {
  uint32_t p_type;
  uint32_t p_flags;
  uint64_t p_offset;
  uint64_t p_vaddr;
  uint64_t p_paddr;
  uint64_t p_filesz;
  uint64_t p_memsz;
  uint64_t p_align;
};
static_assert(sizeof(Elf64Phdr) == 56);
static_assert(offsetof(Elf64Phdr, p_paddr) == 24);
static_assert(offsetof(Elf64Phdr, p_align) == 48);

struct Elf64Nhdr {
  uint32_t n_namesz;
  uint32_t n_descsz;
  uint32_t n_type;
};
static_assert(sizeof(Elf64Nhdr) == 12);

constexpr uint8_t kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr uint8_t kElfClass64 = 2;
constexpr uint8_t kElfData2Lsb = 1;
constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEmX86_64 = 62;
constexpr uint16_t kPnXnum = 0xffff;  // real count lives in section 0: not for kernels
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;
// xen/include/public/elfnote.h: the 32-bit physical PVH entry point.
constexpr uint32_t kXenElfnotePhys32Entry = 18;
// A kernel's note segment is a few hundred bytes; anything near this is not a kernel.
constexpr uint64_t kMaxNoteSegment = 1 << 20;

struct Segment {
  uint64_t paddr, offset, filesz, memsz;
};

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

// Looks for the Xen PHYS32_ENTRY note in one PT_NOTE segment.
Result<std::optional<uint32_t>> find_pvh_entry(const boot::ImageSource& image,
                                               const Elf64Phdr& ph) {
  if (ph.p_filesz > kMaxNoteSegment)
    return err("PT_NOTE segment of {:#x} bytes is too large", ph.p_filesz);
  std::vector<uint8_t> notes(ph.p_filesz);
  auto r = image.read(ph.p_offset, notes);
  if (!r.ok()) return context(r.error(), "PT_NOTE segment");
  // Notes are 4-byte aligned (Linux's elfnote.h); 8 only when the segment says so.
  const uint64_t align = ph.p_align == 8 ? 8 : 4;
  uint64_t pos = 0;
  while (pos + sizeof(Elf64Nhdr) <= notes.size()) {
    Elf64Nhdr nh;
    std::memcpy(&nh, notes.data() + pos, sizeof nh);
    const uint64_t name_off = pos + sizeof nh;
    const uint64_t desc_off = name_off + align_up(nh.n_namesz, align);
    if (desc_off > notes.size() || nh.n_descsz > notes.size() - desc_off)
      return err("ELF note at segment offset {:#x} runs past its PT_NOTE segment", pos);
    if (nh.n_type == kXenElfnotePhys32Entry && nh.n_namesz == 4 &&
        std::memcmp(notes.data() + name_off, "Xen", 4) == 0) {
      if (nh.n_descsz < 4)
        return err("Xen PHYS32_ENTRY note has a {}-byte descriptor (4 expected)", nh.n_descsz);
      uint32_t entry;
      std::memcpy(&entry, notes.data() + desc_off, 4);
      return std::optional<uint32_t>(entry);
    }
    pos = desc_off + align_up(nh.n_descsz, align);
  }
  return std::optional<uint32_t>();
}

bool inside_a_segment(const std::vector<Segment>& segs, uint64_t addr) {
  return std::any_of(segs.begin(), segs.end(),
                     [&](const Segment& s) { return addr >= s.paddr && addr - s.paddr < s.memsz; });
}

}  // namespace

bool is_elf_image(const boot::ImageSource& image) {
  uint8_t magic[4];
  return image.read(0, magic).ok() && std::memcmp(magic, kElfMagic, 4) == 0;
}

Result<LoadedKernel> load_elf_kernel(GuestMemory& mem, const boot::ImageSource& image,
                                     bool prefer_pvh) {
  auto ehdr_r = image.read_obj<Elf64Ehdr>(0);
  if (!ehdr_r.ok()) return err("ELF header is truncated ({} bytes)", image.size());
  const Elf64Ehdr& eh = *ehdr_r;
  if (eh.e_ident[4] != kElfClass64) return err("32-bit ELF kernels are not supported");
  if (eh.e_ident[5] != kElfData2Lsb) return err("big-endian ELF kernels are not supported");
  if (eh.e_machine != kEmX86_64) return err("ELF machine {} is not x86_64", eh.e_machine);
  if (eh.e_type != kEtExec) return err("ELF type {} is not an executable", eh.e_type);
  if (eh.e_phentsize != sizeof(Elf64Phdr))
    return err("ELF program header size {} (expected {})", eh.e_phentsize, sizeof(Elf64Phdr));
  if (eh.e_phnum == 0 || eh.e_phnum == kPnXnum)
    return err("ELF has an unsupported program header count {}", eh.e_phnum);
  const uint64_t ph_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64Phdr);
  if (eh.e_phoff > image.size() || ph_bytes > image.size() - eh.e_phoff)
    return err("ELF program headers at {:#x} ({} of them) are past the end of the file", eh.e_phoff,
               eh.e_phnum);

  std::vector<Elf64Phdr> phdrs(eh.e_phnum);
  IGN_TRY(image.read(eh.e_phoff, {reinterpret_cast<uint8_t*>(phdrs.data()), ph_bytes}));

  // Validate everything first, so a bad image leaves guest memory untouched.
  std::vector<Segment> segs;
  std::optional<uint32_t> pvh_entry;
  for (size_t i = 0; i < phdrs.size(); ++i) {
    const Elf64Phdr& ph = phdrs[i];
    if (ph.p_type == kPtNote && !pvh_entry) {
      auto found = find_pvh_entry(image, ph);
      if (!found.ok()) return context(found.error(), fmt::format("program header {}", i));
      pvh_entry = *found;
      continue;
    }
    if (ph.p_type != kPtLoad || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz)
      return err("segment {}: file size {:#x} exceeds memory size {:#x}", i, ph.p_filesz,
                 ph.p_memsz);
    if (ph.p_offset > image.size() || ph.p_filesz > image.size() - ph.p_offset)
      return err("segment {}: file range {:#x}+{:#x} is past the end of the file ({:#x})", i,
                 ph.p_offset, ph.p_filesz, image.size());
    if (ph.p_paddr + ph.p_memsz < ph.p_paddr)
      return err("segment {}: {:#x}+{:#x} overflows", i, ph.p_paddr, ph.p_memsz);
    if (ph.p_paddr < kHighMemStart)
      return err("segment {}: load address {:#x} is below {:#x}", i, ph.p_paddr, kHighMemStart);
    if (!boot::ram_covers(mem, ph.p_paddr, ph.p_memsz))
      return err("segment {}: [{:#x}, {:#x}) is not inside guest RAM", i, ph.p_paddr,
                 ph.p_paddr + ph.p_memsz);
    segs.push_back({ph.p_paddr, ph.p_offset, ph.p_filesz, ph.p_memsz});
  }
  if (segs.empty()) return err("ELF has no loadable segments");

  LoadedKernel k{};
  const bool pvh = pvh_entry.has_value() && prefer_pvh;
  k.protocol = pvh ? BootProtocol::Pvh : BootProtocol::Linux64;
  k.format = pvh ? "pvh" : "elf";
  k.entry = pvh ? *pvh_entry : eh.e_entry;
  if (!inside_a_segment(segs, k.entry))
    return err("{} entry point {:#x} is outside the loaded segments", pvh ? "PVH" : "ELF", k.entry);
  k.load_start = UINT64_MAX;
  k.load_end = 0;
  for (const Segment& s : segs) {
    k.load_start = std::min(k.load_start, s.paddr);
    k.load_end = std::max(k.load_end, s.paddr + s.memsz);
  }
  k.cmdline_max = kCmdlineMaxSize - 1;

  for (const Segment& s : segs) {
    IGN_TRY(image.copy_to_guest(mem, s.paddr, s.offset, s.filesz));
    IGN_TRY(mem.fill(s.paddr + s.filesz, 0, s.memsz - s.filesz));
  }
  return k;
}

}  // namespace ignition::x86_64
