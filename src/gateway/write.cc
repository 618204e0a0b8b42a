#include "gateway/write.h"
#include "common/clock.h"

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "gateway/fetch.h"
#include "gateway/passthrough.h"
#include "gateway/write_plan.h"
#include "http/errors.h"
#include "common/json_text.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

// Applies a successful write's effects to the cache. Every id whose effect could not be written
// is held as a pending invalidation.
class Mirror {
 public:
  Mirror(CacheContext& cache, const std::string& ns, uint64_t stamp)
      : cache_(cache), ns_(ns), stamp_(stamp) {}

  http::Task<void> Invalidate(const std::vector<cache::DocId>& ids) {
    for (const auto& id : ids) {
      if (failed_) {
        Fail(id);
        continue;
      }
      Status st = co_await Guard().Tombstone(ns_, id, stamp_);
      if (!st.ok()) Fail(id);
    }
  }

  http::Task<void> Upserts(std::vector<RowEffect>& rows) {
    if (rows.empty()) co_return;
    std::vector<std::pair<cache::DocId, cache::CachedDoc>> docs;
    for (auto& r : rows) {
      cache::CachedDoc doc;
      doc.attributes_json = r.attributes_json;
      doc.upserted_at = stamp_;
      docs.emplace_back(r.id, std::move(doc));
    }
    bool ok = false;
    if (!failed_) {
      auto res = co_await Guard().PutIfNewerBatch(ns_, std::move(docs));
      ok = res.ok();
    }
    if (!ok) {
      for (const auto& r : rows) Fail(r.id);
      co_return;
    }
    for (auto& r : rows) {
      if (!r.vector_f32 || failed_) continue;
      // Vectors are an optional accelerator; a failure here costs nothing but a miss later.
      (void)co_await Guard().PutVector(ns_, r.id, std::move(*r.vector_f32));
    }
  }

  // Merges each patch into a cached full row; an id with no cached full row is invalidated.
  http::Task<void> Patches(std::vector<RowEffect>& rows) {
    if (rows.empty()) co_return;
    std::vector<cache::DocId> ids;
    for (const auto& r : rows) ids.push_back(r.id);
    if (failed_) {
      for (const auto& id : ids) Fail(id);
      co_return;
    }
    auto got = co_await Guard().MultiGet(ns_, ids);
    if (!got.ok()) {
      for (const auto& id : ids) Fail(id);
      co_return;
    }
    std::vector<std::pair<cache::DocId, cache::CachedDoc>> merged;
    std::vector<cache::DocId> absent;
    for (size_t i = 0; i < rows.size(); ++i) {
      auto& rec = (*got)[i];
      boost::system::error_code ec;
      json::value base = rec && !rec->tombstone ? json::parse(rec->attributes_json, ec) : json::value();
      json::value patch = json::parse(rows[i].attributes_json, ec);
      if (!base.is_object() || !patch.is_object()) {
        absent.push_back(rows[i].id);
        continue;
      }
      for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null()) {
          base.as_object().erase(k);
        } else {
          base.as_object()[k] = v;
        }
      }
      cache::CachedDoc doc;
      doc.attributes_json = SerializeJson(base);
      doc.upserted_at = stamp_;
      merged.emplace_back(rows[i].id, std::move(doc));
    }
    if (!merged.empty()) {
      auto res = co_await Guard().PutIfNewerBatch(ns_, merged);
      if (!res.ok()) {
        for (const auto& [id, doc] : merged) Fail(id);
      }
    }
    co_await Invalidate(absent);
  }

  bool failed() const { return failed_; }

 private:
  cache::CacheGuard& Guard() { return *cache_.guard; }
  void Fail(const cache::DocId& id) {
    if (!failed_) cache_.metrics.mirrors_skipped.Inc();
    failed_ = true;  // once the cache failed, the rest goes straight to the pending set
    cache_.pending.Add(ns_, id, stamp_);
    cache_.metrics.pending.Set(static_cast<double>(cache_.pending.size()));
  }

  CacheContext& cache_;
  const std::string& ns_;
  uint64_t stamp_;
  bool failed_ = false;
};

// A u64 id, or a string that is not a UUID, tells the namespace's id type unambiguously.
void LearnIdType(CacheContext& cache, const std::string& ns, const WritePlan& plan) {
  if (cache.id_types.Known(ns)) return;
  const cache::DocId* first = !plan.upserts.empty()  ? &plan.upserts.front().id
                              : !plan.patches.empty() ? &plan.patches.front().id
                              : !plan.deletes.empty() ? &plan.deletes.front()
                                                      : nullptr;
  if (first) cache.id_types.Learn(ns, first->type);
}

}  // namespace

