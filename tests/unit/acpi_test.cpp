// ACPI tables: the AML encoder's corner cases, the tables' checksums and pointers read back
// from guest memory, and an independent check by ACPICA's disassembler (iasl -d).
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "arch/x86_64/acpi/acpi.hpp"
#include "arch/x86_64/acpi/aml.hpp"
#include "arch/x86_64/acpi/dsdt.hpp"
#include "arch/x86_64/acpi/sdt.hpp"
#include "arch/x86_64/layout.hpp"
#include "devices/legacy/acpi_sleep.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes ok_bytes(const aml::Term& t) {
  EXPECT_TRUE(t.ok()) << t.error();
  return t.bytes();
}

// ---------------------------------------------------------------- AML encoder

// Decodes a PkgLength the way an AML interpreter does: {value, bytes used}.
std::pair<size_t, size_t> decode_pkg_length(const Bytes& b) {
  const size_t follow = b.at(0) >> 6;
  if (follow == 0) return {b[0] & 0x3f, 1};
  size_t value = b[0] & 0x0f;
  for (size_t i = 1; i <= follow; ++i) value |= size_t{b.at(i)} << (4 + 8 * (i - 1));
  return {value, follow + 1};
}

TEST(Aml, PkgLengthRoundTripsAndIsMinimal) {
  // Sizes around every boundary between 1, 2, 3 and 4 length bytes.
  for (size_t body : {0ul, 1ul, 61ul, 62ul, 63ul, 64ul, 4092ul, 4093ul, 4094ul, 4095ul, 0xffffcul,
                      0xffffdul, 0xffffeul, 0x100000ul, 0xffffffbul}) {
    auto encoded = aml::pkg_length(body);
    ASSERT_TRUE(encoded.ok()) << body;
    auto [value, used] = decode_pkg_length(*encoded);
    EXPECT_EQ(used, encoded->size()) << body;
    EXPECT_EQ(value, body + used) << "PkgLength counts itself, body " << body;
    const size_t minimal = body + 1 <= 0x3f      ? 1
                           : body + 2 <= 0xfff   ? 2
                           : body + 3 <= 0xfffff ? 3
                                                 : 4;
    EXPECT_EQ(used, minimal) << body;
  }
  EXPECT_EQ(*aml::pkg_length(62), (Bytes{63}));
  EXPECT_EQ(*aml::pkg_length(63), (Bytes{0x41, 0x04}));  // 65 = 0x041
  EXPECT_FALSE(aml::pkg_length(0xffffffc).ok());
}

TEST(Aml, Integers) {
  EXPECT_EQ(ok_bytes(aml::integer(0)), (Bytes{0x00}));
  EXPECT_EQ(ok_bytes(aml::integer(1)), (Bytes{0x01}));
  EXPECT_EQ(ok_bytes(aml::integer(5)), (Bytes{0x0a, 0x05}));
  EXPECT_EQ(ok_bytes(aml::integer(0x1234)), (Bytes{0x0b, 0x34, 0x12}));
  EXPECT_EQ(ok_bytes(aml::integer(0xd0001000)), (Bytes{0x0c, 0x00, 0x10, 0x00, 0xd0}));
  EXPECT_EQ(ok_bytes(aml::integer(0x100000000)),
            (Bytes{0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}));
}

