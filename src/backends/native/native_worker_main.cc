// orrery-native-worker: runs one native plugin state in its own (sandboxed)
// process for WorkerInstance, speaking the frame protocol of frames.h on
// its side of the channel (kWorkerChannel: descriptors 3, 4 and 5).
//
//   orrery-native-worker --library /servable/lib/model.so --config '{"library": ...}'
//                        [--package-dir DIR]
//
// The package directory defaults to $ORRERY_SERVABLE_DIR, else the working
// directory; a --library under /servable is looked up there when the
// sandbox has no /servable mount (the no-namespace fallback).
//
// Loads the plugin, answers kReady or kLoadError, then answers each kInfer
// with kResult or kError until the server closes the channel. A plugin
// crash kills this process, which is the point: the server sees EOF, fails
// the request in flight and restarts the worker.
//
// Kept small on purpose: it runs inside the sandbox with only /usr visible,
// and links only the frame codec and the ABI host code.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "backends/native/native_library.h"
#include "backends/worker/frames.h"

#ifdef ORRERY_ADDRESS_SANITIZER
// The sanitizer test build only: a plugin that crashes must die of its
// signal, as in the real worker (the server reports "signal 11"), not be
// caught by AddressSanitizer's own SIGSEGV handler.
extern "C" const char* __asan_default_options() { return "handle_segv=0:detect_leaks=0"; }
#endif

namespace orrery {
namespace {

constexpr const char* kServableMount = "/servable";  // where bubblewrap mounts the package
constexpr Deadline kNoDeadline = Deadline::max();    // the server enforces deadlines

struct Args {
  std::string library;
  std::string config = "{}";
  std::string package_dir;
};

// $ORRERY_SERVABLE_DIR (set by the sandbox), else the working directory.
std::string PackageDir() {
  const char* dir = std::getenv("ORRERY_SERVABLE_DIR");  // NOLINT(concurrency-mt-unsafe)
  if (dir != nullptr && *dir != '\0') return dir;
  std::error_code error;
  return std::filesystem::current_path(error).string();
}

std::optional<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--library") {
      args.library = argv[i + 1];
    } else if (flag == "--config") {
      args.config = argv[i + 1];
    } else if (flag == "--package-dir") {
      args.package_dir = argv[i + 1];
    } else {
      return std::nullopt;
    }
  }
  if (args.library.empty() || argc % 2 == 0) return std::nullopt;
  if (args.package_dir.empty()) args.package_dir = PackageDir();
  // Without namespaces there is no /servable mount: the package is elsewhere.
  const std::string mount = std::string(kServableMount) + "/";
  if (args.library.rfind(mount, 0) == 0 && args.package_dir != kServableMount) {
    args.library = args.package_dir + "/" + args.library.substr(mount.size());
  }
  return args;
}

Result<std::unique_ptr<NativeState>> Load(const Args& args) {
  // Name the plugin as the package does ("lib/model.so"), as in process.
  std::filesystem::path label =
      std::filesystem::path(args.library).lexically_relative(args.package_dir);
  if (label.empty() || *label.begin() == "..") label = args.library;
  ASSIGN_OR_RETURN(std::shared_ptr<NativeLibrary> library,
                   NativeLibrary::Open(args.library, label.string()));
  return library->Create(args.package_dir, args.config);
}

// Answers kInfer frames until the channel closes. Returns the exit status.
int Serve(NativeState& state) {
  for (;;) {
    Result<Frame> frame = ReadFrame(kWorkerChannel, kNoDeadline);
    if (!frame.ok()) {
      if (frame.status().code() == Code::kUnavailable) return 0;  // the server closed it
      std::fprintf(stderr, "orrery-native-worker: %s\n", frame.status().ToString().c_str());
      return 1;
    }
    if (frame->type != FrameType::kInfer) {
      std::fprintf(stderr, "orrery-native-worker: unexpected frame type %d\n",
                   static_cast<int>(frame->type));
      return 1;
    }
    Result<std::vector<Tensor>> outputs = state.Infer(frame->tensors);
    Status written = outputs.ok() ? WriteFrame(kWorkerChannel, FrameType::kResult,
                                               nlohmann::json::object(), *outputs, kNoDeadline)
                                  : WriteFrame(kWorkerChannel, FrameType::kError,
                                               {{"error", outputs.status().message()},
                                                {"code", CodeName(outputs.status().code())}},
                                               {}, kNoDeadline);
    if (!written.ok()) return 0;  // the server is gone
  }
}

int Main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Processes the plugin may start must not inherit the channel.
  for (int fd : {kWorkerChannel.in, kWorkerChannel.out, kWorkerChannel.fds}) {
    if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
      std::fprintf(stderr, "orrery-native-worker: fd %d: %s\n", fd,
                   std::strerror(errno));  // NOLINT(concurrency-mt-unsafe): one thread
      return 2;
    }
  }
  std::optional<Args> args = ParseArgs(argc, argv);
  if (!args) {
    std::fprintf(stderr,
                 "usage: orrery-native-worker --library PATH [--config JSON] "
                 "[--package-dir DIR]\n");
    (void)WriteFrame(kWorkerChannel, FrameType::kLoadError,
                     {{"error", "orrery-native-worker: bad command line"}}, {}, kNoDeadline);
    return 2;
  }
  Result<std::unique_ptr<NativeState>> state = Load(*args);
  if (!state.ok()) {
    (void)WriteFrame(kWorkerChannel, FrameType::kLoadError, {{"error", state.status().message()}},
                     {}, kNoDeadline);
    return 1;
  }
  Status ready =
      WriteFrame(kWorkerChannel, FrameType::kReady, {{"pid", ::getpid()}}, {}, kNoDeadline);
  if (!ready.ok()) return 0;
  return Serve(**state);
}

}  // namespace
}  // namespace orrery

int main(int argc, char** argv) {
  try {
    return orrery::Main(argc, argv);
  } catch (const std::exception& e) {  // bad_alloc and the like: die with a reason
    std::fprintf(stderr, "orrery-native-worker: %s\n", e.what());
    return 1;
  }
}
