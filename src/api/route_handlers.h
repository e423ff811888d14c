// The handlers of the route table (route_table.h), one per route, by file.
// Internal to src/api/: a handler decodes its request, calls one service
// (Repository or ModelManager) and encodes the answer.
#pragma once

#include "api/route_table.h"

namespace orrery {

// router.cc
HttpResponse ServerLive(const RouteCall& call);

// routes_v2.cc: the Open Inference Protocol other than inference.
HttpResponse ServerReady(const RouteCall& call);
HttpResponse ServerMetadata(const RouteCall& call);
HttpResponse ModelMetadata(const RouteCall& call);
HttpResponse ModelReady(const RouteCall& call);
HttpResponse ModelStats(const RouteCall& call);
// Triton's model configuration, from the manifest.
HttpResponse ModelConfig(const RouteCall& call);
HttpResponse RepositoryIndex(const RouteCall& call);
HttpResponse RepositoryUnload(const RouteCall& call);
HttpResponse WorkerLogs(const RouteCall& call);
HttpResponse Metrics(const RouteCall& call);

// routes_infer.cc: answered when the model is done.
void Infer(RouteCall& call, Responder respond);
void InferAsync(RouteCall& call, Responder respond);
HttpResponse RequestAnswer(const RouteCall& call);
void RepositoryLoad(RouteCall& call, Responder respond);

// routes_verify.cc
void Verify(RouteCall& call, Responder respond);

// routes_objects.cc: servables and datasets.
HttpResponse List(const RouteCall& call);
HttpResponse Search(const RouteCall& call);
HttpResponse Describe(const RouteCall& call);
HttpResponse DeleteObject(const RouteCall& call);
HttpResponse Publish(const RouteCall& call);
HttpResponse DescribeVersion(const RouteCall& call);
HttpResponse DeleteVersion(const RouteCall& call);
HttpResponse DownloadArchive(const RouteCall& call);
HttpResponse Cite(const RouteCall& call);
HttpResponse ModelCard(const RouteCall& call);
HttpResponse SetAlias(const RouteCall& call);
HttpResponse DeleteAlias(const RouteCall& call);
HttpResponse SetVisibility(const RouteCall& call);
HttpResponse AddShare(const RouteCall& call);
HttpResponse RemoveShare(const RouteCall& call);

// routes_admin.cc: identity, tenants, tokens, audit, maintenance, overrides.
HttpResponse Whoami(const RouteCall& call);
HttpResponse ListEnvironments(const RouteCall& call);
HttpResponse ListTenants(const RouteCall& call);
HttpResponse CreateTenant(const RouteCall& call);
HttpResponse ListTokens(const RouteCall& call);
HttpResponse CreateToken(const RouteCall& call);
HttpResponse RevokeToken(const RouteCall& call);
HttpResponse Audit(const RouteCall& call);
HttpResponse CollectGarbage(const RouteCall& call);
HttpResponse Check(const RouteCall& call);
HttpResponse GetServingOverride(const RouteCall& call);
HttpResponse SetServingOverride(const RouteCall& call);
HttpResponse ClearServingOverride(const RouteCall& call);

// routes_jobs.cc: training jobs.
HttpResponse UploadJobCode(const RouteCall& call);
HttpResponse SubmitJob(const RouteCall& call);
HttpResponse ListJobs(const RouteCall& call);
HttpResponse ShowJob(const RouteCall& call);
HttpResponse JobMetrics(const RouteCall& call);
HttpResponse ChangeJob(const RouteCall& call);
void JobLogs(RouteCall& call, Responder respond);
HttpResponse GetJobLimits(const RouteCall& call);
HttpResponse SetJobLimits(const RouteCall& call);

}  // namespace orrery
