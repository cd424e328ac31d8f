// AML encodings from ACPI 6.5 chapter 20 (AML specification) and 6.4 (resource data types).
#include "arch/x86_64/acpi/aml.hpp"

#include <array>

#include <fmt/format.h>

namespace ignition::x86_64::aml {

namespace {

constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;
constexpr uint8_t kArg0Op = 0x68;
constexpr uint8_t kNotifyOp = 0x86;
constexpr uint8_t kLEqualOp = 0x93;
constexpr uint8_t kIfOp = 0xa0;
constexpr uint8_t kReturnOp = 0xa4;
constexpr uint8_t kNullName = 0x00;

// Resource data item tags (ACPI 6.5 section 6.4).
constexpr uint8_t kIoPortTag = 0x47;  // small item 0x08, 7 bytes follow
constexpr uint8_t kEndTag = 0x79;     // small item 0x0f, 1 byte (checksum) follows
constexpr uint8_t kMemory32FixedTag = 0x86;
constexpr uint8_t kExtendedIrqTag = 0x89;

void put_le(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void append(std::vector<uint8_t>& out, const std::vector<uint8_t>& more) {
  out.insert(out.end(), more.begin(), more.end());
}

bool lead_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || c == '_';
}
bool name_char(char c) {
  return lead_name_char(c) || (c >= '0' && c <= '9');
}

// Appends every child's bytes to `out`, or returns the first child's error.
template <typename T>
Result<void> append_all(std::vector<uint8_t>& out, const std::vector<T>& children) {
  for (const T& child : children) {
    if (!child.ok()) return Error{child.error()};
    append(out, child.bytes());
  }
  return {};
}

// opcode(s) PkgLength body: the shape of Scope, Device, Method, Buffer and Package.
Term with_pkg_length(std::vector<uint8_t> opcode, const std::vector<uint8_t>& body) {
  auto length = pkg_length(body.size());
  if (!length.ok()) return Term::invalid(length.error().message);
  append(opcode, *length);
  append(opcode, body);
  return Term::of(std::move(opcode));
}

// opcode(s) PkgLength NameString TermList.
Term named_block(std::vector<uint8_t> opcode, std::string_view path,
                 std::vector<uint8_t> after_name, const std::vector<Term>& body) {
  auto encoded_name = name_string(path);
  if (!encoded_name.ok()) return Term::invalid(encoded_name.error().message);
  std::vector<uint8_t> content = std::move(*encoded_name);
  append(content, after_name);
  if (auto r = append_all(content, body); !r.ok())
    return Term::invalid(fmt::format("in {}: {}", path, r.error().message));
  return with_pkg_length(std::move(opcode), content);
}

}  // namespace

Result<std::vector<uint8_t>> pkg_length(size_t body_size) {
  // One byte holds 0-63; with n > 1 bytes the lead byte keeps 4 bits and each follower 8.
  constexpr size_t kMaxForBytes[] = {0, 0x3f, 0xfff, 0xfffff, 0xfffffff};
  for (size_t n = 1; n <= 4; ++n) {
    const size_t total = body_size + n;
    if (total > kMaxForBytes[n]) continue;
    if (n == 1) return std::vector<uint8_t>{static_cast<uint8_t>(total)};
    std::vector<uint8_t> out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0xf))};
    for (size_t i = 1; i < n; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
    return out;
  }
  return err("AML package of {} bytes is too long for a PkgLength", body_size);
}

