// The MMDS above TCP: the data store's JSON pointers and limits, session tokens, the HTTP
// reader (Boost.Beast) on a byte stream, and the answers to guest requests in V1 and V2,
// checked against Firecracker's behaviour and messages.
#include <gtest/gtest.h>

#include <string>

#include "mmds/data_store.hpp"
#include "mmds/http.hpp"
#include "mmds/responder.hpp"
#include "mmds/token_authority.hpp"

namespace ignition::mmds {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = DataStore::Clock;

const json kDoc = json::parse(R"({
  "latest": {"meta-data": {"hostname": "vm-1", "ami-id": "ami-7", "tags": {"env": "test"},
             "ports": [80, 443], "count": 3, "path/with~": "escaped"}},
  "user-data": "#!/bin/sh\necho hi"
})");

HttpRequest request(std::string method, std::string target,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = std::move(headers);
  return r;
}

struct Responder : ::testing::Test {
  void SetUp() override { ASSERT_TRUE(store.put(kDoc).ok()); }
  HttpResponse ask(const HttpRequest& r) { return respond(r, store, options, now, &counters); }
  std::string token(uint32_t ttl = 60) {
    auto r = ask(request("PUT", "/latest/api/token",
                         {{"X-metadata-token-ttl-seconds", std::to_string(ttl)}}));
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.body;
  }

  DataStore store;
  ResponderOptions options;
  Clock::time_point now = Clock::time_point() + 1000h;
  TokenCounters counters;
};

// --- Data store ---------------------------------------------------------------------

TEST(MmdsDataStore, FindFollowsJsonPointers) {
  DataStore store;
  EXPECT_EQ(store.find(""), json::object()) << "the document before any put";
  ASSERT_TRUE(store.put(kDoc).ok());
  EXPECT_EQ(store.find(""), kDoc);
  EXPECT_EQ(store.find("/latest/meta-data/hostname"), "vm-1");
  EXPECT_EQ(store.find("/latest/meta-data/ports/1"), 443);
  EXPECT_EQ(store.find("/latest/meta-data/path~1with~0"), "escaped");
  EXPECT_EQ(store.find("/latest/meta-data/ports/2"), std::nullopt);
  EXPECT_EQ(store.find("/latest/meta-data/ports/01"), std::nullopt);
  EXPECT_EQ(store.find("/latest/meta-data/hostname/x"), std::nullopt);
  EXPECT_EQ(store.find("/latest/missing"), std::nullopt);
  EXPECT_EQ(store.find("/bad~2escape"), std::nullopt);
  EXPECT_EQ(store.find("latest"), std::nullopt);
}

TEST(MmdsDataStore, PutPatchAndLimit) {
  DataStore store(100);
  EXPECT_FALSE(store.patch({{"a", 1}}).ok()) << "patch before put";
  ASSERT_TRUE(store.put({{"a", 1}, {"b", {{"c", 2}}}}).ok());
  ASSERT_TRUE(store.patch({{"b", {{"c", nullptr}, {"d", 3}}}}).ok());
  EXPECT_EQ(store.get(), json({{"a", 1}, {"b", {{"d", 3}}}}));
  auto big = store.patch({{"x", std::string(100, 'x')}});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message, DataStore::kLimitExceeded);
  EXPECT_EQ(store.get(), json({{"a", 1}, {"b", {{"d", 3}}}})) << "unchanged by a refused patch";
  EXPECT_FALSE(store.put({{"x", std::string(100, 'x')}}).ok());
}

// --- Tokens -------------------------------------------------------------------------

TEST(MmdsTokens, IssueValidateExpire) {
  TokenAuthority tokens;
  Clock::time_point t0 = Clock::time_point() + 5h;
  auto a = tokens.issue(2, t0);
  auto b = tokens.issue(2, t0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b) << "tokens are random";
  EXPECT_EQ(a->size(), 43u);
  EXPECT_TRUE(tokens.valid(*a, t0 + 1999ms));
  EXPECT_FALSE(tokens.valid(*a, t0 + 2s)) << "expired";
  EXPECT_FALSE(tokens.valid(a->substr(1) + "A", t0)) << "a token that was never issued";
  EXPECT_FALSE(tokens.valid("", t0));
  auto zero = tokens.issue(0, t0);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("between 1 and 21600"), std::string::npos);
  EXPECT_FALSE(tokens.issue(21601, t0).ok());
  EXPECT_TRUE(tokens.issue(21600, t0).ok());
}

TEST(MmdsTokens, LiveTokensAreBounded) {
  TokenAuthority tokens;
  Clock::time_point t0 = Clock::time_point() + 5h;
  auto first = tokens.issue(1, t0);  // expires first: the one to go
  ASSERT_TRUE(first.ok());
  std::string last;
  for (size_t i = 1; i < TokenAuthority::kMaxTokens + 10; ++i) last = *tokens.issue(100, t0);
  EXPECT_LE(tokens.live(), TokenAuthority::kMaxTokens);
  EXPECT_FALSE(tokens.valid(*first, t0));
  EXPECT_TRUE(tokens.valid(last, t0));
}

