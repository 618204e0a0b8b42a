#include "gateway/snapshots.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <charconv>

#include "coherence/coherence.h"
#include "common/json_text.h"
#include "common/tenant.h"
#include "gateway/passthrough.h"
#include "http/errors.h"
#include "jobs/cache_filter.h"
#include "snapshots/policy.h"
#include "snapshots/snapshot.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

http::Response Json(http::Code code, std::string body) {
  http::Response res{code, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

http::Response Invalid(std::string message) {
  return http::MakeError(http::Code::unprocessable_entity, "validation_error", std::move(message));
}

http::Response ObjectStoreError(const Status& st) {
  return http::MakeError(http::Code::bad_gateway, "upstream_error",
                         "the object store failed: " + st.message());
}

// A non-negative integer query parameter; nullopt when absent, InvalidArgument when malformed.
Result<std::optional<uint64_t>> UintParam(std::string_view query, std::string_view name) {
  auto v = QueryParam(query, name);
  if (!v) return std::optional<uint64_t>();
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || p != v->data() + v->size()) {
    return Status::InvalidArgument(std::string(name) + " must be a non-negative integer");
  }
  return std::optional<uint64_t>(n);
}

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

Task<http::Response> SnapshotPolicyRoute(RequestContext& ctx, WarmServices& services,
                                         watermark::ConsistencyWatcher* watcher) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  jobs::SnapshotWriter& writer = services.snapshots;
  const std::string key = snapshots::PolicyKey(ctx.partition);
  if (ctx.ex.request().method() == http::Verb::get) {
    auto stored = co_await writer.Blocking([&] { return writer.objects().Get(key); });
    if (!stored.ok()) {
      if (stored.status().IsNotFound()) {
        co_return http::MakeError(http::Code::not_found, "not_found",
                                  "no snapshot policy is stored for namespace '" +
                                      ctx.route.ns + "'");
      }
      co_return ObjectStoreError(stored.status());
    }
    auto policy = snapshots::ParseSnapshotPolicy(*stored);
    if (!policy.ok()) co_return ObjectStoreError(policy.status());
    co_return Json(http::Code::ok, snapshots::SerializeSnapshotPolicy(*policy));
  }
  auto decoded = DecodedBody(ctx, 1 << 20);
  if (!decoded) co_return Invalid("the snapshot policy must be a JSON object");
  auto policy = snapshots::ParseSnapshotPolicy(*decoded);
  if (!policy.ok()) co_return Invalid(policy.status().message());
  std::string normalised = snapshots::SerializeSnapshotPolicy(*policy);
  Status put = co_await writer.Blocking([&] { return writer.objects().Put(key, normalised); });
  if (!put.ok()) co_return ObjectStoreError(put);
  writer.SetPolicy(ctx.partition, std::move(*policy));
  // Snapshots follow the watermark: the watcher polls the namespace from now on, with this
  // caller's key when keys are tenants.
  ctx.RememberCaller();
  if (watcher) watcher->Register(ctx.partition, /*due_now=*/true);
  co_return Json(http::Code::ok, std::move(normalised));
}

Task<http::Response> SnapshotHistory(RequestContext& ctx, WarmServices& services) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  auto limit = UintParam(ctx.query, "limit");
  auto before = UintParam(ctx.query, "before");
  if (!limit.ok()) co_return Invalid(limit.status().message());
  if (!before.ok()) co_return Invalid(before.status().message());
  const uint64_t max = limit->value_or(100);
  if (max < 1 || max > 1000) co_return Invalid("limit must be between 1 and 1000");
  jobs::SnapshotWriter& writer = services.snapshots;
  auto keys = co_await writer.Blocking(
      [&] { return snapshots::ListSnapshotKeys(writer.objects(), ctx.partition); });
  if (!keys.ok()) co_return ObjectStoreError(keys.status());
  std::string body = "[";
  uint64_t n = 0;
  for (auto it = keys->rbegin(); it != keys->rend() && n < max; ++it) {
    auto info = snapshots::ParseSnapshotKey(*it);
    if (!info || (*before && info->watermark_ms >= **before)) continue;
    if (n++ > 0) body += ',';
    body += "{\"watermark_ms\":" + std::to_string(info->watermark_ms) + ",\"sha\":";
    AppendJsonString(info->sha7, &body);
    body += '}';
  }
  body += ']';
  co_return Json(http::Code::ok, std::move(body));
}

