#include "gateway/write.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <iterator>

#include "gateway/fetch.h"
#include "gateway/passthrough.h"
#include "gateway/snapshots.h"
#include "gateway/write_plan.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

// Whether an answer leaves it unknown if the upstream applied the write: a 5xx (the gateway's own
// 502 for a lost answer included) may follow a write that took effect (docs/design.md §4.2.5).
bool MayHaveApplied(unsigned status) { return status / 100 == 2 || status >= 500; }

// Whether a transport failure may have come after the upstream received the write (upstream.h).
bool MayHaveBeenSent(const Status& st) { return st.code() != StatusCode::kUnavailable; }

coherence::WriteOutcome NamespaceInvalidation(uint64_t stamp) {
  coherence::WriteOutcome outcome;
  outcome.kind = coherence::WriteOutcome::Kind::kInvalidateNamespace;
  outcome.stamp = stamp;
  return outcome;
}

// Every id a planned write names.
std::vector<tpuf::DocId> NamedIds(const WritePlan& plan) {
  std::vector<tpuf::DocId> ids = plan.deletes;
  for (const auto* rows : {&plan.upserts, &plan.patches}) {
    for (const coherence::RowEffect& r : *rows) ids.push_back(r.id);
  }
  return ids;
}

// What to invalidate for a planned write whose outcome is unknown: every id it names, or its
// namespace when it names rows by filter or condition or names ids the cache cannot key.
coherence::WriteOutcome UnknownOutcome(const WritePlan& plan) {
  if (plan.by_affected_ids || plan.has_untyped_ids) return NamespaceInvalidation(plan.stamp);
  coherence::WriteOutcome outcome;
  outcome.kind = coherence::WriteOutcome::Kind::kInvalidateIds;
  outcome.stamp = plan.stamp;
  outcome.deletes = NamedIds(plan);
  outcome.outcome_known = false;
  return outcome;
}

// Forwards a write the gateway cannot follow (a body it cannot decode, or a shape it cannot plan)
// as it is; when it may have been applied, nothing of the namespace stays cached.
Task<http::Response> ForwardOpaqueWrite(RequestContext& ctx, http::Upstream& upstream,
                                        coherence::CacheCoherence& cache,
                                        const std::string& public_url) {
  // It may change any row of the namespace (docs/design.md §4.2.6, §4.9).
  auto ticket = cache.BeginWrite(ctx.partition, {}, /*whole_namespace=*/true);
  (void)co_await cache.ShareWrite(*ticket, cache.NewStamp());
  http::Response res = co_await Passthrough(ctx, upstream, public_url);
  if (MayHaveApplied(res.result_int())) {
    (void)co_await cache.ApplyWrite(ctx.partition, NamespaceInvalidation(cache.NewStamp()));
  }
  if (res.result_int() >= 500) {
    // Its outcome is unknown: the upstream may still apply it (docs/design.md §4.2.5).
    boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                          cache.HoldUnknownWrite(std::move(ticket)), boost::asio::detached);
  } else {
    co_await cache.EndSharedWrite(*ticket);  // before the answer (§4.9)
  }
  co_return res;
}

}  // namespace

