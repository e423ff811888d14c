// The epoll transport (contract in http_transport.h).
//
// Each loop thread owns an epoll set, the connections it accepted and a
// queue of tasks posted from other threads (answers given by model threads),
// woken through an eventfd. Connections are registered once, edge-triggered
// for both directions, so a request costs no epoll_ctl. A connection is a
// small state machine (Connection::Step) driven by socket events and by its
// answer; epoll events carry the connection's id, never a pointer, so an
// event for a connection closed earlier in the same batch is just ignored.
//
// Answers produced while a batch of events is handled are written after the
// batch: the client (often one thread with many connections) is then woken
// once for several answers instead of once per answer. On a loaded loop that
// wake-up (an inter-processor interrupt, costly in a VM) was about a tenth of
// the CPU of a small inference request; with one connection nothing waits.
//
// A loop is also the Reactor (core/reactor.h) of its thread: the serving
// core waits there for worker processes' answers (one-shot registrations
// with a deadline), so a worker-backed request needs no thread of its own.
#include "api/http_transport.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "api/http_connection.h"
#include "core/log.h"
#include "core/reactor.h"

namespace orrery {
namespace {

constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr uint64_t kFirstConnectionId = 2;
constexpr int kMaxEvents = 128;
constexpr int kAcceptsPerWake = 64;
constexpr int64_t kSweepIntervalMs = 1000;

// The loop running on this thread, if any: answers given on it while their
// connection is being routed are sent without a round trip through the queue.
thread_local EventLoop* t_current_loop = nullptr;

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

// One thread's connections. Ownership: owns its epoll fd, eventfd and
// connections; borrows the listening socket. Thread-safety: Post, Stop and
// the Responders it makes may be used from any thread; the rest only on the
// loop's own thread (inside Run).
class EventLoop final : public ConnectionLoop,
                        public Reactor,
                        public std::enable_shared_from_this<EventLoop> {
 public:
  // What the loops share while the server stops.
  struct Drain {
    std::atomic<int>* busy_loops;      // loops that still hold admitted requests
    std::function<void()> wake_all;    // nudges every loop (when the last is done)
  };

  static Result<std::shared_ptr<EventLoop>> Create(int listen_fd, ConnectionContext context,
                                                   Drain drain) {
    auto loop = std::shared_ptr<EventLoop>(new EventLoop(listen_fd, std::move(context)));
    loop->drain_ = std::move(drain);
    loop->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (loop->epoll_fd_ < 0) return Internal(Errno("epoll_create1"));
    loop->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wake_fd_ < 0) return Internal(Errno("eventfd"));
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.u64 = kWakeId;
    if (::epoll_ctl(loop->epoll_fd_, EPOLL_CTL_ADD, loop->wake_fd_, &wake) != 0 ||
        !loop->WatchListener()) {
      return Internal(Errno("epoll_ctl"));
    }
    return loop;
  }

  ~EventLoop() {
    connections_.clear();
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  // Returns how many admitted requests it cut off unanswered.
  size_t Run() {
    t_current_loop = this;
    SetCurrent(this);
    now_ms_ = SteadyMs();
    int64_t next_sweep = now_ms_ + kSweepIntervalMs;
    epoll_event events[kMaxEvents];
    while (!stopping_.load(std::memory_order_relaxed)) {
      int timeout = has_tasks_.load(std::memory_order_acquire)
                        ? 0
                        : static_cast<int>(std::max<int64_t>(0, next_sweep - now_ms_));
      if (!watches_.empty()) timeout = std::min(timeout, MillisToNextWatchDeadline());
      if (drain_deadline_ >= 0) {
        timeout = std::min<int64_t>(timeout, std::max<int64_t>(0, drain_deadline_ - now_ms_));
      }
      int count = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
      if (count < 0 && errno != EINTR) {
        LogError(Errno("epoll_wait"));
        break;
      }
      now_ms_ = SteadyMs();
      in_batch_ = true;
      for (int i = 0; i < count; ++i) OnEvent(events[i]);
      if (!watches_.empty()) ExpireWatches();
      RunPosted();
      in_batch_ = false;
      WriteDeferred();
      if (now_ms_ >= next_sweep) {
        Sweep();
        next_sweep = now_ms_ + kSweepIntervalMs;
      }
      if (context_.stopping->load(std::memory_order_relaxed) && DrainOver()) break;
    }
    size_t cut_off = BusyConnections();
    CancelWatches();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
      tasks_.clear();
    }
    connections_.clear();
    SetCurrent(nullptr);
    t_current_loop = nullptr;
    return cut_off;
  }

