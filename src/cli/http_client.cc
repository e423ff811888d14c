#include "cli/http_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <limits>
#include <string_view>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/files.h"

namespace orrery::cli {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kChunkBytes = 256 * 1024;

// Produces a request body piece by piece; an empty view ends it.
using BodySource = std::function<Result<std::string_view>()>;

// Receives a response body piece by piece.
using BodySink = std::function<Status(const char* data, size_t size)>;

// One connection with its own event loop. Beast's tcp_stream applies its
// timeout only to asynchronous operations, so each step is started
// asynchronously and run to completion here: that gives synchronous code an
// idle timeout per step. Not thread-safe.
class Connection {
 public:
  Connection(std::string url, std::chrono::seconds timeout)
      : url_(std::move(url)), timeout_(timeout) {}
  ~Connection() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  Status Open(const ServerAddress& address) {
    tcp::resolver resolver(ioc_);
    beast::error_code ec;
    auto endpoints = resolver.resolve(address.host, address.port, ec);
    if (ec) return Failure("resolve host", ec);
    ec = Await([&](auto handler) { stream_.async_connect(endpoints, handler); });
    if (ec) return Failure("connect", ec);
    stream_.socket().set_option(tcp::no_delay(true), ec);
    return Status::Ok();
  }

  // Writes `message` (headers set, content length set) with the body from `source`.
  Status Write(http::request<http::buffer_body>& message, const BodySource& source) {
    http::request_serializer<http::buffer_body> serializer(message);
    do {
      ASSIGN_OR_RETURN(std::string_view piece, source());
      message.body().data = piece.empty() ? nullptr : const_cast<char*>(piece.data());
      message.body().size = piece.size();
      message.body().more = !piece.empty();
      beast::error_code ec =
          Await([&](auto handler) { http::async_write(stream_, serializer, handler); });
      if (ec == http::error::need_buffer) continue;
      peer_closed_ = ec == asio::error::broken_pipe || ec == asio::error::connection_reset;
      if (ec) return Failure("send request", ec);
    } while (!serializer.is_done());
    return Status::Ok();
  }

  // True when the last Write failed because the server closed the connection
  // (it may still have sent an answer worth reading).
  bool peer_closed() const { return peer_closed_; }

  // Reads the header, then lets `choose_sink` pick where the body goes.
  Result<HttpResponse> Read(const std::function<BodySink(HttpResponse&)>& choose_sink) {
    http::response_parser<http::buffer_body> parser;
    // The sink enforces its own limit. Not boost::none: Beast 1.74 compares
    // the length with the optional, and every length is greater than none.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec =
        Await([&](auto handler) { http::async_read_header(stream_, buffer_, parser, handler); });
    if (ec) return Failure("read response", ec);
    HttpResponse response;
    response.status = static_cast<int>(parser.get().result_int());
    response.content_type = std::string(parser.get()[http::field::content_type]);
    for (const auto& field : parser.get()) {
      response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    BodySink sink = choose_sink(response);
    std::vector<char> chunk(kChunkBytes);
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      ec = Await([&](auto handler) { http::async_read(stream_, buffer_, parser, handler); });
      if (ec && ec != http::error::need_buffer) return Failure("read response body", ec);
      RETURN_IF_ERROR(sink(chunk.data(), chunk.size() - parser.get().body().size));
    }
    return response;
  }

