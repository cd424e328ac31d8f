// Field-by-field binary encoding of snapshot state: little-endian integers, length-prefixed
// byte strings and vectors. Decoding is bounds-checked: a truncated or oversized input
// becomes an error, never a read past the buffer or a huge allocation.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "base/result.hpp"

namespace ignition::snapshot {

static_assert(std::endian::native == std::endian::little,
              "the snapshot encoding copies integers as the host stores them");

// Structs copied byte for byte: no padding, so the encoding is fully defined.
template <typename T>
concept PlainData = std::is_trivially_copyable_v<T> && std::has_unique_object_representations_v<T>;

class Encoder {
 public:
  void u8(uint8_t v) { put(v); }
  void u16(uint16_t v) { put(v); }
  void u32(uint32_t v) { put(v); }
  void u64(uint64_t v) { put(v); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  // A u64 length, then the bytes.
  void bytes(std::span<const uint8_t> v);
  void str(std::string_view v);
  // Just the bytes: for arrays whose length the type fixes.
  void raw(std::span<const uint8_t> v);
  // A padding-free struct (or integer, or array of them) as it is laid out in memory.
  template <PlainData T>
  void pod(const T& v) {
    raw({reinterpret_cast<const uint8_t*>(&v), sizeof(T)});
  }
  // A u64 count, then the elements as pod().
  template <PlainData T>
  void pod_vector(std::span<const T> v) {
    u64(v.size());
    raw({reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()});
  }

  const std::vector<uint8_t>& data() const& { return out_; }
  std::vector<uint8_t> take() && { return std::move(out_); }

 private:
  template <typename T>
  void put(T v) {
    raw({reinterpret_cast<const uint8_t*>(&v), sizeof(T)});
  }
  std::vector<uint8_t> out_;
};

// Reads what an Encoder wrote, in the same order. The first failure is sticky: later reads
// return zeros/empties and finish() reports it, so a decoder reads every field and checks
// once at the end.
class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> in) : in_(in) {}

  uint8_t u8() { return get<uint8_t>(); }
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  bool boolean();
  std::vector<uint8_t> bytes();
  // Like bytes(), without copying: a view into the input.
  std::span<const uint8_t> bytes_view();
  // The next `n` bytes as a view into the input (no length prefix).
  std::span<const uint8_t> view(size_t n);
  std::string str();
  // Like str(), without copying: a view into the input.
  std::string_view str_view();
  void raw(std::span<uint8_t> out);
  template <PlainData T>
  T pod() {
    T v{};
    raw({reinterpret_cast<uint8_t*>(&v), sizeof(T)});
    return v;
  }
  template <PlainData T>
  std::vector<T> pod_vector() {
    const size_t n = count(sizeof(T));
    std::vector<T> v(n);
    raw({reinterpret_cast<uint8_t*>(v.data()), n * sizeof(T)});
    return v;
  }
  // A u64 element count for a sequence whose elements take at least `min_element_size`
  // bytes each; fails (returning 0) if the rest of the input cannot hold that many.
  size_t count(size_t min_element_size) { return fit(u64(), min_element_size); }
  // `n`, a count read some other way, if the rest of the input can hold that many elements;
  // fails (returning 0) if not.
  size_t fit(uint64_t n, size_t min_element_size);

  // Marks the input invalid (a field decoded but its value is not allowed).
  void fail(std::string message);
  bool ok() const { return error_.empty(); }
  size_t offset() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }
  // The first failure, or an error if input is left over.
  Result<void> finish() const;

 private:
  template <typename T>
  T get() {
    T v{};
    raw({reinterpret_cast<uint8_t*>(&v), sizeof(T)});
    return v;
  }
  // Consumes `n` bytes, or fails and returns false.
  bool take(size_t n);

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace ignition::snapshot
