// Strict JSON field reading for the configuration model.
#include "vmm/config/json_fields.hpp"

#include <set>

namespace ignition::config {

namespace {

// nlohmann's messages quote what it read so far, which may span lines; keep errors one line.
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c != '\r') {
      out += c;
    }
  }
  return out;
}

std::string describe(const nlohmann::json& v) {
  if (v.is_number() || v.is_boolean()) return fmt::format("{} {}", v.type_name(), v.dump());
  return v.type_name();
}

}  // namespace

Result<nlohmann::json> parse_json_text(std::string_view text) {
  // The parser callback sees each key as it is read; a stack of per-object key sets finds
  // repeats. It cannot fail the parse itself, so it records the first duplicate.
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) {
      keys.emplace_back();
    } else if (event == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == E::key && !keys.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && !duplicate) duplicate = k;
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::parse_error& e) {
    // what() is "[json.exception.parse_error.101] parse error at line L, column C: ...".
    std::string_view msg = e.what();
    if (auto pos = msg.find("] "); pos != std::string_view::npos) msg.remove_prefix(pos + 2);
    return Error{"malformed JSON: " + one_line(msg)};
  } catch (const nlohmann::json::exception& e) {
    return Error{"malformed JSON: " + one_line(e.what())};
  }
  if (duplicate) return err("duplicate field '{}'", *duplicate);
  return j;
}

Result<void> check_one_of(std::string_view field, std::string_view value,
                          std::initializer_list<std::string_view> choices) {
  std::string names;
  for (std::string_view c : choices) {
    if (c == value) return {};
    names += fmt::format("{}{}", names.empty() ? "" : ", ", c);
  }
  return err("field '{}' must be one of {}; got '{}'", field, names, value);
}

Error type_error(std::string_view field, std::string_view expected, const nlohmann::json& got) {
  return err("field '{}' must be {}, got {}", field, expected, describe(got));
}

Result<uint64_t> json_to_uint(const nlohmann::json& v, std::string_view field, uint64_t max) {
  uint64_t n = 0;
  if (v.is_number_unsigned()) {
    n = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return err("field '{}' must be a non-negative integer, got {}", field, s);
    n = static_cast<uint64_t>(s);
  } else {
    return type_error(field, "an unsigned integer", v);
  }
  if (n > max) return err("field '{}' is out of range: {} is larger than {}", field, n, max);
  return n;
}

Result<FieldReader> FieldReader::open(const nlohmann::json& j,
                                      std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) return err("expected a JSON object, got {}", describe(j));
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == key;
    if (known) continue;
    std::string names;
    for (std::string_view a : allowed) names += fmt::format("{}{}", names.empty() ? "" : ", ", a);
    return err("unknown field '{}'; expected one of: {}", key, names);
  }
  return FieldReader(&j);
}

const nlohmann::json* FieldReader::find(std::string_view key) const {
  auto it = obj_->find(key);
  if (it == obj_->end() || it->is_null()) return nullptr;
  return &*it;
}

Error FieldReader::missing(std::string_view key) const {
  return err("missing required field '{}'", key);
}

Result<std::string> FieldReader::required_string(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return missing(key);
  if (!v->is_string()) return type_error(key, "a string", *v);
  return v->get<std::string>();
}

Result<std::optional<std::string>> FieldReader::optional_string(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::optional<std::string>{};
  if (!v->is_string()) return type_error(key, "a string", *v);
  return std::optional<std::string>{v->get<std::string>()};
}

Result<std::string> FieldReader::required_nonempty_string(std::string_view key) const {
  IGN_ASSIGN_OR_RETURN(std::string s, required_string(key));
  if (s.empty()) return err("field '{}' must not be empty", key);
  return s;
}

Result<bool> FieldReader::required_bool(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return missing(key);
  if (!v->is_boolean()) return type_error(key, "a boolean", *v);
  return v->get<bool>();
}

Result<std::optional<bool>> FieldReader::optional_bool(std::string_view key) const {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return std::optional<bool>{};
  if (!v->is_boolean()) return type_error(key, "a boolean", *v);
  return std::optional<bool>{v->get<bool>()};
}

Result<bool> FieldReader::bool_or(std::string_view key, bool fallback) const {
  IGN_ASSIGN_OR_RETURN(std::optional<bool> v, optional_bool(key));
  return v.value_or(fallback);
}

}  // namespace ignition::config
