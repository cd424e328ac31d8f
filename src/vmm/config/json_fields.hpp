// Strict reading of Firecracker-style JSON bodies: unknown fields, wrong types and missing
// fields become one-line errors that name the field (serde's deny_unknown_fields behaviour).
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

// Parses JSON text without letting exceptions out. Syntax errors carry line and column;
// a key repeated within one object is an error (nlohmann would silently keep the last).
Result<nlohmann::json> parse_json_text(std::string_view text);

// Reads a JSON value as an unsigned integer no larger than `max`. Accepts both of nlohmann's
// integer kinds (text parses to unsigned, C++-built values are signed); rejects floats.
Result<uint64_t> json_to_uint(const nlohmann::json& v, std::string_view field, uint64_t max);

// The T of a Result<T>, to name what a parse function yields.
template <typename R>
struct ResultValue;
template <typename T>
struct ResultValue<Result<T>> {
  using type = T;
};
template <typename Parse>
using ParsedType = typename ResultValue<std::invoke_result_t<Parse, const nlohmann::json&>>::type;

// Maps a string to one of `choices`, or fails listing them: "field 'x' must be one of A, B".
template <typename E>
Result<E> parse_enum(std::string_view field, std::string_view value,
                     std::initializer_list<std::pair<std::string_view, E>> choices);

// Fails unless `value` is one of `choices`, listing them.
Result<void> check_one_of(std::string_view field, std::string_view value,
                          std::initializer_list<std::string_view> choices);

// A view of one JSON object whose keys were checked against the allowed set on open().
// Optional fields treat an explicit null as absent, as serde does for Option<T>.
class FieldReader {
 public:
  static Result<FieldReader> open(const nlohmann::json& j,
                                  std::initializer_list<std::string_view> allowed);

  // The value at `key`, or nullptr when the key is absent or null.
  const nlohmann::json* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  Result<std::string> required_string(std::string_view key) const;
  Result<std::optional<std::string>> optional_string(std::string_view key) const;
  // A required string that must also be non-empty (paths, names).
  Result<std::string> required_nonempty_string(std::string_view key) const;

  Result<bool> required_bool(std::string_view key) const;
  Result<std::optional<bool>> optional_bool(std::string_view key) const;
  Result<bool> bool_or(std::string_view key, bool fallback) const;

  template <std::unsigned_integral T>
  Result<T> required_uint(std::string_view key) const;
  template <std::unsigned_integral T>
  Result<std::optional<T>> optional_uint(std::string_view key) const;
  template <std::unsigned_integral T>
  Result<T> uint_or(std::string_view key, T fallback) const;

  // Runs `parse` on the value at `key`; its errors are prefixed with the key.
  template <typename Parse>
  Result<ParsedType<Parse>> required_with(std::string_view key, Parse parse) const;
  template <typename Parse>
  Result<std::optional<ParsedType<Parse>>> optional_with(std::string_view key, Parse parse) const;
  // An array whose elements go through `parse`; absent or null is an empty array. Element
  // errors are prefixed "key[i]".
  template <typename Parse>
  Result<std::vector<ParsedType<Parse>>> array_with(std::string_view key, Parse parse) const;

 private:
  explicit FieldReader(const nlohmann::json* obj) : obj_(obj) {}
  Error missing(std::string_view key) const;

  const nlohmann::json* obj_;
};

// "field 'x' must be <expected>, got <json type>".
Error type_error(std::string_view field, std::string_view expected, const nlohmann::json& got);

// A nullable JSON value: the scalar, or null when absent.
template <typename T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

// A nullable JSON object: to_json(*v), or null when absent.
template <typename T>
nlohmann::json to_json_or_null(const std::optional<T>& v) {
  return v ? to_json(*v) : nlohmann::json();
}

// --- template definitions ---

template <typename E>
Result<E> parse_enum(std::string_view field, std::string_view value,
                     std::initializer_list<std::pair<std::string_view, E>> choices) {
  std::string names;
  for (const auto& [name, e] : choices) {
    if (name == value) return e;
    names += names.empty() ? "" : ", ";
    names += name;
  }
  return err("field '{}' must be one of {}; got '{}'", field, names, value);
}

template <std::unsigned_integral T>
Result<T> FieldReader::required_uint(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return missing(key);
  IGN_ASSIGN_OR_RETURN(uint64_t n, json_to_uint(*v, key, std::numeric_limits<T>::max()));
  return static_cast<T>(n);
}

template <std::unsigned_integral T>
Result<std::optional<T>> FieldReader::optional_uint(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::optional<T>{};
  IGN_ASSIGN_OR_RETURN(uint64_t n, json_to_uint(*v, key, std::numeric_limits<T>::max()));
  return std::optional<T>{static_cast<T>(n)};
}

template <std::unsigned_integral T>
Result<T> FieldReader::uint_or(std::string_view key, T fallback) const {
  IGN_ASSIGN_OR_RETURN(std::optional<T> v, optional_uint<T>(key));
  return v.value_or(fallback);
}

template <typename Parse>
Result<ParsedType<Parse>> FieldReader::required_with(std::string_view key, Parse parse) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return missing(key);
  auto r = parse(*v);
  if (!r.ok()) return context(r.error(), key);
  return r;
}

template <typename Parse>
Result<std::optional<ParsedType<Parse>>> FieldReader::optional_with(std::string_view key,
                                                                    Parse parse) const {
  using T = ParsedType<Parse>;
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::optional<T>{};
  auto r = parse(*v);
  if (!r.ok()) return context(r.error(), key);
  return std::optional<T>{std::move(r).value()};
}

template <typename Parse>
Result<std::vector<ParsedType<Parse>>> FieldReader::array_with(std::string_view key,
                                                               Parse parse) const {
  std::vector<ParsedType<Parse>> out;
  const nlohmann::json* v = find(key);
  if (v == nullptr) return out;
  if (!v->is_array()) return type_error(key, "an array", *v);
  for (size_t i = 0; i < v->size(); ++i) {
    auto r = parse((*v)[i]);
    if (!r.ok()) return context(r.error(), fmt::format("{}[{}]", key, i));
    out.push_back(std::move(r).value());
  }
  return out;
}

}  // namespace ignition::config
