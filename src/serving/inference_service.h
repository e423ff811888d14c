// InferenceService: the Open Inference Protocol's operations, free of any
// transport. REST (src/api/routes_infer.cc, routes_v2*.cc), gRPC
// (src/api/grpc/), `verify` and asynchronous requests all call it, so that
// every rule (who may see what, deadlines, priorities, output selection,
// binding to the signature, the cache, batching, pipelines) is decided once;
// a transport only decodes, calls and encodes (docs/inference.md, docs/grpc.md).
//
// Inference: Resolve the target (the Resolver: today's names and aliases,
// later the model-less selector), decode the request against the servable's
// manifest (the transport's decoder, run only once the target is known to be
// visible, so an invisible model answers not-found whatever the body), check
// it (classification refused, outputs selected, the deadline and priority
// checked, inputs bound to the signature), then submit it to the model. The
// answer arrives through `done`, exactly once, on whichever thread finished
// (at once for a refused request).
//
// Deadline: the server's timeout (ModelManager::TimeoutMsFor), shortened by
// the servable's queue.default_timeout_us, by the request's `timeout`
// parameter (1..3,600,000,000 µs) and by the transport's own deadline (a
// gRPC deadline); none of them can lengthen it.
//
// Ownership: borrows the ModelManager, the Repository and the Resolver,
// which must outlive it. Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "repository/repository.h"
#include "serving/model_manager.h"
#include "serving/resolver.h"
#include "tensor/infer_codec.h"

namespace orrery {

// The protocol's "platform" of a backend ("pytorch_torchscript", ...).
std::string PlatformOf(const std::string& backend);

// Turns the transport's request into the codec's form once the servable is
// known (REST's raw binary body needs its signature). Called at most once,
// before Infer returns, so it may borrow the transport's request.
using RequestDecoder = std::function<Result<InferRequest>(const Manifest& manifest)>;

// Which transport a request came by (counted on /metrics).
enum class Transport { kRest, kGrpc };

struct InferOptions {
  std::optional<Deadline> deadline;  // the transport's (a gRPC deadline): can only shorten
  Transport transport = Transport::kRest;
};

// The outcome of one inference request.
struct InferAnswer {
  Status status;
  bool retry_later = false;  // a full queue or no memory in time: 503 + Retry-After
  // When status is OK: model name and version, the request's id, the
  // requested outputs (in the order asked, all in signature order when it
  // named none) and the answer's parameters (cache_hit, timings).
  InferResponse response;
  // The request as decoded (inputs moved out): the outputs it asked for and
  // how, which the transport's encoder needs. Empty when decoding failed.
  InferRequest request;
};
using InferDone = std::function<void(InferAnswer)>;

// Whether one servable version can serve now.
struct Readiness {
  std::string key;  // "tenant/name:version"
  bool ready = false;
  std::string reason;  // why not, when not ready
};

class InferenceService {
 public:
  InferenceService(ModelManager& models, Repository& repository, Resolver& resolver)
      : models_(models), repository_(repository), resolver_(resolver) {}

  // Inference (see above).
  void Infer(const Caller& caller, const ModelTarget& target, RequestDecoder decode,
             const InferOptions& options, InferDone done);

  // Runs every example of the servable's manifest through the serving path
  // and compares the answers: {"servable", "ok", "examples": [...]}
  // (CompareExample, with "index"). kUnprocessable when it has no examples.
  void Verify(const Caller& caller, const ModelTarget& target,
              std::function<void(Result<nlohmann::json>)> done);

  // Explicit load (the repository extension): {"name", "state": "READY"}
  // once loaded; kUnavailable (retry later) when no memory was free in
  // time, kUnprocessable when the load failed.
  void Load(const Caller& caller, const ModelTarget& target,
            std::function<void(Result<nlohmann::json>, bool retry_later)> done);

  // The rest of the protocol (inference_service_models.cc), as JSON in the
  // shapes REST answers; gRPC turns them into its messages.
  // {"name", "version", "extensions"}
  static nlohmann::json ServerMetadata();
  // {"name", "versions", "platform", "inputs", "outputs"}
  Result<nlohmann::json> ModelMetadata(const Caller& caller, const ModelTarget& target);
  Result<Readiness> ModelReady(const Caller& caller, const ModelTarget& target);
  // {"model_stats": [...]}: the target's loaded version, or (no target)
  // every loaded version the caller can see.
  Result<nlohmann::json> ModelStats(const Caller& caller, const std::optional<ModelTarget>& target);
  // Triton's model configuration, from the manifest and serving settings.
  Result<nlohmann::json> ModelConfig(const Caller& caller, const ModelTarget& target);
  // [{"name", "version", "state", "reason"}] of every servable the caller
  // can see (loaded versions, and the latest version of the others as
  // UNAVAILABLE "not loaded"); `ready_only`: the ready ones only.
  Result<nlohmann::json> RepositoryIndex(const Caller& caller, bool ready_only);
  // Unloads the target's version (every loaded version without one); the
  // number unloaded, 0 when none was loaded. Only the owner's publishers and
  // admins, or the hub admin.
  Result<int> Unload(const Caller& caller, const ModelTarget& target);

  ModelManager& models() const { return models_; }

  // Prometheus text: inference requests received per transport
  // (orrery_inference_calls_total{transport}), hub-wide.
  std::string RenderMetrics() const;

 private:
  std::atomic<uint64_t> rest_calls_{0}, grpc_calls_{0};
  ModelManager& models_;
  Repository& repository_;
  Resolver& resolver_;
};

}  // namespace orrery
