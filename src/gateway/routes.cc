#include "gateway/routes.h"

#include <array>

namespace layer::gateway {
namespace {

using http::Verb;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits "/a/b/c" into at most N segments; returns the count, or -1 if there are more than N or
// the path does not start with '/'. Empty segments are kept (and never match a literal).
template <size_t N>
int Split(std::string_view path, std::array<std::string_view, N>& segs) {
  if (path.empty() || path[0] != '/') return -1;
  path.remove_prefix(1);
  int n = 0;
  for (;;) {
    if (n == static_cast<int>(N)) return -1;
    size_t slash = path.find('/');
    segs[n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return n;
}

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

RouteMatch Make(RouteId id, std::string_view family, unsigned scope, bool idempotent) {
  RouteMatch m{id, family};
  m.required_scope = scope;
  m.idempotent = idempotent;
  return m;
}

// Fills the namespace fields of `m` from the raw segment; returns false for a bad escape.
void SetNamespace(RouteMatch& m, std::string_view raw) {
  if (!PercentDecode(raw, &m.raw_ns)) {
    m.ns_error = NamespaceNameError::kInvalidChars;
    return;
  }
  m.ns_error = CheckNamespaceName(m.raw_ns);
  if (m.ns_error == NamespaceNameError::kNone) m.ns = m.raw_ns;
}

}  // namespace

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      *out += c;
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = kv.find('=');
    std::string key;
    if (!PercentDecode(kv.substr(0, eq), &key) || key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    std::string value;
    std::string_view raw = kv.substr(eq + 1);
    // A malformed escape is returned undecoded: it fails every value check downstream.
    if (!PercentDecode(raw, &value)) return std::string(raw);
    return value;
  }
  return std::nullopt;
}

std::optional<RouteMatch> MatchRoute(Verb method, std::string_view path) {
  std::array<std::string_view, 6> s;
  int n = Split(path, s);
  if (n < 1) return std::nullopt;
  const bool get = method == Verb::get;

  if (n == 1) {
    if (get && s[0] == "health") return Make(RouteId::kHealth, "health", 0, true);
    if (get && s[0] == "ready") return Make(RouteId::kReady, "ready", 0, true);
    if (get && s[0] == "metrics") return Make(RouteId::kMetrics, "metrics", 0, true);
    return std::nullopt;
  }
  if (s[1] != "namespaces" || (s[0] != "v1" && s[0] != "v2")) return std::nullopt;
  const bool v1 = s[0] == "v1";

  if (n == 2) {
    if (v1 && get) {
      auto m = Make(RouteId::kListNamespaces, "namespaces", kScopeRead, true);
      m.upstream_path = "/v1/namespaces";
      return m;
    }
    return std::nullopt;
  }

  std::optional<RouteMatch> m;
  std::string_view op = n >= 4 ? s[3] : std::string_view();
  if (n == 3) {
    if (!v1 && method == Verb::post) {
      m = Make(RouteId::kWrite, "write", kScopeWrite, false);
    } else if (!v1 && method == Verb::delete_) {
      m = Make(RouteId::kDeleteNamespace, "delete_namespace", kScopeWrite, false);
    } else if (v1 && (get || method == Verb::head)) {
      m = Make(RouteId::kLegacyNamespace, "legacy", kScopeRead, true);
    } else if (v1 && (method == Verb::post || method == Verb::delete_)) {
      m = Make(RouteId::kLegacyNamespace, "legacy", kScopeWrite, false);
    }
  } else if (n == 4) {
    if (op == "query" && method == Verb::post) {
      m = Make(v1 ? RouteId::kQueryV1 : RouteId::kQuery, "query", kScopeRead, true);
    } else if (!v1 && op == "explain_query" && method == Verb::post) {
      m = Make(RouteId::kExplainQuery, "explain_query", kScopeRead, true);
    } else if (op == "metadata" && get) {
      m = Make(v1 ? RouteId::kMetadataV1 : RouteId::kMetadataV2, "metadata", kScopeRead, true);
    } else if (v1 && op == "metadata" && method == Verb::patch) {
      m = Make(RouteId::kPatchMetadata, "metadata", kScopeWrite, false);
    } else if (v1 && op == "schema" && get) {
      m = Make(RouteId::kGetSchema, "schema", kScopeRead, true);
    } else if (v1 && op == "schema" && method == Verb::post) {
      m = Make(RouteId::kUpdateSchema, "schema", kScopeWrite, false);
    } else if (v1 && op == "hint_cache_warm" && get) {
      m = Make(RouteId::kHintCacheWarm, "hint_cache_warm", kScopeRead, true);
    } else if (!v1 && op == "documents" && method == Verb::post) {
      m = Make(RouteId::kFetchDocuments, "fetch", kScopeRead, true);
      m->turbopuffer_route = false;
    } else if (!v1 && op == "warm" && method == Verb::post) {
      m = Make(RouteId::kWarm, "warm", kScopeWrite, false);
      m->turbopuffer_route = false;
    } else if (!v1 && op == "warm-jobs" && get) {
      m = Make(RouteId::kWarmJobs, "warm", kScopeRead, true);
      m->turbopuffer_route = false;
    }
  } else if (n == 5) {
    if (v1 && op == "_debug" && s[4] == "recall" && method == Verb::post) {
      m = Make(RouteId::kRecall, "recall", kScopeRead, true);
    } else if (op == "operations" && get && SafeOpaqueId(s[4])) {
      m = Make(RouteId::kOperation, "operations", kScopeRead, true);
    } else if (!v1 && op == "warm-jobs" && (get || method == Verb::delete_) && !s[4].empty()) {
      m = Make(RouteId::kWarmJob, "warm", get ? kScopeRead : kScopeWrite, get);
      m->turbopuffer_route = false;
      if (!PercentDecode(s[4], &m->param)) return std::nullopt;
    } else if (!v1 && op == "documents" && get && !s[4].empty()) {
      m = Make(RouteId::kFetchDocument, "fetch", kScopeRead, true);
      m->turbopuffer_route = false;
      if (!PercentDecode(s[4], &m->param)) return std::nullopt;
    }
  }
  if (!m) return std::nullopt;

  SetNamespace(*m, s[2]);
  if (m->ns_error == NamespaceNameError::kNone) {
    std::string base = std::string(v1 ? "/v1" : "/v2") + "/namespaces/" + m->ns;
    switch (m->id) {
      case RouteId::kQueryV1:
        m->upstream_path = "/v2/namespaces/" + m->ns + "/query";
        break;
      case RouteId::kRecall:
        m->upstream_path = base + "/_debug/recall";
        break;
      case RouteId::kOperation:
        m->upstream_path = base + "/operations/" + std::string(s[4]);
        break;
      case RouteId::kFetchDocument:
      case RouteId::kFetchDocuments:
      case RouteId::kWarm:
      case RouteId::kWarmJobs:
      case RouteId::kWarmJob:
        break;  // Layer-only: served by the gateway, which builds its own upstream reads
      default:
        m->upstream_path = n == 3 ? base : base + "/" + std::string(op);
    }
  }
  return m;
}

}  // namespace layer::gateway