Task<http::Response> Write(RequestContext& ctx, http::Upstream& upstream,
                           coherence::CacheCoherence& cache, watermark::ConsistencyWatcher* watcher,
                           const std::string& public_url) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& ns = ctx.partition;  // the cache's name of the namespace (§9.7)
  auto decoded = DecodedBody(ctx, ctx.ex.body().size() * 64 + (64u << 20));
  if (!decoded) co_return co_await ForwardOpaqueWrite(ctx, upstream, cache, public_url);

  uint64_t stamp = cache.NewStamp();
  auto planned =
      PlanWrite(*decoded, stamp, cache.KnownIdType(ns), cache.KnownAttributeTypes(ns).get());
  if (!planned.ok()) {
    co_return http::MakeError(http::Code::unprocessable_entity, "validation_error",
                              planned.status().message());
  }
  WritePlan plan = std::move(*planned);
  if (plan.upstream_decides) co_return co_await ForwardOpaqueWrite(ctx, upstream, cache, public_url);
  if (!plan.row_write) co_return co_await Passthrough(ctx, upstream, public_url);

  // Registered before it is sent, so that a write to the same ids overlapping this one is known
  // when this one is applied, and fetches of its ids do not serve the cache meanwhile
  // (docs/design.md §4.2.6). A by-filter or conditional write may change any row.
  auto ticket = plan.by_affected_ids ? cache.BeginWrite(ns, {}, /*whole_namespace=*/true)
                                     : cache.BeginWrite(ns, NamedIds(plan));
  // Replicas sharing the cache see it too; stamps grow in the order writes begin across them
  // (docs/design.md §4.9), so a write begun after another through any replica wins over it.
  if (const uint64_t shared = co_await cache.ShareWrite(*ticket, stamp); shared != stamp) {
    auto again =
        PlanWrite(*decoded, shared, cache.KnownIdType(ns), cache.KnownAttributeTypes(ns).get());
    if (!again.ok()) {  // it planned with the first stamp; a stamp changes no validation
      co_return http::MakeError(http::Code::unprocessable_entity, "validation_error",
                                again.status().message());
    }
    stamp = shared;
    plan = std::move(*again);
  }
  auto sent = co_await Forward(ctx, upstream, std::move(plan.upstream_body), true);
  if (sent.ok() ? sent->result_int() >= 500 : MayHaveBeenSent(sent.status())) {
    // The answer was lost or is a 5xx: the write may have been applied. No version from before it
    // may be served.
    if (!co_await cache.ApplyWrite(ns, UnknownOutcome(plan), ticket.get())) {
      spdlog::warn("invalidating the ids of a write to '{}' with an unknown outcome failed; held "
                   "as pending invalidations (request_id={})",
                   ns, ctx.ex.info.request_id);
    }
    // The upstream may still apply it (a request queued there after the gateway gave up on it):
    // it stays in flight a while longer (docs/design.md §4.2.5).
    boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                          cache.HoldUnknownWrite(std::move(ticket)), boost::asio::detached);
    if (!sent.ok()) co_return UpstreamError(sent.status());
    co_return RelayResponse(ctx, *sent, upstream.base(), public_url);
  }
  if (!sent.ok()) co_return UpstreamError(sent.status());  // certainly not sent: nothing changed
  http::Response& ures = *sent;
  const bool applied = ures.result_int() / 100 == 2;

  if (applied && cache.guard()) {
    if (plan.has_untyped_ids || plan.has_untyped_attributes ||
        (plan.by_affected_ids && !cache.KnownIdType(ns))) {
      // Some ids could not be keyed, or values put in the form the upstream returns them in,
      // without the namespace's schema: learn it now (docs/design.md §4.4.1, §4.2.8).
      auto type = co_await ReadSchema(ctx, upstream, cache);
      if (type.ok() && (plan.has_untyped_ids || plan.has_untyped_attributes)) {
        auto again = PlanWrite(*decoded, stamp, *type, cache.KnownAttributeTypes(ns).get());
        if (again.ok()) plan = std::move(*again);
      }
    }
    coherence::WriteOutcome outcome;
    outcome.stamp = stamp;
    if (plan.by_affected_ids) {
      AffectedIds affected = ParseAffectedIds(ures.body(), cache.KnownIdType(ns));
      outcome.kind = coherence::WriteOutcome::Kind::kInvalidateIds;
      outcome.deletes = std::move(affected.deleted);
      for (auto* ids : {&affected.upserted, &affected.patched}) {
        outcome.deletes.insert(outcome.deletes.end(), std::make_move_iterator(ids->begin()),
                               std::make_move_iterator(ids->end()));
      }
      outcome.has_untyped_ids = affected.has_untyped_ids;
    } else {
      outcome.upserts = std::move(plan.upserts);
      outcome.patches = std::move(plan.patches);
      outcome.deletes = std::move(plan.deletes);
    }
    if (!co_await cache.ApplyWrite(ns, std::move(outcome), ticket.get())) {
      spdlog::warn("cache mirroring of a write to '{}' failed; affected ids held as pending "
                   "invalidations (request_id={})",
                   ns, ctx.ex.info.request_id);
    }
  }

  co_await cache.EndSharedWrite(*ticket);  // its effects are in the cache: before the answer (§4.9)
  if (applied) ctx.RememberCaller();  // the watcher polls with it
  if (applied && watcher) watcher->Register(ns, /*due_now=*/true);
  if (applied && plan.by_affected_ids && !plan.client_asked_affected_ids) {
    if (auto stripped = StripAffectedIds(ures.body())) ures.body() = std::move(*stripped);
  }
  co_return RelayResponse(ctx, ures, upstream.base(), public_url);
}

Task<http::Response> LegacyWrite(RequestContext& ctx, http::Upstream& upstream,
                                 coherence::CacheCoherence& cache, const std::string& public_url) {
  co_return co_await ForwardOpaqueWrite(ctx, upstream, cache, public_url);
}

Task<http::Response> DeleteNamespace(RequestContext& ctx, http::Upstream& upstream,
                                     coherence::CacheCoherence& cache,
                                     watermark::ConsistencyWatcher* watcher, WarmServices* warm,
                                     const std::string& public_url) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& ns = ctx.partition;
  auto ticket = cache.BeginWrite(ns, {}, /*whole_namespace=*/true);  // docs/design.md §4.2.6
  (void)co_await cache.ShareWrite(*ticket, cache.NewStamp());           // §4.9
  auto sent = co_await Forward(ctx, upstream, std::nullopt, false);
  const bool deleted = sent.ok() ? MayHaveApplied(sent->result_int()) || sent->result_int() == 404
                                 : MayHaveBeenSent(sent.status());
  if (deleted) {
    // Every tenant's partition of the namespace: another key may be of the same organisation.
    std::vector<std::string> partitions = cache.SiblingPartitions(ns);
    partitions.push_back(ns);
    for (const std::string& partition : partitions) {
      if (warm) co_await CancelRunningJobs(*warm, partition);
      if (warm) co_await PurgeSnapshots(*warm, partition);
      if (watcher) watcher->Forget(partition);
    }
    co_await cache.NamespaceDeleted(ns);
  }
  co_await cache.EndSharedWrite(*ticket);  // before the answer (§4.9)
  if (!sent.ok()) co_return UpstreamError(sent.status());
  co_return RelayResponse(ctx, *sent, upstream.base(), public_url);
}

}  // namespace layer::gateway
