// orrery-bench-grpc: a small gRPC load generator for the Open Inference
// Protocol (bench/grpc.py runs it; no packaged tool speaks this service).
//
//   orrery-bench-grpc --target 127.0.0.1:7071 --token T --model bench/linear16-native
//       [--input x] [--elements 16] [--concurrency 32] [--duration 10] [--warmup 2]
//       [--stream] [--streams 4] [--check]
//
// Unary (default): `concurrency` ModelInfer calls are always in flight on one
// channel (one HTTP/2 connection, as gRPC clients use), each started again as
// soon as its answer arrives (gRPC's callback API). --stream: `streams`
// ModelStreamInfer streams on that channel, `concurrency` requests in flight
// over them together, each answer starting the next request on its stream.
// The request is one FP32 tensor [1, elements] of (i / 8 - 1) as raw
// contents. Counts the answers that arrive in the measured window (after the
// warm-up) and their latencies; prints one JSON object: requests, errors,
// req_per_s, p50_us, p90_us, p99_us, max_us (and with --check the first
// answer's outputs as floats, then exits).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using inference::GRPCInferenceService;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

struct Args {
  std::string target = "127.0.0.1:7071", token, model, input = "x";
  int elements = 16, concurrency = 32, duration_s = 10, warmup_s = 2, streams = 4, channels = 1;
  bool stream = false, check = false;
};

// What every call records: latencies of answers in the measured window.
class Recorder {
 public:
  Recorder(Clock::time_point start, Clock::time_point end) : start_(start), end_(end) {}
  // Whether another request should be sent.
  bool Record(Clock::time_point sent, bool ok) {
    auto now = Clock::now();
    std::lock_guard lock(mutex_);
    if (now >= start_ && now < end_) {
      if (ok) {
        latencies_us_.push_back(std::chrono::duration<double, std::micro>(now - sent).count());
      } else {
        ++errors_;
      }
    }
    return now < end_;
  }
  std::string Report(double seconds) {
    std::lock_guard lock(mutex_);
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto at = [&](double q) {
      return latencies_us_.empty() ? 0.0
                                   : latencies_us_[std::min(latencies_us_.size() - 1,
                                                            size_t(q * latencies_us_.size()))];
    };
    char out[400];
    std::snprintf(out, sizeof(out),
                  "{\"requests\": %zu, \"errors\": %zu, \"req_per_s\": %.1f, \"p50_us\": %.1f, "
                  "\"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}",
                  latencies_us_.size(), errors_, latencies_us_.size() / seconds, at(0.5), at(0.9),
                  at(0.99), latencies_us_.empty() ? 0.0 : latencies_us_.back());
    return out;
  }

 private:
  const Clock::time_point start_, end_;
  std::mutex mutex_;
  std::vector<double> latencies_us_;
  size_t errors_ = 0;
};

// Counts finished loops; Wait() returns when all have.
class Countdown {
 public:
  explicit Countdown(int n) : left_(n) {}
  void Done() {
    std::lock_guard lock(mutex_);
    if (--left_ == 0) done_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return left_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  int left_;
};

// One unary loop: a call, and when it answers, the next.
class UnaryLoop {
 public:
  UnaryLoop(GRPCInferenceService::Stub& stub, const Args& args, const ModelInferRequest& request,
            Recorder& recorder, Countdown& countdown)
      : stub_(stub), args_(args), request_(request), recorder_(recorder), countdown_(countdown) {}
  void Next() {
    context_ = std::make_unique<grpc::ClientContext>();
    if (!args_.token.empty()) context_->AddMetadata("authorization", "Bearer " + args_.token);
    response_.Clear();
    auto sent = Clock::now();
    stub_.async()->ModelInfer(context_.get(), &request_, &response_, [this, sent](grpc::Status s) {
      if (!s.ok() && errors_reported_++ == 0) {
        std::cerr << "orrery-bench-grpc: " << s.error_message() << "\n";
      }
      if (recorder_.Record(sent, s.ok())) return Next();
      countdown_.Done();
    });
  }