// --- HTTP reader --------------------------------------------------------------------

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(MmdsHttpReader, RequestsArriveInPiecesAndPipelined) {
  RequestReader reader(4096);
  std::string stream =
      "GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept: application/json\r\n\r\n"
      "PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 60\r\n"
      "Content-Length: 3\r\n\r\nabc";
  // One byte at a time: nothing is complete before its last byte.
  std::vector<HttpRequest> got;
  for (char c : stream) {
    ASSERT_EQ(reader.append(bytes(std::string_view(&c, 1))), 1u);
    auto next = reader.next();
    ASSERT_TRUE(next.ok()) << next.error().message;
    if (*next) got.push_back(**next);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method, "GET");
  EXPECT_EQ(got[0].target, "/latest/meta-data/");
  EXPECT_EQ(got[0].version, 11u);
  EXPECT_TRUE(got[0].keep_alive);
  EXPECT_EQ(got[0].header("accept"), "application/json");
  EXPECT_EQ(got[1].method, "PUT");
  EXPECT_EQ(got[1].version, 10u);
  EXPECT_FALSE(got[1].keep_alive);
  EXPECT_EQ(got[1].header("X-METADATA-TOKEN-TTL-SECONDS"), "60");
  EXPECT_EQ(reader.room(), 4096u) << "everything consumed";
}

TEST(MmdsHttpReader, GarbageAndOversizedRequestsFail) {
  RequestReader garbage(4096);
  garbage.append(bytes("\x01\x02 not http\r\n\r\n"));
  EXPECT_FALSE(garbage.next().ok());
  EXPECT_EQ(garbage.room(), 0u) << "a broken stream takes nothing more";

  // Beast takes a header in pieces, so the bound is its header limit: the reader keeps
  // taking bytes until the header is over it, then fails.
  RequestReader big(256);
  std::string huge = "GET / HTTP/1.1\r\nX-Pad: " + std::string(1000, 'a');
  size_t fed = 0;
  bool failed = false;
  while (fed < huge.size() && !failed) {
    size_t took = big.append(bytes(huge).subspan(fed));
    fed += took;
    auto next = big.next();
    failed = !next.ok();
    if (!failed) {
      ASSERT_FALSE(*next) << "no request in an unfinished header";
      ASSERT_GT(took, 0u) << "stuck: no room and no error";
    }
  }
  EXPECT_TRUE(failed) << "a header that can never fit";
  EXPECT_LE(fed, 512u) << "failed soon after the limit";
}

TEST(MmdsHttp, SerializedResponse) {
  HttpResponse r{200, "application/json", "{}", {{"X-metadata-token-ttl-seconds", "5"}}};
  std::string text = serialize(r, 11, true);
  EXPECT_EQ(text.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << text;
  EXPECT_NE(text.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(text.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_NE(text.find("X-metadata-token-ttl-seconds: 5\r\n"), std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 6), "\r\n\r\n{}");
  EXPECT_NE(serialize(r, 10, false).find("HTTP/1.0 200 OK"), std::string::npos);
}

// --- Responses ----------------------------------------------------------------------

TEST_F(Responder, JsonWhenAskedImdsListingOtherwise) {
  auto json_reply = ask(request("GET", "/", {{"Accept", "application/json"}}));
  EXPECT_EQ(json_reply.status, 200u);
  EXPECT_EQ(json_reply.content_type, "application/json");
  EXPECT_EQ(json::parse(json_reply.body), kDoc);

  auto listing = ask(request("GET", "/latest/meta-data/"));
  EXPECT_EQ(listing.status, 200u);
  EXPECT_EQ(listing.content_type, "text/plain");
  EXPECT_EQ(listing.body, "ami-id\ncount\nhostname\npath/with~\nports\ntags/");
  EXPECT_EQ(ask(request("GET", "/")).body, "latest/\nuser-data");
  EXPECT_EQ(ask(request("GET", "/", {{"Accept", "*/*"}})).body, "latest/\nuser-data");
  EXPECT_EQ(ask(request("GET", "/user-data")).body, "#!/bin/sh\necho hi");
  EXPECT_EQ(ask(request("GET", "//latest///meta-data//hostname")).body, "vm-1");
  EXPECT_EQ(ask(request("GET", "/latest/meta-data/hostname?x=1")).body, "vm-1");
  EXPECT_EQ(ask(request("GET", "http://169.254.169.254/latest/meta-data/hostname")).body, "vm-1");
  EXPECT_EQ(ask(request("GET", "/latest/meta-data/ports",
                        {{"Accept", "text/html, application/json;q=0.9"}}))
                .body,
            "[80,443]");
}

TEST_F(Responder, ValuesWithoutTextFormAndMissingOnes) {
  auto array = ask(request("GET", "/latest/meta-data/ports"));
  EXPECT_EQ(array.status, 501u);
  EXPECT_EQ(array.body, "Cannot retrieve value. The value has an unsupported type.");
  EXPECT_EQ(ask(request("GET", "/latest/meta-data/count")).status, 501u);
  auto missing = ask(request("GET", "/latest/nothing"));
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.body, "Resource not found: /latest/nothing.");
  EXPECT_EQ(ask(request("GET", "http://169.254.169.254")).status, 400u) << "no path";
}

TEST_F(Responder, ImdsCompatIgnoresAccept) {
  options.imds_compat = true;
  auto r = ask(request("GET", "/latest/meta-data/", {{"Accept", "application/json"}}));
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "ami-id\ncount\nhostname\npath/with~\nports\ntags/");
}