  void WaitReadable(int fd, std::chrono::steady_clock::time_point deadline,
                    std::function<void(Wake)> done) override {
    uint64_t id = next_id_++;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    event.data.u64 = id;
    watches_.emplace(id, Watch{fd, deadline, std::move(done)});
    // A descriptor stays in the set after its wait, disarmed by ONESHOT
    // (closing it takes it out), so a descriptor waited on per request (a
    // worker's answers) costs one epoll_ctl per wait instead of two.
    bool armed = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) == 0 ||
                 (errno == ENOENT && ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) == 0);
    if (!armed) {
      // Not watchable: say "readable" at once (after this returns); the
      // reader then finds out what is wrong with the descriptor.
      LogError(Errno("epoll_ctl (watch)"));
      Post([this, id] {
        if (watches_.count(id) != 0) FireWatch(id, Wake::kReadable);
      });
    }
  }

  void Stop() {
    stopping_.store(true);
    Interrupt();
  }

  // Wakes the loop so that it sees the stopping flag (set by the transport).
  void Nudge() { Interrupt(); }

  // Runs `task` on the loop's thread; dropped once the loop has stopped.
  void Post(std::function<void()> task) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      first = tasks_.empty();
      tasks_.push_back(std::move(task));
    }
    has_tasks_.store(true, std::memory_order_release);
    // One wake-up per drained queue: a batch's 32 answers cost one eventfd
    // write, not 32 (the loop takes every queued task when it wakes).
    if (first && t_current_loop != this) Interrupt();
  }

  Router::Responder MakeResponder(uint64_t id, uint64_t sequence) override {
    return [loop = shared_from_this(), id, sequence](HttpResponse response) {
      loop->Deliver(id, sequence, std::move(response));
    };
  }

  bool DeferWrite(uint64_t id) override {
    if (!in_batch_) return false;
    deferred_writes_.push_back(id);
    return true;
  }

  void BeginRouting(uint64_t id) override { routing_id_ = id; }
  void EndRouting() override { routing_id_ = 0; }
  int64_t now_ms() const override { return now_ms_; }

 private:
  EventLoop(int listen_fd, ConnectionContext context)
      : listen_fd_(listen_fd), context_(std::move(context)) {}

  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // EPOLLEXCLUSIVE: a new connection wakes one loop, not all of them.
  bool WatchListener() {
    epoll_event listen{};
    listen.events = EPOLLIN | EPOLLEXCLUSIVE;
    listen.data.u64 = kListenerId;
    accepting_ = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &listen) == 0;
    return accepting_;
  }

  void Interrupt() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);  // async-signal-safe
    (void)ignored;
  }

  void OnEvent(const epoll_event& event) {
    uint64_t id = event.data.u64;
    if (id == kListenerId) return Accept();
    if (id == kWakeId) {
      uint64_t value;
      ssize_t ignored = ::read(wake_fd_, &value, sizeof value);
      (void)ignored;
      return;
    }
    auto it = connections_.find(id);
    if (it == connections_.end()) {
      if (watches_.count(id) != 0) FireWatch(id, Wake::kReadable);
      return;  // else: closed earlier in this batch
    }
    it->second->OnEvents(event.events);
    if (it->second->closed()) connections_.erase(it);
  }

  // Ends watch `id` (its descriptor stays registered: see WaitReadable);
  // `done` may wait again. A watch that times out stays armed: should its
  // descriptor become readable later, the event names no watch and is
  // dropped (ids are never reused).
  void FireWatch(uint64_t id, Wake wake) {
    auto it = watches_.find(id);
    Watch watch = std::move(it->second);
    watches_.erase(it);
    watch.done(wake);
  }

  int MillisToNextWatchDeadline() const {
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, watch] : watches_) next = std::min(next, watch.deadline);
    auto left = next - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;
    // Rounded up: waking a little after the deadline, never before it.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<int64_t>(ms, kSweepIntervalMs));
  }

  void ExpireWatches() {
    auto now = std::chrono::steady_clock::now();
    std::vector<uint64_t> expired;
    for (const auto& [id, watch] : watches_) {
      if (watch.deadline <= now) expired.push_back(id);
    }
    for (uint64_t id : expired) {
      if (watches_.count(id) != 0) FireWatch(id, Wake::kTimedOut);
    }
  }

  void CancelWatches() {
    while (!watches_.empty()) FireWatch(watches_.begin()->first, Wake::kCancelled);
  }

  void Accept() {
    for (int i = 0; i < kAcceptsPerWake; ++i) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: stop accepting until the next sweep rather
          // than spin on a listener that stays readable.
          LogError(Errno("accept"));
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
          accepting_ = false;
        }
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      uint64_t id = next_id_++;
      auto connection = std::make_unique<Connection>(*this, context_, id, fd);
      epoll_event event{};
      event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      event.data.u64 = id;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) continue;  // closes fd
      connections_.emplace(id, std::move(connection));
    }
  }

  // Answers go straight to the connection when given on this thread while it
  // is being routed (an in-process model ran inline); otherwise through the
  // queue, so a connection never re-enters the router from inside another
  // request's call stack.
  void Deliver(uint64_t id, uint64_t sequence, HttpResponse response) {
    if (t_current_loop == this && routing_id_ == id) {
      auto it = connections_.find(id);
      if (it != connections_.end()) it->second->OnAnswer(sequence, std::move(response));
      return;
    }
    Post([this, id, sequence, response = std::move(response)]() mutable {
      auto it = connections_.find(id);
      if (it == connections_.end()) return;  // the client went away
      it->second->OnAnswer(sequence, std::move(response));
      if (it->second->closed()) connections_.erase(it);
    });
  }

  void WriteDeferred() {
    for (uint64_t id : deferred_writes_) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      it->second->WriteDeferred();
      if (it->second->closed()) connections_.erase(it);
    }
    deferred_writes_.clear();
  }

  void RunPosted() {
    if (!has_tasks_.load(std::memory_order_acquire)) return;
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks.swap(tasks_);
      has_tasks_.store(false, std::memory_order_release);
    }
    for (auto& task : tasks) task();
  }

  // While the server stops: true once every loop's admitted requests are
  // answered, or the shutdown timeout passed. The loops stop together, so
  // that each keeps answering probes and refusals until the last admitted
  // request anywhere is answered.
  bool DrainOver() {
    if (drain_deadline_ < 0) {
      drain_deadline_ = now_ms_ + context_.options->shutdown_timeout_s * 1000;
    }
    if (!drained_ && BusyConnections() == 0) {  // none can be admitted any more
      drained_ = true;
      if (drain_.busy_loops->fetch_sub(1) == 1) drain_.wake_all();
    }
    return drain_.busy_loops->load() == 0 || now_ms_ >= drain_deadline_;
  }

  size_t BusyConnections() const {
    size_t busy = 0;
    for (const auto& [id, connection] : connections_) busy += connection->busy() ? 1 : 0;
    return busy;
  }

  void Sweep() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      it->second->CheckDeadline(now_ms_);
      it = it->second->closed() ? connections_.erase(it) : std::next(it);
    }
    if (!accepting_) WatchListener();
  }

  const int listen_fd_;
  const ConnectionContext context_;
  Drain drain_;
  int64_t drain_deadline_ = -1;  // set once the graceful stop begins
  bool drained_ = false;         // counted out of drain_.busy_loops
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool accepting_ = false;
  uint64_t next_id_ = kFirstConnectionId;
  uint64_t routing_id_ = 0;  // the connection inside Router::HandleAsync, 0 if none
  bool in_batch_ = false;    // handling epoll events or posted tasks
  std::vector<uint64_t> deferred_writes_;  // connections with an answer to write
  int64_t now_ms_ = 0;       // steady clock, read once per wake-up
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  struct Watch {
    int fd;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(Wake)> done;
  };
  std::unordered_map<uint64_t, Watch> watches_;  // WaitReadable's registrations by id
  std::atomic<bool> stopping_{false};
  std::atomic<bool> has_tasks_{false};
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;  // GUARDED_BY(mutex_)
  bool stopped_ = false;                      // GUARDED_BY(mutex_)
};