Task<http::Response> SnapshotBodyRoute(RequestContext& ctx, WarmServices& services) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& sha = ctx.route.param;
  if (sha.size() < 7 || sha.size() > 64 || !IsHex(sha)) {
    co_return Invalid("the snapshot sha must be 7 to 64 lowercase hex digits");
  }
  auto not_found = [&] {
    return http::MakeError(http::Code::not_found, "not_found",
                           "no snapshot with sha '" + sha + "' in namespace '" + ctx.route.ns +
                               "'");
  };
  jobs::SnapshotWriter& writer = services.snapshots;
  auto found = co_await writer.Blocking([&]() -> Result<std::optional<std::string>> {
    auto keys = snapshots::ListSnapshotKeys(writer.objects(), ctx.partition);
    if (!keys.ok()) return keys.status();
    for (auto it = keys->rbegin(); it != keys->rend(); ++it) {  // newest first
      auto info = snapshots::ParseSnapshotKey(*it);
      if (!info || sha.compare(0, 7, info->sha7) != 0) continue;
      auto bytes = writer.objects().Get(*it);
      if (!bytes.ok()) {
        if (bytes.status().IsNotFound()) continue;  // pruned meanwhile
        return bytes.status();
      }
      if (sha.size() > 7) {
        snapshots::ParseOptions options;
        options.verify_sha = false;
        auto body = snapshots::ParseSnapshotBody(*bytes, options);
        if (!body.ok() || body->sha.compare(0, sha.size(), sha) != 0) continue;
      }
      return std::optional<std::string>(std::move(*bytes));
    }
    // On-demand bodies (their own prefix, never in the history) are served by sha as well.
    const std::string prefix = snapshots::OnDemandSnapshotPrefix(ctx.partition);
    auto on_demand = writer.objects().List(prefix);
    if (!on_demand.ok()) return on_demand.status();
    for (auto it = on_demand->rbegin(); it != on_demand->rend(); ++it) {
      std::string_view file = std::string_view(*it).substr(prefix.size());
      if (file.size() != 13 + 1 + 7 + 5 || file.compare(14, 7, sha, 0, 7) != 0) continue;
      auto bytes = writer.objects().Get(*it);
      if (!bytes.ok()) {
        if (bytes.status().IsNotFound()) continue;
        return bytes.status();
      }
      if (sha.size() > 7) {
        snapshots::ParseOptions options;
        options.verify_sha = false;
        auto body = snapshots::ParseSnapshotBody(*bytes, options);
        if (!body.ok() || body->sha.compare(0, sha.size(), sha) != 0) continue;
      }
      return std::optional<std::string>(std::move(*bytes));
    }
    return std::optional<std::string>();
  });
  if (!found.ok()) co_return ObjectStoreError(found.status());
  if (!*found) co_return not_found();
  co_return Json(http::Code::ok, std::move(**found));
}

namespace {

http::Response SnapshotJobResponse(http::Code code, const jobs::Job& job) {
  return Json(code, jobs::SnapshotJobToJson(job));
}

http::Response SnapshotJobNotFound(const std::string& id) {
  return http::MakeError(http::Code::not_found, "not_found",
                         "Snapshot job '" + id + "' not found");
}

}  // namespace

