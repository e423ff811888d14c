// Asynchronous routes: inference (POST /v2/models/{m}[/versions/{v}]/infer),
// its asynchronous form (.../infer-async, answered 202 at once, the answer
// fetched later from GET /api/v1/requests/{id}) and explicit loads (POST
// /v2/repository/models/{m}/load). They hand work to the ModelManager and
// answer from the thread that finishes it.
#include <charconv>
#include <mutex>

#include "api/route_handlers.h"
#include "api/route_util.h"
#include "serving/signature.h"

namespace orrery {
namespace {

Result<std::optional<uint64_t>> HeaderLength(const HttpRequest& request) {
  std::string text(request.Header("inference-header-content-length"));
  if (text.empty()) return std::optional<uint64_t>();
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgument("Inference-Header-Content-Length must be a non-negative integer");
  }
  return std::optional<uint64_t>(value);
}

// The request as the codec sees it; a raw binary body (header length 0)
// becomes one input named after the servable's only input.
Result<InferRequest> DecodeRequest(const HttpRequest& http, const Manifest& manifest, bool* raw) {
  ASSIGN_OR_RETURN(std::optional<uint64_t> header_length, HeaderLength(http));
  *raw = header_length && *header_length == 0;
  if (!*raw) return DecodeInferRequest(http.body, header_length);
  if (manifest.inputs.size() != 1) {
    return InvalidArgument("a raw binary request needs a servable with exactly one input");
  }
  const TensorSpec& spec = manifest.inputs[0];
  InferRequest request;
  ASSIGN_OR_RETURN(Tensor tensor, DecodeRawBinaryInput(http.body, spec.name,
                                                       *ParseDataType(spec.datatype), spec.shape));
  request.inputs.push_back(std::move(tensor));
  return request;
}

// The schedule_policy extension's `timeout` (µs) bounds: at most an hour,
// like the manifest's queue.default_timeout_us.
constexpr int64_t kMaxTimeoutUs = 3'600'000'000;

// The server's timeout, shortened by the servable's queue.default_timeout_us
// and then by the request's `timeout`: neither can lengthen it.
Result<Deadline> DeadlineFor(const InferRequest& request, const QueueConfig& queue,
                             int64_t configured_ms) {
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
  return std::chrono::steady_clock::now() + timeout;
}

// The request parameter `pipeline_timings` (a boolean; false when absent).
Result<bool> WantsTimings(const InferRequest& request) {
  auto it = request.parameters.find("pipeline_timings");
  if (it == request.parameters.end()) return false;
  if (!it->is_boolean()) return InvalidArgument("parameter pipeline_timings must be a boolean");
  return it->get<bool>();
}

// `cached`: the servable is memoized (manifest `cache: true`, cache enabled),
// so the answer says whether it came from the cache.
HttpResponse OutcomeResponse(InferOutcome outcome, const ResolvedServable& servable,
                             const InferRequest& request, const std::vector<size_t>& selected,
                             bool raw, bool cached) {
  if (outcome.status.ok()) outcome.status = CheckOutputs(servable.manifest, outcome.outputs);
  if (!outcome.status.ok()) {
    HttpResponse error = HttpResponse::Error(outcome.status);
    if (outcome.retry_later) error.headers.emplace_back("Retry-After", "1");
    return error;
  }
  InferResponse response;
  response.model_name = servable.info.name.ToString();
  response.model_version = std::to_string(servable.info.version);
  response.id = request.id;
  response.has_id = request.has_id;
  if (cached) response.parameters["cache_hit"] = outcome.cache_hit;
  for (size_t index : selected) response.outputs.push_back(std::move(outcome.outputs[index]));
  if (outcome.parameters.is_object()) {
    for (auto& [name, value] : outcome.parameters.items()) response.parameters[name] = value;
  }
  EncodedBody encoded = EncodeInferResponse(response, request, raw);
  HttpResponse http;
  http.body = std::move(encoded.body);
  if (encoded.json_length) {
    http.content_type = "application/octet-stream";
    http.headers.emplace_back("Inference-Header-Content-Length",
                              std::to_string(*encoded.json_length));
  }
  return http;
}

}  // namespace

