// SandboxedProcess with real processes, in whichever isolation this host
// gives (bubblewrap or the fallback): descriptors handed down arrive as 3,
// 4, ...; the exit is reported; Kill() ends a process that would not;
// bad specs are refused before anything starts.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/files.h"
#include "sandbox/sandbox.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> dir = TempDir::Create(fs::temp_directory_path(), "sandbox-test-");
    ASSERT_TRUE(dir.ok()) << dir.status().message();
    dir_.emplace(std::move(*dir));
    spec_.servable_dir = dir_->path();
    spec_.sandbox.scratch_root = dir_->path() / "scratch";
  }
  // Runs `script` under /usr/bin/sh in the sandbox, handing down `inherited`.
  Result<std::unique_ptr<SandboxedProcess>> Run(const std::string& script,
                                                const std::vector<int>& inherited = {}) {
    spec_.command = {"/usr/bin/sh", "-c", script};
    return SandboxedProcess::Launch(spec_, log_[1], inherited);
  }
  void TearDown() override {
    ::close(log_[0]);
    ::close(log_[1]);
  }

  std::optional<TempDir> dir_;
  SandboxSpec spec_;
  int log_[2] = {-1, -1};

 public:
  SandboxTest() { EXPECT_EQ(::pipe2(log_, O_CLOEXEC), 0); }
};

TEST_F(SandboxTest, HandedDownDescriptorsArriveAsThreeFourFive) {
  int a[2], b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  auto process = Run("echo first >&3; echo second >&4", {a[1], b[1]});
  ASSERT_TRUE(process.ok()) << process.status().message();
  ::close(a[1]);
  ::close(b[1]);
  EXPECT_EQ((*process)->Reap(60s), "exit code 0");
  char buffer[32] = {};
  EXPECT_EQ(::read(a[0], buffer, sizeof buffer - 1), 6);
  EXPECT_STREQ(buffer, "first\n");
  std::fill(std::begin(buffer), std::end(buffer), 0);
  EXPECT_EQ(::read(b[0], buffer, sizeof buffer - 1), 7);
  EXPECT_STREQ(buffer, "second\n");
  ::close(a[0]);
  ::close(b[0]);
}

TEST_F(SandboxTest, NothingButWhatWasHandedDownIsOpen) {
  // Not close-on-exec, and at a low number (3, 4 or 5 here): still not handed down.
  int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  ASSERT_LE(leaked, 6);
  auto process = Run("for fd in 3 4 5 7 8 9; do [ -e /proc/self/fd/$fd ] && exit 1; done; exit 0");
  ::close(leaked);
  ASSERT_TRUE(process.ok()) << process.status().message();
  EXPECT_EQ((*process)->Reap(60s), "exit code 0");
}

TEST_F(SandboxTest, ReportsTheExitAndKillEndsAProcessThatWouldNot) {
  auto failing = Run("exit 3");
  ASSERT_TRUE(failing.ok()) << failing.status().message();
  EXPECT_EQ((*failing)->Reap(60s), "exit code 3");

  auto sleeping = Run("sleep 600");
  ASSERT_TRUE(sleeping.ok()) << sleeping.status().message();
  EXPECT_FALSE((*sleeping)->Exited());
  (*sleeping)->Kill();
  EXPECT_EQ((*sleeping)->Reap(60s), "signal 9");
}

// The state letter of /proc/<pid>/stat ("" when there is no such process).
std::string ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? "" : line.substr(paren + 2, 1);
}

// Fallback only: under bwrap the pid namespace ends with its init, and the
// pid seen inside is not the host's.
TEST_F(SandboxTest, WhatAProcessLeftRunningDiesWhenItIsReaped) {
  spec_.sandbox.use_bubblewrap = false;
  spec_.servable_dir = dir_->path() / "servable";  // not the directory holding the scratch root
  fs::create_directory(spec_.servable_dir);
  int pid_pipe[2];
  ASSERT_EQ(::pipe2(pid_pipe, O_CLOEXEC), 0);
  // It exits by itself at once, leaving a sleeper in its process group.
  auto process = Run("/usr/bin/sleep 600 & echo $! >&3; exit 0", {pid_pipe[1]});
  ::close(pid_pipe[1]);
  ASSERT_TRUE(process.ok()) << process.status().message();
  char buffer[32] = {};
  ASSERT_GT(::read(pid_pipe[0], buffer, sizeof buffer - 1), 0);
  ::close(pid_pipe[0]);
  pid_t sleeper = std::atoi(buffer);
  ASSERT_GT(sleeper, 0);
  EXPECT_EQ((*process)->Reap(60s), "exit code 0");
  // SIGKILL is sent, not waited for; its zombie is the host init's to reap.
  auto until = std::chrono::steady_clock::now() + 30s;
  std::string state = ProcessState(sleeper);
  while (state == "S" || state == "R" || state == "D") {
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "the sleeper outlived its group";
    std::this_thread::sleep_for(1ms);
    state = ProcessState(sleeper);
  }
}

TEST_F(SandboxTest, RefusesBadSpecsBeforeStartingAnything) {
  EXPECT_EQ(Run("true", {0, 1, 2, 3}).status().code(), Code::kInternal);
  spec_.servable_dir = dir_->path() / "missing";
  EXPECT_EQ(Run("true").status().code(), Code::kUnavailable);
  spec_.servable_dir = dir_->path();
  spec_.read_only_binds = {{dir_->path() / "absent", "/x"}};
  EXPECT_EQ(Run("true").status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace orrery
