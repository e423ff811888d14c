// The HTTP/1.1 transport on Boost.Beast: one io_context run by N threads,
// one Session per connection, keep-alive, bodies bounded before they are
// read. Routes never see Beast types (see http.h).
//
// Upload bodies (package archives) stream into a file under the data
// directory's tmp/, and are authenticated from the headers before a byte of
// the body is read; every other body is held in memory under a small limit.
#include "api/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <iostream>
#include <limits>
#include <optional>
#include <thread>

#include "api/connection_deadlines.h"
#include "api/router.h"
#include "backends/worker/worker_instance.h"
#include "core/log.h"
#include "core/random.h"

namespace orrery {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr size_t kUploadReadBuffer = 256 * 1024;
// An idle keep-alive connection, or a client that stalls in its headers, is
// closed after this; a body must arrive within kBodyTimeout.
constexpr std::chrono::seconds kHeaderTimeout{60};
constexpr std::chrono::seconds kBodyTimeout{15 * 60};

// Header names are ASCII; std::tolower would consult the locale per byte.
char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Inference bodies carry tensors and get their own, larger limit.
bool IsInference(const HttpRequest& request) {
  const auto& s = request.segments;
  return request.method == "POST" && s.size() >= 4 && s[0] == "v2" && s[1] == "models" &&
         s.back() == "infer";
}

class Session : public DeadlineHolder, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router& router, const ServerOptions& options,
          std::filesystem::path temp_root, std::shared_ptr<ConnectionDeadlines> deadlines)
      : socket_(std::move(socket)),
        router_(router),
        options_(options),
        temp_root_(std::move(temp_root)),
        deadlines_(std::move(deadlines)) {}

  ~Session() override {
    RemoveUpload();
    deadlines_->Remove(deadline_id_);
  }

  void Start() {
    deadline_id_ = deadlines_->Add(weak_from_this());
    ReadHeader();
  }

  void Expire() override {
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

 private:
  void ReadHeader() {
    // One parser per request: the header is read first, then the body into
    // the same parser (or, for uploads, into a file parser made from it).
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // The real limit is set once the route is known (upload or not); Beast
    // would otherwise refuse a large Content-Length before we can answer.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    SetDeadline(kHeaderTimeout);
    http::async_read_header(socket_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code error, size_t) {
    if (error) return Close();  // closed, or a malformed request line/header
    auto& header = parser_->get();
    keep_alive_ = header.keep_alive();
    std::string_view target(header.target().data(), header.target().size());
    request_ = HttpRequest();
    request_.method = std::string(header.method_string());
    Status parsed = ParseTarget(target);
    if (!parsed.ok()) return Fail(parsed);
    for (const auto& field : header) {
      std::string name(field.name_string());
      for (char& c : name) c = AsciiLower(c);
      request_.headers[name] = std::string(field.value());
    }
    if (Router::IsUpload(request_.method, request_.segments)) return StartUpload();
    auto length = parser_->content_length();
    body_limit_ = IsInference(request_) ? options_.max_infer_bytes : options_.max_json_bytes;
    if (length && *length > body_limit_) {
      return Fail(TooLarge("request body is over the " + std::to_string(body_limit_) +
                           "-byte limit"));
    }
    SetDeadline(kBodyTimeout);
    parser_->body_limit(body_limit_);
    if (parser_->is_done()) return OnStringBody({}, 0);  // no body (GET)
    SendContinueIfAsked([self = shared_from_this()] {
      http::async_read(self->socket_, self->buffer_, *self->parser_,
                       beast::bind_front_handler(&Session::OnStringBody, self));
    });
  }

  Status ParseTarget(std::string_view target) {
    size_t question = target.find('?');
    ASSIGN_OR_RETURN(request_.segments, SplitPath(target.substr(0, question)));
    if (question != std::string_view::npos) {
      ASSIGN_OR_RETURN(request_.query, ParseQuery(target.substr(question + 1)));
    }
    return Status::Ok();
  }

  void StartUpload() {
    Result<Caller> caller = router_.Authenticate(request_.Header("authorization"));
    if (!caller.ok()) return Fail(caller.status());
    auto length = parser_->content_length();
    if (length && *length > options_.max_upload_bytes) {
      return Fail(TooLarge("package is over the " + std::to_string(options_.max_upload_bytes) +
                           "-byte upload limit"));
    }
    // Beast sizes each socket read by the buffer's free capacity: without room
    // a 50 MB upload arrives in 512-byte reads.
    buffer_.reserve(kUploadReadBuffer);
    SetDeadline(kBodyTimeout);
    file_parser_.emplace(std::move(*parser_));
    file_parser_->body_limit(options_.max_upload_bytes);
    upload_path_ = temp_root_ / ("upload-" + RandomHex(8));
    beast::error_code error;
    file_parser_->get().body().open(upload_path_.c_str(), beast::file_mode::write_new, error);
    if (error) return Fail(Internal("cannot stage the upload: " + error.message()));
    SendContinueIfAsked([self = shared_from_this()] {
      http::async_read(self->socket_, self->buffer_, *self->file_parser_,
                       beast::bind_front_handler(&Session::OnFileBody, self));
    });
  }

  // curl and others wait for "100 Continue" before sending a large body.
  template <typename Next>
  void SendContinueIfAsked(Next next) {
    std::string expect = request_.Header("expect");
    for (char& c : expect) c = AsciiLower(c);
    if (expect != "100-continue") return next();
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(socket_, asio::buffer(kContinue),
                      [self = shared_from_this(), next](beast::error_code error, size_t) {
                        if (error) return self->Close();
                        next();
                      });
  }

  void OnStringBody(beast::error_code error, size_t) {
    if (error == http::error::body_limit) {
      return Fail(TooLarge("request body is over the " + std::to_string(body_limit_) +
                           "-byte limit"));
    }
    if (error) return Close();
    request_.body = std::move(parser_->get().body());
    Dispatch();
  }

  void OnFileBody(beast::error_code error, size_t) {
    file_parser_->get().body().close();
    if (error == http::error::body_limit) {
      return Fail(TooLarge("package is over the " + std::to_string(options_.max_upload_bytes) +
                           "-byte upload limit"));
    }
    if (error) return Close();
    request_.body_file = upload_path_;
    Dispatch();
  }

  void Dispatch() {
    ClearDeadline();  // the route's own work is not a client stall
    // Routes may answer from another thread (a model's): that answer is
    // posted to this connection's strand. An answer given while HandleAsync
    // runs (the usual case: in-process models run on this thread) is sent
    // at once. Only the first answer to this request counts: requests on a
    // connection are numbered, and the next is read only after this one's
    // answer went out, so answered_through_ is sequence - 1 until then.
    uint64_t sequence = ++sequence_;
    routing_thread_.store(std::this_thread::get_id());
    Router::Responder respond = [self = shared_from_this(), sequence](HttpResponse response) {
      uint64_t previous = sequence - 1;
      if (!self->answered_through_.compare_exchange_strong(previous, sequence)) return;
      if (self->routing_thread_.load() == std::this_thread::get_id()) {
        self->RemoveUpload();
        return self->Send(std::move(response));
      }
      asio::post(self->socket_.get_executor(), [self, response = std::move(response)]() mutable {
        self->RemoveUpload();
        self->Send(std::move(response));
      });
    };
    try {
      router_.HandleAsync(std::move(request_), respond);
    } catch (const nlohmann::json::exception& error) {
      // A JSON field of the wrong type read by a route (e.g. a number as a string).
      respond(HttpResponse::Error(InvalidArgument(std::string("bad JSON field: ") + error.what())));
    } catch (const std::exception& error) {
      LogError(std::string("request failed: ") + error.what());
      respond(HttpResponse::Error(Internal("internal error")));
    }
    routing_thread_.store(std::thread::id());
  }

  // Answers with the error and closes: the rest of the body is unread.
  void Fail(const Status& status) {
    keep_alive_ = false;
    RemoveUpload();
    Send(HttpResponse::Error(status));
  }

  void Send(HttpResponse response) {
    SetDeadline(kBodyTimeout);  // a reader that stalls is dropped
    if (!response.file.empty()) return SendFile(std::move(response));
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(response.status), 11);
    message->set(http::field::server, "orrery");
    message->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive_);
    message->prepare_payload();
    http::async_write(socket_, *message,
                      [self = shared_from_this(), message](beast::error_code error, size_t) {
                        self->AfterWrite(error);
                      });
  }

  void SendFile(HttpResponse response) {
    auto message = std::make_shared<http::response<http::file_body>>(http::status::ok, 11);
    beast::error_code error;
    message->body().open(response.file.c_str(), beast::file_mode::scan, error);
    std::error_code ignored;
    std::filesystem::remove(response.file, ignored);  // the open descriptor keeps the data
    if (error) return Send(HttpResponse::Error(Internal("cannot open export: " + error.message())));
    message->set(http::field::server, "orrery");
    message->set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) message->set(name, value);
    message->keep_alive(keep_alive_);
    message->prepare_payload();
    http::async_write(socket_, *message,
                      [self = shared_from_this(), message](beast::error_code error, size_t) {
                        self->AfterWrite(error);
                      });
  }

  void AfterWrite(beast::error_code error) {
    if (error || !keep_alive_) return Close();
    ReadHeader();
  }

  void Close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void RemoveUpload() {
    if (upload_path_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove(upload_path_, ignored);
    upload_path_.clear();
  }

  tcp::socket socket_;  // on this connection's strand
  beast::flat_buffer buffer_;
  const Router& router_;
  const ServerOptions& options_;
  std::filesystem::path temp_root_;
  std::shared_ptr<ConnectionDeadlines> deadlines_;
  uint64_t deadline_id_ = 0;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::file_body>> file_parser_;
  std::filesystem::path upload_path_;
  HttpRequest request_;
  uint64_t body_limit_ = 0;
  bool keep_alive_ = true;
  uint64_t sequence_ = 0;                          // requests routed on this connection
  std::atomic<uint64_t> answered_through_{0};      // the last request that has its answer
  std::atomic<std::thread::id> routing_thread_{};  // the thread inside HandleAsync, if any
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, tcp::acceptor acceptor, const Router& router,
           const ServerOptions& options, std::filesystem::path temp_root)
      : io_(io),
        acceptor_(std::move(acceptor)),
        router_(router),
        options_(options),
        temp_root_(std::move(temp_root)),
        deadlines_(std::make_shared<ConnectionDeadlines>(io)) {
    deadlines_->Start();
  }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code error, tcp::socket socket) {
    if (!error) {
      socket.set_option(tcp::no_delay(true), error);
      std::make_shared<Session>(std::move(socket), router_, options_, temp_root_, deadlines_)
          ->Start();
    } else if (error == asio::error::operation_aborted) {
      return;
    }
    Accept();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  const Router& router_;
  const ServerOptions& options_;
  std::filesystem::path temp_root_;
  std::shared_ptr<ConnectionDeadlines> deadlines_;
};

