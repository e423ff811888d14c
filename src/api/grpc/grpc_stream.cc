// ModelStreamInfer: requests and answers on one bidirectional stream. Each
// request is admitted with the stream's credentials (checked when it opens),
// takes the same path as ModelInfer and answers when it finishes, so answers
// may come out of request order; each carries its request's id (and a
// failed one its error_message, the stream going on). At most
// kMaxInFlight requests are unanswered or unsent at a time: beyond that the
// stream stops reading until answers have been written, so a client that
// sends without reading cannot grow the server's memory.
#include <deque>
#include <mutex>

#include "api/grpc/grpc_service.h"

namespace orrery {
namespace {

using inference::ModelInferRequest;
using inference::ModelStreamInferResponse;

constexpr size_t kMaxInFlight = 256;

class StreamReactor final : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamReactor(const GrpcInferenceService& service, grpc::CallbackServerContext* context)
      : service_(service), deadline_(GrpcDeadline(*context)) {
    Result<Caller> caller = service.Admit(*context, kModelStreamInferRpc);
    if (!caller.ok()) {
      Finish(ToGrpc(caller.status()));
      return;
    }
    caller_ = *caller;
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    std::unique_lock lock(mutex_);
    if (!ok) {  // the client finished sending (or went away)
      reading_ = false;
      return MaybeFinish(lock);
    }
    auto request = std::make_shared<ModelInferRequest>(std::move(incoming_));
    ++unanswered_;
    lock.unlock();
    service_.Infer(caller_, *request, deadline_,
                   [this, request](Status status, inference::ModelInferResponse* answer) {
                     ModelStreamInferResponse out;
                     if (answer != nullptr) {
                       out.mutable_infer_response()->Swap(answer);
                     } else {
                       out.set_error_message(status.message());
                       out.mutable_infer_response()->set_model_name(request->model_name());
                       out.mutable_infer_response()->set_model_version(request->model_version());
                       out.mutable_infer_response()->set_id(request->id());
                     }
                     Send(std::move(out));
                   });
    lock.lock();
    if (unanswered_ + unsent_.size() < kMaxInFlight) {
      StartRead(&incoming_);
    } else {
      read_paused_ = true;
    }
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock lock(mutex_);
    unsent_.pop_front();
    if (!ok) broken_ = true;  // the client is gone: later answers are dropped
    if (broken_) unsent_.clear();
    if (!unsent_.empty()) {
      StartWrite(&unsent_.front());
    } else {
      writing_ = false;
    }
    ResumeReading();
    MaybeFinish(lock);
  }

  void OnDone() override { delete this; }

 private:
  void Send(ModelStreamInferResponse answer) {
    std::unique_lock lock(mutex_);
    --unanswered_;
    if (!broken_) {
      unsent_.push_back(std::move(answer));
      if (!writing_) {
        writing_ = true;
        StartWrite(&unsent_.front());
      }
    }
    ResumeReading();
    MaybeFinish(lock);
  }

  // REQUIRES(mutex_)
  void ResumeReading() {
    if (read_paused_ && unanswered_ + unsent_.size() < kMaxInFlight / 2) {
      read_paused_ = false;
      StartRead(&incoming_);
    }
  }

  // Ends the stream once the client has finished sending and every answer
  // has been written. `lock` holds mutex_.
  void MaybeFinish(std::unique_lock<std::mutex>& lock) {
    if (reading_ || read_paused_ || unanswered_ > 0 || writing_ || finished_) return;
    finished_ = true;
    lock.unlock();
    Finish(grpc::Status::OK);
  }

  const GrpcInferenceService& service_;
  const std::optional<Deadline> deadline_;
  Caller caller_;
  ModelInferRequest incoming_;  // the read in progress

  std::mutex mutex_;
  bool reading_ = true;                          // GUARDED_BY(mutex_)
  bool read_paused_ = false;                     // GUARDED_BY(mutex_), kMaxInFlight reached
  size_t unanswered_ = 0;                        // GUARDED_BY(mutex_)
  std::deque<ModelStreamInferResponse> unsent_;  // GUARDED_BY(mutex_), front being written
  bool writing_ = false;                         // GUARDED_BY(mutex_)
  bool broken_ = false;                          // GUARDED_BY(mutex_)
  bool finished_ = false;                        // GUARDED_BY(mutex_)
};

}  // namespace

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>*
GrpcInferenceService::ModelStreamInfer(grpc::CallbackServerContext* context) {
  return new StreamReactor(*this, context);
}

}  // namespace orrery
