// WorkerInstance with the real Python worker (python/orrery_worker.py), in
// both isolation modes: bubblewrap (when it works here) and the fallback.
#include "backends/worker/worker_instance.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "backends/testing/worker_timeouts.h"
#include "sandbox/sandbox.h"
#include "core/files.h"

namespace orrery {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const fs::path kWorker = fs::path(ORRERY_SOURCE_DIR) / "python" / "orrery_worker.py";

Deadline In(int ms) {
  return std::chrono::steady_clock::now() + milliseconds(ms);
}

Tensor Floats(const std::string& name, std::vector<float> values) {
  Tensor t{name, DataType::kFp32, {1, static_cast<int64_t>(values.size())}, ""};
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return t;
}

std::vector<pid_t> Descendants(pid_t root) {
  std::vector<pid_t> out, pending = {root};
  while (!pending.empty()) {
    pid_t pid = pending.back();
    pending.pop_back();
    out.push_back(pid);
    fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code error;
    for (const auto& task : fs::directory_iterator(tasks, error)) {
      std::ifstream in(task.path() / "children");
      pid_t child;
      while (in >> child) pending.push_back(child);
    }
  }
  return out;
}

bool Alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}  // zombies count as alive

// "Z" for a zombie, "" once gone, else its state letter; *parent its parent.
std::string ProcessState(pid_t pid, pid_t* parent) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return "";
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string state;
  rest >> state >> *parent;
  return state;
}

class WorkerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create(fs::temp_directory_path(), "worker-test-");  // mode 0700
    ASSERT_TRUE(dir.ok());
    root_.emplace(std::move(dir).value());
    ASSERT_TRUE(EnsureDir(root_->path() / "servable").ok());
    // The Bubblewrap instances test bubblewrap, never a silent fallback.
    if (bwrap()) {
      IsolationInfo isolation = ProbeIsolation(true);
      if (isolation.mode != IsolationMode::kBubblewrap) {
        GTEST_SKIP() << "bubblewrap cannot run on this host: " << isolation.bwrap_problem;
      }
    }
  }

  bool bwrap() const { return GetParam(); }

  // A servable whose module `m` has `source`, with one FP32 input x and one
  // FP32 output y unless `signature` says otherwise.
  WorkerSpec Spec(const std::string& source, const std::string& entrypoint = "m:f",
                  std::string signature = "") {
    EXPECT_TRUE(WriteFileAtomic(servable() / "m.py", source).ok());
    if (signature.empty()) {
      signature = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1,-1]}],)"
                  R"("outputs":[{"name":"y","datatype":"FP32","shape":[-1,-1]}]})";
    }
    WorkerSpec spec;
    spec.command = {"/usr/bin/python3", "/orrery/orrery_worker.py", "--entrypoint", entrypoint};
    spec.read_only_binds = {{kWorker, "/orrery/orrery_worker.py"}};
    spec.servable_dir = servable();
    spec.env = {{"ORRERY_SIGNATURE", signature}};
    spec.label = "test/m:1";
    spec.sandbox.use_bubblewrap = bwrap();
    spec.sandbox.scratch_root = root_->path() / "scratch";
    spec.sandbox.first_backoff = milliseconds(20);
    spec.sandbox.start_timeout = milliseconds(20'000);
    return spec;
  }

  std::unique_ptr<WorkerInstance> StartOk(WorkerSpec spec) {
    auto instance = WorkerInstance::Start(std::move(spec));
    EXPECT_TRUE(instance.ok()) << instance.status().ToString();
    return instance.ok() ? std::move(instance).value() : nullptr;
  }

  static bool WaitReady(const WorkerInstance& instance, int ms = 10'000) {
    auto until = std::chrono::steady_clock::now() + milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      InstanceHealth health = instance.Health();
      if (health.ready || health.gave_up) return health.ready;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  fs::path servable() const { return root_->path() / "servable"; }
  std::optional<TempDir> root_;
};

