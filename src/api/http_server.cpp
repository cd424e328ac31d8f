// HttpServer on Boost.Beast: an accept loop and one Session per connection, all on the API
// thread's io_context. Beast parses HTTP; this file only maps it to ApiRequest/ApiResponse.
#include "api/http_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "base/fd.hpp"

namespace ignition::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;

namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return err("API socket path '{}' must be 1 to {} bytes", path, sizeof(addr.sun_path) - 1);
  }
  path.copy(addr.sun_path, path.size());
  return addr;
}

// A socket file left by a process that died is replaced; one that still answers is not.
Result<void> remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return err("API socket {}: {}", path, errno_string());
  }
  if (!S_ISSOCK(st.st_mode)) return err("API socket {}: the path exists and is not a socket", path);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return err("socket: {}", errno_string());
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return err("API socket {}: another process is serving it (address in use)", path);
  }
  if (errno != ECONNREFUSED) return err("API socket {}: {}", path, errno_string());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return err("API socket {}: removing the stale socket: {}", path, errno_string());
  }
  return {};
}

Result<UniqueFd> listen_unix(const std::string& path) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, unix_address(path));
  IGN_TRY(remove_stale_socket(path, addr));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return err("socket: {}", errno_string());
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return err("API socket {}: bind: {}", path, errno_string());
  }
  if (::listen(fd.get(), 64) != 0) return err("API socket {}: listen: {}", path, errno_string());
  return fd;
}

Method to_method(http::verb v) {
  switch (v) {
    case http::verb::get:
      return Method::kGet;
    case http::verb::put:
      return Method::kPut;
    case http::verb::patch:
      return Method::kPatch;
    default:
      return Method::kOther;
  }
}

// The handler is the router, which reports problems as responses; an exception from a
// library underneath still must not end the API thread.
ApiResponse call_handler(const HttpHandler& handler, const ApiRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return fault(fmt::format("Internal server error: {}", e.what()), 500);
  } catch (...) {
    return fault("Internal server error", 500);
  }
}

class Session;

}  // namespace

struct HttpServer::Impl {
  Impl(std::string p, HttpHandler h, HttpServerOptions o)
      : path(std::move(p)), handler(std::move(h)), options(o) {}

  void accept();
  void close_all();

  std::string path;
  HttpHandler handler;
  HttpServerOptions options;
  // Sessions live in the io_context's pending handlers; this only finds them to close.
  std::vector<std::weak_ptr<Session>> sessions;
  asio::io_context ioc{1};
  asio::local::stream_protocol::acceptor acceptor{ioc};
  asio::steady_timer retry_timer{ioc};
  std::thread thread;
  bool stopped = false;
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl& server, Socket socket) : server_(server), socket_(std::move(socket)) {}

  void start() { read_header(); }
  void close() {
    error_code ignored;
    socket_.shutdown(Socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void read_header() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec) return fail(ec);
    auto& req = parser_->get();
    auto length = parser_->content_length();
    if (length && *length > server_.options.max_body_bytes) return too_large(*length);
    auto expect = req[http::field::expect];
    if (boost::beast::iequals(expect, "100-continue")) {
      // curl waits for this before sending a body over 1 KiB.
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     req.version());
      http::async_write(socket_, *cont, [self = shared_from_this(), cont](error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    if (ec) return fail(ec);
    auto req = parser_->release();
    ApiRequest request;
    request.method = to_method(req.method());
    request.method_name = std::string(req.method_string());
    request.target = std::string(req.target());
    request.body = std::move(req.body());
    ApiResponse response = call_handler(server_.handler, request);
    spdlog::debug("API {} {} -> {}", request.method_name, request.target, response.status);
    send(response, req.keep_alive(), req.version());
  }

  void too_large(uint64_t size) {
    send(fault(fmt::format("Request payload with size {} is larger than the limit of {} "
                           "allowed by server.",
                           size, server_.options.max_body_bytes),
               413),
         false, 11);
  }

  // Answers requests that deserve an answer, then closes the connection.
  void fail(error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
      return close();
    }
    if (ec == http::error::body_limit) {
      // content_length() may only be asked once the header is complete.
      uint64_t length = server_.options.max_body_bytes + 1;
      if (parser_->is_header_done() && parser_->content_length()) {
        length = *parser_->content_length();
      }
      return too_large(length);
    }
    if (ec == http::error::header_limit) {
      return send(fault(fmt::format("Request headers are larger than the limit of {} bytes.",
                                    server_.options.max_header_bytes)),
                  false, 11);
    }
    send(fault(fmt::format("Invalid HTTP request: {}.", ec.message())), false, 11);
  }

  void send(const ApiResponse& r, bool keep_alive, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version);
    res->set(http::field::server, "ignition API");
    if (!r.body.empty()) {
      res->set(http::field::content_type, "application/json");
      res->body() = r.body;
    }
    if (r.deprecated) res->set("Deprecation", "true");
    res->keep_alive(keep_alive);
    res->prepare_payload();
    http::async_write(socket_, *res,
                      [self = shared_from_this(), res, keep_alive](error_code ec, size_t) {
                        if (ec || !keep_alive || self->server_.stopped) return self->close();
                        self->read_header();
                      });
  }

  HttpServer::Impl& server_;
  Socket socket_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](error_code ec, Socket socket) {
    if (stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of fds, most likely: try again shortly instead of spinning.
      spdlog::warn("API server: accept: {}", ec.message());
      retry_timer.expires_after(std::chrono::milliseconds(50));
      retry_timer.async_wait([this](error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    std::erase_if(sessions, [](const std::weak_ptr<Session>& s) { return s.expired(); });
    if (sessions.size() >= options.max_connections) {
      spdlog::warn("API server: {} connections open, refusing another", sessions.size());
      error_code ignored;
      socket.close(ignored);
    } else {
      auto session = std::make_shared<Session>(*this, std::move(socket));
      sessions.push_back(session);
      session->start();
    }
    accept();
  });
}

void HttpServer::Impl::close_all() {
  stopped = true;
  error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->close();
  }
  sessions.clear();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& socket_path,
                                                      HttpHandler handler,
                                                      HttpServerOptions options) {
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, listen_unix(socket_path));
  auto impl = std::make_unique<Impl>(socket_path, std::move(handler), options);
  error_code ec;
  impl->acceptor.assign(asio::local::stream_protocol(), fd.get(), ec);
  if (ec) {
    ::unlink(socket_path.c_str());
    return err("API socket {}: {}", socket_path, ec.message());
  }
  fd.release();  // the acceptor owns it now
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  spdlog::info("API server listening on {}", socket_path);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* raw = impl_.get();
  asio::post(impl_->ioc, [raw] { raw->close_all(); });
  impl_->thread.join();
  ::unlink(impl_->path.c_str());
}

const std::string& HttpServer::socket_path() const {
  return impl_->path;
}

}  // namespace ignition::api
