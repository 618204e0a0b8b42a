// The route table: which URL is which operation, what scope it needs, and which upstream path it
// names. A reader looking for the code behind a URL starts here.
//
// Matching works on raw (still percent-encoded) path segments: literal segments must match
// exactly, and only the namespace segment is percent-decoded and validated. The upstream path is
// always rebuilt from the route's template and the validated namespace, never copied from the
// request, so no crafted path can reach an upstream path other than the one its route names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/namespace_name.h"
#include "http/message.h"

namespace layer::gateway {

enum class RouteId {
  kHealth,
  kReady,
  kMetrics,
  // Turbopuffer-compatible.
  kListNamespaces,      // GET /v1/namespaces
  kWrite,               // POST /v2/namespaces/{ns}
  kDeleteNamespace,     // DELETE /v2/namespaces/{ns}
  kQuery,               // POST /v2/namespaces/{ns}/query
  kExplainQuery,        // POST /v2/namespaces/{ns}/explain_query
  kMetadataV2,          // GET /v2/namespaces/{ns}/metadata
  kMetadataV1,          // GET /v1/namespaces/{ns}/metadata
  kPatchMetadata,       // PATCH /v1/namespaces/{ns}/metadata
  kGetSchema,           // GET /v1/namespaces/{ns}/schema
  kUpdateSchema,        // POST /v1/namespaces/{ns}/schema
  kHintCacheWarm,       // GET /v1/namespaces/{ns}/hint_cache_warm
  kRecall,              // POST /v1/namespaces/{ns}/_debug/recall
  kQueryV1,             // POST /v1/namespaces/{ns}/query (forwarded to the v2 path)
  kLegacyNamespace,     // GET|HEAD|DELETE|POST /v1/namespaces/{ns}
  kOperation,           // GET /v{1,2}/namespaces/{ns}/operations/{id} (async poll)
  // Layer-only.
  kFetchDocument,       // GET /v2/namespaces/{ns}/documents/{id}
  kFetchDocuments,      // POST /v2/namespaces/{ns}/documents
  kWarm,                // POST /v2/namespaces/{ns}/warm
  kWarmJobs,            // GET /v2/namespaces/{ns}/warm-jobs
  kWarmJob,             // GET|DELETE /v2/namespaces/{ns}/warm-jobs/{id}
};

struct RouteMatch {
  RouteId id;
  std::string_view family;  // metrics label
  std::string ns;           // decoded namespace ("" for routes without one)
  NamespaceNameError ns_error = NamespaceNameError::kNone;
  std::string raw_ns;       // decoded but unvalidated namespace, for error texts
  unsigned required_scope = kScopeRead;
  bool turbopuffer_route = true;  // answers namespace errors the way Turbopuffer does
  bool idempotent = false;        // safe for the upstream client to retry
  std::string upstream_path;      // path (no query) to send upstream; empty if not forwarded
  std::string param;              // decoded trailing parameter (document id), if the route has one
};

// Returns nullopt for an unknown method/path combination (answered 404 not_found).
std::optional<RouteMatch> MatchRoute(http::Verb method, std::string_view path);

// Percent-decodes `in`; returns false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

// The percent-decoded value of the first parameter whose percent-decoded name is `name`, or
// nullopt when absent. A value with a malformed escape is returned as sent (so it fails any
// validation rather than reading as absent).
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

}  // namespace layer::gateway
