// ModelStreamInfer: requests and answers on one bidirectional stream. Each
// request is admitted with the stream's credentials (checked when it opens),
// takes the same path as ModelInfer and answers when it finishes, so answers
// may come out of request order; each carries its request's id (and a
// failed one its error_message, the stream going on). At most
// kMaxInFlight requests are unanswered or unsent at a time: beyond that the
// stream stops reading until answers have been written, so a client that
// sends without reading cannot grow the server's memory.
//
// On the asynchronous API (grpc_call.h) a stream has at most one read and
// one write in progress; each of its operations (the stream's arrival, a
// read, a write, the finish) completes on the queue's thread as an Op.
// The stream is deleted when its finish has completed: by then no read or
// write is in progress (it finishes only once the client has stopped
// sending and every answer is written).
#include <deque>
#include <mutex>

#include "api/grpc/grpc_service.h"

namespace orrery {
namespace {

using inference::ModelInferRequest;
using inference::ModelStreamInferResponse;

constexpr size_t kMaxInFlight = 256;

class StreamCall {
 public:
  // Waits for the next stream on `queue`.
  static void Listen(const GrpcInferenceService& service,
                     GrpcInferenceService::AsyncService& async, GrpcQueue queue) {
    auto* call = new StreamCall(service, async, queue);
    async.RequestModelStreamInfer(&call->context_, &call->stream_, queue.cq, queue.cq,
                                  &call->arrived_);
  }

 private:
  // One of the stream's operations: calls `on` with the outcome.
  struct Op final : GrpcTag {
    Op(StreamCall* call, void (StreamCall::*on)(bool)) : call(call), on(on) {}
    void Proceed(bool ok) override { (call->*on)(ok); }
    StreamCall* call;
    void (StreamCall::*on)(bool);
  };

  StreamCall(const GrpcInferenceService& service, GrpcInferenceService::AsyncService& async,
             GrpcQueue queue)
      : service_(service), async_(async), queue_(queue), stream_(&context_) {}

  void OnArrived(bool ok) {
    if (!ok) {  // the server stops: no stream came
      delete this;
      return;
    }
    queue_.calls->Add();
    Listen(service_, async_, queue_);
    deadline_ = GrpcDeadline(context_);
    Result<Caller> caller = service_.Admit(context_, kModelStreamInferRpc);
    if (!caller.ok()) {
      finished_ = true;
      stream_.Finish(ToGrpc(caller.status()), &finish_);
      return;
    }
    caller_ = *caller;
    std::lock_guard lock(mutex_);
    reading_ = true;
    stream_.Read(&incoming_, &read_);
  }

  void OnRead(bool ok) {
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
      stream_.Read(&incoming_, &read_);
    } else {
      reading_ = false;
      read_paused_ = true;
    }
  }

  void OnWritten(bool ok) {
    std::unique_lock lock(mutex_);
    unsent_.pop_front();
    if (!ok) broken_ = true;  // the client is gone: later answers are dropped
    if (broken_) unsent_.clear();
    if (!unsent_.empty()) {
      stream_.Write(unsent_.front(), &write_);
    } else {
      writing_ = false;
    }
    ResumeReading();
    MaybeFinish(lock);
  }

  void OnFinished(bool) {
    queue_.calls->Done();
    delete this;
  }

  void Send(ModelStreamInferResponse answer) {
    std::unique_lock lock(mutex_);
    --unanswered_;
    if (!broken_) {
      unsent_.push_back(std::move(answer));
      if (!writing_) {
        writing_ = true;
        stream_.Write(unsent_.front(), &write_);
      }
    }
    ResumeReading();
    MaybeFinish(lock);
  }

  // REQUIRES(mutex_)
  void ResumeReading() {
    if (read_paused_ && unanswered_ + unsent_.size() < kMaxInFlight / 2) {
      read_paused_ = false;
      reading_ = true;
      stream_.Read(&incoming_, &read_);
    }
  }

  // Ends the stream once the client has finished sending and every answer
  // has been written. `lock` holds mutex_.
  void MaybeFinish(std::unique_lock<std::mutex>& lock) {
    if (reading_ || read_paused_ || unanswered_ > 0 || writing_ || finished_) return;
    finished_ = true;
    lock.unlock();
    stream_.Finish(grpc::Status::OK, &finish_);
  }

  const GrpcInferenceService& service_;
  GrpcInferenceService::AsyncService& async_;
  const GrpcQueue queue_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<ModelStreamInferResponse, ModelInferRequest> stream_;
  Op arrived_{this, &StreamCall::OnArrived};
  Op read_{this, &StreamCall::OnRead};
  Op write_{this, &StreamCall::OnWritten};
  Op finish_{this, &StreamCall::OnFinished};
  std::optional<Deadline> deadline_;  // set on arrival
  Caller caller_;                     // set on arrival
  ModelInferRequest incoming_;        // the read in progress

  std::mutex mutex_;
  bool reading_ = false;                         // GUARDED_BY(mutex_): a read in progress
  bool read_paused_ = false;                     // GUARDED_BY(mutex_), kMaxInFlight reached
  size_t unanswered_ = 0;                        // GUARDED_BY(mutex_)
  std::deque<ModelStreamInferResponse> unsent_;  // GUARDED_BY(mutex_), front being written
  bool writing_ = false;                         // GUARDED_BY(mutex_)
  bool broken_ = false;                          // GUARDED_BY(mutex_)
  bool finished_ = false;                        // GUARDED_BY(mutex_)
};

}  // namespace

void ListenForStreams(const GrpcInferenceService& service,
                      GrpcInferenceService::AsyncService& async, GrpcQueue queue) {
  StreamCall::Listen(service, async, queue);
}

}  // namespace orrery
