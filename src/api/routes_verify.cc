// POST /api/v1/servables/{tenant}/{name}[/versions/{v}]/verify: runs every
// example of the servable's manifest through the serving path and reports
// each output against the expected one, DLHub-style. 200 with "ok": false
// when an example does not reproduce; 422 when there is nothing to verify.
#include <mutex>

#include "api/route_handlers.h"
#include "api/route_util.h"
#include "serving/signature.h"

namespace orrery {
namespace {

// Collects the examples' results; the last one to finish answers.
struct Verification {
  std::mutex mutex;
  nlohmann::json examples;  // GUARDED_BY(mutex), one slot per example
  size_t remaining = 0;     // GUARDED_BY(mutex)
  std::string key;
  Responder respond;

  void Record(size_t index, nlohmann::json result) {
    std::unique_lock lock(mutex);
    result["index"] = index;
    examples[index] = std::move(result);
    if (--remaining > 0) return;
    bool ok = true;
    for (const auto& example : examples) ok = ok && example["ok"].get<bool>();
    nlohmann::json report = {{"servable", key}, {"ok", ok}, {"examples", examples}};
    lock.unlock();
    respond(HttpResponse::Json(200, report));
  }
};

nlohmann::json Failed(const std::string& message) {
  return {{"ok", false}, {"message", message}, {"outputs", nlohmann::json::array()}};
}

}  // namespace

void Verify(RouteCall& call, Responder respond) {
  ModelManager& models = call.hub.models;
  Result<ObjectRef> object = ObjectFrom(call);
  if (!object.ok()) return respond(HttpResponse::Error(object.status()));
  auto servable = models.Resolve(call.caller, object->name, object->version);
  if (!servable.ok()) return respond(HttpResponse::Error(servable.status()));
  const Manifest& manifest = (*servable)->manifest;
  if (manifest.examples.empty()) {
    return respond(HttpResponse::Error(
        Unprocessable("servable " + (*servable)->key + " has no examples to verify")));
  }
  auto verification = std::make_shared<Verification>();
  verification->examples = nlohmann::json::array();
  for (size_t i = 0; i < manifest.examples.size(); ++i) verification->examples.push_back(nullptr);
  verification->remaining = manifest.examples.size();
  verification->key = (*servable)->key;
  verification->respond = std::move(respond);

  std::shared_ptr<Model> model = models.Acquire(call.caller, *servable);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(models.TimeoutMsFor((*servable)->info.name));
  for (size_t i = 0; i < manifest.examples.size(); ++i) {
    const nlohmann::json& example = manifest.examples[i];
    Result<std::vector<Tensor>> inputs = ExampleInputs(manifest, example);
    if (!inputs.ok()) {
      verification->Record(i, Failed(inputs.status().message()));
      continue;
    }
    InferJob job;
    job.inputs = std::move(*inputs);
    job.deadline = deadline;
    job.done = [verification, servable = *servable, i](InferOutcome outcome) {
      if (outcome.status.ok()) outcome.status = CheckOutputs(servable->manifest, outcome.outputs);
      verification->Record(i, outcome.status.ok()
                                  ? CompareExample(servable->manifest,
                                                   servable->manifest.examples[i], outcome.outputs)
                                  : Failed(outcome.status.message()));
    };
    model->Submit(std::move(job));
  }
}

}  // namespace orrery
