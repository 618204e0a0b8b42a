// The gateway's request handler: matches the route, applies drain and auth, and dispatches to
// the handler of the route's family (one file per family in src/gateway/).
//
// Thread-safe: one Gateway serves every worker; per-request state lives in the Exchange.
#pragma once

#include <memory>
#include <string>

#include "common/config.h"
#include "gateway/auth.h"
#include "coherence/coherence.h"
#include "gateway/health.h"
#include "gateway/routes.h"
#include "http/credentials.h"
#include "http/server.h"
#include "http/upstream.h"
#include "watermark/consistency_watcher.h"

namespace layer::gateway {

struct WarmServices;
class KeyValidator;

// What a route handler gets besides the exchange.
struct RequestContext {
  http::Exchange& ex;
  const RouteMatch& route;
  std::string_view query;  // raw query string, without '?'
  const AuthResult& auth;
  // Where the Layer state of route.ns lives for this caller (common/tenant.h): the cache, jobs
  // and watermarks are keyed by it; the upstream is always called with route.ns.
  const std::string& partition;
  std::string_view tenant;  // the caller's tenant tag, "" with one tenant
  http::Credentials& credentials;

  // Records the caller's upstream credential for the background work its request may cause (a
  // warm, the watcher's polls, a reactive warm; http/credentials.h). Call it once the upstream has
  // accepted the credential: a Layer-state route after admission, a write or metadata read after
  // a 2xx.
  void RememberCaller() const { credentials.Remember(tenant, auth.upstream_authorization); }
};

class Gateway {
 public:
  // `credentials` receives the keys of callers whose requests may cause background work.
  Gateway(const ServeConfig& cfg, http::Upstream& upstream, coherence::CacheCoherence& cache,
          http::Credentials& credentials);
  ~Gateway();

  // Set once, before serving: the server whose drain state /ready and API routes report.
  void AttachServer(const http::HttpServer* server) { server_ = server; }
  // Set once, before serving: the warm job store and runner (warm routes are 404 without them).
  void AttachWarm(WarmServices* warm) { warm_ = warm; }
  // Set once, before serving: the consistency watcher (stable watermarks; none without it).
  void AttachWatcher(watermark::ConsistencyWatcher* watcher) { watcher_ = watcher; }

  // Not a coroutine: routes and authenticates `ex` at once and returns the task that answers it
  // (not yet started; the server awaits it at once, and `ex` outlives it).
  Task<http::Response> Handle(http::Exchange& ex);

 private:
  // The answer to an authenticated request for `route` (a coroutine: its frame keeps the route,
  // the caller and the RequestContext the handler refers to).
  Task<http::Response> Serve(http::Exchange& ex, RouteMatch route, AuthResult auth,
                             std::string_view query);
  // /health and /ready.
  Task<http::Response> HealthRoute(RouteId id);
  // The route family's handler task for ctx (not yet started; the caller awaits it at once).
  Task<http::Response> Dispatch(RequestContext& ctx);
  Task<http::Response> DispatchTurbopuffer(RequestContext& ctx);
  bool draining() const { return server_ && server_->draining(); }

  const ServeConfig& cfg_;
  http::Upstream& upstream_;
  coherence::CacheCoherence& cache_;
  Authenticator auth_;
  http::Credentials& credentials_;
  // Set when callers' keys are tenants (gateway/tenancy.h).
  std::unique_ptr<KeyValidator> validator_;
  const http::HttpServer* server_ = nullptr;
  WarmServices* warm_ = nullptr;
  watermark::ConsistencyWatcher* watcher_ = nullptr;
  CacheStateListing cache_states_;  // /health's cache_state, kept between probes
};

}  // namespace layer::gateway
