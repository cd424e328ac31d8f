// The protocol's line prefixes come from the guest's own header, so the two cannot drift.
#include "support/guest_report.hpp"

#include <charconv>

#include "../../guest/include/ign_protocol.h"

namespace ignition::test {
namespace {

// If `line` is "<prefix>" or "<prefix> rest", sets `rest` and returns true.
bool take_prefix(std::string_view line, std::string_view prefix, std::string_view& rest) {
  if (line.substr(0, prefix.size()) != prefix) return false;
  rest = line.substr(prefix.size());
  if (rest.empty()) return true;
  if (rest.front() != ' ') return false;
  rest.remove_prefix(1);
  return true;
}

// "name detail..." -> {name, detail}
GuestTestOutcome split_outcome(std::string_view rest) {
  size_t space = rest.find(' ');
  if (space == std::string_view::npos) return {std::string(rest), ""};
  return {std::string(rest.substr(0, space)), std::string(rest.substr(space + 1))};
}

std::optional<int> to_int(std::string_view s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void parse_line(std::string_view line, GuestReport& r) {
  std::string_view rest;
  if (take_prefix(line, IGN_LINE_BEGIN, rest)) {
    int boots = r.boots + 1;
    r = GuestReport{};
    r.boots = boots;
    r.entry = detail_field(rest, "entry").value_or("");
    if (r.entry.empty()) r.malformed.emplace_back(line);
  } else if (take_prefix(line, IGN_LINE_INFO, rest)) {
    if (rest.empty()) {
      r.malformed.emplace_back(line);
      return;
    }
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) {
      r.infos.emplace_back(std::string(rest), "");
    } else {
      r.infos.emplace_back(std::string(rest.substr(0, eq)), std::string(rest.substr(eq + 1)));
    }
  } else if (take_prefix(line, IGN_LINE_PASS, rest)) {
    if (rest.empty()) {
      r.malformed.emplace_back(line);
      return;
    }
    r.passes.push_back(split_outcome(rest));
  } else if (take_prefix(line, IGN_LINE_FAIL, rest)) {
    if (rest.empty()) {
      r.malformed.emplace_back(line);
      return;
    }
    r.fails.push_back(split_outcome(rest));
  } else if (take_prefix(line, IGN_LINE_END, rest)) {
    auto pass = to_int(detail_field(rest, "pass").value_or(""));
    auto fail = to_int(detail_field(rest, "fail").value_or(""));
    if (!pass || !fail) {
      r.malformed.emplace_back(line);
      return;
    }
    r.ended = true;
    r.end_pass = *pass;
    r.end_fail = *fail;
  } else if (line.substr(0, 4) == "IGN-") {
    r.malformed.emplace_back(line);
  }
}

const GuestTestOutcome* find(const std::vector<GuestTestOutcome>& list, std::string_view test) {
  for (const auto& o : list) {
    if (o.test == test) return &o;
  }
  return nullptr;
}

}  // namespace

GuestReport parse_guest_report(std::string_view output) {
  GuestReport report;
  while (!output.empty()) {
    size_t nl = output.find('\n');
    std::string_view line = output.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    parse_line(line, report);
    if (nl == std::string_view::npos) break;
    output.remove_prefix(nl + 1);
  }
  return report;
}

std::optional<std::string> detail_field(std::string_view detail, std::string_view key) {
  while (!detail.empty()) {
    size_t space = detail.find(' ');
    std::string_view word = detail.substr(0, space);
    if (word.size() > key.size() && word.substr(0, key.size()) == key && word[key.size()] == '=') {
      return std::string(word.substr(key.size() + 1));
    }
    if (space == std::string_view::npos) break;
    detail.remove_prefix(space + 1);
  }
  return std::nullopt;
}

bool GuestReport::passed(std::string_view test) const {
  return find(passes, test) != nullptr;
}
bool GuestReport::failed(std::string_view test) const {
  return find(fails, test) != nullptr;
}

std::optional<std::string> GuestReport::pass_detail(std::string_view test) const {
  const auto* o = find(passes, test);
  return o ? std::optional(o->detail) : std::nullopt;
}

std::optional<std::string> GuestReport::fail_detail(std::string_view test) const {
  const auto* o = find(fails, test);
  return o ? std::optional(o->detail) : std::nullopt;
}

std::optional<std::string> GuestReport::info(std::string_view key) const {
  for (const auto& [k, v] : infos) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::vector<std::string> GuestReport::infos_for(std::string_view key) const {
  std::vector<std::string> values;
  for (const auto& [k, v] : infos) {
    if (k == key) values.push_back(v);
  }
  return values;
}

bool GuestReport::has_info(std::string_view key) const {
  return info(key).has_value();
}

bool GuestReport::complete() const {
  return ended && end_pass == static_cast<int>(passes.size()) &&
         end_fail == static_cast<int>(fails.size());
}

std::string GuestReport::summary() const {
  std::string s = "boots=" + std::to_string(boots) + " entry=" + entry +
                  " ended=" + (ended ? "yes" : "no") + " passes=[";
  for (const auto& p : passes) s += " " + p.test;
  s += " ] fails=[";
  for (const auto& f : fails) s += " " + f.test + "(" + f.detail + ")";
  s += " ]";
  if (!malformed.empty()) s += " malformed=" + std::to_string(malformed.size());
  return s;
}

}  // namespace ignition::test
