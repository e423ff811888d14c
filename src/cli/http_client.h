// A small synchronous HTTP/1.1 client for the CLI (Boost.Beast over Asio).
//
// Plain http only. Each Send() opens its own connection (TCP_NODELAY), writes
// the request and reads the whole response. Bodies of any size stream
// through a fixed buffer: a request body can come from a file and a 2xx
// response body can go to a file, so a large package never sits in memory.
// Every network step has an idle timeout: an operation that makes no progress
// for `timeout_s` seconds fails with kUnavailable.
//
// Thread-compatible: one HttpClient per thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/url.h"
#include "core/status.h"

namespace orrery::cli {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, DELETE
  std::string target;          // path and query, e.g. from ApiPath()
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                     // sent when body_file is empty
  std::filesystem::path body_file;      // when set, the body streams from this file
  std::filesystem::path response_file;  // when set, a 2xx body streams into this file
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  // Every response header as received (names as the server spelled them).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty when the body went to response_file

  // The value of header `name` (compared case-insensitively); "" when absent.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  std::string url;                     // "http://host[:port][/prefix]"
  int timeout_s = 300;                 // idle timeout of each network step
  size_t max_memory_body = 64u << 20;  // larger in-memory response bodies are refused
};

class HttpClient {
 public:
  // kInvalidArgument for a URL that is not plain http://host[:port].
  static Result<std::unique_ptr<HttpClient>> Create(const HttpClientOptions& options);

  // Transport failures and timeouts are kUnavailable naming the URL; any
  // HTTP status (including 4xx/5xx) is a successful result.
  Result<HttpResponse> Send(const HttpRequest& request);

  const std::string& url() const { return options_.url; }

 private:
  HttpClient(HttpClientOptions options, ServerAddress address)
      : options_(std::move(options)), address_(std::move(address)) {}

  HttpClientOptions options_;
  ServerAddress address_;
};

}  // namespace orrery::cli