TEST_F(Responder, OnlyGetAndPut) {
  for (const char* method : {"POST", "PATCH", "DELETE"}) {
    auto r = ask(request(method, "/"));
    EXPECT_EQ(r.status, 405u) << method;
    EXPECT_EQ(r.body, "Not allowed HTTP method.");
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0].first, "Allow");
  }
  EXPECT_EQ(ask(request("PUT", "/latest/meta-data")).status, 404u) << "PUT only makes tokens";
}

TEST_F(Responder, V1AcceptsAnyTokenButCountsThem) {
  EXPECT_EQ(ask(request("GET", "/user-data")).status, 200u);
  EXPECT_EQ(counters.rx_no_token.load(), 1u);
  EXPECT_EQ(ask(request("GET", "/user-data", {{"X-metadata-token", "bogus"}})).status, 200u);
  EXPECT_EQ(counters.rx_invalid_token.load(), 1u);
  std::string t = token();
  EXPECT_EQ(ask(request("GET", "/user-data", {{"X-metadata-token", t}})).status, 200u);
  EXPECT_EQ(counters.rx_invalid_token.load(), 1u);
}

TEST_F(Responder, V2NeedsAValidUnexpiredToken) {
  options.version = config::MmdsVersion::kV2;
  auto none = ask(request("GET", "/user-data"));
  EXPECT_EQ(none.status, 401u);
  EXPECT_NE(none.body.find("No MMDS token provided"), std::string::npos);
  auto bogus = ask(request("GET", "/user-data", {{"X-metadata-token", "bogus"}}));
  EXPECT_EQ(bogus.status, 401u);
  EXPECT_EQ(bogus.body, "MMDS token not valid.");

  auto put = ask(request("PUT", "/latest/api/token", {{"X-metadata-token-ttl-seconds", "60"}}));
  ASSERT_EQ(put.status, 200u);
  ASSERT_EQ(put.headers.size(), 1u);
  EXPECT_EQ(put.headers[0].second, "60");
  std::string t = put.body;
  auto ok = ask(request("GET", "/user-data", {{"x-metadata-token", t}}));
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "#!/bin/sh\necho hi");
  // EC2's header names work too.
  auto aws =
      ask(request("PUT", "/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "5"}}));
  ASSERT_EQ(aws.status, 200u);
  EXPECT_EQ(ask(request("GET", "/user-data", {{"X-aws-ec2-metadata-token", aws.body}})).status,
            200u);

  now += 61s;
  EXPECT_EQ(ask(request("GET", "/user-data", {{"X-metadata-token", t}})).status, 401u) << "expired";
}

TEST_F(Responder, TokenRequestsAreChecked) {
  auto no_ttl = ask(request("PUT", "/latest/api/token"));
  EXPECT_EQ(no_ttl.status, 400u);
  EXPECT_NE(no_ttl.body.find("Token time to live value not found"), std::string::npos);
  for (const char* bad : {"abc", "-1", "60s", ""}) {
    EXPECT_EQ(
        ask(request("PUT", "/latest/api/token", {{"X-metadata-token-ttl-seconds", bad}})).status,
        400u)
        << bad;
  }
  auto range = ask(request("PUT", "/latest/api/token", {{"X-metadata-token-ttl-seconds", "0"}}));
  EXPECT_EQ(range.status, 400u);
  EXPECT_NE(range.body.find("between 1 and 21600"), std::string::npos);
  auto forwarded = ask(request("PUT", "/latest/api/token",
                               {{"X-metadata-token-ttl-seconds", "60"}, {"X-Forwarded-For", "x"}}));
  EXPECT_EQ(forwarded.status, 400u) << "Firecracker refuses proxied token requests";
  EXPECT_EQ(
      ask(request("PUT", "//latest//api/token", {{"X-metadata-token-ttl-seconds", "1"}})).status,
      200u);
}

}  // namespace
}  // namespace ignition::mmds
