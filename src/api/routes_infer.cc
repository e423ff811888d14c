// Asynchronous routes: inference (POST /v2/models/{m}[/versions/{v}]/infer),
// its asynchronous form (.../infer-async, answered 202 at once, the answer
// fetched later from GET /api/v1/requests/{id}) and explicit loads (POST
// /v2/repository/models/{m}/load). They decode, hand the request to the
// InferenceService and encode the answer on the thread that finishes it.
#include <charconv>
#include <mutex>

#include "api/route_handlers.h"
#include "api/route_util.h"

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

// The answer in the protocol's REST form.
HttpResponse Encode(InferAnswer answer, bool raw) {
  if (!answer.status.ok()) {
    HttpResponse error = HttpResponse::Error(answer.status);
    if (answer.retry_later) error.headers.emplace_back("Retry-After", "1");
    return error;
  }
  EncodedBody encoded = EncodeInferResponse(answer.response, answer.request, raw);
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
  // Decoded once the servable is known (a raw binary body needs its
  // signature); `raw` is read when the answer is encoded, after decoding.
  auto raw = std::make_shared<bool>(false);
  RequestDecoder decode = [&http = call.request, raw](const Manifest& manifest) {
    return DecodeRequest(http, manifest, raw.get());
  };
  call.hub.inference.Infer(call.caller, TargetFrom(call), std::move(decode), InferOptions{},
                           [respond = std::move(respond), raw](InferAnswer answer) {
                             respond(Encode(std::move(answer), *raw));
                           });
}

void RepositoryLoad(RouteCall& call, Responder respond) {
  call.hub.inference.Load(call.caller, TargetFrom(call),
                          [respond = std::move(respond)](Result<nlohmann::json> loaded,
                                                         bool retry_later) {
                            HttpResponse answer = Respond(loaded);
                            if (retry_later) answer.headers.emplace_back("Retry-After", "1");
                            respond(std::move(answer));
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