Result<std::vector<uint8_t>> name_string(std::string_view path) {
  std::vector<uint8_t> out;
  if (!path.empty() && path.front() == '\\') {
    out.push_back('\\');
    path.remove_prefix(1);
  } else {
    while (!path.empty() && path.front() == '^') {
      out.push_back('^');
      path.remove_prefix(1);
    }
  }
  if (path.empty()) {
    out.push_back(kNullName);
    return out;
  }

  std::vector<std::array<uint8_t, 4>> segments;
  for (size_t start = 0; start <= path.size();) {
    size_t dot = path.find('.', start);
    if (dot == std::string_view::npos) dot = path.size();
    std::string_view seg = path.substr(start, dot - start);
    if (seg.empty() || seg.size() > 4 || !lead_name_char(seg[0]))
      return err("AML name '{}': bad segment '{}'", path, seg);
    std::array<uint8_t, 4> padded{'_', '_', '_', '_'};
    for (size_t i = 0; i < seg.size(); ++i) {
      if (!name_char(seg[i])) return err("AML name '{}': bad character in '{}'", path, seg);
      padded[i] = static_cast<uint8_t>(seg[i]);
    }
    segments.push_back(padded);
    start = dot + 1;
  }
  if (segments.size() > 255) return err("AML name '{}' has too many segments", path);

  if (segments.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segments.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segments.size()));
  }
  for (const auto& seg : segments) out.insert(out.end(), seg.begin(), seg.end());
  return out;
}

Term integer(uint64_t value) {
  if (value == 0) return Term::of({kZeroOp});
  if (value == 1) return Term::of({kOneOp});
  std::vector<uint8_t> out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    put_le(out, value, 1);
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    put_le(out, value, 2);
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    put_le(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    put_le(out, value, 8);
  }
  return Term::of(std::move(out));
}

Term string(std::string_view value) {
  std::vector<uint8_t> out{kStringPrefix};
  for (char c : value) {
    auto byte = static_cast<uint8_t>(c);
    if (byte == 0 || byte > 0x7f) return Term::invalid("AML string must be ASCII without NUL");
    out.push_back(byte);
  }
  out.push_back(0);
  return Term::of(std::move(out));
}

Term eisa_id(std::string_view id) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bool valid = id.size() == 7;
  for (size_t i = 0; valid && i < 3; ++i) valid = id[i] >= 'A' && id[i] <= 'Z';
  for (size_t i = 3; valid && i < 7; ++i) valid = hex(id[i]) >= 0;
  if (!valid) return Term::invalid(fmt::format("bad EISA id '{}'", id));

  // Letters are 5 bits each ('A' = 1) and the digits 4 bits, packed big-endian into a
  // DWord whose bytes are stored in that order. Always a DWord, even for small values.
  uint32_t packed = static_cast<uint32_t>(id[0] - '@') << 26 |
                    static_cast<uint32_t>(id[1] - '@') << 21 |
                    static_cast<uint32_t>(id[2] - '@') << 16;
  for (size_t i = 3; i < 7; ++i) packed |= static_cast<uint32_t>(hex(id[i])) << (4 * (6 - i));
  return Term::of({kDWordPrefix, static_cast<uint8_t>(packed >> 24),
                   static_cast<uint8_t>(packed >> 16), static_cast<uint8_t>(packed >> 8),
                   static_cast<uint8_t>(packed)});
}

Term package(std::vector<Term> elements) {
  if (elements.size() > 255) return Term::invalid("AML package has more than 255 elements");
  std::vector<uint8_t> body{static_cast<uint8_t>(elements.size())};
  if (auto r = append_all(body, elements); !r.ok()) return Term::invalid(r.error().message);
  return with_pkg_length({kPackageOp}, body);
}

Term name(std::string_view path, Term value) {
  auto encoded_name = name_string(path);
  if (!encoded_name.ok()) return Term::invalid(encoded_name.error().message);
  if (!value.ok()) return Term::invalid(fmt::format("in {}: {}", path, value.error()));
  std::vector<uint8_t> out{kNameOp};
  append(out, *encoded_name);
  append(out, value.bytes());
  return Term::of(std::move(out));
}

Term scope(std::string_view path, std::vector<Term> body) {
  return named_block({kScopeOp}, path, {}, body);
}

Term device(std::string_view path, std::vector<Term> body) {
  return named_block({kExtOpPrefix, kDeviceOp}, path, {}, body);
}

