// InferenceService: inference, verify and explicit loads (the calls that
// reach a model). The protocol's other operations are in
// inference_service_models.cc.
#include "serving/inference_service.h"

#include <mutex>

#include "serving/signature.h"

namespace orrery {
namespace {

// The schedule_policy extension's `timeout` (µs) bounds: at most an hour,
// like the manifest's queue.default_timeout_us.
constexpr int64_t kMaxTimeoutUs = 3'600'000'000;

// The server's timeout, shortened by the servable's queue.default_timeout_us,
// by the request's `timeout` and by the transport's deadline: none can
// lengthen it.
Result<Deadline> DeadlineFor(const InferRequest& request, const QueueConfig& queue,
                             int64_t configured_ms, const InferOptions& options) {
  auto timeout = std::chrono::microseconds(configured_ms * 1000);
  if (queue.default_timeout_us != 0) {
    timeout = std::min(timeout, std::chrono::microseconds(queue.default_timeout_us));
  }
  if (request.timeout_us) {
    if (*request.timeout_us < 1 || *request.timeout_us > kMaxTimeoutUs) {
      return InvalidArgument("parameter 'timeout' must be 1.." + std::to_string(kMaxTimeoutUs) +
                             " (microseconds), got " + std::to_string(*request.timeout_us));
    }
    timeout = std::min(timeout, std::chrono::microseconds(*request.timeout_us));
  }
  Deadline deadline = std::chrono::steady_clock::now() + timeout;
  if (options.deadline) deadline = std::min(deadline, *options.deadline);
  return deadline;
}

// The request parameter `pipeline_timings` (a boolean; false when absent).
Result<bool> WantsTimings(const InferRequest& request) {
  auto it = request.parameters.find("pipeline_timings");
  if (it == request.parameters.end()) return false;
  if (!it->is_boolean()) return InvalidArgument("parameter pipeline_timings must be a boolean");
  return it->get<bool>();
}

Status RefuseClassification(const InferRequest& request) {
  for (const RequestedOutput& output : request.outputs) {
    if (output.parameters.is_object() && output.parameters.contains("classification")) {
      return InvalidArgument("output '" + output.name +
                             "': the classification extension is not supported");
    }
  }
  return Status::Ok();
}

// The job a checked request becomes (inputs bound, deadline and level known).
Result<InferJob> JobFor(InferRequest& request, const ResolvedServable& servable,
                        int64_t configured_ms, const InferOptions& options) {
  const Manifest& manifest = servable.manifest;
  ASSIGN_OR_RETURN(Deadline deadline,
                   DeadlineFor(request, manifest.queue, configured_ms, options));
  // Checked here too, so that a bad priority loads nothing; Submit resolves it.
  int64_t priority = request.priority.value_or(0);
  RETURN_IF_ERROR(PriorityLevel(manifest.queue, priority).status());
  ASSIGN_OR_RETURN(bool timings, WantsTimings(request));
  ASSIGN_OR_RETURN(std::vector<Tensor> inputs, BindInputs(manifest, std::move(request.inputs)));
  InferJob job;
  job.inputs = std::move(inputs);
  job.deadline = deadline;
  job.priority = static_cast<uint32_t>(priority);
  job.report_timings = timings;
  return job;
}

// `cached`: the servable is memoized, so the answer says whether it came
// from the cache.
void Answer(InferOutcome outcome, const ResolvedServable& servable,
            const std::vector<size_t>& selected, bool cached, InferAnswer& answer) {
  if (outcome.status.ok()) outcome.status = CheckOutputs(servable.manifest, outcome.outputs);
  answer.status = outcome.status;
  answer.retry_later = outcome.retry_later;
  if (!outcome.status.ok()) return;
  InferResponse& response = answer.response;
  response.model_name = servable.info.name.ToString();
  response.model_version = std::to_string(servable.info.version);
  response.id = answer.request.id;
  response.has_id = answer.request.has_id;
  if (cached) response.parameters["cache_hit"] = outcome.cache_hit;
  for (size_t index : selected) response.outputs.push_back(std::move(outcome.outputs[index]));
  if (outcome.parameters.is_object()) {
    for (auto& [name, value] : outcome.parameters.items()) response.parameters[name] = value;
  }
}

InferAnswer Refused(Status status, InferRequest request = {}) {
  InferAnswer answer;
  answer.status = std::move(status);
  answer.request = std::move(request);
  return answer;
}

// Collects verify's example results; the last one to finish answers.
struct Verification {
  std::mutex mutex;
  nlohmann::json examples = nlohmann::json::array();  // GUARDED_BY(mutex), a slot per example
  size_t remaining = 0;                                // GUARDED_BY(mutex)
  std::string key;
  std::function<void(Result<nlohmann::json>)> done;

