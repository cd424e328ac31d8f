// HTTP/1.x parsing and serialization for the MMDS, with Boost.Beast.
#include "mmds/http.hpp"

#include <sstream>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

namespace ignition::mmds {

namespace http = boost::beast::http;

namespace {

using Parser = http::request_parser<http::string_body>;

HttpRequest convert(const http::request<http::string_body>& req) {
  HttpRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.version = req.version();
  out.keep_alive = req.keep_alive();
  for (const auto& field : req)
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  return out;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (boost::beast::iequals(key, boost::beast::string_view(name.data(), name.size())))
      return std::string_view(value);
  return std::nullopt;
}

std::string serialize(const HttpResponse& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "ignition MMDS");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers)
    res.set(boost::beast::string_view(name.data(), name.size()), value);
  res.keep_alive(keep_alive);
  res.body() = r.body;
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  return out.str();
}

struct RequestReader::Impl {
  size_t limit;
  std::string buffer;  // bytes received and not yet parsed
  std::optional<Parser> parser;
  bool broken = false;
};

RequestReader::RequestReader(size_t limit) : impl_(std::make_unique<Impl>()) {
  impl_->limit = limit;
}
RequestReader::~RequestReader() = default;
RequestReader::RequestReader(RequestReader&&) noexcept = default;
RequestReader& RequestReader::operator=(RequestReader&&) noexcept = default;

size_t RequestReader::room() const {
  return impl_->broken ? 0 : impl_->limit - impl_->buffer.size();
}

size_t RequestReader::append(std::span<const uint8_t> data) {
  size_t n = std::min(data.size(), room());
  impl_->buffer.append(reinterpret_cast<const char*>(data.data()), n);
  return n;
}

Result<std::optional<HttpRequest>> RequestReader::next() {
  Impl& s = *impl_;
  if (s.broken) return err("the connection's HTTP stream is broken");
  if (!s.parser) {
    s.parser.emplace();
    s.parser->header_limit(static_cast<uint32_t>(s.limit));
    s.parser->body_limit(s.limit);
  }
  size_t used = 0;
  while (used < s.buffer.size() && !s.parser->is_done()) {
    boost::beast::error_code ec;
    size_t n =
        s.parser->put(boost::asio::buffer(s.buffer.data() + used, s.buffer.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      if (n == 0) break;
      continue;
    }
    if (ec) {
      s.broken = true;
      return err("{}", ec.message());
    }
    if (n == 0) break;
  }
  s.buffer.erase(0, used);
  if (s.parser->is_done()) {
    HttpRequest request = convert(s.parser->get());
    s.parser.reset();
    return std::optional<HttpRequest>(std::move(request));
  }
  if (s.buffer.size() >= s.limit) {
    s.broken = true;
    return err("a request of more than {} bytes", s.limit);
  }
  return std::optional<HttpRequest>();
}

}  // namespace ignition::mmds
