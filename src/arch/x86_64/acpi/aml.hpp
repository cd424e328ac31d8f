// A small AML (ACPI Machine Language) byte-code builder: just the objects ignition's DSDT
// needs. Terms are values that nest by value; a bad name or range poisons the term, and
// encode() reports the first such error instead of emitting broken byte code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace ignition::x86_64::aml {

// Encoded bytes, or the reason they could not be encoded. Tagged so that a resource
// descriptor cannot be placed where a term is expected and vice versa.
template <typename Tag>
class Encoded {
 public:
  static Encoded of(std::vector<uint8_t> bytes) {
    Encoded e;
    e.bytes_ = std::move(bytes);
    return e;
  }
  static Encoded invalid(std::string why) {
    Encoded e;
    e.error_ = std::move(why);
    return e;
  }

  bool ok() const { return error_.empty(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  const std::string& error() const { return error_; }

 private:
  std::vector<uint8_t> bytes_;
  std::string error_;
};

using Term = Encoded<struct TermTag>;          // an AML object: data, Name, Device, ...
using Resource = Encoded<struct ResourceTag>;  // one descriptor of a ResourceTemplate

// ---- Data objects ----

// The shortest encoding: Zero, One, or a Byte/Word/DWord/QWord constant.
Term integer(uint64_t value);
// A NUL-terminated ASCII string constant; rejects NUL and non-ASCII bytes.
Term string(std::string_view value);
// EISAID("PNP0501"): three upper-case letters and four hex digits, compressed to a DWord.
Term eisa_id(std::string_view id);
// Package () { elements... }, at most 255 elements.
Term package(std::vector<Term> elements);

// ---- Named objects and scopes ----
// Paths use ASL spelling: "\\_SB_.COM1", "_SB.V000", "^PARENT"; segments shorter than
// four characters are padded with '_' as ASL does.

Term name(std::string_view path, Term value);
Term scope(std::string_view path, std::vector<Term> body);
Term device(std::string_view path, std::vector<Term> body);
Term method(std::string_view path, uint8_t arg_count, bool serialized, std::vector<Term> body);
Term return_value(Term value);

// ---- Method bodies: just enough for an event method that forwards to Notify ----

// Arg0 .. Arg6 inside a method.
Term arg(uint8_t index);
// LEqual (a, b)
Term equal(Term a, Term b);
// If (predicate) { body... }
Term if_then(Term predicate, std::vector<Term> body);
// Notify (path, value): hands `value` (0x80 = "device-specific change") to the driver
// of the device at `path`.
Term notify(std::string_view path, Term value);

// ---- Resource templates (the value of _CRS) ----

Term resource_template(std::vector<Resource> resources);
// Memory32Fixed (ReadWrite|ReadOnly, base, length)
Resource memory32_fixed(uint32_t base, uint32_t length, bool read_write = true);
// IO (Decode16, min, max, alignment, length)
Resource io_port(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);

enum class Trigger : uint8_t { kLevel, kEdge };
enum class Polarity : uint8_t { kActiveHigh, kActiveLow };
enum class Sharing : uint8_t { kExclusive, kShared };
// Interrupt (ResourceConsumer, trigger, polarity, sharing) { gsi }: the extended IRQ
// descriptor, which, unlike IRQ(), can name GSIs above 15.
Resource interrupt(uint32_t gsi, Trigger trigger, Polarity polarity, Sharing sharing);

// ---- Encoding helpers, exposed for tests ----

// PkgLength for a body of `body_size` bytes (the result counts its own bytes too).
Result<std::vector<uint8_t>> pkg_length(size_t body_size);
// A NameString for `path` as described above.
Result<std::vector<uint8_t>> name_string(std::string_view path);

// Concatenates top-level terms into a TermList (a DSDT body), or the first error.
Result<std::vector<uint8_t>> encode(const std::vector<Term>& terms);

}  // namespace ignition::x86_64::aml
