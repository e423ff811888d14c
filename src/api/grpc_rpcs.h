// The RPCs of the gRPC service (proto/inference.proto, docs/grpc.md), each
// with the REST route it stands for: the gRPC service admits a call exactly
// as that route's (Router::CallerFor), and `orrery routes` shows the pairs.
// One place for the pairing, so the two cannot drift apart.
//
// Thread-safety: constants.
#pragma once

#include <span>
#include <string_view>

namespace orrery {

struct GrpcRpc {
  std::string_view name;     // the RPC's name in inference.GRPCInferenceService
  std::string_view method;   // the REST route it stands for (route_table.h)
  std::string_view pattern;
};

inline constexpr GrpcRpc kServerLiveRpc{"ServerLive", "GET", "/v2/health/live"};
inline constexpr GrpcRpc kServerReadyRpc{"ServerReady", "GET", "/v2/health/ready"};
inline constexpr GrpcRpc kServerMetadataRpc{"ServerMetadata", "GET", "/v2"};
inline constexpr GrpcRpc kModelMetadataRpc{"ModelMetadata", "GET", "/v2/models/{model}"};
inline constexpr GrpcRpc kModelReadyRpc{"ModelReady", "GET", "/v2/models/{model}/ready"};
inline constexpr GrpcRpc kModelInferRpc{"ModelInfer", "POST", "/v2/models/{model}/infer"};
inline constexpr GrpcRpc kModelStreamInferRpc{"ModelStreamInfer", "POST",
                                              "/v2/models/{model}/infer"};
inline constexpr GrpcRpc kModelConfigRpc{"ModelConfig", "GET", "/v2/models/{model}/config"};
// ModelStatistics with a model name, and without one (every visible model).
inline constexpr GrpcRpc kModelStatisticsRpc{"ModelStatistics", "GET", "/v2/models/{model}/stats"};
inline constexpr GrpcRpc kAllStatisticsRpc{"ModelStatistics", "GET", "/v2/models/stats"};
inline constexpr GrpcRpc kRepositoryIndexRpc{"RepositoryIndex", "POST", "/v2/repository/index"};
inline constexpr GrpcRpc kRepositoryModelLoadRpc{"RepositoryModelLoad", "POST",
                                                 "/v2/repository/models/{model}/load"};
inline constexpr GrpcRpc kRepositoryModelUnloadRpc{"RepositoryModelUnload", "POST",
                                                   "/v2/repository/models/{model}/unload"};

inline constexpr GrpcRpc kGrpcRpcs[] = {
    kServerLiveRpc,      kServerReadyRpc,     kServerMetadataRpc,      kModelMetadataRpc,
    kModelReadyRpc,      kModelInferRpc,      kModelStreamInferRpc,    kModelConfigRpc,
    kModelStatisticsRpc, kAllStatisticsRpc,   kRepositoryIndexRpc,     kRepositoryModelLoadRpc,
    kRepositoryModelUnloadRpc};

}  // namespace orrery
