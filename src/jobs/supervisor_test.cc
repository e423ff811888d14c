// The job supervisor with real sandboxed processes, in both isolation modes:
// the contract's directories and variables, outcomes (exit 0, exit codes,
// a missing command, the wall time), halt and cancel by signal (a job that
// checkpoints on SIGTERM, one that ignores it), the bounded log.
//
// Each case runs RunSupervisor in a forked child, as `orrery job-supervisor`
// would run it, and reads the status file it leaves.
#include "jobs/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/files.h"
#include "jobs/attempt_plan.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class SupervisorTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "supervisor-test-");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(std::move(*dir));
    root_ = dir_->path();
    for (const char* sub : {"code", "input", "output", "checkpoint", "metrics", "attempt", "scratch"}) {
      fs::create_directory(root_ / sub);
    }
    ASSERT_TRUE(WriteFileAtomic(root_ / "input" / "data.txt", "input data\n").ok());
    ASSERT_TRUE(WriteFileAtomic(root_ / "code" / "run.sh", "echo from the code\n", 0755).ok());
    plan_.job_id = 7;
    plan_.attempt = 1;
    plan_.code_dir = root_ / "code";
    plan_.inputs = {{"data", root_ / "input"}};
    plan_.output_dir = root_ / "output";
    plan_.checkpoint_dir = root_ / "checkpoint";
    plan_.metrics_dir = root_ / "metrics";
    plan_.log_path = root_ / "log";
    plan_.wall_time_s = 60;
    plan_.halt_grace_s = 10;
    plan_.use_bubblewrap = GetParam();
    plan_.memory_bytes = int64_t{1} << 30;
    plan_.cpu_seconds = 600;
    plan_.scratch_root = root_ / "scratch";
    plan_.env = {{"ORRERY_INPUTS", kJobInputsDir},   {"ORRERY_OUTPUT", kJobOutputDir},
                 {"ORRERY_CHECKPOINT", kJobCheckpointDir}, {"ORRERY_METRICS", kJobMetricsFile}};
  }

  // Starts the supervisor on `script` (sh -c) in a child process.
  pid_t Start(const std::string& script) {
    plan_.command = {"sh", "-c", script};
    EXPECT_TRUE(WriteFileAtomic(PlanPath(root_ / "attempt"), plan_.ToJson().dump()).ok());
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(RunSupervisor(root_ / "attempt"));
    return pid;
  }
  AttemptStatus Finish(pid_t pid) {
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    Result<AttemptStatus> read = ReadAttemptStatus(root_ / "attempt");
    EXPECT_TRUE(read.ok()) << read.status().message();
    return read.ok() ? *read : AttemptStatus{};
  }
  AttemptStatus Run(const std::string& script) { return Finish(Start(script)); }
  void WaitRunning() {
    auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until) {
      auto status = ReadAttemptStatus(root_ / "attempt");
      if (status.ok() && status->state == "running") return;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "the job never ran";
  }
  void WaitForLog(const std::string& text) {
    auto until = std::chrono::steady_clock::now() + 30s;
    while (Log().find(text) == std::string::npos) {
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "no '" << text << "' in the log";
      std::this_thread::sleep_for(5ms);
    }
  }
  std::string Log() {
    Result<std::string> text = ReadFile(root_ / "log");
    return text.ok() ? *text : "";
  }

  std::optional<TempDir> dir_;
  fs::path root_;
  AttemptPlan plan_;
};

TEST_P(SupervisorTest, TheJobSeesItsContractAndCompletes) {
  AttemptStatus status = Run(
      "echo hello; cat $ORRERY_INPUTS/data/data.txt; ./run.sh; "
      "echo '{\"step\": 1, \"loss\": 0.5}' >> $ORRERY_METRICS; "
      "echo result > $ORRERY_OUTPUT/model.txt; echo saved > $ORRERY_CHECKPOINT/ckpt");
  EXPECT_EQ(status.state, "ended");
  EXPECT_EQ(status.end, AttemptEnd::kCompleted) << status.reason;
  EXPECT_EQ(status.reason, "exit code 0") << Log();
  EXPECT_GT(status.job_pid, 0);
  EXPECT_GE(status.ended_at_ms, status.started_at_ms);
  std::string log = Log();
  EXPECT_NE(log.find("hello\ninput data\nfrom the code\n"), std::string::npos) << log;
  EXPECT_NE(log.find("[orrery] attempt 1 ended"), std::string::npos) << log;
  EXPECT_EQ(*ReadFile(root_ / "output" / "model.txt"), "result\n");
  EXPECT_EQ(*ReadFile(root_ / "checkpoint" / "ckpt"), "saved\n");
  EXPECT_EQ(*ReadFile(root_ / "metrics" / "metrics.jsonl"), "{\"step\": 1, \"loss\": 0.5}\n");
}