ModelManager::Options ModelOptions(const ServerOptions& options, const Repository& repository) {
  ModelManager::Options models;
  models.memory_budget_bytes = options.memory_budget_bytes;
  models.instances = options.instances;
  models.max_queue = options.max_queue;
  models.timeout_ms = options.timeout_ms;
  models.warmup = options.warmup;
  models.trusted = options.trusted_native;
  models.network = options.network_allowed;
  models.sandbox.use_bubblewrap = options.bubblewrap;
  models.sandbox.memory_bytes = options.worker_memory_bytes;
  models.sandbox.scratch_root = repository.TempRoot();
  return models;
}

Result<tcp::acceptor> Bind(asio::io_context& io, const ServerOptions& options) {
  beast::error_code error;
  auto address = asio::ip::make_address(options.host, error);
  if (error) return InvalidArgument("--host " + options.host + " is not an IP address");
  tcp::acceptor acceptor(io);
  tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return Unavailable("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                       ": " + error.message());
  }
  return acceptor;
}

}  // namespace

int RunServer(const ServerOptions& options) {
  if (options.threads < 1) {
    std::cerr << "orrery: --threads must be at least 1\n";
    return 2;
  }
  Repository::Options repository_options;
  repository_options.data_dir = options.data_dir;
  repository_options.archive_limits.max_entries = options.max_archive_entries;
  repository_options.archive_limits.max_total_bytes = options.max_unpacked_bytes;
  repository_options.gc_min_age_s = options.gc_min_age_s;
  repository_options.reset_admin_token = options.reset_admin_token;
  Result<std::unique_ptr<Repository>> repository = Repository::Open(repository_options);
  if (!repository.ok()) {
    std::cerr << "orrery: cannot open " << options.data_dir << ": " << repository.status().message()
              << "\n";
    return 1;
  }
  Result<std::unique_ptr<ModelManager>> models = ModelManager::Create(**repository, ModelOptions(options, **repository));
  if (!models.ok()) {
    std::cerr << "orrery: " << models.status().message() << "\n";
    return 1;
  }
  LogInfo("python and untrusted native servables run in workers: " +
          DescribeWorkerIsolation((*models)->options().sandbox));
  Router router(**repository, **models, options);

  asio::io_context io(options.threads);
  Result<tcp::acceptor> acceptor = Bind(io, options);
  if (!acceptor.ok()) {
    std::cerr << "orrery: " << acceptor.status().message() << "\n";
    return 1;
  }
  uint16_t port = acceptor->local_endpoint().port();
  std::make_shared<Listener>(io, std::move(*acceptor), router, options, (*repository)->TempRoot())
      ->Accept();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](beast::error_code, int) { io.stop(); });

  LogInfo("orrery listening on http://" + options.host + ":" + std::to_string(port) +
          " (data: " + options.data_dir.string() +
          ", admin token: " + (*repository)->AdminTokenPath().string() + ")");
  std::vector<std::thread> threads;
  for (int i = 1; i < options.threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (std::thread& thread : threads) thread.join();
  LogInfo("orrery stopped");
  return 0;
}

}  // namespace orrery
