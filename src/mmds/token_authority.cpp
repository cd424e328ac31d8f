// MMDS session tokens.
#include "mmds/token_authority.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <span>

namespace ignition::mmds {

namespace {

constexpr size_t kTokenBytes = 32;
constexpr size_t kTokenChars = (kTokenBytes * 8 + 5) / 6;  // base64url, no padding

std::string base64url(std::span<const uint8_t> bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t bits = 0;
  int have = 0;
  for (uint8_t b : bytes) {
    bits = bits << 8 | b;
    have += 8;
    while (have >= 6) {
      have -= 6;
      out.push_back(kAlphabet[(bits >> have) & 0x3f]);
    }
  }
  if (have > 0) out.push_back(kAlphabet[(bits << (6 - have)) & 0x3f]);
  return out;
}

Result<std::array<uint8_t, kTokenBytes>> random_bytes() {
  std::array<uint8_t, kTokenBytes> bytes{};
  size_t filled = 0;
  while (filled < bytes.size()) {
    ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("getrandom: {}", std::strerror(errno));
    filled += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace

Result<std::string> TokenAuthority::issue(uint32_t ttl_seconds, Clock::time_point now) {
  if (ttl_seconds < kMinTtlSeconds || ttl_seconds > kMaxTtlSeconds) {
    return err(
        "Invalid time to live value provided for token: {}. Please provide a value between {} "
        "and {}.",
        ttl_seconds, kMinTtlSeconds, kMaxTtlSeconds);
  }
  IGN_ASSIGN_OR_RETURN(auto bytes, random_bytes());
  make_room(now);
  std::string token = base64url(bytes);
  tokens_[token] = now + std::chrono::seconds(ttl_seconds);
  return token;
}

bool TokenAuthority::valid(std::string_view token, Clock::time_point now) const {
  // Do not hash whatever a guest sends: every token has the same length.
  if (token.size() != kTokenChars) return false;
  auto it = tokens_.find(std::string(token));
  return it != tokens_.end() && now < it->second;
}

void TokenAuthority::make_room(Clock::time_point now) {
  if (tokens_.size() < kMaxTokens) return;
  std::erase_if(tokens_, [now](const auto& t) { return t.second <= now; });
  if (tokens_.size() < kMaxTokens) return;
  auto soonest = std::min_element(tokens_.begin(), tokens_.end(),
                                  [](const auto& a, const auto& b) { return a.second < b.second; });
  tokens_.erase(soonest);
}

}  // namespace ignition::mmds
