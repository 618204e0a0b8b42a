#include "gateway/warm.h"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <charconv>

#include "gateway/passthrough.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

http::Response JobResponse(http::Code code, const jobs::WarmJob& job) {
  http::Response res{code, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() = jobs::WarmJobToJson(job);
  return res;
}

http::Response JobNotFound(const std::string& id) {
  return http::MakeError(http::Code::not_found, "not_found", "Warm job '" + id + "' not found");
}

}  // namespace

http::Response JobStoreError(const Status& st) {
  return http::MakeError(http::Code::service_unavailable, "service_unavailable",
                         "the job store failed: " + st.message());
}

Result<int> ParsePageSize(std::string_view query) {
  auto v = QueryParam(query, "page_size");
  if (!v) return jobs::kDefaultWarmPageSize;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < 1 || n > jobs::kMaxWarmPageSize) {
    return Status::InvalidArgument("page_size must be between 1 and 10000");
  }
  return n;
}

http::Response CacheCold(const std::string& ns) {
  return http::MakeError(http::Code::service_unavailable, "cache_cold",
                         "cache is cold for namespace '" + ns +
                             "'; retry after the cache reconnects",
                         boost::json::object{{"cache_state", "cold"}});
}

Task<http::Response> StartWarm(RequestContext& ctx, coherence::CacheCoherence& cache,
                                     WarmServices& warm) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  auto page_size = ParsePageSize(ctx.query);
  if (!page_size.ok()) {
    co_return http::MakeError(http::Code::unprocessable_entity, "validation_error",
                              page_size.status().message());
  }
  if (!co_await cache.Available()) co_return CacheCold(ctx.route.ns);

  auto job = co_await StartOrJoinWarm(ctx, warm, *page_size);
  if (!job.ok()) co_return JobStoreError(job.status());
  co_return JobResponse(http::Code::accepted, *job);
}

Task<Result<jobs::WarmJob>> StartOrJoinWarm(RequestContext& ctx, WarmServices& warm,
                                            int page_size) {
  jobs::CreateWarmJobRequest req{ctx.partition, page_size, warm.runner.options().owner};
  auto created = co_await warm.runner.Blocking([&] { return warm.store.Create(req); });
  if (!created.ok()) co_return created.status();
  // A job that was running already may be waiting for a credential (a restart lost its tenant's
  // key): the caller's, remembered by now, lets it go on (docs/design.md §9.7). Start() is a
  // no-op for a job executing here already.
  if (created->created || created->job.owner == warm.runner.options().owner) {
    warm.runner.Start(created->job);
  }
  co_return std::move(created->job);
}

Task<http::Response> ListWarmJobs(RequestContext& ctx, WarmServices& warm) {
  auto jobs = co_await warm.runner.Blocking([&] { return warm.store.List(ctx.partition); });
  if (!jobs.ok()) co_return JobStoreError(jobs.status());
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() = jobs::WarmJobListToJson(*jobs);
  co_return res;
}

Task<http::Response> WarmJobById(RequestContext& ctx, WarmServices& warm) {
  const std::string& id = ctx.route.param;
  auto job = co_await warm.runner.Blocking([&] { return warm.store.Get(id); });
  if (!job.ok()) {
    if (job.status().IsNotFound()) co_return JobNotFound(id);
    co_return JobStoreError(job.status());
  }
  if (job->ns != ctx.partition) co_return JobNotFound(id);
  if (ctx.ex.request().method() != http::Verb::delete_) {
    co_return JobResponse(http::Code::ok, *job);
  }
  auto cancelled = co_await warm.runner.Blocking([&] { return warm.store.Cancel(id); });
  if (!cancelled.ok()) co_return JobStoreError(cancelled.status());
  warm.runner.RequestStop(id);
  co_return JobResponse(http::Code::ok, *cancelled);
}

Task<void> CancelRunningJobs(WarmServices& warm, const std::string& ns) {
  auto jobs = co_await warm.runner.Blocking([&] { return warm.store.ListJobs(ns, std::nullopt); });
  if (!jobs.ok()) {
    spdlog::warn("cancelling the jobs of deleted namespace '{}' failed: {}", ns,
                 jobs.status().ToString());
    co_return;
  }
  for (const jobs::Job& job : *jobs) {
    if (job.finished()) continue;
    auto cancelled = co_await warm.runner.Blocking([&] { return warm.store.CancelJob(job.id); });
    if (!cancelled.ok()) {
      spdlog::warn("cancelling job {} of deleted namespace '{}' failed: {}", job.id, ns,
                   cancelled.status().ToString());
    }
    warm.runner.RequestStop(job.id);
    if (warm.snapshot_jobs) warm.snapshot_jobs->RequestStop(job.id);
  }
}

}  // namespace layer::gateway
