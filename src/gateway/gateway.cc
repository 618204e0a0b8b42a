#include "gateway/gateway.h"

#include "gateway/health.h"
#include "gateway/fetch.h"
#include "gateway/hint_cache_warm.h"
#include "gateway/passthrough.h"
#include "gateway/snapshots.h"
#include "gateway/query.h"
#include "gateway/tenancy.h"
#include "gateway/test_faults.h"
#include "gateway/warm.h"
#include "gateway/write.h"
#include "common/tenant.h"
#include "http/errors.h"

namespace layer::gateway {

Gateway::Gateway(const ServeConfig& cfg, http::Upstream& upstream,
                 coherence::CacheCoherence& cache, http::Credentials& credentials)
    : cfg_(cfg), upstream_(upstream), cache_(cache), auth_(cfg), credentials_(credentials) {
  if (PerKeyTenancy(cfg)) {
    KeyValidator::Options options;
    options.ttl = std::chrono::milliseconds(cfg.key_validation_ttl_ms);
    validator_ = std::make_unique<KeyValidator>(upstream, cache, options);
  }
}

Gateway::~Gateway() = default;

namespace {

// Routes answered from Layer state (the cache, the job store) rather than by the upstream: with
// keys as tenants, their callers are validated upstream first (gateway/tenancy.h).
bool AnsweredFromLayerState(const RouteMatch& route, std::string_view query) {
  switch (route.id) {
    case RouteId::kFetchDocument:
    case RouteId::kFetchDocuments:
    case RouteId::kWarm:
    case RouteId::kWarmJobs:
    case RouteId::kWarmJob:
    case RouteId::kSnapshotPolicy:
    case RouteId::kSnapshotHistory:
    case RouteId::kSnapshotBody:
    case RouteId::kSnapshotCreate:
    case RouteId::kSnapshotJobs:
    case RouteId::kSnapshotJob:
      return true;
    case RouteId::kTurbopuffer:
      return route.Is(tpuf::RouteId::kHintCacheWarm) && IsOrchestratedHint(query);
    default:
      return false;
  }
}

// An answer known before any I/O, as a task.
Task<http::Response> Ready(http::Response res) { co_return res; }

}  // namespace

// Not a coroutine (see gateway.h).
Task<http::Response> Gateway::Handle(http::Exchange& ex) {
  const auto& req = ex.request();
  std::string_view target = req.target();
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  std::string_view query = qpos == std::string_view::npos ? std::string_view()
                                                          : target.substr(qpos + 1);

  if (cache_.faults() && path == kCacheFaultsPath) return HandleCacheFaults(ex, *cache_.faults());
  auto route = MatchRoute(req.method(), path);
  if (!route) {
    ex.info.route = "unknown";
    return Ready(http::MakeError(
        http::Code::not_found, "not_found",
        "no route for " + std::string(req.method_string()) + " " + std::string(path)));
  }
  ex.info.route = route->family;

  switch (route->id) {
    case RouteId::kHealth:
    case RouteId::kReady:
      return HealthRoute(route->id);
    case RouteId::kMetrics:
      return Ready(MetricsResponse());
    default:
      break;
  }

  if (draining()) {
    auto res = http::MakeError(http::Code::service_unavailable, "gateway_draining",
                               "the gateway is shutting down; retry on another replica");
    res.keep_alive(false);
    return Ready(std::move(res));
  }

  unsigned scope = route->required_scope;
  if (route->Is(tpuf::RouteId::kHintCacheWarm)) scope = HintRequiredScope(query);
  AuthResult auth = auth_.Check(http::FieldValue(req, http::Field::authorization), scope);
  if (auth.denied) return Ready(std::move(*auth.denied));

  if (route->ns_error != NamespaceNameError::kNone) {
    std::string text = NamespaceNameErrorText(route->ns_error, route->raw_ns);
    if (route->turbopuffer_route) return Ready(http::MakeText(http::Code::bad_request, text));
    return Ready(http::MakeError(http::Code::unprocessable_entity, "validation_error", text));
  }
  return Serve(ex, std::move(*route), std::move(auth), query);
}

Task<http::Response> Gateway::HealthRoute(RouteId id) {
  HealthInfo health{cfg_.upstream.empty() ? "embedded_origin" : "turbopuffer", upstream_.base(),
                    draining(), &cache_, watcher_, &cache_states_};
  if (id == RouteId::kHealth) co_return co_await HealthResponse(health);
  co_return co_await ReadyResponse(health);
}

Task<http::Response> Gateway::Serve(http::Exchange& ex, RouteMatch route, AuthResult auth,
                                    std::string_view query) {
  std::string tenant_partition;
  if (!auth.tenant.empty()) tenant_partition = PartitionName(route.ns, auth.tenant);
  RequestContext ctx{ex,          route,       query,
                     auth,        auth.tenant.empty() ? route.ns : tenant_partition,
                     auth.tenant, credentials_};
  if (AnsweredFromLayerState(route, query)) {
    if (validator_ && !auth.tenant.empty()) {
      if (auto refused = co_await validator_->Admit(ctx)) co_return std::move(*refused);
    }
    ctx.RememberCaller();
  }
  co_return co_await Dispatch(ctx);
}

// Not a coroutine: it picks the route family's handler and returns that handler's (lazy) task,
// which Handle awaits at once, so a request costs no extra coroutine frame here. Everything the
// task refers to (ctx, the members) outlives that await.
Task<http::Response> Gateway::Dispatch(RequestContext& ctx) {
  switch (ctx.route.id) {
    case RouteId::kTurbopuffer:
      return DispatchTurbopuffer(ctx);
    case RouteId::kFetchDocument:
      return FetchDocument(ctx, upstream_, cache_);
    case RouteId::kFetchDocuments:
      return FetchDocuments(ctx, upstream_, cache_);
    case RouteId::kWarm:
    case RouteId::kWarmJobs:
    case RouteId::kWarmJob:
      if (!warm_) {
        return Ready(
            http::MakeError(http::Code::not_found, "not_found", "warm jobs are not enabled"));
      }
      if (ctx.route.id == RouteId::kWarm) return StartWarm(ctx, cache_, *warm_);
      if (ctx.route.id == RouteId::kWarmJobs) return ListWarmJobs(ctx, *warm_);
      return WarmJobById(ctx, *warm_);
    case RouteId::kSnapshotPolicy:
    case RouteId::kSnapshotHistory:
    case RouteId::kSnapshotBody:
    case RouteId::kSnapshotCreate:
    case RouteId::kSnapshotJobs:
    case RouteId::kSnapshotJob:
      if (!warm_) {
        return Ready(
            http::MakeError(http::Code::not_found, "not_found", "snapshots are not enabled"));
      }
      if (ctx.route.id == RouteId::kSnapshotPolicy) {
        return SnapshotPolicyRoute(ctx, *warm_, watcher_);
      }
      if (ctx.route.id == RouteId::kSnapshotHistory) return SnapshotHistory(ctx, *warm_);
      if (ctx.route.id == RouteId::kSnapshotCreate) return StartSnapshotJob(ctx, *warm_);
      if (ctx.route.id == RouteId::kSnapshotJobs) return ListSnapshotJobs(ctx, *warm_);
      if (ctx.route.id == RouteId::kSnapshotJob) return SnapshotJobById(ctx, *warm_);
      return SnapshotBodyRoute(ctx, *warm_);
    default:  // the operations routes are answered in Handle
      return Ready(http::MakeError(http::Code::not_found, "not_found", "no such route"));
  }
}

Task<http::Response> Gateway::DispatchTurbopuffer(RequestContext& ctx) {
  switch (ctx.route.tpuf) {
    case tpuf::RouteId::kWrite:
      return Write(ctx, upstream_, cache_, watcher_, cfg_.public_url);
    case tpuf::RouteId::kDeleteNamespace:
      return DeleteNamespace(ctx, upstream_, cache_, watcher_, warm_, cfg_.public_url);
    case tpuf::RouteId::kQuery:
    case tpuf::RouteId::kQueryV1:
      return Query(ctx, upstream_, watcher_, cfg_.public_url);
    case tpuf::RouteId::kGetSchema:
    case tpuf::RouteId::kUpdateSchema:
    case tpuf::RouteId::kMetadataV1:
    case tpuf::RouteId::kMetadataV2:
    case tpuf::RouteId::kPatchMetadata:
      return NamespaceInfo(ctx, upstream_, cache_, watcher_, cfg_.public_url);
    case tpuf::RouteId::kLegacyNamespace:
      switch (ctx.ex.request().method()) {
        case http::Verb::get:
          return NamespaceInfo(ctx, upstream_, cache_, watcher_, cfg_.public_url);
        case http::Verb::post:  // a v1 write
          return LegacyWrite(ctx, upstream_, cache_, cfg_.public_url);
        case http::Verb::delete_:  // a namespace delete
          return DeleteNamespace(ctx, upstream_, cache_, watcher_, warm_, cfg_.public_url);
        default:
          return Passthrough(ctx, upstream_, cfg_.public_url);
      }
    case tpuf::RouteId::kHintCacheWarm:
      if (warm_ && IsOrchestratedHint(ctx.query)) {
        return OrchestrateHintCacheWarm(ctx, upstream_, cache_, *warm_);
      }
      return Passthrough(ctx, upstream_, cfg_.public_url);
    default:
      return Passthrough(ctx, upstream_, cfg_.public_url);
  }
}

}  // namespace layer::gateway