INSTANTIATE_TEST_SUITE_P(Isolation, WorkerTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Bubblewrap" : "Fallback"; });

TEST_P(WorkerTest, IdentityOfEveryDatatype) {
  std::string inputs, outputs;
  std::vector<Tensor> tensors;
  for (int t = 0; t <= static_cast<int>(DataType::kBytes); ++t) {
    auto type = static_cast<DataType>(t);
    std::string name = "t_" + std::string(DataTypeName(type));
    std::string spec = R"({"name":")" + name + R"(","datatype":")" +
                       std::string(DataTypeName(type)) + R"(","shape":[-1]})";
    inputs += (inputs.empty() ? "" : ",") + spec;
    std::string data;
    if (type == DataType::kBytes) {
      for (std::string item : {std::string("héllo"), std::string(), std::string("\0\x01", 2)}) {
        auto length = static_cast<uint32_t>(item.size());
        data.append(reinterpret_cast<const char*>(&length), 4);
        data += item;
      }
    } else if (type == DataType::kBool) {
      data = std::string("\x01\x00\x01", 3);
    } else {
      for (size_t i = 0; i < 3 * DataTypeSize(type); ++i) {
        data.push_back(static_cast<char>(0x11 * (i + 1) + t));  // includes NaN/Inf patterns
      }
    }
    tensors.push_back(Tensor{name, type, {3}, data});
  }
  std::string signature = "{\"inputs\":[" + inputs + "],\"outputs\":[" + inputs + "]}";
  auto instance = StartOk(Spec("def f(inputs):\n    return inputs\n", "m:f", signature));
  ASSERT_TRUE(instance);
  auto result = instance->Infer(tensors, In(5000));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ((*result)[i].name, tensors[i].name);
    EXPECT_EQ((*result)[i].datatype, tensors[i].datatype);
    EXPECT_EQ((*result)[i].shape, tensors[i].shape) << tensors[i].name;
    EXPECT_EQ((*result)[i].data, tensors[i].data) << tensors[i].name;
  }
}

TEST_P(WorkerTest, ConvertsAndAcceptsEveryResultForm) {
  std::string signature =
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1]}],)"
      R"("outputs":[{"name":"half","datatype":"FP16","shape":[-1]},)"
      R"({"name":"bf","datatype":"BF16","shape":[-1]},{"name":"s","datatype":"BYTES","shape":[-1]},)"
      R"({"name":"i","datatype":"INT64","shape":[]}]})";
  auto instance =
      StartOk(Spec("import numpy as np\n"
                   "class M:\n"
                   "    def __init__(self, model_dir):\n"
                   "        self.dir = model_dir\n"
                   "    def predict(self, inputs):\n"
                   "        x = inputs['x']\n"
                   "        return (x, x.astype(np.float64), ['a', b'b'], 7)\n",
                   "m:M", signature));
  ASSERT_TRUE(instance);
  auto result =
      instance->Infer({Tensor{"x", DataType::kFp32, {2}, std::string("\0\0\x80\x3f\0\0\0\xc0", 8)}},
                      In(5000));  // 1.0, -2.0
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->size(), 4u);
  EXPECT_EQ((*result)[0].data, std::string("\x00\x3c\x00\xc0", 4));  // fp16 1.0, -2.0
  EXPECT_EQ((*result)[1].data, std::string("\x80\x3f\x00\xc0", 4));  // bf16 1.0, -2.0
  EXPECT_EQ((*result)[2].data, std::string("\1\0\0\0a\1\0\0\0b", 10));
  EXPECT_TRUE((*result)[3].shape.empty());
  EXPECT_EQ((*result)[3].data, std::string("\x07\0\0\0\0\0\0\0", 8));
}

