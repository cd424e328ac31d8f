// Parses what the test guests print on their console (the IGN-* lines defined in
// guest/include/ign_protocol.h) into a structure tests can assert on.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ignition::test {

struct GuestTestOutcome {
  std::string test;
  std::string detail;  // the rest of the line: "ticks=5 us=4358", a failure reason, or ""
};

struct GuestReport {
  // IGN-BEGIN lines seen. A guest that reboots prints a new report; each IGN-BEGIN starts
  // over, so the fields below describe the last boot.
  int boots = 0;
  std::string entry;                                       // entry=<...> of IGN-BEGIN
  std::vector<std::pair<std::string, std::string>> infos;  // key, value; in order
  std::vector<GuestTestOutcome> passes;
  std::vector<GuestTestOutcome> fails;
  bool ended = false;  // IGN-END seen
  int end_pass = -1;   // the counts IGN-END claims
  int end_fail = -1;
  std::vector<std::string> malformed;  // IGN-* lines that did not parse

  bool passed(std::string_view test) const;
  bool failed(std::string_view test) const;
  // The detail of the first IGN-PASS / IGN-FAIL for `test`.
  std::optional<std::string> pass_detail(std::string_view test) const;
  std::optional<std::string> fail_detail(std::string_view test) const;
  // The first / every value reported for an info key ("IGN-INFO e820=..." -> key "e820").
  std::optional<std::string> info(std::string_view key) const;
  std::vector<std::string> infos_for(std::string_view key) const;
  bool has_info(std::string_view key) const;
  // Ended, and IGN-END's counts agree with the IGN-PASS/IGN-FAIL lines seen.
  bool complete() const;
  // A few lines describing the report, for assertion messages.
  std::string summary() const;
};

GuestReport parse_guest_report(std::string_view console_output);

// The value of `key` in a detail of space-separated key=value words:
// detail_field("ticks=5 us=4358", "us") == "4358".
std::optional<std::string> detail_field(std::string_view detail, std::string_view key);

}  // namespace ignition::test
