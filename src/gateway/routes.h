// The gateway's route table: Turbopuffer's routes (tpuf/routes.h) with the auth scope each needs,
// plus the operations routes and Layer's own routes. A reader looking for the code behind a URL
// starts here: each RouteId names the file of its handler.
//
// Namespaces are decoded and validated as in tpuf/routes.h; Layer-only routes never forward the
// request's path upstream (their handlers build their own upstream reads).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/namespace_name.h"
#include "common/url.h"
#include "http/message.h"
#include "tpuf/routes.h"

namespace layer::gateway {

enum class RouteId {
  kHealth,          // GET /health                                   (health.cc)
  kReady,           // GET /ready                                    (health.cc)
  kMetrics,         // GET /metrics                                  (health.cc)
  kTurbopuffer,     // every route of tpuf/routes.h: see RouteMatch::tpuf (passthrough.cc,
                    // write.cc, query.cc, hint_cache_warm.cc)
  kFetchDocument,   // GET /v2/namespaces/{ns}/documents/{id}        (fetch.cc)
  kFetchDocuments,  // POST /v2/namespaces/{ns}/documents            (fetch.cc)
  kWarm,            // POST /v2/namespaces/{ns}/warm                 (warm.cc)
  kWarmJobs,        // GET /v2/namespaces/{ns}/warm-jobs             (warm.cc)
  kWarmJob,         // GET|DELETE /v2/namespaces/{ns}/warm-jobs/{id} (warm.cc)
  kSnapshotPolicy,  // GET|PUT /v2/namespaces/{ns}/snapshot-policy   (snapshots.cc)
  kSnapshotHistory, // GET /v2/namespaces/{ns}/history               (snapshots.cc)
  kSnapshotBody,    // GET /v2/namespaces/{ns}/snapshots/{sha}       (snapshots.cc)
  kSnapshotCreate,  // POST /v2/namespaces/{ns}/snapshots            (snapshots.cc)
  kSnapshotJobs,    // GET /v2/namespaces/{ns}/snapshot-jobs         (snapshots.cc)
  kSnapshotJob,     // GET|DELETE /v2/namespaces/{ns}/snapshot-jobs/{id} (snapshots.cc)
};

struct RouteMatch {
  RouteId id;
  tpuf::RouteId tpuf{};     // which Turbopuffer route, when id == kTurbopuffer
  std::string_view family;  // metrics label
  std::string ns;           // decoded namespace ("" for routes without one)
  NamespaceNameError ns_error = NamespaceNameError::kNone;
  std::string raw_ns;  // decoded but unvalidated namespace, for error texts
  unsigned required_scope = kScopeRead;
  bool turbopuffer_route = true;  // answers namespace errors the way Turbopuffer does
  bool idempotent = false;        // safe for the upstream client to retry
  std::string upstream_path;      // path (no query) to send upstream; empty if not forwarded
  std::string param;              // decoded trailing parameter (document id), if the route has one

  bool Is(tpuf::RouteId r) const { return id == RouteId::kTurbopuffer && tpuf == r; }
};

// Returns nullopt for an unknown method/path combination (answered 404 not_found).
std::optional<RouteMatch> MatchRoute(http::Verb method, std::string_view path);

}  // namespace layer::gateway
