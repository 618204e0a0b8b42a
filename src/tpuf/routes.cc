#include "tpuf/routes.h"

#include "common/url.h"

namespace layer::tpuf {
namespace {

// Only ids made of URL-safe characters are forwarded in operation paths.
bool SafeOpaqueId(std::string_view id) {
  if (id.empty() || id.size() > 256 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '~';
    if (!ok) return false;
  }
  return true;
}

Route Make(RouteId id, std::string_view family, bool writes, bool idempotent) {
  Route r{id, family};
  r.writes = writes;
  r.idempotent = idempotent;
  return r;
}

}  // namespace

bool PathSegments::Split(std::string_view path) {
  n = 0;
  if (path.empty() || path[0] != '/') return false;
  path.remove_prefix(1);
  for (;;) {
    if (n == static_cast<int>(kMaxSegments)) return false;
    size_t slash = path.find('/');
    s[n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return true;
}

NamespaceSegment DecodeNamespaceSegment(std::string_view raw) {
  NamespaceSegment out;
  if (!PercentDecode(raw, &out.raw_ns)) {
    out.ns_error = NamespaceNameError::kInvalidChars;
    return out;
  }
  out.ns_error = CheckNamespaceName(out.raw_ns);
  if (out.ns_error == NamespaceNameError::kNone) out.ns = out.raw_ns;
  return out;
}

std::optional<Route> MatchRoute(Verb method, std::string_view path) {
  PathSegments p;
  if (!p.Split(path)) return std::nullopt;
  return MatchRoute(method, p);
}

std::optional<Route> MatchRoute(Verb method, const PathSegments& p) {
  if (p.n < 2) return std::nullopt;
  const auto& s = p.s;
  const int n = p.n;
  if (s[1] != "namespaces" || (s[0] != "v1" && s[0] != "v2")) return std::nullopt;
  const bool v1 = s[0] == "v1";
  const bool get = method == Verb::get;

  if (n == 2) {
    if (v1 && get) {
      auto r = Make(RouteId::kListNamespaces, "namespaces", false, true);
      r.upstream_path = "/v1/namespaces";
      return r;
    }
    return std::nullopt;
  }

  // The route's kind first; the Route, with its strings, is built once it is known.
  struct Kind {
    RouteId id;
    std::string_view family;
    bool writes;
    bool idempotent;
  };
  std::optional<Kind> k;
  std::string_view op = n >= 4 ? s[3] : std::string_view();
  if (n == 3) {
    if (!v1 && method == Verb::post) {
      k = Kind{RouteId::kWrite, "write", true, false};
    } else if (!v1 && method == Verb::delete_) {
      k = Kind{RouteId::kDeleteNamespace, "delete_namespace", true, false};
    } else if (v1 && (get || method == Verb::head)) {
      k = Kind{RouteId::kLegacyNamespace, "legacy", false, true};
    } else if (v1 && (method == Verb::post || method == Verb::delete_)) {
      k = Kind{RouteId::kLegacyNamespace, "legacy", true, false};
    }
  } else if (n == 4) {
    if (op == "query" && method == Verb::post) {
      k = Kind{v1 ? RouteId::kQueryV1 : RouteId::kQuery, "query", false, true};
    } else if (!v1 && op == "explain_query" && method == Verb::post) {
      k = Kind{RouteId::kExplainQuery, "explain_query", false, true};
    } else if (op == "metadata" && get) {
      k = Kind{v1 ? RouteId::kMetadataV1 : RouteId::kMetadataV2, "metadata", false, true};
    } else if (v1 && op == "metadata" && method == Verb::patch) {
      k = Kind{RouteId::kPatchMetadata, "metadata", true, false};
    } else if (v1 && op == "schema" && get) {
      k = Kind{RouteId::kGetSchema, "schema", false, true};
    } else if (v1 && op == "schema" && method == Verb::post) {
      k = Kind{RouteId::kUpdateSchema, "schema", true, false};
    } else if (v1 && op == "hint_cache_warm" && get) {
      k = Kind{RouteId::kHintCacheWarm, "hint_cache_warm", false, true};
    }
  } else if (n == 5) {
    if (v1 && op == "_debug" && s[4] == "recall" && method == Verb::post) {
      k = Kind{RouteId::kRecall, "recall", false, true};
    } else if (op == "operations" && get && SafeOpaqueId(s[4])) {
      k = Kind{RouteId::kOperation, "operations", false, true};
    }
  }
  if (!k) return std::nullopt;

  std::optional<Route> r(std::in_place, Make(k->id, k->family, k->writes, k->idempotent));
  r->ns = DecodeNamespaceSegment(s[2]);
  if (r->ns.ns_error == NamespaceNameError::kNone) {
    // Built in place: "/v{1,2}/namespaces/" ns and the route's tail.
    const std::string& ns = r->ns.ns;
    std::string_view prefix = v1 ? "/v1/namespaces/" : "/v2/namespaces/";
    std::string_view tail, last;
    switch (r->id) {
      case RouteId::kQueryV1:
        prefix = "/v2/namespaces/";
        tail = "/query";
        break;
      case RouteId::kRecall:
        tail = "/_debug/recall";
        break;
      case RouteId::kOperation:
        tail = "/operations/";
        last = s[4];
        break;
      default:
        if (n != 3) {
          tail = "/";
          last = op;
        }
    }
    std::string& up = r->upstream_path;
    up.reserve(prefix.size() + ns.size() + tail.size() + last.size());
    up.append(prefix).append(ns).append(tail).append(last);
  }
  return r;
}

}  // namespace layer::tpuf