  void Record(size_t index, nlohmann::json result) {
    std::unique_lock lock(mutex);
    result["index"] = index;
    examples[index] = std::move(result);
    if (--remaining > 0) return;
    bool ok = true;
    for (const auto& example : examples) ok = ok && example["ok"].get<bool>();
    nlohmann::json report = {{"servable", key}, {"ok", ok}, {"examples", examples}};
    lock.unlock();
    done(std::move(report));
  }
};

nlohmann::json FailedExample(const std::string& message) {
  return {{"ok", false}, {"message", message}, {"outputs", nlohmann::json::array()}};
}

}  // namespace

void InferenceService::Infer(const Caller& caller, const ModelTarget& target,
                             RequestDecoder decode, const InferOptions& options, InferDone done) {
  (options.transport == Transport::kGrpc ? grpc_calls_ : rest_calls_)
      .fetch_add(1, std::memory_order_relaxed);
  auto servable = resolver_.Resolve(caller, target);
  if (!servable.ok()) return done(Refused(servable.status()));
  const Manifest& manifest = (*servable)->manifest;
  Result<InferRequest> request = decode(manifest);
  if (!request.ok()) return done(Refused(request.status()));
  if (Status refused = RefuseClassification(*request); !refused.ok()) {
    return done(Refused(refused, std::move(*request)));
  }
  Result<std::vector<size_t>> selected = SelectOutputs(manifest, request->outputs);
  if (!selected.ok()) return done(Refused(selected.status(), std::move(*request)));
  Result<InferJob> job =
      JobFor(*request, **servable, models_.TimeoutMsFor((*servable)->info.name), options);
  if (!job.ok()) return done(Refused(job.status(), std::move(*request)));

  std::shared_ptr<Model> model = models_.Acquire(caller, *servable);
  // The model's own manifest decides, as it does in Model::Submit.
  bool cached = model->servable().manifest.cache && models_.cache().enabled();
  auto answer = std::make_shared<InferAnswer>();
  answer->request = std::move(*request);
  job->done = [done = std::move(done), servable = *servable, answer,
               selected = std::move(*selected), cached](InferOutcome outcome) {
    Answer(std::move(outcome), *servable, selected, cached, *answer);
    done(std::move(*answer));
  };
  model->Submit(std::move(*job));
}

std::string InferenceService::RenderMetrics() const {
  return "# HELP orrery_inference_calls_total Inference requests received, by transport.\n"
         "# TYPE orrery_inference_calls_total counter\n"
         "orrery_inference_calls_total{transport=\"rest\"} " +
         std::to_string(rest_calls_.load()) +
         "\n"
         "orrery_inference_calls_total{transport=\"grpc\"} " +
         std::to_string(grpc_calls_.load()) + "\n";
}

void InferenceService::Verify(const Caller& caller, const ModelTarget& target,
                              std::function<void(Result<nlohmann::json>)> done) {
  auto servable = resolver_.Resolve(caller, target);
  if (!servable.ok()) return done(servable.status());
  const Manifest& manifest = (*servable)->manifest;
  if (manifest.examples.empty()) {
    return done(Unprocessable("servable " + (*servable)->key + " has no examples to verify"));
  }
  auto verification = std::make_shared<Verification>();
  for (size_t i = 0; i < manifest.examples.size(); ++i) verification->examples.push_back(nullptr);
  verification->remaining = manifest.examples.size();
  verification->key = (*servable)->key;
  verification->done = std::move(done);

  std::shared_ptr<Model> model = models_.Acquire(caller, *servable);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(models_.TimeoutMsFor((*servable)->info.name));
  for (size_t i = 0; i < manifest.examples.size(); ++i) {
    Result<std::vector<Tensor>> inputs = ExampleInputs(manifest, manifest.examples[i]);
    if (!inputs.ok()) {
      verification->Record(i, FailedExample(inputs.status().message()));
      continue;
    }
    InferJob job;
    job.inputs = std::move(*inputs);
    job.deadline = deadline;
    job.done = [verification, servable = *servable, i](InferOutcome outcome) {
      const Manifest& manifest = servable->manifest;
      if (outcome.status.ok()) outcome.status = CheckOutputs(manifest, outcome.outputs);
      verification->Record(i, outcome.status.ok()
                                  ? CompareExample(manifest, manifest.examples[i], outcome.outputs)
                                  : FailedExample(outcome.status.message()));
    };
    model->Submit(std::move(job));
  }
}

void InferenceService::Load(const Caller& caller, const ModelTarget& target,
                            std::function<void(Result<nlohmann::json>, bool)> done) {
  auto servable = resolver_.Resolve(caller, target);
  if (!servable.ok()) return done(servable.status(), false);
  std::shared_ptr<Model> model = models_.Load(caller, *servable);
  model->OnSettled([model, done = std::move(done)] {
    if (model->state() == ModelState::kReady) {
      return done(nlohmann::json{{"name", model->key()}, {"state", "READY"}}, false);
    }
    std::string why = "servable " + model->key() + " failed to load: " + model->reason();
    if (model->retry_later()) return done(Unavailable(why), true);  // no memory free in time
    done(Unprocessable(why), false);
  });
}

}  // namespace orrery
