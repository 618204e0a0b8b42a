// The Turbopuffer route table: which URL is which Turbopuffer operation, whether it changes data,
// whether it is safe to retry, and which upstream path it names. The local origin matches
// requests with it as it is; the gateway layers its own routes and auth scopes on top
// (gateway/routes.h).
//
// Matching works on raw (still percent-encoded) path segments: literal segments must match
// exactly, and only the namespace segment is percent-decoded and validated. The upstream path is
// always rebuilt from the route's template and the validated namespace, never copied from the
// request, so no crafted path can reach an upstream path other than the one its route names.
#pragma once

#include <ostream>  // before Beast: boost/core/detail/string_view.hpp needs it complete

#include <boost/beast/http/verb.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/namespace_name.h"

namespace layer::tpuf {

using Verb = boost::beast::http::verb;

enum class RouteId : uint8_t {
  kListNamespaces,   // GET /v1/namespaces
  kWrite,            // POST /v2/namespaces/{ns}
  kDeleteNamespace,  // DELETE /v2/namespaces/{ns}
  kQuery,            // POST /v2/namespaces/{ns}/query
  kExplainQuery,     // POST /v2/namespaces/{ns}/explain_query
  kMetadataV2,       // GET /v2/namespaces/{ns}/metadata
  kMetadataV1,       // GET /v1/namespaces/{ns}/metadata
  kPatchMetadata,    // PATCH /v1/namespaces/{ns}/metadata
  kGetSchema,        // GET /v1/namespaces/{ns}/schema
  kUpdateSchema,     // POST /v1/namespaces/{ns}/schema
  kHintCacheWarm,    // GET /v1/namespaces/{ns}/hint_cache_warm
  kRecall,           // POST /v1/namespaces/{ns}/_debug/recall
  kQueryV1,          // POST /v1/namespaces/{ns}/query (forwarded to the v2 path)
  kLegacyNamespace,  // GET|HEAD|DELETE|POST /v1/namespaces/{ns}
  kOperation,        // GET /v{1,2}/namespaces/{ns}/operations/{id} (async poll)
};

// A path split at '/' into at most kMaxSegments raw segments ("/a/b" -> {"a","b"}).
struct PathSegments {
  static constexpr size_t kMaxSegments = 6;
  std::array<std::string_view, kMaxSegments> s;
  int n = 0;
  // False when the path does not start with '/' or has more segments. Empty segments are kept
  // (and never match a literal).
  bool Split(std::string_view path);
};

// A namespace path segment, percent-decoded and validated.
struct NamespaceSegment {
  std::string ns;  // the valid name; "" when ns_error is set
  NamespaceNameError ns_error = NamespaceNameError::kNone;
  std::string raw_ns;  // decoded but unvalidated, for error texts
};
NamespaceSegment DecodeNamespaceSegment(std::string_view raw);

struct Route {
  RouteId id;
  std::string_view family;    // metrics and fault-rule label: "write", "query", ...
  bool writes = false;        // changes data
  bool idempotent = false;    // safe to retry
  NamespaceSegment ns;        // ("" for routes without one)
  std::string upstream_path;  // path (no query) to send upstream; empty on a namespace error
};

// Returns nullopt for a method/path combination Turbopuffer does not serve.
std::optional<Route> MatchRoute(Verb method, std::string_view path);
// The same for a path already split.
std::optional<Route> MatchRoute(Verb method, const PathSegments& path);

}  // namespace layer::tpuf