 private:
  GRPCInferenceService::Stub& stub_;
  const Args& args_;
  const ModelInferRequest& request_;
  Recorder& recorder_;
  Countdown& countdown_;
  std::unique_ptr<grpc::ClientContext> context_;
  ModelInferResponse response_;
  int errors_reported_ = 0;
};

// One stream with `depth` requests in flight; writes go one at a time, as
// the callback API requires.
class StreamLoop final : public grpc::ClientBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamLoop(GRPCInferenceService::Stub& stub, const Args& args, const ModelInferRequest& request,
             int depth, Recorder& recorder, Countdown& countdown)
      : request_(request), recorder_(recorder), countdown_(countdown) {
    if (!args.token.empty()) context_.AddMetadata("authorization", "Bearer " + args.token);
    stub.async()->ModelStreamInfer(&context_, this);
    std::lock_guard lock(mutex_);
    for (int i = 0; i < depth; ++i) Enqueue();
    StartRead(&answer_);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    pending_writes_.pop_front();
    if (!pending_writes_.empty()) StartWrite(&pending_writes_.front());
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended
    Clock::time_point sent;
    {
      std::lock_guard lock(mutex_);
      auto it = sent_.find(answer_.infer_response().id());
      sent = it == sent_.end() ? Clock::now() : it->second;
      if (it != sent_.end()) sent_.erase(it);
    }
    bool more = recorder_.Record(sent, answer_.error_message().empty());
    std::lock_guard lock(mutex_);
    if (more) {
      Enqueue();
    } else if (sent_.empty() && !closed_) {
      closed_ = true;
      StartWritesDone();
    }
    if (!sent_.empty() || more) StartRead(&answer_);
  }
  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) std::cerr << "orrery-bench-grpc: stream: " << status.error_message() << "\n";
    countdown_.Done();
  }

 private:
  // REQUIRES(mutex_)
  void Enqueue() {
    ModelInferRequest request = request_;
    request.set_id(std::to_string(next_id_++));
    sent_[request.id()] = Clock::now();
    pending_writes_.push_back(std::move(request));
    if (pending_writes_.size() == 1) StartWrite(&pending_writes_.front());
  }

  const ModelInferRequest& request_;
  Recorder& recorder_;
  Countdown& countdown_;
  grpc::ClientContext context_;
  ModelStreamInferResponse answer_;
  std::mutex mutex_;
  std::deque<ModelInferRequest> pending_writes_;      // front: being written
  std::map<std::string, Clock::time_point> sent_;      // unanswered, by id
  uint64_t next_id_ = 0;
  bool closed_ = false;
};

bool Parse(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (flag == "--target") args.target = value();
    else if (flag == "--token") args.token = value();
    else if (flag == "--model") args.model = value();
    else if (flag == "--input") args.input = value();
    else if (flag == "--elements") args.elements = std::stoi(value());
    else if (flag == "--concurrency") args.concurrency = std::stoi(value());
    else if (flag == "--duration") args.duration_s = std::stoi(value());
    else if (flag == "--warmup") args.warmup_s = std::stoi(value());
    else if (flag == "--streams") args.streams = std::stoi(value());
    else if (flag == "--channels") args.channels = std::stoi(value());
    else if (flag == "--stream") args.stream = true;
    else if (flag == "--check") args.check = true;
    else {
      std::cerr << "orrery-bench-grpc: unknown flag " << flag << "\n";
      return false;
    }
  }
  if (args.model.empty()) std::cerr << "orrery-bench-grpc: --model is required\n";
  return !args.model.empty() && args.concurrency > 0 && args.streams > 0 && args.channels > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, args)) return 2;
  ModelInferRequest request;
  request.set_model_name(args.model);
  auto* input = request.add_inputs();
  input->set_name(args.input);
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(args.elements);
  std::vector<float> values(args.elements);
  for (int i = 0; i < args.elements; ++i) values[i] = i / 8.0f - 1.0f;
  request.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()),
                                             values.size() * sizeof(float)));
  // Each channel its own connection (a subchannel pool of its own).
  std::vector<std::unique_ptr<GRPCInferenceService::Stub>> stubs;
  for (int i = 0; i < args.channels; ++i) {
    grpc::ChannelArguments channel_args;
    channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stubs.push_back(GRPCInferenceService::NewStub(grpc::CreateCustomChannel(
        args.target, grpc::InsecureChannelCredentials(), channel_args)));
  }
  auto& stub = stubs[0];

  if (args.check) {
    grpc::ClientContext context;
    if (!args.token.empty()) context.AddMetadata("authorization", "Bearer " + args.token);
    ModelInferResponse response;
    grpc::Status status = stub->ModelInfer(&context, request, &response);
    if (!status.ok() || response.raw_output_contents_size() == 0) {
      std::cerr << "orrery-bench-grpc: " << status.error_message() << "\n";
      return 1;
    }
    const std::string& raw = response.raw_output_contents(0);
    std::vector<float> out(raw.size() / sizeof(float));
    std::memcpy(out.data(), raw.data(), out.size() * sizeof(float));
    std::cout << "{\"output\": [";
    for (size_t i = 0; i < out.size(); ++i) std::cout << (i ? ", " : "") << out[i];
    std::cout << "]}\n";
    return 0;
  }

  auto start = Clock::now() + std::chrono::seconds(args.warmup_s);
  auto end = start + std::chrono::seconds(args.duration_s);
  Recorder recorder(start, end);
  std::vector<std::unique_ptr<UnaryLoop>> unary;
  std::vector<StreamLoop*> streams;  // each deleted after its OnDone (below)
  if (!args.stream) {
    Countdown countdown(args.concurrency);
    for (int i = 0; i < args.concurrency; ++i) {
      unary.push_back(std::make_unique<UnaryLoop>(*stubs[i % args.channels], args, request,
                                                  recorder, countdown));
    }
    for (auto& loop : unary) loop->Next();
    countdown.Wait();
  } else {
    Countdown countdown(args.streams);
    for (int i = 0; i < args.streams; ++i) {
      int depth = args.concurrency / args.streams + (i < args.concurrency % args.streams ? 1 : 0);
      streams.push_back(new StreamLoop(*stubs[i % args.channels], args, request,
                                       std::max(depth, 1), recorder, countdown));
    }
    countdown.Wait();
    for (StreamLoop* loop : streams) delete loop;
  }
  std::cout << recorder.Report(args.duration_s) << "\n";
  return 0;
}