TEST(Aml, StringsAndEisaIds) {
  EXPECT_EQ(ok_bytes(aml::string("AB")), (Bytes{0x0d, 'A', 'B', 0}));
  EXPECT_FALSE(aml::string(std::string("A\0B", 3)).ok());
  // PNP0501 as every ASL compiler encodes it.
  EXPECT_EQ(ok_bytes(aml::eisa_id("PNP0501")), (Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_EQ(ok_bytes(aml::eisa_id("PNP0C0C")), (Bytes{0x0c, 0x41, 0xd0, 0x0c, 0x0c}));
  for (const char* bad : {"PNP050", "pnp0501", "PNP05G1", "1NP0501"})
    EXPECT_FALSE(aml::eisa_id(bad).ok()) << bad;
}

TEST(Aml, NameStrings) {
  EXPECT_EQ(*aml::name_string("COM1"), (Bytes{'C', 'O', 'M', '1'}));
  EXPECT_EQ(*aml::name_string("_SB.COM1"), (Bytes{0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
  EXPECT_EQ(*aml::name_string("\\_S5"), (Bytes{'\\', '_', 'S', '5', '_'}));
  EXPECT_EQ(*aml::name_string("^^AB"), (Bytes{'^', '^', 'A', 'B', '_', '_'}));
  EXPECT_EQ(*aml::name_string("\\"), (Bytes{'\\', 0x00}));
  EXPECT_EQ(*aml::name_string("A.B.C"),
            (Bytes{0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  for (const char* bad : {"COM12", "1COM", "com1", "A..B", "A.", ".A", "\\A-B"})
    EXPECT_FALSE(aml::name_string(bad).ok()) << bad;
}

TEST(Aml, DeviceLayout) {
  // Device (DEV0) { Name (_UID, One) }: ExtOp DeviceOp PkgLength "DEV0" NameOp "_UID" One
  EXPECT_EQ(ok_bytes(aml::device("DEV0", {aml::name("_UID", aml::integer(1))})),
            (Bytes{0x5b, 0x82, 11, 'D', 'E', 'V', '0', 0x08, '_', 'U', 'I', 'D', 0x01}));
  // Method (_STA, 0, NotSerialized) { Return (0x0F) }
  EXPECT_EQ(ok_bytes(aml::method("_STA", 0, false, {aml::return_value(aml::integer(15))})),
            (Bytes{0x14, 9, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f}));
  // Package () { One, 0x05 }
  EXPECT_EQ(ok_bytes(aml::package({aml::integer(1), aml::integer(5)})),
            (Bytes{0x12, 5, 2, 0x01, 0x0a, 0x05}));
}

TEST(Aml, EventMethodLayout) {
  // If ((Arg0 == 0x17)) { Notify (\\_SB.VGEN, 0x80) }:
  // IfOp PkgLength (LEqualOp Arg0Op BytePrefix 0x17) (NotifyOp DualName BytePrefix 0x80)
  EXPECT_EQ(ok_bytes(aml::if_then(aml::equal(aml::arg(0), aml::integer(0x17)),
                                  {aml::notify("\\_SB_.VGEN", aml::integer(0x80))})),
            (Bytes{0xa0, 18, 0x93, 0x68, 0x0a, 0x17, 0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'V', 'G',
                   'E', 'N', 0x0a, 0x80}));
  EXPECT_EQ(ok_bytes(aml::arg(6)), Bytes{0x6e});
  EXPECT_FALSE(aml::arg(7).ok());
  EXPECT_FALSE(aml::equal(aml::arg(7), aml::integer(1)).ok());
  EXPECT_FALSE(aml::if_then(aml::integer(1), {aml::arg(9)}).ok());
  EXPECT_FALSE(aml::notify("bad name", aml::integer(0x80)).ok());
}

TEST(Aml, ResourceTemplateLayout) {
  auto crs = ok_bytes(aml::resource_template(
      {aml::memory32_fixed(0xd0001000, 0x1000),
       aml::interrupt(5, aml::Trigger::kEdge, aml::Polarity::kActiveHigh, aml::Sharing::kExclusive),
       aml::io_port(0x3f8, 0x3f8, 0, 8)}));
  const Bytes items = {0x86, 9,    0,    1,    0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00,
                       0x00, 0x89, 6,    0,    0x03, 1,    5,    0,    0,    0,    0x47,
                       1,    0xf8, 0x03, 0xf8, 0x03, 0,    8,    0x79, 0};
  Bytes expected = {0x11, static_cast<uint8_t>(3 + items.size()), 0x0a,
                    static_cast<uint8_t>(items.size())};
  expected.insert(expected.end(), items.begin(), items.end());
  EXPECT_EQ(crs, expected);
  EXPECT_FALSE(aml::io_port(0x10, 0x0f, 0, 1).ok());
  EXPECT_FALSE(aml::memory32_fixed(0xfffff000, 0x2000).ok());
}

TEST(Aml, ErrorsPropagateToTheTop) {
  auto bad = aml::scope("\\_SB_", {aml::device("V000", {aml::name("bad-name", aml::integer(1))})});
  EXPECT_FALSE(bad.ok());
  auto encoded = aml::encode({aml::name("GOOD", aml::integer(1)), bad});
  ASSERT_FALSE(encoded.ok());
  EXPECT_NE(encoded.error().message.find("bad-name"), std::string::npos) << encoded.error().message;
}

TEST(Aml, LongBodiesUseMultiByteLengths) {
  std::vector<aml::Term> many;
  for (int i = 0; i < 200; ++i)
    many.push_back(aml::name(fmt::format("N{:03}", i), aml::integer(i)));
  auto s = ok_bytes(aml::scope("\\_SB_", many));
  auto [value, used] = decode_pkg_length(Bytes(s.begin() + 1, s.end()));
  EXPECT_EQ(used, 2u);
  EXPECT_EQ(value, s.size() - 1) << "PkgLength covers everything after the opcode";
}

// ---------------------------------------------------------------- tables in guest memory

GuestMemory make_memory(uint64_t size = 2 << 20) {
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

uint8_t sum(const Bytes& b, size_t len) {
  uint8_t s = 0;
  for (size_t i = 0; i < len; ++i) s = static_cast<uint8_t>(s + b.at(i));
  return s;
}

template <typename T>
T load(const Bytes& b, size_t offset) {
  T value;
  std::memcpy(&value, b.data() + offset, sizeof(T));
  return value;
}

// A table read back from guest memory through its header's length.
struct Table {
  uint64_t addr;
  Bytes bytes;
  std::string signature() const { return std::string(bytes.begin(), bytes.begin() + 4); }
};

Table read_table(const GuestMemory& mem, uint64_t addr) {
  Bytes header = read_bytes(mem, addr, sizeof(acpi::SdtHeader));
  const auto length = load<uint32_t>(header, 4);
  EXPECT_GE(length, sizeof(acpi::SdtHeader));
  EXPECT_LE(addr + length, kAcpiTablesEnd);
  return {addr, read_bytes(mem, addr, length)};
}

// Follows RSDP -> XSDT -> FADT/MADT -> DSDT as an OS does, checking every checksum and
// header on the way. Returns the tables by signature, RSDP included.
std::map<std::string, Table> walk_tables(const GuestMemory& mem, uint64_t rsdp_addr) {
  std::map<std::string, Table> tables;
  Bytes rsdp = read_bytes(mem, rsdp_addr, 36);
  EXPECT_EQ(std::string(rsdp.begin(), rsdp.begin() + 8), "RSD PTR ");
  EXPECT_EQ(sum(rsdp, 20), 0) << "RSDP v1 checksum";
  EXPECT_EQ(sum(rsdp, 36), 0) << "RSDP extended checksum";
  EXPECT_EQ(rsdp[15], 2) << "revision";
  EXPECT_EQ(std::string(rsdp.begin() + 9, rsdp.begin() + 15), "IGNTN ");
  EXPECT_EQ(load<uint32_t>(rsdp, 20), 36u);
  EXPECT_EQ(load<uint32_t>(rsdp, 16), 0u) << "no RSDT";
  tables["RSDP"] = {rsdp_addr, rsdp};

  Table xsdt = read_table(mem, load<uint64_t>(rsdp, 24));
  EXPECT_EQ(xsdt.signature(), "XSDT");
  std::vector<Table> pending;
  for (size_t off = 36; off + 8 <= xsdt.bytes.size(); off += 8)
    pending.push_back(read_table(mem, load<uint64_t>(xsdt.bytes, off)));
  EXPECT_EQ((xsdt.bytes.size() - 36) % 8, 0u);
  tables["XSDT"] = xsdt;
  for (size_t i = 0; i < pending.size(); ++i) {  // grows: the FADT leads to the DSDT
    const Table t = pending[i];
    if (t.signature() == "FACP") pending.push_back(read_table(mem, load<uint64_t>(t.bytes, 140)));
    EXPECT_FALSE(tables.count(t.signature())) << "duplicate " << t.signature();
    tables[t.signature()] = t;
  }
  for (auto& [sig, t] : tables) {
    if (sig == "RSDP") continue;
    EXPECT_EQ(sum(t.bytes, t.bytes.size()), 0) << sig << " checksum";
    EXPECT_EQ(std::string(t.bytes.begin() + 10, t.bytes.begin() + 16), "IGNTN ") << sig;
    EXPECT_EQ(std::string(t.bytes.begin() + 16, t.bytes.begin() + 24), "IGNITION") << sig;
    EXPECT_GE(t.addr, kAcpiTablesAddr) << sig;
  }
  return tables;
}

std::vector<VirtioMmioSlot> virtio_slots(size_t n) {
  std::vector<VirtioMmioSlot> slots;
  for (size_t i = 0; i < n; ++i)
    slots.push_back({kVirtioMmioBase + i * kVirtioMmioSize, kVirtioMmioSize,
                     static_cast<uint32_t>(kVirtioIrqBase + i)});
  return slots;
}

// ---------------------------------------------------------------- iasl

struct Command {
  int status;
  std::string output;
};

Command run(const std::string& cmd) {
  Command result{-1, {}};
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  result.status = ::pclose(pipe);
  return result;
}

bool have_iasl() {
  return run("command -v iasl").status == 0;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++n;
  return n;
}

// iasl's text with the layout taken out: no "[0F4h 0244   1]" offset columns, no "//"
// comments, every run of whitespace one space. Patterns are compared in the same form.
std::string normalize(const std::string& text) {
  static const std::regex offset_column(R"(^\s*\[[0-9A-F]+h [0-9]+ +[0-9]+\])");
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = std::regex_replace(text.substr(start, end - start), offset_column, "");
    if (size_t comment = line.find("//"); comment != std::string::npos) line.resize(comment);
    out += line + ' ';
    start = end + 1;
  }
  std::string collapsed;
  for (char c : out) {
    const bool space = std::isspace(static_cast<unsigned char>(c));
    if (space && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed += space ? ' ' : c;
  }
  if (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
  return collapsed;
}

bool contains_words(const std::string& text, const std::string& pattern) {
  return normalize(text).find(normalize(pattern)) != std::string::npos;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ignition-acpi-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Disassembles `t` with iasl and returns the .dsl text; fails the test on any iasl error
// or checksum complaint.
std::string disassemble(const TempDir& dir, const std::string& name, const Table& t) {
  const auto dat = dir.path() / (name + ".dat");
  {
    std::ofstream out(dat, std::ios::binary);
    out.write(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  }
  Command c = run("cd '" + dir.path().string() + "' && iasl -d '" + dat.string() + "'");
  EXPECT_EQ(c.status, 0) << "iasl -d " << name << ":\n" << c.output;
  const std::string dsl = read_file(dir.path() / (name + ".dsl"));
  EXPECT_FALSE(dsl.empty()) << "iasl wrote no " << name << ".dsl:\n" << c.output;
  for (const std::string& text : {dsl, c.output}) {
    EXPECT_EQ(text.find("Incorrect checksum"), std::string::npos) << name << ":\n" << text;
    EXPECT_EQ(text.find("**** "), std::string::npos) << name << " has iasl complaints:\n" << text;
    EXPECT_EQ(text.find("Error"), std::string::npos) << name << ":\n" << text;
  }
  return dsl;
}

struct Shape {
  uint32_t vcpus;
  size_t devices;
};

class AcpiTables : public testing::TestWithParam<Shape> {};

TEST_P(AcpiTables, ChecksumsPointersAndContents) {
  const auto [vcpus, devices] = GetParam();
  GuestMemory mem = make_memory();
  auto rsdp = write_acpi_tables(mem, {vcpus, virtio_slots(devices)});
  ASSERT_TRUE(rsdp.ok()) << rsdp.error().message;
  EXPECT_EQ(*rsdp, kRsdpAddr);

  auto tables = walk_tables(mem, *rsdp);
  ASSERT_EQ(tables.size(), 5u) << "RSDP, XSDT, FACP, APIC, DSDT";
  for (const char* sig : {"XSDT", "FACP", "APIC", "DSDT"}) ASSERT_TRUE(tables.count(sig)) << sig;

  // FADT: hardware-reduced, revision 6, sleep registers at the sleep port.
  const Bytes& fadt = tables["FACP"].bytes;
  EXPECT_EQ(fadt.size(), 276u);
  EXPECT_EQ(fadt[8], 6) << "FADT revision";
  EXPECT_TRUE(load<uint32_t>(fadt, 112) & (1u << 20)) << "HW_REDUCED_ACPI";
  EXPECT_EQ(load<uint64_t>(fadt, 140), tables["DSDT"].addr) << "X_DSDT";
  for (size_t gas : {244u, 256u}) {  // SLEEP_CONTROL_REG, SLEEP_STATUS_REG
    EXPECT_EQ(fadt[gas], 1) << "system I/O";
    EXPECT_EQ(fadt[gas + 1], 8) << "bit width";
    EXPECT_EQ(fadt[gas + 3], 1) << "byte access";
    EXPECT_EQ(load<uint64_t>(fadt, gas + 4), kAcpiSleepPort);
  }
  EXPECT_EQ(std::string(fadt.begin() + 268, fadt.begin() + 276), "IGNITION");

  // MADT: one enabled Local APIC per vCPU with APIC id = index, one IOAPIC.
  const Bytes& madt = tables["APIC"].bytes;
  EXPECT_EQ(load<uint32_t>(madt, 36), kLapicAddr);
  std::vector<uint8_t> apic_ids;
  int ioapics = 0;
  for (size_t off = 44; off < madt.size();) {
    const uint8_t type = madt[off], len = madt[off + 1];
    ASSERT_GE(len, 2);
    ASSERT_LE(off + len, madt.size());
    if (type == 0) {
      EXPECT_EQ(load<uint32_t>(madt, off + 4) & 1, 1u) << "enabled";
      EXPECT_EQ(madt[off + 2], madt[off + 3]) << "processor uid = apic id";
      apic_ids.push_back(madt[off + 3]);
    } else if (type == 1) {
      ++ioapics;
      EXPECT_EQ(load<uint32_t>(madt, off + 4), kIoapicAddr);
      EXPECT_EQ(load<uint32_t>(madt, off + 8), 0u) << "GSI base";
    }
    off += len;
  }
  std::vector<uint8_t> expected_ids(vcpus);
  for (uint32_t i = 0; i < vcpus; ++i) expected_ids[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(apic_ids, expected_ids);
  EXPECT_EQ(ioapics, 1);

  // DSDT: one LNRO0005 per device.
  const Bytes& dsdt = tables["DSDT"].bytes;
  EXPECT_EQ(count(std::string(dsdt.begin(), dsdt.end()), "LNRO0005"), devices);

  // ACPICA's own reading of the same bytes.
  ASSERT_TRUE(have_iasl()) << "iasl not found: install acpica-tools (setup.sh does) to run "
                              "the ACPI disassembly checks";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());

  const std::string fadt_dsl = disassemble(dir, "facp", tables["FACP"]);
  EXPECT_TRUE(contains_words(fadt_dsl, "Hardware Reduced (V5) : 1")) << fadt_dsl;
  EXPECT_TRUE(contains_words(fadt_dsl, "Revision : 06")) << fadt_dsl;
  EXPECT_TRUE(contains_words(fadt_dsl,
                             "Sleep Control Register : [Generic Address Structure] "
                             "Space ID : 01 [SystemIO] Bit Width : 08 Bit Offset : 00 "
                             "Encoded Access Width : 01 [Byte Access:8] Address : "
                             "00000000000003C0"))
      << fadt_dsl;
  EXPECT_TRUE(contains_words(fadt_dsl,
                             "Sleep Status Register : [Generic Address Structure] "
                             "Space ID : 01 [SystemIO]"))
      << fadt_dsl;
  EXPECT_TRUE(contains_words(fadt_dsl, fmt::format("DSDT Address : {:016X}", tables["DSDT"].addr)))
      << fadt_dsl;

  const std::string madt_dsl = disassemble(dir, "apic", tables["APIC"]);
  EXPECT_EQ(count(madt_dsl, "[Processor Local APIC]"), vcpus) << madt_dsl;
  EXPECT_EQ(count(madt_dsl, "[I/O APIC]"), 1u) << madt_dsl;
  EXPECT_TRUE(contains_words(madt_dsl, "Address : FEC00000")) << madt_dsl;
  EXPECT_TRUE(contains_words(madt_dsl,
                             "[Interrupt Source Override] Length : 0A Bus : 00 "
                             "Source : 04 Interrupt : 00000004"))
      << madt_dsl;

  const std::string xsdt_dsl = disassemble(dir, "xsdt", tables["XSDT"]);
  EXPECT_TRUE(
      contains_words(xsdt_dsl, fmt::format("ACPI Table Address 0 : {:016X}", tables["FACP"].addr)))
      << xsdt_dsl;
  // (This iasl cannot read a bare RSDP file; walk_tables() checked it above.)

  const std::string dsdt_dsl = disassemble(dir, "dsdt", tables["DSDT"]);
  EXPECT_EQ(count(dsdt_dsl, "Name (_HID, \"LNRO0005\")"), devices) << dsdt_dsl;
  for (size_t i = 0; i < devices; ++i) {
    const auto slot = virtio_slots(devices)[i];
    EXPECT_TRUE(contains_words(dsdt_dsl, fmt::format("Device (V{:03})", i))) << dsdt_dsl;
    EXPECT_TRUE(contains_words(
        dsdt_dsl,
        fmt::format("Memory32Fixed (ReadWrite, 0x{:08X}, 0x{:08X}, )", slot.base, slot.size)))
        << dsdt_dsl;
    EXPECT_TRUE(
        contains_words(dsdt_dsl, fmt::format("Interrupt (ResourceConsumer, Edge, ActiveHigh, "
                                             "Exclusive, ,, ) {{ 0x{:08X}, }}",
                                             slot.irq)))
        << dsdt_dsl;
  }
  EXPECT_TRUE(contains_words(dsdt_dsl, "Device (COM1)")) << dsdt_dsl;
  EXPECT_TRUE(contains_words(dsdt_dsl, "Name (_HID, EisaId (\"PNP0501\")")) << dsdt_dsl;
  EXPECT_TRUE(contains_words(dsdt_dsl, "IO (Decode16, 0x03F8, 0x03F8, 0x00, 0x08, )")) << dsdt_dsl;
  EXPECT_TRUE(contains_words(dsdt_dsl, "Name (\\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })"))
      << dsdt_dsl;

  // The disassembly must compile back: ACPICA accepts the namespace we built.
  Command c = run("cd '" + dir.path().string() + "' && iasl -p recompiled dsdt.dsl");
  EXPECT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains_words(c.output, "0 Errors")) << c.output;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AcpiTables,
                         testing::Values(Shape{1, 0}, Shape{1, 1}, Shape{2, 0}, Shape{2, 3},
                                         Shape{8, 1}, Shape{8, 3}, Shape{254, 3}),
                         [](const testing::TestParamInfo<Shape>& info) {
                           return fmt::format("{}vcpus_{}devices", info.param.vcpus,
                                              info.param.devices);
                         });

TEST(AcpiTablesDsdt, VmGenIdAndItsEventDevice) {
  GuestMemory mem = make_memory();
  AcpiConfig config{2, virtio_slots(2)};
  config.vmgenid = VmGenIdSlot{kVmGenIdAddr, kVmGenIdIrq};
  auto rsdp = write_acpi_tables(mem, config);
  ASSERT_TRUE(rsdp.ok()) << rsdp.error().message;
  auto tables = walk_tables(mem, *rsdp);
  ASSERT_TRUE(tables.count("DSDT"));

  ASSERT_TRUE(have_iasl()) << "iasl not found: install acpica-tools";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string dsl = disassemble(dir, "dsdt", tables["DSDT"]);
  for (const std::string& expected : {
           std::string("Device (VGEN) { Name (_HID, \"IGNT0001\") Name (_CID, \"VM_Gen_Counter\") "
                       "Name (_DDN, \"VM_Gen_Counter\")"),
           fmt::format("Name (ADDR, Package (0x02) {{ 0x{:08X}, Zero }})", kVmGenIdAddr),
           std::string("Device (GED) { Name (_HID, \"ACPI0013\" /* Generic Event Device */)"),
           fmt::format("Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) "
                       "{{ 0x{:08X}, }}",
                       kVmGenIdIrq),
           fmt::format("Method (_EVT, 1, Serialized) {{ If ((Arg0 == 0x{:02X})) {{ "
                       "Notify (\\_SB.VGEN, 0x80)",
                       kVmGenIdIrq),
       })
    EXPECT_TRUE(contains_words(dsl, expected)) << expected << "\n" << dsl;
  // The virtio devices are still all there.
  EXPECT_EQ(count(dsl, "Name (_HID, \"LNRO0005\")"), 2u) << dsl;

  Command c = run("cd '" + dir.path().string() + "' && iasl -p recompiled dsdt.dsl");
  EXPECT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains_words(c.output, "0 Errors")) << c.output;

  // Without the option there is no such device.
  GuestMemory plain = make_memory();
  ASSERT_TRUE(write_acpi_tables(plain, {2, virtio_slots(2)}).ok());
  auto plain_tables = walk_tables(plain, kRsdpAddr);  // kept: the DSDT's bytes live in it
  const Bytes& bytes = plain_tables["DSDT"].bytes;
  const std::string text(bytes.begin(), bytes.end());
  EXPECT_EQ(text.find("VGEN"), std::string::npos);
  EXPECT_EQ(text.find("ACPI0013"), std::string::npos);
}

TEST(AcpiTablesErrors, BadVmGenId) {
  GuestMemory mem = make_memory();
  const std::vector<VmGenIdSlot> bad = {
      {kVmGenIdAddr + 4, kVmGenIdIrq},  // not 8-byte aligned
      {kVmGenIdAddr, kIoapicPins},      // not an IOAPIC pin
      {kVmGenIdAddr, kSerialCom1Irq},   // COM1's
      {kVmGenIdAddr, kVirtioIrqBase},   // the first virtio device's
  };
  for (const VmGenIdSlot& slot : bad) {
    AcpiConfig config{1, virtio_slots(1)};
    config.vmgenid = slot;
    EXPECT_FALSE(write_acpi_tables(mem, config).ok()) << slot.addr << " gsi " << slot.gsi;
  }
}

TEST(AcpiTablesDsdt, SleepTypeMatchesTheSleepDevice) {
  // The guest writes the \_S5_ value back to the sleep port; the device must know it.
  EXPECT_EQ(acpi::kSleepTypeS5, devices::AcpiSleep::kS5);
}

TEST(AcpiTablesErrors, VcpuCount) {
  GuestMemory mem = make_memory();
  EXPECT_FALSE(write_acpi_tables(mem, {0, {}}).ok());
  auto too_many = write_acpi_tables(mem, {kAcpiMaxVcpus + 1, {}});
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("255"), std::string::npos) << too_many.error().message;
  EXPECT_TRUE(write_acpi_tables(mem, {kAcpiMaxVcpus, {}}).ok());
}

TEST(AcpiTablesErrors, BadVirtioSlots) {
  GuestMemory mem = make_memory();
  const VirtioMmioSlot good = {kVirtioMmioBase, kVirtioMmioSize, kVirtioIrqBase};
  const std::vector<std::vector<VirtioMmioSlot>> bad = {
      {{kVirtioMmioBase, kVirtioMmioSize, kIoapicPins}},           // not an IOAPIC pin
      {good, {kVirtioMmioBase + 0x1000, 0x1000, kVirtioIrqBase}},  // shared IRQ
      {{kVirtioMmioBase, kVirtioMmioSize, kSerialCom1Irq}},        // COM1's IRQ
      {{0x100000000, 0x1000, 6}},                                  // above 4 GiB
      {{0xfffff000, 0x2000, 6}},                                   // crosses 4 GiB
      {{kVirtioMmioBase, 0, 6}},                                   // empty
  };
  for (const auto& slots : bad) {
    auto r = write_acpi_tables(mem, {1, slots});
    EXPECT_FALSE(r.ok()) << "slot at " << slots.back().base << " irq " << slots.back().irq;
  }
}

TEST(AcpiTablesErrors, MemoryWithoutTheBiosArea) {
  GuestMemory mem = make_memory(0x80000);  // 512 KiB: no RAM at 0xe0000
  auto r = write_acpi_tables(mem, {1, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ACPI"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace ignition::x86_64
