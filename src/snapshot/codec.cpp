// Encoder and Decoder bodies; every Decoder read goes through take(), the one bounds check.
#include "snapshot/codec.hpp"

#include <algorithm>

namespace ignition::snapshot {

void Encoder::raw(std::span<const uint8_t> v) {
  out_.insert(out_.end(), v.begin(), v.end());
}

void Encoder::bytes(std::span<const uint8_t> v) {
  u64(v.size());
  raw(v);
}

void Encoder::str(std::string_view v) {
  bytes({reinterpret_cast<const uint8_t*>(v.data()), v.size()});
}

bool Decoder::take(size_t n) {
  if (!ok()) return false;
  if (n > remaining()) {
    fail(fmt::format("truncated: {} bytes needed at offset {}, {} left", n, pos_, remaining()));
    return false;
  }
  pos_ += n;
  return true;
}

void Decoder::raw(std::span<uint8_t> out) {
  const size_t start = pos_;
  if (!take(out.size())) {
    std::fill(out.begin(), out.end(), 0);
    return;
  }
  if (!out.empty()) std::memcpy(out.data(), in_.data() + start, out.size());
}

bool Decoder::boolean() {
  const size_t at = pos_;
  uint8_t v = u8();
  if (v > 1) fail(fmt::format("invalid boolean {} at offset {}", v, at));
  return v == 1;
}

size_t Decoder::fit(uint64_t n, size_t min_element_size) {
  if (!ok()) return 0;
  const size_t fit = min_element_size ? remaining() / min_element_size : remaining();
  if (n > fit) {
    fail(fmt::format("truncated: a count of {} before offset {} needs more than the {} bytes left",
                     n, pos_, remaining()));
    return 0;
  }
  return static_cast<size_t>(n);
}

std::span<const uint8_t> Decoder::view(size_t n) {
  const size_t start = pos_;
  if (!take(n)) return {};
  return in_.subspan(start, n);
}

std::span<const uint8_t> Decoder::bytes_view() {
  return view(count(1));
}

std::vector<uint8_t> Decoder::bytes() {
  auto view = bytes_view();
  return {view.begin(), view.end()};
}

std::string Decoder::str() {
  auto view = bytes_view();
  return {view.begin(), view.end()};
}

std::string_view Decoder::str_view() {
  auto view = bytes_view();
  return {reinterpret_cast<const char*>(view.data()), view.size()};
}

void Decoder::fail(std::string message) {
  if (ok()) error_ = message.empty() ? "invalid data" : std::move(message);
}

Result<void> Decoder::finish() const {
  if (!ok()) return Error{error_};
  if (remaining() != 0)
    return err("{} unexpected bytes after the last field at offset {}", remaining(), pos_);
  return {};
}

}  // namespace ignition::snapshot
