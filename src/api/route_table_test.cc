#include "api/route_table.h"

#include <gtest/gtest.h>

#include <set>

#include "api/grpc_rpcs.h"

namespace orrery {
namespace {

std::vector<std::string> Segments(std::string_view path) { return *SplitPath(path); }

// The route `method path` matches, as "METHOD pattern", or "none".
std::string Matched(std::string_view method, std::string_view path, RouteParams* params) {
  const Route* route = MatchRoute(method, Segments(path), params);
  if (route == nullptr) return "none";
  return std::string(route->method) + " " + std::string(route->pattern);
}

TEST(RouteTableTest, ModelNamesTakeOneOrTwoSegments) {
  RouteParams params;
  EXPECT_EQ(Matched("POST", "/v2/models/acme/mlp/infer", &params),
            "POST /v2/models/{model}/infer");
  EXPECT_EQ(params.Get("model"), "acme/mlp");
  EXPECT_FALSE(params.Has("version"));

  EXPECT_EQ(Matched("POST", "/v2/models/acme%2Fmlp/versions/3/infer", &params),
            "POST /v2/models/{model}/versions/{version}/infer");
  EXPECT_EQ(params.Get("model"), "acme/mlp");
  EXPECT_EQ(params.Get("version"), "3");

  EXPECT_EQ(Matched("POST", "/v2/models/mlp/versions/prod/infer", &params),
            "POST /v2/models/{model}/versions/{version}/infer");
  EXPECT_EQ(params.Get("model"), "mlp");
  EXPECT_EQ(params.Get("version"), "prod");

  // Three segments before the action name no model.
  EXPECT_EQ(Matched("POST", "/v2/models/a/b/c/infer", &params), "none");
}

TEST(RouteTableTest, SpecificPatternsWinOverGeneralOnes) {
  RouteParams params;
  EXPECT_EQ(Matched("GET", "/v2/models/stats", &params), "GET /v2/models/stats");
  EXPECT_FALSE(params.Has("model"));
  EXPECT_EQ(Matched("GET", "/v2/models/acme/mlp/ready", &params), "GET /v2/models/{model}/ready");
  EXPECT_EQ(params.Get("model"), "acme/mlp");
  EXPECT_EQ(Matched("GET", "/v2/models/acme/mlp", &params), "GET /v2/models/{model}");
  EXPECT_EQ(Matched("GET", "/v2/models/acme/versions/2", &params),
            "GET /v2/models/{model}/versions/{version}");
  EXPECT_EQ(params.Get("model"), "acme");
  EXPECT_EQ(params.Get("version"), "2");
}

TEST(RouteTableTest, ChoicesMatchOnlyTheirWords) {
  RouteParams params;
  EXPECT_EQ(Matched("GET", "/api/v1/datasets/acme/iris", &params),
            "GET /api/v1/{kind:servables|datasets}/{tenant}/{name}");
  EXPECT_EQ(params.Get("kind"), "datasets");
  EXPECT_EQ(params.Get("tenant"), "acme");
  EXPECT_EQ(params.Get("name"), "iris");
  EXPECT_EQ(Matched("GET", "/api/v1/models/acme/iris", &params), "none");
  EXPECT_EQ(Matched("POST", "/api/v1/datasets/acme/iris/verify", &params), "none");
}

TEST(RouteTableTest, MethodMustMatchAndHeadIsGet) {
  RouteParams params;
  EXPECT_EQ(Matched("PUT", "/api/v1/whoami", &params), "none");
  EXPECT_EQ(Matched("HEAD", "/v2/health/live", &params), "GET /v2/health/live");
  EXPECT_EQ(Matched("POST", "/api/v1/servables/acme/mlp/versions", &params),
            "POST /api/v1/{kind:servables|datasets}/{tenant}/{name}/versions");
  EXPECT_EQ(MatchRoute("POST", Segments("/api/v1/servables/acme/mlp/versions"), &params)->body,
            BodyPolicy::kUpload);
  EXPECT_EQ(MatchRoute("POST", Segments("/v2/models/mlp/infer"), &params)->body,
            BodyPolicy::kInference);
}

TEST(RouteTableTest, ParamsOfAnEarlierMatchAreCleared) {
  RouteParams params;
  Matched("GET", "/api/v1/servables/acme/mlp", &params);
  EXPECT_EQ(Matched("GET", "/api/v1/whoami", &params), "GET /api/v1/whoami");
  EXPECT_FALSE(params.Has("tenant"));
}

// Every route is reachable: a path made from its own pattern matches it (not
// an earlier route), and no (method, pattern) pair is listed twice.
TEST(RouteTableTest, EveryRouteIsReachableAndListedOnce) {
  std::set<std::string> seen;
  for (const Route& route : Routes()) {
    std::string key = std::string(route.method) + " " + std::string(route.pattern);
    EXPECT_TRUE(seen.insert(key).second) << key << " is listed twice";
    std::string path;
    for (std::string_view part : Segments(route.pattern)) {
      if (part.front() != '{') {
        path += "/" + std::string(part);
      } else if (part.find(':') != std::string_view::npos) {
        path += "/" + std::string(part.substr(part.find(':') + 1, part.find('|') - part.find(':') - 1));
      } else if (part == "{model}") {
        path += "/acme/mlp";
      } else if (part == "{version}") {
        path += "/3";
      } else {
        path += "/x1";
      }
    }
    RouteParams params;
    EXPECT_EQ(Matched(route.method, path, &params), key) << "path " << path;
  }
}

TEST(CheckContentTypeTest, JsonRoutesTakeJsonOrNone) {
  for (const char* type : {"", "application/json", "Application/JSON; charset=utf-8",
                           "application/merge-patch+json"}) {
    EXPECT_TRUE(CheckContentType(BodyPolicy::kJson, type).ok()) << type;
    EXPECT_TRUE(CheckContentType(BodyPolicy::kInference, type).ok()) << type;
  }
  // What a web page may post cross-site without a preflight, and others.
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                           "multipart/form-data; boundary=x", "application/octet-stream",
                           "application/jsonx", "text/json+"}) {
    Status status = CheckContentType(BodyPolicy::kJson, type);
    EXPECT_EQ(status.code(), Code::kUnsupportedMediaType) << type;
  }
  EXPECT_EQ(CheckContentType(BodyPolicy::kJson, "text/plain").message(),
            "this route takes a JSON body (Content-Type: application/json), not 'text/plain'");
}

