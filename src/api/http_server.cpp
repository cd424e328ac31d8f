// HttpServer on Boost.Beast: an accept loop and one Session per connection, all on the API
// thread's io_context. Beast parses HTTP; this file only maps it to ApiRequest/ApiResponse.
#include "api/http_server.hpp"

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
#include "base/unix_listener.hpp"

namespace ignition::api {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;

namespace {

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
  Impl(UnixListener l, HttpHandler h, HttpServerOptions o)
      : listener(std::move(l)), path(listener->path()), handler(std::move(h)), options(o) {}

  void accept();
  void close_all();

  std::optional<UnixListener> listener;  // owns the socket's path; the acceptor owns its fd
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
  auto listener = UnixListener::listen(socket_path, {.backlog = 64, .nonblocking = true});
  if (!listener.ok()) return context(listener.error(), "API socket");
  UniqueFd fd = listener->release_fd();
  auto impl = std::make_unique<Impl>(std::move(*listener), std::move(handler), options);
  error_code ec;
  impl->acceptor.assign(asio::local::stream_protocol(), fd.get(), ec);
  if (ec) return err("API socket {}: {}", socket_path, ec.message());
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
  impl_->listener.reset();
}

const std::string& HttpServer::socket_path() const {
  return impl_->path;
}

}  // namespace ignition::api
