// The MMDS data store.
#include "mmds/data_store.hpp"

#include <algorithm>

namespace ignition::mmds {

namespace {

size_t serialized_size(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
}

// One reference token of a JSON pointer, "~1" and "~0" unescaped; nullopt for a bad escape.
std::optional<std::string> unescape(std::string_view token) {
  std::string out;
  for (size_t i = 0; i < token.size(); ++i) {
    if (token[i] != '~') {
      out.push_back(token[i]);
      continue;
    }
    if (i + 1 == token.size() || (token[i + 1] != '0' && token[i + 1] != '1')) return std::nullopt;
    out.push_back(token[++i] == '0' ? '~' : '/');
  }
  return out;
}

// An array index as RFC 6901 writes it: digits, no leading zero.
std::optional<size_t> parse_index(std::string_view token) {
  if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0'))
    return std::nullopt;
  size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

}  // namespace

Result<void> DataStore::put(nlohmann::json data) {
  if (serialized_size(data) > limit_) return Error{std::string(kLimitExceeded)};
  std::lock_guard lock(mu_);
  data_ = std::move(data);
  initialized_ = true;
  return {};
}

Result<void> DataStore::patch(const nlohmann::json& patch) {
  std::lock_guard lock(mu_);
  if (!initialized_) return err("MMDS error: The MMDS data store is not initialized.");
  nlohmann::json merged = data_;
  merged.merge_patch(patch);
  if (serialized_size(merged) > limit_) return Error{std::string(kLimitExceeded)};
  data_ = std::move(merged);
  return {};
}

nlohmann::json DataStore::get() const {
  std::lock_guard lock(mu_);
  return data_.is_null() ? nlohmann::json::object() : data_;
}

bool DataStore::initialized() const {
  std::lock_guard lock(mu_);
  return initialized_;
}

std::optional<nlohmann::json> DataStore::find(std::string_view pointer) const {
  if (!pointer.empty() && pointer[0] != '/') return std::nullopt;
  std::lock_guard lock(mu_);
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const nlohmann::json* at = data_.is_null() ? &kEmpty : &data_;
  while (!pointer.empty()) {
    pointer.remove_prefix(1);  // the '/'
    size_t end = std::min(pointer.find('/'), pointer.size());
    auto token = unescape(pointer.substr(0, end));
    pointer.remove_prefix(end);
    if (!token) return std::nullopt;
    if (at->is_object()) {
      auto it = at->find(*token);
      if (it == at->end()) return std::nullopt;
      at = &*it;
    } else if (at->is_array()) {
      auto index = parse_index(*token);
      if (!index || *index >= at->size()) return std::nullopt;
      at = &(*at)[*index];
    } else {
      return std::nullopt;
    }
  }
  return *at;
}

Result<std::string> DataStore::issue_token(uint32_t ttl_seconds, Clock::time_point now) {
  std::lock_guard lock(mu_);
  return tokens_.issue(ttl_seconds, now);
}

bool DataStore::token_valid(std::string_view token, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return tokens_.valid(token, now);
}

}  // namespace ignition::mmds