namespace {

// IPv4 or IPv6, by the form of --host.
Result<int> Listen(const ServerOptions& options) {
  sockaddr_storage endpoint{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&endpoint);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&endpoint);
  if (::inet_pton(AF_INET, options.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options.port);
    length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, options.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options.port);
    length = sizeof *v6;
  } else {
    return InvalidArgument("--host " + options.host + " is not an IP address");
  }
  int fd = ::socket(endpoint.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(Errno("socket"));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&endpoint), length) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    std::string message = std::strerror(errno);
    ::close(fd);
    return Unavailable("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                       ": " + message);
  }
  return fd;
}

// The bound port (options.port may be 0).
uint16_t LocalPort(int fd) {
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  if (bound.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}
}  // namespace

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const Router& router,
                                                             const ServerOptions& options,
                                                             std::filesystem::path temp_root,
                                                             std::atomic<bool>& stopping) {
  if (options.threads < 1) return InvalidArgument("--threads must be at least 1");
  std::unique_ptr<HttpTransport> transport(new HttpTransport());
  ASSIGN_OR_RETURN(transport->listen_fd_, Listen(options));
  transport->port_ = LocalPort(transport->listen_fd_);
  transport->stopping_ = &stopping;
  transport->hosts_ = std::make_unique<HostAllowList>(
      HostAllowList::For(options.host, options.allowed_hosts));
  ConnectionContext context{&router, &options, std::move(temp_root), &stopping,
                            transport->hosts_.get()};
  transport->busy_loops_ = std::make_unique<std::atomic<int>>(options.threads);
  HttpTransport* self = transport.get();
  EventLoop::Drain drain{transport->busy_loops_.get(), [self] { self->NudgeLoops(); }};
  for (int i = 0; i < options.threads; ++i) {
    ASSIGN_OR_RETURN(std::shared_ptr<EventLoop> loop,
                     EventLoop::Create(transport->listen_fd_, context, drain));
    transport->loops_.push_back(std::move(loop));
  }
  return transport;
}

HttpTransport::~HttpTransport() {
  loops_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

size_t HttpTransport::Run() {
  std::vector<std::thread> threads;
  std::atomic<size_t> cut_off{0};
  for (size_t i = 1; i < loops_.size(); ++i) {
    threads.emplace_back([loop = loops_[i], &cut_off] { cut_off += loop->Run(); });
  }
  cut_off += loops_[0]->Run();
  for (std::thread& thread : threads) thread.join();
  return cut_off.load();
}

void HttpTransport::Drain() {
  stopping_->store(true);
  NudgeLoops();
}

void HttpTransport::NudgeLoops() {
  for (const auto& loop : loops_) loop->Nudge();
}

void HttpTransport::Stop() {
  for (const auto& loop : loops_) loop->Stop();
}

}  // namespace orrery
