// orrery-bench-ipc: the cost of one request / answer round trip between two
// processes on one core, for the transports a worker channel could use
// (src/backends/worker/frames.h says why it uses pipes).
//
//   taskset -c 0 orrery-bench-ipc [--rounds N] [--bytes B]
//
// The parent writes B bytes (200: a small inference frame), the child reads
// them and writes B bytes back, the parent reads them; N rounds (40000)
// after 1000 of warm-up, the mean printed per transport (Unix stream socket,
// Unix seqpacket socket, two pipes) and per way of waiting for the answer:
// "blocking" (read() blocks), "epoll add/del" (register, wait, unregister:
// what a one-shot watch costs) and "epoll mod" (a registration kept between
// waits, re-armed with EPOLL_CTL_MOD: what the server's event loop does).
// Both processes inherit the caller's CPU affinity: pin them to one core to
// measure what the server sees. Exit 1 with a message on any error.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "orrery-bench-ipc: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

enum class Wait { kBlocking, kEpollAddDel, kEpollMod };

// One transport: the parent writes `to_child` and reads `from_child`; the
// child the other two.
struct Ends {
  int to_child, from_child, child_in, child_out;
};

double RoundTripUs(const Ends& ends, Wait wait, int rounds, size_t bytes) {
  constexpr int kWarmup = 1000;
  pid_t child = ::fork();
  if (child < 0) Fail("fork");
  char buffer[65536];
  if (child == 0) {
    for (int i = 0; i < rounds + kWarmup; ++i) {
      if (::read(ends.child_in, buffer, sizeof buffer) <= 0) break;
      if (::write(ends.child_out, buffer, bytes) < 0) break;
    }
    ::_exit(0);
  }
  int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) Fail("epoll_create1");
  epoll_event armed{};
  armed.events = EPOLLIN | EPOLLONESHOT;
  if (wait == Wait::kEpollMod && ::epoll_ctl(epoll, EPOLL_CTL_ADD, ends.from_child, &armed) != 0) {
    Fail("epoll_ctl");
  }
  std::memset(buffer, 'x', bytes);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < rounds + kWarmup; ++i) {
    if (i == kWarmup) started = std::chrono::steady_clock::now();
    if (::write(ends.to_child, buffer, bytes) != static_cast<ssize_t>(bytes)) Fail("write");
    epoll_event event;
    if (wait == Wait::kEpollAddDel) {
      if (::epoll_ctl(epoll, EPOLL_CTL_ADD, ends.from_child, &armed) != 0) Fail("epoll_ctl");
      if (::epoll_wait(epoll, &event, 1, -1) != 1) Fail("epoll_wait");
      ::epoll_ctl(epoll, EPOLL_CTL_DEL, ends.from_child, nullptr);
    } else if (wait == Wait::kEpollMod) {
      if (::epoll_wait(epoll, &event, 1, -1) != 1) Fail("epoll_wait");
    }
    if (::read(ends.from_child, buffer, sizeof buffer) <= 0) Fail("read");
    if (wait == Wait::kEpollMod && ::epoll_ctl(epoll, EPOLL_CTL_MOD, ends.from_child, &armed) != 0) {
      Fail("epoll_ctl");
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - started;
  ::close(epoll);
  ::waitpid(child, nullptr, 0);
  return std::chrono::duration<double, std::micro>(elapsed).count() / rounds;
}

void Report(const char* transport, Ends ends, int rounds, size_t bytes) {
  const char* names[] = {"blocking", "epoll add/del", "epoll mod"};
  for (Wait wait : {Wait::kBlocking, Wait::kEpollAddDel, Wait::kEpollMod}) {
    std::printf("%-16s %-14s %8.2f us per round trip\n", transport,
                names[static_cast<int>(wait)], RoundTripUs(ends, wait, rounds, bytes));
  }
}

void Close(const Ends& ends) {
  for (int fd : {ends.to_child, ends.from_child, ends.child_in, ends.child_out}) ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 40000;
  size_t bytes = 200;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (flag == "--bytes" && i + 1 < argc) {
      bytes = static_cast<size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: orrery-bench-ipc [--rounds N] [--bytes B]\n");
      return 1;
    }
  }
  if (rounds <= 0 || bytes == 0 || bytes > 65536) {
    std::fprintf(stderr, "orrery-bench-ipc: --rounds must be > 0, --bytes in 1..65536\n");
    return 1;
  }
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
    int pair[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair) != 0) Fail("socketpair");
    Ends ends{pair[0], pair[0], pair[1], pair[1]};
    Report(type == SOCK_STREAM ? "unix stream" : "unix seqpacket", ends, rounds, bytes);
    ::close(pair[0]);
    ::close(pair[1]);
  }
  int requests[2], answers[2];
  if (::pipe2(requests, O_CLOEXEC) != 0 || ::pipe2(answers, O_CLOEXEC) != 0) Fail("pipe2");
  Ends pipes{requests[1], answers[0], requests[0], answers[1]};
  Report("two pipes", pipes, rounds, bytes);
  Close(pipes);
  return 0;
}