TEST_P(WorkerTest, LargeTensorsBothWays) {
  auto instance =
      StartOk(Spec("def f(inputs):\n"
                   "    x = inputs['x']\n"
                   "    return {'y': x * 2 if x[0, 0] < 0 else x}\n"));
  ASSERT_TRUE(instance);
  std::vector<float> values(2 << 20);  // 8 MiB
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 1000);
  values[0] = -1;
  Tensor doubled = Floats("x", values);
  values[0] = 1;
  Tensor same = Floats("x", values);
  for (const Tensor* input : {&doubled, &same, &doubled}) {
    auto result = instance->Infer({*input}, In(10'000));
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    ASSERT_EQ((*result)[0].data.size(), input->data.size());
    const auto* out = reinterpret_cast<const float*>((*result)[0].data.data());
    float factor = input == &doubled ? 2.0f : 1.0f;
    EXPECT_EQ(out[0], factor * (input == &doubled ? -1.0f : 1.0f));
    EXPECT_EQ(out[12345], factor * static_cast<float>(12345 % 1000));
    EXPECT_EQ(out[values.size() - 1], factor * static_cast<float>((values.size() - 1) % 1000));
  }
}

// Round-trip times are measured by bench/ (orrery-bench-ipc, serving.py).
TEST_P(WorkerTest, ManySmallRequestsAndTheWorkersResidentSize) {
  auto instance = StartOk(Spec("def f(inputs):\n    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  Tensor x = Floats("x", std::vector<float>(16, 1.5f));
  for (int i = 0; i < 1000; ++i) {
    auto result = instance->Infer({x}, In(5000));
    ASSERT_TRUE(result.ok());
    ASSERT_EQ((*result)[0].data, x.data);
  }
  uint64_t rss = instance->MemoryBytes();
  EXPECT_GT(rss, 10u << 20);  // python + numpy
  EXPECT_LT(rss, 1u << 30);
}

TEST_P(WorkerTest, ServableExceptionIsUnprocessableAndTheWorkerServesOn) {
  auto instance =
      StartOk(Spec("def f(inputs):\n"
                   "    if inputs['x'][0, 0] < 0:\n"
                   "        raise ValueError('negative input ' + 'x' * 5000)\n"
                   "    return {'y': inputs['x'] + 1}\n"));
  ASSERT_TRUE(instance);
  pid_t pid = instance->pid();
  auto bad = instance->Infer({Floats("x", {-1})}, In(5000));
  EXPECT_EQ(bad.status().code(), Code::kUnprocessable);
  EXPECT_EQ(bad.status().message().rfind("ValueError: negative input xxx", 0), 0u)
      << bad.status().message();
  EXPECT_LE(bad.status().message().size(), 2048u);
  auto good = instance->Infer({Floats("x", {1})}, In(5000));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(*reinterpret_cast<const float*>((*good)[0].data.data()), 2.0f);
  EXPECT_EQ(instance->pid(), pid);
  EXPECT_TRUE(instance->Health().ready);
}

TEST_P(WorkerTest, WrongOutputsAreTheServablesError) {
  auto instance =
      StartOk(Spec("def f(inputs):\n"
                   "    return {'z': 1} if inputs['x'][0, 0] else {'y': object()}\n"));
  ASSERT_TRUE(instance);
  auto missing = instance->Infer({Floats("x", {1})}, In(5000));
  EXPECT_EQ(missing.status().code(), Code::kUnprocessable);
  EXPECT_NE(missing.status().message().find("no output 'y'"), std::string::npos)
      << missing.status().message();
  auto unconvertible = instance->Infer({Floats("x", {0})}, In(5000));
  EXPECT_EQ(unconvertible.status().code(), Code::kUnprocessable);
  EXPECT_TRUE(instance->Health().ready);
}

TEST_P(WorkerTest, ExitIsACrashThenItRestarts) {
  auto instance =
      StartOk(Spec("import os\n"
                   "def f(inputs):\n"
                   "    if inputs['x'][0, 0] == 3:\n"
                   "        os._exit(3)\n"
                   "    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  pid_t first = instance->pid();
  auto crashed = instance->Infer({Floats("x", {3})}, In(5000));
  EXPECT_EQ(crashed.status().code(), Code::kUnavailable);
  EXPECT_EQ(crashed.status().message(), "worker crashed (exit code 3)");
  InstanceHealth health = instance->Health();
  EXPECT_FALSE(health.ready);
  EXPECT_NE(health.reason.find("worker crashed (exit code 3)"), std::string::npos);
  auto during = instance->Infer({Floats("x", {1})}, In(5000));
  EXPECT_EQ(during.status().code(), Code::kUnavailable);
  ASSERT_TRUE(WaitReady(*instance));
  EXPECT_NE(instance->pid(), first);
  EXPECT_FALSE(Alive(first));
  EXPECT_EQ(instance->Health().restarts, 1u);
  EXPECT_TRUE(instance->Infer({Floats("x", {1})}, In(5000)).ok());
}

TEST_P(WorkerTest, SegfaultIsReportedAsSignal11) {
  auto instance =
      StartOk(Spec("import ctypes\n"
                   "def f(inputs):\n"
                   "    ctypes.string_at(0)\n"));
  ASSERT_TRUE(instance);
  auto crashed = instance->Infer({Floats("x", {1})}, In(5000));
  EXPECT_EQ(crashed.status().code(), Code::kUnavailable);
  EXPECT_EQ(crashed.status().message(), "worker crashed (signal 11)");
}

TEST_P(WorkerTest, HangIsKilledAtTheDeadlineThenItRestarts) {
  auto instance =
      StartOk(Spec("def f(inputs):\n"
                   "    while inputs['x'][0, 0] > 0:\n"
                   "        pass\n"
                   "    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  std::vector<pid_t> tree = Descendants(instance->pid());
  auto hung = instance->Infer({Floats("x", {1})}, In(300));
  EXPECT_EQ(hung.status().code(), Code::kUnavailable);
  backend_testing::ExpectTimedOutAfterAbout(hung.status().message(), 300);
  for (pid_t pid : tree) EXPECT_FALSE(Alive(pid)) << pid;
  ASSERT_TRUE(WaitReady(*instance));
  EXPECT_TRUE(instance->Infer({Floats("x", {0})}, In(5000)).ok());
}

// The split form an event loop uses: Begin, wait for the socket, Complete.
bool WaitReadable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

TEST_P(WorkerTest, SplitInferAnswersAndCrashesLikeInfer) {
  auto instance =
      StartOk(Spec("import os\n"
                   "def f(inputs):\n"
                   "    if inputs['x'][0, 0] == 3:\n"
                   "        os._exit(3)\n"
                   "    return {'y': inputs['x'] * 2}\n"));
  ASSERT_TRUE(instance);
  ASSERT_EQ(instance->Async(), instance.get());
  Result<int> fd = instance->Begin({Floats("x", {1.5f})}, In(5000));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_TRUE(WaitReadable(*fd, 5000));
  auto answer = instance->Complete();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  float y;
  std::memcpy(&y, (*answer)[0].data.data(), 4);
  EXPECT_EQ(y, 3.0f);

  fd = instance->Begin({Floats("x", {3})}, In(5000));
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(WaitReadable(*fd, 5000));  // EOF
  auto crashed = instance->Complete();
  EXPECT_EQ(crashed.status().message(), "worker crashed (exit code 3)");
  // While it restarts, Begin refuses at once; then the worker serves again.
  EXPECT_EQ(instance->Begin({Floats("x", {1})}, In(5000)).status().code(), Code::kUnavailable);
  ASSERT_TRUE(WaitReady(*instance));
  EXPECT_TRUE(instance->Infer({Floats("x", {1})}, In(5000)).ok());
}

TEST_P(WorkerTest, AbortKillsTheWorkerSoItsLateAnswerIsNeverTakenForTheNext) {
  auto instance =
      StartOk(Spec("import time\n"
                   "def f(inputs):\n"
                   "    time.sleep(float(inputs['x'][0, 0]))\n"
                   "    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  pid_t first = instance->pid();
  Result<int> fd = instance->Begin({Floats("x", {3600.0f})}, In(100));  // never answers
  ASSERT_TRUE(fd.ok());
  EXPECT_FALSE(WaitReadable(*fd, 0));  // the loop's deadline passes first
  Status aborted = instance->Abort(/*timed_out=*/true);
  backend_testing::ExpectTimedOutAfterAbout(aborted.message(), 100);
  EXPECT_FALSE(Alive(first));
  ASSERT_TRUE(WaitReady(*instance));
  auto next = instance->Infer({Floats("x", {0.0f})}, In(5000));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ((*next)[0].data, Floats("x", {0.0f}).data);
}

TEST_P(WorkerTest, AnswerThatStallsMidwayIsABrokenWorker) {
  // Writes the first bytes of a frame, then hangs: Complete must not wait
  // for the request's deadline (it runs on an event loop).
  auto instance =
      StartOk(Spec("import os, time\n"
                   "def f(inputs):\n"
                   "    os.write(4, b'\\x40\\x00')\n"
                   "    time.sleep(30)\n"));
  ASSERT_TRUE(instance);
  Result<int> fd = instance->Begin({Floats("x", {1})}, In(20'000));
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(WaitReadable(*fd, 5000));
  auto stalled = instance->Complete();
  EXPECT_EQ(stalled.status().code(), Code::kUnavailable);
  // Not "timed out": Complete gave up long before the request's 20 s deadline.
  EXPECT_EQ(stalled.status().message(), "worker broke the protocol (its answer stalled midway); killed");
}

TEST_P(WorkerTest, UnboundedAllocationFailsCleanly) {
  WorkerSpec spec = Spec(
      "def f(inputs):\n"
      "    if inputs['x'][0, 0] > 0:\n"
      "        b = bytearray()\n"
      "        while True:\n"
      "            b.extend(bytes(16 << 20))\n"
      "    return {'y': inputs['x']}\n");
  spec.sandbox.memory_bytes = 512ull << 20;
  auto instance = StartOk(std::move(spec));
  ASSERT_TRUE(instance);
  auto result = instance->Infer({Floats("x", {1})}, In(20'000));
  // RLIMIT_AS makes the allocation fail inside Python, which reports it.
  EXPECT_EQ(result.status().code(), Code::kUnprocessable) << result.status().ToString();
  EXPECT_EQ(result.status().message(), "MemoryError");
  ASSERT_TRUE(WaitReady(*instance));
  EXPECT_TRUE(instance->Infer({Floats("x", {0})}, In(5000)).ok());
}

TEST_P(WorkerTest, CrashLoopGivesUp) {
  WorkerSpec spec = Spec("import os\ndef f(inputs):\n    os._exit(1)\n");
  spec.sandbox.max_restarts = 2;
  auto instance = StartOk(std::move(spec));
  ASSERT_TRUE(instance);
  int crashes = 0;
  for (int i = 0; i < 10 && !instance->Health().gave_up; ++i) {
    if (!WaitReady(*instance)) break;
    auto result = instance->Infer({Floats("x", {1})}, In(5000));
    EXPECT_EQ(result.status().message(), "worker crashed (exit code 1)");
    ++crashes;
  }
  InstanceHealth health = instance->Health();
  EXPECT_TRUE(health.gave_up);
  EXPECT_FALSE(health.ready);
  EXPECT_EQ(crashes, 3);
  EXPECT_EQ(health.restarts, 2u);
  EXPECT_NE(health.reason.find("gave up after 3 consecutive failures"), std::string::npos)
      << health.reason;
  auto dead = instance->Infer({Floats("x", {1})}, In(5000));
  EXPECT_EQ(dead.status().code(), Code::kUnavailable);
  EXPECT_EQ(instance->pid(), 0);
}

TEST_P(WorkerTest, ServableThatNoLongerLoadsGivesUp) {
  WorkerSpec spec = Spec(
      "import os\n"
      "if os.path.exists('broken'):\n"
      "    raise RuntimeError('cannot load any more')\n"
      "def f(inputs):\n"
      "    os._exit(1)\n");
  spec.sandbox.max_restarts = 2;
  auto instance = StartOk(std::move(spec));
  ASSERT_TRUE(instance);
  ASSERT_TRUE(WriteFileAtomic(servable() / "broken", "").ok());
  EXPECT_EQ(instance->Infer({Floats("x", {1})}, In(5000)).status().code(), Code::kUnavailable);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!instance->Health().gave_up && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  InstanceHealth health = instance->Health();
  EXPECT_TRUE(health.gave_up);
  EXPECT_NE(health.reason.find("RuntimeError: cannot load any more"), std::string::npos)
      << health.reason;
}

TEST_P(WorkerTest, IdleDeathIsNoticedAndRepaired) {
  auto instance = StartOk(Spec("def f(inputs):\n    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  std::vector<pid_t> tree = Descendants(instance->pid());
  ASSERT_EQ(::kill(tree.back(), SIGKILL), 0);  // the python process: the deepest
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (instance->Health().restarts == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_TRUE(WaitReady(*instance));
  EXPECT_EQ(instance->Health().restarts, 1u);
  for (pid_t pid : tree) EXPECT_FALSE(Alive(pid)) << pid;
  EXPECT_TRUE(instance->Infer({Floats("x", {1})}, In(5000)).ok());
}

TEST_P(WorkerTest, CannotReadFilesOutsideTheSandbox) {
  // Another tenant's blob: a 0600 file in a 0700 directory, and a sibling
  // of the servable directory.
  auto other = TempDir::Create(fs::temp_directory_path(), "other-tenant-");
  ASSERT_TRUE(other.ok());
  fs::path secret = other->path() / "blob";
  ASSERT_TRUE(WriteFileAtomic(secret, "TOPSECRET", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(root_->path() / "sibling", "TOPSECRET", 0644).ok());
  std::string source =
      "def f(inputs):\n"
      "    which = int(inputs['x'][0, 0])\n"
      "    path = ['" +
      secret.string() + "', '../sibling', '" + (root_->path() / "sibling").string() +
      "', '/proc/1/root/" + secret.string().substr(1) +
      "'][which]\n"
      "    with open(path) as f:\n"
      "        raise RuntimeError('read: ' + f.read())\n";
  auto instance = StartOk(Spec(source));
  ASSERT_TRUE(instance);
  for (float which : {0, 1, 2, 3}) {
    auto result = instance->Infer({Floats("x", {which})}, In(5000));
    ASSERT_EQ(result.status().code(), Code::kUnprocessable);
    std::string message = result.status().message();
    EXPECT_EQ(message.find("TOPSECRET"), std::string::npos) << which;
    EXPECT_TRUE(message.rfind("FileNotFoundError", 0) == 0 ||
                message.rfind("PermissionError", 0) == 0)
        << which << ": " << message;
  }
}

TEST_P(WorkerTest, NetworkOnlyWhenAllowed) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  UniqueFd owned(listener);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string source =
      "import socket\n"
      "def f(inputs):\n"
      "    socket.create_connection(('127.0.0.1', " +
      std::to_string(ntohs(address.sin_port)) +
      "), timeout=2).close()\n"
      "    return {'y': inputs['x']}\n";
  for (bool allow : {false, true}) {
    WorkerSpec spec = Spec(source);
    spec.allow_network = allow;
    auto instance = StartOk(std::move(spec));
    ASSERT_TRUE(instance);
    auto result = instance->Infer({Floats("x", {1})}, In(5000));
    if (allow) {
      EXPECT_TRUE(result.ok()) << result.status().ToString();
    } else {
      EXPECT_EQ(result.status().code(), Code::kUnprocessable);
      EXPECT_EQ(result.status().message().rfind("PermissionError", 0), 0u)
          << result.status().message();
    }
  }
}

TEST_P(WorkerTest, NoProcessOutlivesTheInstance) {
  auto instance =
      StartOk(Spec("import subprocess\n"
                   "child = subprocess.Popen(['/usr/bin/sleep', '60'])\n"
                   "def f(inputs):\n"
                   "    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  std::vector<pid_t> tree = Descendants(instance->pid());
  EXPECT_GE(tree.size(), 2u);
  for (pid_t pid : tree) EXPECT_TRUE(Alive(pid));
  instance.reset();
  EXPECT_FALSE(Alive(tree[0]));  // ours: killed and reaped
  for (pid_t pid : tree) {
    pid_t parent = 0;
    std::string state = ProcessState(pid, &parent);
    if (bwrap() || pid == tree[0]) {
      EXPECT_EQ(state, "") << pid;  // the pid namespace's init reaped the rest
    } else {
      // Fallback (sandbox.h): the servable's own child is killed with the
      // process group (SIGKILL is sent, not waited for: it may still be
      // running for a moment), and its zombie belongs to the host's init.
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (state == "R" || state == "S" || state == "D") {
        ASSERT_LT(std::chrono::steady_clock::now(), until) << pid << " was not killed";
        std::this_thread::yield();
        state = ProcessState(pid, &parent);
      }
      EXPECT_TRUE(state.empty() || (state == "Z" && parent == 1)) << pid << " " << state;
    }
  }
}

TEST_P(WorkerTest, ChattyWorkerDoesNotBlock) {
  auto instance =
      StartOk(Spec("import sys\n"
                   "for i in range(20000):\n"
                   "    print('import noise', i, 'x' * 100, file=sys.stderr)\n"
                   "def f(inputs):\n"
                   "    for i in range(20000):\n"
                   "        print('request noise', i, 'y' * 100)\n"
                   "    return {'y': inputs['x']}\n"));
  ASSERT_TRUE(instance);
  for (int i = 0; i < 3; ++i) {
    auto result = instance->Infer({Floats("x", {1})}, In(10'000));
    EXPECT_TRUE(result.ok()) << result.status().ToString();
  }
}

TEST_P(WorkerTest, LoadErrorsAreUnprocessableAndNameTheProblem) {
  struct Case {
    std::string source, entrypoint, expected;
  };
  std::vector<Case> cases = {
      {"def f(inputs):\n    return inputs\n", "nosuch:f",
       "ModuleNotFoundError: No module named 'nosuch'"},
      {"def f(inputs)\n    return inputs\n", "m:f", "SyntaxError"},
      {"def f(inputs):\n    return inputs\n", "m:g",
       "AttributeError: module 'm' has no attribute 'g'"},
      {"raise ImportError('needs torch')\n", "m:f", "ImportError: needs torch"},
      {"import sys\nsys.exit(4)\n", "m:f", "SystemExit: 4"},
      {"f = 3\n", "m:f", "m:f is not callable"},
  };
  for (const Case& c : cases) {
    auto instance = WorkerInstance::Start(Spec(c.source, c.entrypoint));
    EXPECT_EQ(instance.status().code(), Code::kUnprocessable) << c.entrypoint;
    EXPECT_NE(instance.status().message().find(c.expected), std::string::npos)
        << instance.status().message();
  }
}

TEST_P(WorkerTest, WorkerThatCannotStartIsUnavailable) {
  WorkerSpec spec = Spec("");
  spec.command = {"/usr/bin/python3", "-c",
                  "import sys; print('no protocol here', file=sys.stderr)"};
  auto instance = WorkerInstance::Start(spec);
  EXPECT_EQ(instance.status().code(), Code::kUnavailable);
  EXPECT_NE(instance.status().message().find(
                "exited before it was ready (exit code 0): no protocol here"),
            std::string::npos)
      << instance.status().message();

  spec.command = {"/usr/bin/python3", "-c", "import time; time.sleep(30)"};
  spec.sandbox.start_timeout = milliseconds(300);
  instance = WorkerInstance::Start(spec);
  EXPECT_EQ(instance.status().code(), Code::kUnavailable);
  EXPECT_NE(instance.status().message().find("did not become ready within 300 ms"),
            std::string::npos)
      << instance.status().message();
}

}  // namespace
}  // namespace orrery

namespace orrery {
namespace {

// An oracle independent of ProbeIsolation: when bwrap runs here, the probe
// must have chosen it (a silent fallback would hide a broken probe).
TEST(SandboxProbeTest, ChoosesBubblewrapWhereItWorks) {
  int rc = std::system(
      "/usr/bin/bwrap --unshare-all --unshare-user --uid 65534 --gid 65534 --ro-bind /usr /usr "
      "--symlink usr/lib64 /lib64 --symlink usr/lib /lib --proc /proc --dev /dev "
      "/usr/bin/true >/dev/null 2>&1");
  IsolationInfo info = ProbeIsolation(true);
  std::cout << "[ info   ] " << DescribeIsolation(SandboxOptions{}) << "\n";
  if (rc == 0) {
    EXPECT_EQ(info.mode, IsolationMode::kBubblewrap) << info.bwrap_problem;
  } else {
    EXPECT_EQ(info.mode, IsolationMode::kFallback);
    EXPECT_FALSE(info.bwrap_problem.empty());
  }
  EXPECT_EQ(ProbeIsolation(false).mode, IsolationMode::kFallback);
}

}  // namespace
}  // namespace orrery