http::Task<http::Response> Write(RequestContext& ctx, http::Upstream& upstream,
                                 CacheContext& cache, const std::string& public_url) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& ns = ctx.route.ns;
  auto decoded = DecodedBody(ctx, ctx.ex.body().size() * 64 + (64u << 20));
  if (!decoded) co_return co_await Passthrough(ctx, upstream, public_url);

  const uint64_t stamp = WallClockMs();
  auto planned = PlanWrite(*decoded, stamp, cache.id_types.Known(ns));
  if (!planned.ok()) {
    co_return http::MakeError(http::Code::unprocessable_entity, "validation_error",
                              planned.status().message());
  }
  WritePlan plan = std::move(*planned);
  if (plan.upstream_decides) {
    http::Response res = co_await Passthrough(ctx, upstream, public_url);
    if (res.result_int() / 100 == 2 && cache.guard) {
      // Applied, but the gateway could not tell which ids it touched.
      Status st = co_await cache.guard->BumpEpoch(ns);
      if (!st.ok()) cache.pending.AddNamespace(ns);
    }
    co_return res;
  }
  if (!plan.row_write) co_return co_await Passthrough(ctx, upstream, public_url);

  auto sent = co_await Forward(ctx, upstream, std::move(plan.upstream_body), true);
  if (!sent.ok()) co_return UpstreamError(sent.status());
  http::Response& ures = *sent;
  const bool applied = ures.result_int() / 100 == 2;

  if (applied && cache.guard) {
    if (plan.has_untyped_ids || (plan.by_affected_ids && !cache.id_types.Known(ns))) {
      // Some ids could not be keyed without knowing the namespace's id type: learn it now.
      auto type = co_await ResolveIdType(ctx, upstream, cache);
      if (type.ok() && plan.has_untyped_ids) {
        auto again = PlanWrite(*decoded, stamp, *type);
        if (again.ok()) plan = std::move(*again);
      }
    }
    LearnIdType(cache, ns, plan);
    Mirror mirror(cache, ns, stamp);
    if (plan.by_affected_ids) {
      AffectedIds affected = ParseAffectedIds(ures.body(), cache.id_types.Known(ns));
      co_await mirror.Invalidate(affected.deleted);
      co_await mirror.Invalidate(affected.upserted);
      co_await mirror.Invalidate(affected.patched);
      if (affected.has_untyped_ids) {
        // Ids the gateway cannot key: the namespace cannot be trusted in the cache any more.
        cache.pending.AddNamespace(ns);
      }
    } else {
      co_await mirror.Invalidate(plan.deletes);
      co_await mirror.Upserts(plan.upserts);
      co_await mirror.Patches(plan.patches);
    }
    if (mirror.failed()) {
      spdlog::warn("cache mirroring of a write to '{}' failed; affected ids held as pending "
                   "invalidations (request_id={})",
                   ns, ctx.ex.info.request_id);
    }
  }

  if (applied && cache.watcher) cache.watcher->Register(ns, /*due_now=*/true);
  if (applied && plan.by_affected_ids && !plan.client_asked_affected_ids) {
    if (auto stripped = StripAffectedIds(ures.body())) ures.body() = std::move(*stripped);
  }
  co_return RelayResponse(ctx, ures, upstream.base(), public_url);
}

http::Task<http::Response> DeleteNamespace(RequestContext& ctx, http::Upstream& upstream,
                                           CacheContext& cache, const std::string& public_url) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  auto sent = co_await Forward(ctx, upstream, std::nullopt, false);
  if (!sent.ok()) co_return UpstreamError(sent.status());
  const unsigned status = sent->result_int();
  if (status / 100 == 2 || status == 404) {
    const std::string& ns = ctx.route.ns;
    cache.id_types.Forget(ns);
    if (cache.watcher) cache.watcher->Forget(ns);
    if (cache.guard) {
      Status st = co_await cache.guard->BumpEpoch(ns);
      if (!st.ok()) {
        spdlog::warn("cache epoch bump for deleted namespace '{}' failed ({}); held as pending",
                     ns, st.ToString());
        cache.pending.AddNamespace(ns);
        cache.metrics.pending.Set(static_cast<double>(cache.pending.size()));
      }
    }
  }
  co_return RelayResponse(ctx, *sent, upstream.base(), public_url);
}

}  // namespace layer::gateway
