#include "gateway/routes.h"

namespace layer::gateway {
namespace {

using http::Verb;

RouteMatch Make(RouteId id, std::string_view family, unsigned scope, bool idempotent) {
  RouteMatch m{id};
  m.family = family;
  m.required_scope = scope;
  m.idempotent = idempotent;
  return m;
}

// Layer-only routes under /v2/namespaces/{ns}/: documents, warm, warm-jobs, snapshot-policy,
// history, snapshots, snapshot-jobs.
std::optional<RouteMatch> MatchLayerRoute(Verb method, const tpuf::PathSegments& p) {
  const auto& s = p.s;
  if (p.n < 4 || s[0] != "v2" || s[1] != "namespaces") return std::nullopt;
  const bool get = method == Verb::get;
  std::string_view op = s[3];
  std::optional<RouteMatch> m;
  if (p.n == 4) {
    if (op == "documents" && method == Verb::post) {
      m = Make(RouteId::kFetchDocuments, "fetch", kScopeRead, true);
    } else if (op == "warm" && method == Verb::post) {
      m = Make(RouteId::kWarm, "warm", kScopeWrite, false);
    } else if (op == "warm-jobs" && get) {
      m = Make(RouteId::kWarmJobs, "warm", kScopeRead, true);
    } else if (op == "snapshot-policy" && (get || method == Verb::put)) {
      m = Make(RouteId::kSnapshotPolicy, "snapshots", get ? kScopeRead : kScopeAdmin, get);
    } else if (op == "history" && get) {
      m = Make(RouteId::kSnapshotHistory, "snapshots", kScopeRead, true);
    } else if (op == "snapshots" && method == Verb::post) {
      m = Make(RouteId::kSnapshotCreate, "snapshots", kScopeWrite, false);
    } else if (op == "snapshot-jobs" && get) {
      m = Make(RouteId::kSnapshotJobs, "snapshots", kScopeRead, true);
    }
  } else if (p.n == 5 && !s[4].empty()) {
    if (op == "warm-jobs" && (get || method == Verb::delete_)) {
      m = Make(RouteId::kWarmJob, "warm", get ? kScopeRead : kScopeWrite, get);
    } else if (op == "documents" && get) {
      m = Make(RouteId::kFetchDocument, "fetch", kScopeRead, true);
    } else if (op == "snapshots" && get) {
      m = Make(RouteId::kSnapshotBody, "snapshots", kScopeRead, true);
    } else if (op == "snapshot-jobs" && (get || method == Verb::delete_)) {
      m = Make(RouteId::kSnapshotJob, "snapshots", get ? kScopeRead : kScopeWrite, get);
    }
    if (m && !PercentDecode(s[4], &m->param)) return std::nullopt;
  }
  if (!m) return std::nullopt;
  m->turbopuffer_route = false;
  auto ns = tpuf::DecodeNamespaceSegment(s[2]);
  m->ns = std::move(ns.ns);
  m->ns_error = ns.ns_error;
  m->raw_ns = std::move(ns.raw_ns);
  return m;
}

}  // namespace

std::optional<RouteMatch> MatchRoute(Verb method, std::string_view path) {
  tpuf::PathSegments p;
  if (!p.Split(path) || p.n < 1) return std::nullopt;
  if (p.n == 1) {
    const bool get = method == Verb::get;
    if (get && p.s[0] == "health") return Make(RouteId::kHealth, "health", 0, true);
    if (get && p.s[0] == "ready") return Make(RouteId::kReady, "ready", 0, true);
    if (get && p.s[0] == "metrics") return Make(RouteId::kMetrics, "metrics", 0, true);
    return std::nullopt;
  }
  if (auto layer = MatchLayerRoute(method, p)) return layer;
  auto r = tpuf::MatchRoute(method, p);
  if (!r) return std::nullopt;
  RouteMatch m =
      Make(RouteId::kTurbopuffer, r->family, r->writes ? kScopeWrite : kScopeRead, r->idempotent);
  m.tpuf = r->id;
  m.ns = std::move(r->ns.ns);
  m.ns_error = r->ns.ns_error;
  m.raw_ns = std::move(r->ns.raw_ns);
  m.upstream_path = std::move(r->upstream_path);
  return m;
}

}  // namespace layer::gateway
