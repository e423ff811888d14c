// Training jobs (docs/jobs.md): each handler decodes, calls the JobService
// and encodes.
#include "api/route_handlers.h"
#include "api/route_util.h"
#include "jobs/job_service.h"

namespace orrery {
namespace {

Result<int64_t> JobId(const RouteCall& call) {
  ASSIGN_OR_RETURN(int64_t id, ParseInt(call.Param("id"), "job id", 0));
  if (id <= 0) return NotFound("job " + call.Param("id") + " not found");
  return id;
}

}  // namespace

HttpResponse UploadJobCode(const RouteCall& call) {
  return Respond(call.hub.jobs.UploadCode(call.caller, call.request.body_file), 201);
}

HttpResponse SubmitJob(const RouteCall& call) {
  return Respond(call.hub.jobs.Submit(call.caller, call.request.body), 201);
}

// ?state=RUNNING&limit=N
HttpResponse ListJobs(const RouteCall& call) {
  std::optional<JobState> state;
  if (std::string text = call.request.Query("state"); !text.empty()) {
    ASSIGN_OR_ANSWER(state, ParseJobState(text));
  }
  ASSIGN_OR_ANSWER(int64_t limit, ParseInt(call.request.Query("limit"), "limit", 100));
  if (limit < 1 || limit > 10000) return HttpResponse::Error(InvalidArgument("limit must be 1..10000"));
  return Respond(call.hub.jobs.List(call.caller, state, limit));
}

HttpResponse ShowJob(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t id, JobId(call));
  return Respond(call.hub.jobs.Show(call.caller, id));
}

// ?limit=N: the last N metrics lines.
HttpResponse JobMetrics(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t id, JobId(call));
  ASSIGN_OR_ANSWER(int64_t limit, ParseInt(call.request.Query("limit"), "limit", 1000));
  if (limit < 1 || limit > 100000) return HttpResponse::Error(InvalidArgument("limit must be 1..100000"));
  return Respond(call.hub.jobs.Metrics(call.caller, id, limit));
}

// POST /api/v1/jobs/{id}/{action:halt|resume|cancel|rerun|publish}
HttpResponse ChangeJob(const RouteCall& call) {
  ASSIGN_OR_ANSWER(int64_t id, JobId(call));
  const std::string& action = call.Param("action");
  JobService& jobs = call.hub.jobs;
  if (action == "halt") return Respond(jobs.Halt(call.caller, id));
  if (action == "resume") return Respond(jobs.Resume(call.caller, id));
  if (action == "cancel") return Respond(jobs.Cancel(call.caller, id));
  if (action == "publish") {
    nlohmann::json request = nullptr;
    if (!call.request.body.empty()) {
      ASSIGN_OR_ANSWER(request, ParseJsonObject(call.request));
    }
    return Respond(jobs.Publish(call.caller, id, request), 201);
  }
  return Respond(jobs.Rerun(call.caller, id), 201);
}

// GET /api/v1/jobs/{id}/logs?offset=N&max_bytes=M&wait_ms=W: the log from
// byte N as text/plain; with wait_ms, waits that long for more when there is
// none yet (a follower's long poll). X-Orrery-Log-Offset says where to go
// on from, X-Orrery-Log-End whether the job is over and this was the end.
void JobLogs(RouteCall& call, Responder respond) {
  Result<int64_t> id = JobId(call);
  Result<int64_t> offset = ParseInt(call.request.Query("offset"), "offset", 0);
  Result<int64_t> max_bytes = ParseInt(call.request.Query("max_bytes"), "max_bytes", 1 << 20);
  Result<int64_t> wait_ms = ParseInt(call.request.Query("wait_ms"), "wait_ms", 0);
  for (const Status& status : {id.status(), offset.status(), max_bytes.status(), wait_ms.status()}) {
    if (!status.ok()) return respond(HttpResponse::Error(status));
  }
  if (*offset < 0 || *max_bytes < 1 || *max_bytes > (16 << 20) || *wait_ms < 0 || *wait_ms > 60000) {
    return respond(HttpResponse::Error(
        InvalidArgument("offset must be >= 0, max_bytes 1..16777216, wait_ms 0..60000")));
  }
  call.hub.jobs.Logs(call.caller, *id, *offset, *max_bytes, std::chrono::milliseconds(*wait_ms),
                     [respond](Result<JobService::LogChunk> chunk) {
                       if (!chunk.ok()) return respond(HttpResponse::Error(chunk.status()));
                       HttpResponse response;
                       response.content_type = "text/plain; charset=utf-8";
                       response.body = std::move(chunk->data);
                       response.headers = {
                           {"X-Orrery-Log-Offset", std::to_string(chunk->next_offset)},
                           {"X-Orrery-Log-End", chunk->ended ? "true" : "false"},
                           {"X-Orrery-Job-State", JobStateName(chunk->state)}};
                       respond(std::move(response));
                     });
}

HttpResponse GetJobLimits(const RouteCall& call) {
  return Respond(call.hub.jobs.GetLimits(call.caller, call.Param("tenant")));
}

// PUT body: {"max_running": 2, "cpus": 4, ...}, or null to go back to the defaults.
HttpResponse SetJobLimits(const RouteCall& call) {
  nlohmann::json limits = nlohmann::json::parse(call.request.body, nullptr, false);
  if (limits.is_discarded() || (!limits.is_object() && !limits.is_null())) {
    return HttpResponse::Error(InvalidArgument("the body must be a JSON object of limits, or null"));
  }
  return Respond(call.hub.jobs.SetLimits(call.caller, call.Param("tenant"), limits));
}

}  // namespace orrery
