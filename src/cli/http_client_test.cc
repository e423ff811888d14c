// HttpClient against a one-shot loopback server that answers a canned
// response: status, headers and body come back as sent.
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "cli/http_client.h"

namespace orrery::cli {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Accepts one connection on 127.0.0.1, reads the request head and answers `response`.
class CannedServer {
 public:
  explicit CannedServer(std::string response)
      : acceptor_(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        thread_([this, response = std::move(response)] {
          tcp::socket socket(ioc_);
          acceptor_.accept(socket);
          asio::streambuf head;
          asio::read_until(socket, head, "\r\n\r\n");
          asio::write(socket, asio::buffer(response));
        }) {}
  ~CannedServer() { thread_.join(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(HttpClient, KeepsResponseHeaders) {
  std::string body = "{\"a\":1}BIN";
  CannedServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
      "inference-header-content-length: 7\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  HttpClientOptions options;
  options.url = server.url();
  options.timeout_s = 10;
  Result<std::unique_ptr<HttpClient>> client = HttpClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<HttpResponse> response = (*client)->Send(HttpRequest{});
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, body);
  EXPECT_EQ(response->content_type, "application/octet-stream");
  EXPECT_EQ(response->Header("Inference-Header-Content-Length"), "7");
  EXPECT_EQ(response->Header("CONTENT-LENGTH"), "10");
  EXPECT_EQ(response->Header("Retry-After"), "");
}

}  // namespace
}  // namespace orrery::cli