TEST(CheckContentTypeTest, InferenceAlsoTakesBinaryAndUploadsAnything) {
  EXPECT_TRUE(CheckContentType(BodyPolicy::kInference, "application/octet-stream").ok());
  Status status = CheckContentType(BodyPolicy::kInference, "text/plain;charset=UTF-8");
  EXPECT_EQ(status.code(), Code::kUnsupportedMediaType);
  EXPECT_EQ(status.message(),
            "this route takes a JSON body (Content-Type: application/json, or "
            "application/octet-stream for binary tensors), not 'text/plain;charset=UTF-8'");
  EXPECT_TRUE(CheckContentType(BodyPolicy::kUpload, "text/plain").ok());
}

}  // namespace
}  // namespace orrery

namespace orrery {
namespace {

// Every gRPC RPC stands for a route of the table, so it is admitted as that
// route (a typo would make the RPC answer INTERNAL "no route").
TEST(GrpcRpcsTest, EachStandsForARouteOfTheTable) {
  for (const GrpcRpc& rpc : kGrpcRpcs) {
    const Route* route = FindRoute(rpc.method, rpc.pattern);
    ASSERT_NE(route, nullptr) << rpc.name << " " << rpc.pattern;
    EXPECT_EQ(route->access == Access::kAnyone, rpc.name == "ServerLive") << rpc.name;
  }
  EXPECT_EQ(FindRoute("GET", "/v2/models/{model}/nothing"), nullptr);
}

}  // namespace
}  // namespace orrery