TEST_P(SupervisorTest, InputsAndCodeAreReadOnlyAndTheDataDirectoryIsNotThere) {
  AttemptStatus status =
      Run("echo x > $ORRERY_INPUTS/data/data.txt && exit 10; echo y > ./new && exit 11; "
          "ls " + root_.string() + "/log && exit 12; exit 0");
  EXPECT_EQ(status.end, AttemptEnd::kCompleted) << status.reason << "\n" << Log();
  EXPECT_EQ(*ReadFile(root_ / "input" / "data.txt"), "input data\n");
}

TEST_P(SupervisorTest, FailuresSayWhy) {
  AttemptStatus failed = Run("echo about to fail; exit 3");
  EXPECT_EQ(failed.end, AttemptEnd::kFailed);
  EXPECT_EQ(failed.reason, "exit code 3: about to fail");

  plan_.command = {"no-such-program"};
  ASSERT_TRUE(WriteFileAtomic(PlanPath(root_ / "attempt"), plan_.ToJson().dump()).ok());
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(RunSupervisor(root_ / "attempt"));
  AttemptStatus missing = Finish(pid);
  EXPECT_EQ(missing.end, AttemptEnd::kFailed);
  EXPECT_EQ(missing.reason, "command not found: no-such-program");

  plan_.wall_time_s = 1;
  plan_.halt_grace_s = 1;
  AttemptStatus slow = Run("sleep 60");
  EXPECT_EQ(slow.end, AttemptEnd::kFailed);
  EXPECT_EQ(slow.reason.rfind("wall time of 1 s exceeded", 0), 0u) << slow.reason;
}

TEST_P(SupervisorTest, HaltLetsTheJobCheckpointThenEndsHalted) {
  pid_t pid = Start("trap 'echo saved > $ORRERY_CHECKPOINT/ckpt; exit 0' TERM; echo ready; "
                    "while true; do sleep 0.05; done");
  WaitRunning();
  WaitForLog("ready\n");  // the trap is set
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  AttemptStatus status = Finish(pid);
  EXPECT_EQ(status.end, AttemptEnd::kHalted) << status.reason;
  EXPECT_TRUE(fs::exists(root_ / "checkpoint" / "ckpt")) << Log();
  EXPECT_NE(Log().find("[orrery] halt requested"), std::string::npos);
}

TEST_P(SupervisorTest, AJobThatIgnoresTheSignalIsKilledAfterTheGrace) {
  plan_.halt_grace_s = 1;
  pid_t pid = Start("trap '' TERM; echo ready; while true; do sleep 0.05; done");
  WaitRunning();
  WaitForLog("ready\n");  // the signal is ignored from here on
  auto asked = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);  // cancel
  AttemptStatus status = Finish(pid);
  EXPECT_EQ(status.end, AttemptEnd::kCancelled) << status.reason;
  EXPECT_GE(std::chrono::steady_clock::now() - asked, 900ms);
}

TEST_P(SupervisorTest, AFloodedLogIsBoundedAndKeepsItsEnd) {
  plan_.log_limit_bytes = 10000;
  AttemptStatus status = Run("i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done");
  EXPECT_EQ(status.end, AttemptEnd::kCompleted) << status.reason;
  std::string log = Log();
  EXPECT_LT(log.size(), 10000u + 70000u);
  EXPECT_NE(log.find("the log reached its limit"), std::string::npos);
  EXPECT_NE(log.find("bytes of output were dropped"), std::string::npos);
  EXPECT_NE(log.find("line 19999\n"), std::string::npos);
  EXPECT_EQ(log.find("line 5000\n"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Isolation, SupervisorTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Bubblewrap" : "Fallback"; });

}  // namespace
}  // namespace orrery