void Infer(RouteCall& call, Responder respond) {
  const HttpRequest& http = call.request;
  ModelManager& models = call.hub.models;
  Result<ModelPath> path = ModelPathFrom(call);
  if (!path.ok()) return respond(HttpResponse::Error(path.status()));
  auto servable = models.Resolve(call.caller, path->name, path->version);
  if (!servable.ok()) return respond(HttpResponse::Error(servable.status()));
  const Manifest& manifest = (*servable)->manifest;
  bool raw = false;
  Result<InferRequest> request = DecodeRequest(http, manifest, &raw);
  if (!request.ok()) return respond(HttpResponse::Error(request.status()));
  for (const RequestedOutput& output : request->outputs) {
    if (output.parameters.is_object() && output.parameters.contains("classification")) {
      return respond(HttpResponse::Error(InvalidArgument(
          "output '" + output.name + "': the classification extension is not supported")));
    }
  }
  Result<std::vector<size_t>> selected = SelectOutputs(manifest, request->outputs);
  if (!selected.ok()) return respond(HttpResponse::Error(selected.status()));
  Result<Deadline> deadline =
      DeadlineFor(*request, manifest.queue, models.TimeoutMsFor((*servable)->info.name));
  if (!deadline.ok()) return respond(HttpResponse::Error(deadline.status()));
  // Checked here too, so that a bad priority loads nothing; Submit resolves it.
  int64_t priority = request->priority.value_or(0);
  Result<uint32_t> level = PriorityLevel(manifest.queue, priority);
  if (!level.ok()) return respond(HttpResponse::Error(level.status()));
  Result<bool> timings = WantsTimings(*request);
  if (!timings.ok()) return respond(HttpResponse::Error(timings.status()));
  Result<std::vector<Tensor>> inputs = BindInputs(manifest, std::move(request->inputs));
  if (!inputs.ok()) return respond(HttpResponse::Error(inputs.status()));

  std::shared_ptr<Model> model = models.Acquire(call.caller, *servable);
  InferJob job;
  job.inputs = std::move(*inputs);
  job.deadline = *deadline;
  job.priority = static_cast<uint32_t>(priority);
  job.report_timings = *timings;
  auto state = std::make_shared<InferRequest>(std::move(*request));
  // The model's own manifest decides, as it does in Model::Submit.
  bool cached = model->servable().manifest.cache && models.cache().enabled();
  job.done = [respond = std::move(respond), servable = *servable, state,
              selected = std::move(*selected), raw, cached](InferOutcome outcome) {
    respond(OutcomeResponse(std::move(outcome), *servable, *state, selected, raw, cached));
  };
  model->Submit(std::move(job));
}

void RepositoryLoad(RouteCall& call, Responder respond) {
  Result<ModelPath> path = ModelPathFrom(call);
  if (!path.ok()) return respond(HttpResponse::Error(path.status()));
  auto servable = call.hub.models.Resolve(call.caller, path->name, path->version);
  if (!servable.ok()) return respond(HttpResponse::Error(servable.status()));
  std::shared_ptr<Model> model = call.hub.models.Load(call.caller, *servable);
  model->OnSettled([model, respond = std::move(respond)] {
    if (model->state() == ModelState::kReady) {
      return respond(HttpResponse::Json(200, {{"name", model->key()}, {"state", "READY"}}));
    }
    if (model->retry_later()) {  // no memory was free in time
      HttpResponse busy = HttpResponse::Error(
          Unavailable("servable " + model->key() + " failed to load: " + model->reason()));
      busy.headers.emplace_back("Retry-After", "1");
      return respond(std::move(busy));
    }
    respond(HttpResponse::Error(
        Unprocessable("servable " + model->key() + " failed to load: " + model->reason())));
  });
}

// The same request as Infer; its answer goes to the AsyncRequests store
// instead of this connection. An answer that is ready before Infer returns
// and is an error (a malformed request, an unknown servable) is given at
// once, as the synchronous route would, and nothing is kept.
void InferAsync(RouteCall& call, Responder respond) {
  AsyncRequests& store = call.hub.async;
  Result<std::string> id = store.Begin(call.caller.tenant_id, call.Param("model"));
  if (!id.ok()) {
    HttpResponse busy = HttpResponse::Error(id.status());
    busy.headers.emplace_back("Retry-After", "1");
    return respond(busy);
  }
  struct Early {
    std::mutex mutex;
    bool handler_returned = false;
    std::optional<HttpResponse> answer;  // arrived before the handler returned
  };
  auto early = std::make_shared<Early>();
  Infer(call, [&store, early, id = *id](HttpResponse answer) {
    std::unique_lock lock(early->mutex);
    if (!early->handler_returned) {
      early->answer = std::move(answer);
      return;
    }
    lock.unlock();
    store.Finish(id, std::move(answer));
  });
  std::unique_lock lock(early->mutex);
  early->handler_returned = true;
  if (early->answer && early->answer->status >= 400) {
    store.Cancel(*id);
    return respond(std::move(*early->answer));
  }
  if (early->answer) store.Finish(*id, std::move(*early->answer));
  lock.unlock();
  HttpResponse accepted = HttpResponse::Json(
      202, {{"id", *id}, {"state", "PENDING"}, {"location", "/api/v1/requests/" + *id}});
  accepted.headers.emplace_back("Location", "/api/v1/requests/" + *id);
  respond(std::move(accepted));
}

HttpResponse RequestAnswer(const RouteCall& call) {
  const std::string& id = call.Param("id");
  std::optional<AsyncRequests::State> state = call.hub.async.Find(call.caller.tenant_id, id);
  if (!state) return HttpResponse::Error(NotFound("request " + id + " not found"));
  switch (state->kind) {
    case AsyncRequests::State::kPending: {
      HttpResponse pending =
          HttpResponse::Json(202, {{"id", id}, {"state", "PENDING"}, {"model", state->model}});
      pending.headers.emplace_back("Retry-After", "1");
      return pending;
    }
    case AsyncRequests::State::kExpired:
      return HttpResponse::Error(
          Status(Code::kGone, "request " + id + " expired: answers are kept " +
                                  std::to_string(call.hub.async.options().keep.count()) + " s"));
    case AsyncRequests::State::kDone: break;
  }
  return std::move(state->answer);
}

}  // namespace orrery
