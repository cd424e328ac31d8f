// parse_guest_report(): the host side of the test guests' IGN-* console protocol.
#include "support/guest_report.hpp"

#include <gtest/gtest.h>

namespace ignition::test {
namespace {

constexpr std::string_view kFullRun =
    "SeaBIOS noise before the guest\r\n"
    "IGN-BEGIN entry=pvh\n"
    "IGN-INFO cmdline=ign.tests=boot,e820 foo=bar  two spaces\n"
    "IGN-PASS boot entry=pvh\n"
    "IGN-INFO e820=0x0:0x9fc00:1\n"
    "IGN-INFO e820=0x100000:0x7f00000:1\n"
    "IGN-INFO echo.ready\n"
    "IGN-PASS e820 entries=2\n"
    "IGN-FAIL timer ticks=0 us=2000000\n"
    "IGN-END pass=2 fail=1\n";

TEST(GuestReportTest, ParsesACompleteRun) {
  GuestReport r = parse_guest_report(kFullRun);
  EXPECT_EQ(r.boots, 1);
  EXPECT_EQ(r.entry, "pvh");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.end_pass, 2);
  EXPECT_EQ(r.end_fail, 1);
  EXPECT_TRUE(r.complete());
  EXPECT_TRUE(r.malformed.empty());

  EXPECT_TRUE(r.passed("boot"));
  EXPECT_TRUE(r.passed("e820"));
  EXPECT_FALSE(r.passed("timer"));
  EXPECT_TRUE(r.failed("timer"));
  EXPECT_EQ(r.pass_detail("e820"), "entries=2");
  EXPECT_EQ(r.fail_detail("timer"), "ticks=0 us=2000000");
  EXPECT_EQ(r.pass_detail("timer"), std::nullopt);
}

TEST(GuestReportTest, InfoValuesRunToTheEndOfTheLine) {
  GuestReport r = parse_guest_report(kFullRun);
  EXPECT_EQ(r.info("cmdline"), "ign.tests=boot,e820 foo=bar  two spaces");
  EXPECT_EQ(r.infos_for("e820"),
            (std::vector<std::string>{"0x0:0x9fc00:1", "0x100000:0x7f00000:1"}));
  EXPECT_TRUE(r.has_info("echo.ready"));
  EXPECT_EQ(r.info("echo.ready"), "");
  EXPECT_FALSE(r.has_info("missing"));
}

TEST(GuestReportTest, TruncatedOutputIsNotComplete) {
  GuestReport r = parse_guest_report("IGN-BEGIN entry=elf64\nIGN-PASS boot entry=elf64\nIGN-PA");
  EXPECT_EQ(r.entry, "elf64");
  EXPECT_TRUE(r.passed("boot"));
  EXPECT_FALSE(r.ended);
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.malformed.size(), 1u);  // "IGN-PA" is not a protocol line
}

TEST(GuestReportTest, EndCountsMustMatchTheLinesSeen) {
  GuestReport r = parse_guest_report("IGN-BEGIN entry=pvh\nIGN-PASS boot\nIGN-END pass=2 fail=0\n");
  EXPECT_TRUE(r.ended);
  EXPECT_FALSE(r.complete());
}

TEST(GuestReportTest, EachBeginStartsANewReport) {
  GuestReport r = parse_guest_report(
      "IGN-BEGIN entry=pvh\nIGN-FAIL boot first-boot\nIGN-END pass=0 fail=1\n"
      "IGN-BEGIN entry=bzimage16\nIGN-PASS boot\nIGN-END pass=1 fail=0\n");
  EXPECT_EQ(r.boots, 2);
  EXPECT_EQ(r.entry, "bzimage16");
  EXPECT_FALSE(r.failed("boot"));
  EXPECT_TRUE(r.passed("boot"));
  EXPECT_TRUE(r.complete());
}

TEST(GuestReportTest, ExceptionReportKeepsItsFields) {
  GuestReport r = parse_guest_report(
      "IGN-BEGIN entry=pvh\nIGN-FAIL exception vector=6 rip=0x102b80 err=0x0 cs=0x23 cr2=0x0\n"
      "IGN-END pass=0 fail=1\n");
  auto detail = r.fail_detail("exception");
  ASSERT_TRUE(detail);
  EXPECT_EQ(detail_field(*detail, "vector"), "6");
  EXPECT_EQ(detail_field(*detail, "rip"), "0x102b80");
  EXPECT_EQ(detail_field(*detail, "cr2"), "0x0");
  EXPECT_EQ(detail_field(*detail, "vec"), std::nullopt);  // a prefix of a key is not a key
}

TEST(GuestReportTest, RejectsMalformedProtocolLines) {
  GuestReport r = parse_guest_report(
      "IGN-BEGIN\nIGN-INFO\nIGN-PASS\nIGN-END pass=x fail=0\nIGN-BEGINentry=pvh\n"
      "IGN-WHAT is this\nordinary console text\n");
  EXPECT_EQ(r.malformed.size(), 6u);
  EXPECT_FALSE(r.ended);
  EXPECT_TRUE(r.passes.empty());
}

TEST(GuestReportTest, DetailFieldFindsWholeWordsOnly) {
  EXPECT_EQ(detail_field("ticks=5 us=4358", "us"), "4358");
  EXPECT_EQ(detail_field("ticks=5 us=4358", "ticks"), "5");
  EXPECT_EQ(detail_field("skipped=no-kvmclock", "skipped"), "no-kvmclock");
  EXPECT_EQ(detail_field("plus=1", "us"), std::nullopt);
  EXPECT_EQ(detail_field("", "us"), std::nullopt);
  EXPECT_EQ(detail_field("us", "us"), std::nullopt);
}

}  // namespace
}  // namespace ignition::test