Task<http::Response> StartSnapshotJob(RequestContext& ctx, WarmServices& services) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  if (!services.snapshot_jobs) {
    co_return http::MakeError(http::Code::not_found, "not_found",
                              "snapshot jobs are not enabled");
  }
  jobs::SnapshotJobRunner& runner = *services.snapshot_jobs;
  auto decoded = DecodedBody(ctx, 1 << 20);
  if (!decoded) co_return Invalid("the request body must be a JSON object");
  auto params = jobs::ParseSnapshotJobRequest(*decoded);
  if (!params.ok()) co_return Invalid(params.status().message());
  if (params->source == jobs::SnapshotSource::kCache) {
    // Refused before a job exists: a filter no evaluator takes (its shape; types are checked
    // against the schema when the job runs), and a cache that does not hold every row of the
    // namespace (docs/design.md §7.8).
    if (params->filters) {
      auto parsed = jobs::CacheRowFilter::Parse(*params->filters, "{}");
      if (auto* refused = std::get_if<jobs::FilterRefusal>(&parsed)) {
        const bool unprocessable = refused->http_status == 422;
        co_return http::MakeError(
            unprocessable ? http::Code::unprocessable_entity : http::Code::bad_request,
            unprocessable ? "validation_error" : "bad_request", "filters: " + refused->message);
      }
    }
    auto whole = co_await services.snapshots.cache().WholeNamespace(ctx.partition);
    if (!whole.ok()) {
      co_return http::MakeError(
          http::Code::service_unavailable, "cache_cold",
          "cache is cold for namespace '" + ctx.route.ns + "': " + whole.status().message(),
          json::object{{"cache_state", "cold"}});
    }
  }
  // The job reads upstream with this caller's key when keys are tenants (docs/design.md §9.7).
  ctx.RememberCaller();
  jobs::CreateJobRequest req;
  req.ns = ctx.partition;
  req.kind = jobs::JobKind::kSnapshot;
  req.params = jobs::SnapshotJobParamsToJson(*params);
  req.owner = runner.options().owner;
  auto created = co_await runner.Blocking([&] { return services.store.CreateJob(req); });
  if (!created.ok()) co_return JobStoreError(created.status());
  if (!created->created) {
    // One snapshot job of a namespace runs at a time: the same request joins it, another is
    // refused rather than answered with a job that counts something else.
    auto running = jobs::SnapshotJobParamsFromJson(created->job.params);
    if (!running.ok() || !running->SameRequest(*params)) {
      co_return http::MakeError(
          http::Code::conflict, "conflict",
          "snapshot job '" + created->job.id + "' of namespace '" + ctx.route.ns +
              "' is running with another request; wait for it or cancel it");
    }
  }
  // A running job of ours may wait for a credential: the caller's, remembered now, lets it go on.
  if (created->created || created->job.owner == runner.options().owner) {
    runner.Start(created->job);
  }
  co_return SnapshotJobResponse(http::Code::accepted, created->job);
}

Task<http::Response> ListSnapshotJobs(RequestContext& ctx, WarmServices& services) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  if (!services.snapshot_jobs) co_return Json(http::Code::ok, "{\"snapshot_jobs\":[]}");
  auto listed = co_await services.snapshot_jobs->Blocking(
      [&] { return services.store.ListJobs(ctx.partition, jobs::JobKind::kSnapshot); });
  if (!listed.ok()) co_return JobStoreError(listed.status());
  co_return Json(http::Code::ok, jobs::SnapshotJobListToJson(*listed));
}

Task<http::Response> SnapshotJobById(RequestContext& ctx, WarmServices& services) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& id = ctx.route.param;
  if (!services.snapshot_jobs) co_return SnapshotJobNotFound(id);
  jobs::SnapshotJobRunner& runner = *services.snapshot_jobs;
  auto job = co_await runner.Blocking([&] { return services.store.GetJob(id); });
  if (!job.ok()) {
    if (job.status().IsNotFound()) co_return SnapshotJobNotFound(id);
    co_return JobStoreError(job.status());
  }
  if (job->ns != ctx.partition || job->kind != jobs::JobKind::kSnapshot) {
    co_return SnapshotJobNotFound(id);
  }
  if (ctx.ex.request().method() != http::Verb::delete_) {
    co_return SnapshotJobResponse(http::Code::ok, *job);
  }
  auto cancelled = co_await runner.Blocking([&] { return services.store.CancelJob(id); });
  if (!cancelled.ok()) co_return JobStoreError(cancelled.status());
  runner.RequestStop(id);
  co_return SnapshotJobResponse(http::Code::ok, *cancelled);
}

Task<void> PurgeSnapshots(WarmServices& services, const std::string& partition) {
  jobs::SnapshotWriter& writer = services.snapshots;
  Status st = co_await writer.Blocking([&] { return writer.Purge(partition); });
  if (!st.ok()) {
    spdlog::warn("purging the snapshots of deleted namespace '{}' failed: {}",
                 PartitionNamespace(partition), st.ToString());
  }
}

}  // namespace layer::gateway