 private:
  // Runs one asynchronous operation, started by `start(handler)`, to completion.
  template <class Start>
  beast::error_code Await(Start start) {
    beast::error_code result = asio::error::would_block;
    stream_.expires_after(timeout_);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  Status Failure(std::string_view step, beast::error_code ec) const {
    if (ec == beast::error::timeout) {
      return Unavailable(url_ + ": " + std::string(step) + ": no progress in " +
                         std::to_string(timeout_.count()) + " s");
    }
    return Unavailable(url_ + ": " + std::string(step) + ": " + ec.message());
  }

  std::string url_;
  std::chrono::seconds timeout_;
  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  bool peer_closed_ = false;
};

// A body source reading `fd` in chunks; fails if the file does not hold
// exactly `expected` bytes (it changed while being sent).
BodySource FileSource(int fd, uint64_t expected, const std::string& name) {
  auto buffer = std::make_shared<std::vector<char>>(kChunkBytes);
  auto sent = std::make_shared<uint64_t>(0);
  return [=]() -> Result<std::string_view> {
    ssize_t n;
    do {
      n = ::read(fd, buffer->data(), buffer->size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus("read " + name);
    *sent += static_cast<uint64_t>(n);
    if (*sent > expected || (n == 0 && *sent != expected)) {
      return Internal(name + " changed while it was being sent");
    }
    return std::string_view(buffer->data(), static_cast<size_t>(n));
  };
}

// A body source yielding `body` once.
BodySource StringSource(const std::string& body) {
  auto done = std::make_shared<bool>(false);
  return [&body, done]() -> Result<std::string_view> {
    if (*done) return std::string_view();
    *done = true;
    return std::string_view(body);
  };
}

BodySink StringSink(std::string& out, size_t limit) {
  return [&out, limit](const char* data, size_t size) {
    if (out.size() + size > limit) {
      return Unavailable("response body over " + std::to_string(limit) + " bytes");
    }
    out.append(data, size);
    return Status::Ok();
  };
}

BodySink FdSink(int fd, const std::string& name) {
  return [fd, name](const char* data, size_t size) { return WriteAll(fd, data, size, name); };
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, beast::string_view(name.data(), name.size()))) return value;
  }
  return "";
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const HttpClientOptions& options) {
  ASSIGN_OR_RETURN(ServerAddress address, ParseServerUrl(options.url));
  return std::unique_ptr<HttpClient>(new HttpClient(options, std::move(address)));
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) return Internal("unknown HTTP method " + request.method);
  http::request<http::buffer_body> message(verb, address_.prefix + request.target, 11);
  message.set(http::field::host, address_.host + ":" + address_.port);
  message.set(http::field::user_agent, "orrery-cli");
  for (const auto& [name, value] : request.headers) message.set(name, value);

  UniqueFd body_fd;
  BodySource source = StringSource(request.body);
  uint64_t body_size = request.body.size();
  if (!request.body_file.empty()) {
    body_fd = UniqueFd(::open(request.body_file.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat info;
    if (!body_fd.valid() || ::fstat(body_fd.get(), &info) != 0) {
      return ErrnoStatus("open " + request.body_file.string());
    }
    body_size = static_cast<uint64_t>(info.st_size);
    source = FileSource(body_fd.get(), body_size, request.body_file.string());
  }
  if (verb != http::verb::get || body_size > 0) message.content_length(body_size);

  Connection connection(options_.url, std::chrono::seconds(options_.timeout_s));
  RETURN_IF_ERROR(connection.Open(address_));
  // A server may answer (e.g. 413) and close before the whole body is sent;
  // its answer is more useful than "broken pipe", so try to read it.
  Status write_status = connection.Write(message, source);
  if (!write_status.ok() && !connection.peer_closed()) return write_status;

  UniqueFd response_fd;
  Status open_status;
  auto choose_sink = [&](HttpResponse& response) -> BodySink {
    if (request.response_file.empty() || response.status / 100 != 2) {
      return StringSink(response.body, options_.max_memory_body);
    }
    response_fd = UniqueFd(
        ::open(request.response_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!response_fd.valid()) open_status = ErrnoStatus("create " + request.response_file.string());
    return FdSink(response_fd.get(), request.response_file.string());
  };
  Result<HttpResponse> response = connection.Read(choose_sink);
  RETURN_IF_ERROR(open_status);
  if (!write_status.ok() && !response.ok()) return write_status;
  return response;
}

}  // namespace orrery::cli