Term method(std::string_view path, uint8_t arg_count, bool serialized, std::vector<Term> body) {
  if (arg_count > 7) return Term::invalid(fmt::format("method {}: at most 7 arguments", path));
  const auto flags = static_cast<uint8_t>(arg_count | (serialized ? 1 << 3 : 0));
  return named_block({kMethodOp}, path, {flags}, body);
}

Term return_value(Term value) {
  if (!value.ok()) return value;
  std::vector<uint8_t> out{kReturnOp};
  append(out, value.bytes());
  return Term::of(std::move(out));
}

Term arg(uint8_t index) {
  if (index > 6) return Term::invalid(fmt::format("Arg{}: methods have Arg0-Arg6", index));
  return Term::of({static_cast<uint8_t>(kArg0Op + index)});
}

Term equal(Term a, Term b) {
  std::vector<uint8_t> out{kLEqualOp};
  if (auto r = append_all(out, std::vector<Term>{std::move(a), std::move(b)}); !r.ok())
    return Term::invalid(r.error().message);
  return Term::of(std::move(out));
}

Term if_then(Term predicate, std::vector<Term> body) {
  if (!predicate.ok()) return predicate;
  std::vector<uint8_t> content = predicate.bytes();
  if (auto r = append_all(content, body); !r.ok()) return Term::invalid(r.error().message);
  return with_pkg_length({kIfOp}, content);
}

Term notify(std::string_view path, Term value) {
  auto target = name_string(path);
  if (!target.ok()) return Term::invalid(target.error().message);
  if (!value.ok()) return value;
  std::vector<uint8_t> out{kNotifyOp};
  append(out, *target);
  append(out, value.bytes());
  return Term::of(std::move(out));
}

Term resource_template(std::vector<Resource> resources) {
  std::vector<uint8_t> items;
  if (auto r = append_all(items, resources); !r.ok()) return Term::invalid(r.error().message);
  // A zero checksum byte means "treat the template as valid" (ACPI 6.5 6.4.2.9).
  items.push_back(kEndTag);
  items.push_back(0);

  // Buffer (size) { items }: BufferOp PkgLength BufferSize ByteList.
  std::vector<uint8_t> body = integer(items.size()).bytes();
  append(body, items);
  return with_pkg_length({kBufferOp}, body);
}

Resource memory32_fixed(uint32_t base, uint32_t length, bool read_write) {
  if (length != 0 && base + uint64_t{length} - 1 > 0xffffffff)
    return Resource::invalid(fmt::format("Memory32Fixed {:#x}+{:#x} passes 4 GiB", base, length));
  std::vector<uint8_t> out{kMemory32FixedTag};
  put_le(out, 9, 2);  // length of the item's data
  out.push_back(read_write ? 1 : 0);
  put_le(out, base, 4);
  put_le(out, length, 4);
  return Resource::of(std::move(out));
}

Resource io_port(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  if (min > max) return Resource::invalid(fmt::format("IO range {:#x} > {:#x}", min, max));
  std::vector<uint8_t> out{kIoPortTag, 1 /* decodes 16 address bits */};
  put_le(out, min, 2);
  put_le(out, max, 2);
  out.push_back(alignment);
  out.push_back(length);
  return Resource::of(std::move(out));
}

Resource interrupt(uint32_t gsi, Trigger trigger, Polarity polarity, Sharing sharing) {
  std::vector<uint8_t> out{kExtendedIrqTag};
  put_le(out, 6, 2);  // flags, count, one 32-bit interrupt number
  uint8_t flags = 1;  // consumer
  if (trigger == Trigger::kEdge) flags |= 1 << 1;
  if (polarity == Polarity::kActiveLow) flags |= 1 << 2;
  if (sharing == Sharing::kShared) flags |= 1 << 3;
  out.push_back(flags);
  out.push_back(1);
  put_le(out, gsi, 4);
  return Resource::of(std::move(out));
}

Result<std::vector<uint8_t>> encode(const std::vector<Term>& terms) {
  std::vector<uint8_t> out;
  IGN_TRY(append_all(out, terms));
  return out;
}

}  // namespace ignition::x86_64::aml
