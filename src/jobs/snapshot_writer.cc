#include "jobs/snapshot_writer.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/json_text.h"
#include "common/tenant.h"
#include "jobs/facet_page.h"

namespace layer::jobs {

namespace asio = boost::asio;
namespace json = boost::json;

struct SnapshotWriter::Metrics {
  explicit Metrics(MetricsRegistry& r)
      : registry(r),
        written(r.GetCounter("layer_snapshots_written_total", "Snapshots stored")),
        deduped(r.GetCounter("layer_snapshots_deduped_total",
                             "Snapshots not stored: the newest stored one has the same sha")),
        failures(r.GetCounter("layer_snapshot_failures_total",
                              "Automatic snapshots that failed (upstream or object store)")),
        pruned(r.GetCounter("layer_snapshots_pruned_total", "Snapshots deleted by retention")) {}
  MetricsRegistry& registry;
  Counter& written;
  Counter& deduped;
  Counter& failures;
  Counter& pruned;
};

SnapshotWriter::SnapshotWriter(http::IoPool& pool, http::Upstream& upstream,
                               snapshots::ObjectStore& objects, coherence::CacheCoherence& cache,
                               SnapshotWriterOptions options)
    : pool_(pool),
      upstream_(upstream),
      objects_(objects),
      cache_(cache),
      options_(std::move(options)),
      metrics_(std::make_unique<Metrics>(MetricsOr(options_.metrics))),
      store_thread_(std::make_unique<asio::thread_pool>(1)) {}

SnapshotWriter::~SnapshotWriter() { store_thread_->join(); }

Status SnapshotWriter::LoadPolicies() {
  std::map<std::string, snapshots::SnapshotPolicy, std::less<>> loaded;
  std::vector<std::string> keys;
  for (std::string_view prefix : {snapshots::kPolicyDir, snapshots::kTenantsDir}) {
    auto listed = objects_.List(prefix);
    if (!listed.ok()) return listed.status();
    keys.insert(keys.end(), listed->begin(), listed->end());
  }
  for (const std::string& key : keys) {
    auto partition = snapshots::PolicyPartition(key);
    if (!partition) continue;
    auto bytes = objects_.Get(key);
    if (!bytes.ok()) {
      if (bytes.status().IsNotFound()) continue;  // deleted meanwhile
      return bytes.status();
    }
    auto policy = snapshots::ParseSnapshotPolicy(*bytes);
    if (!policy.ok()) {
      spdlog::warn("snapshot policy {} is invalid and ignored: {}", key,
                   policy.status().message());
      continue;
    }
    loaded.emplace(std::move(*partition), std::move(*policy));
  }
  std::lock_guard lock(mu_);
  policies_ = std::move(loaded);
  return Status::Ok();
}

std::optional<snapshots::SnapshotPolicy> SnapshotWriter::Policy(std::string_view partition) const {
  std::lock_guard lock(mu_);
  auto it = policies_.find(partition);
  if (it == policies_.end()) return std::nullopt;
  return it->second;
}

void SnapshotWriter::SetPolicy(const std::string& partition, snapshots::SnapshotPolicy policy) {
  std::lock_guard lock(mu_);
  policies_[partition] = std::move(policy);
}

void SnapshotWriter::OnWatermark(const std::string& partition, uint64_t watermark_ms) {
  if (watermark_ms == 0) return;
  std::vector<std::string> fields;
  {
    std::lock_guard lock(mu_);
    auto it = policies_.find(partition);
    if (it == policies_.end() || it->second.facet_fields.empty()) return;
    const int64_t now = ClockOr(options_.clock).WallMs();
    auto last = last_written_ms_.find(partition);
    if (last != last_written_ms_.end() && now - last->second < it->second.interval_ms) return;
    if (!writing_.insert(partition).second) return;  // one at a time
    fields = it->second.facet_fields;
  }
  if (options_.credentials && !options_.credentials->ForPartition(partition)) {
    std::lock_guard lock(mu_);
    writing_.erase(partition);
    return;  // no caller of this tenant since a restart
  }
  asio::co_spawn(pool_.Next(), RunAutomatic(partition, watermark_ms, std::move(fields)),
                 asio::detached);
}

Task<void> SnapshotWriter::RunAutomatic(std::string partition, uint64_t watermark_ms,
                                        std::vector<std::string> fields) {
  auto written = co_await Write(partition, watermark_ms, std::move(fields));
  std::lock_guard lock(mu_);
  writing_.erase(partition);
  if (!written.ok()) {
    metrics_->failures.Inc();
    spdlog::warn("snapshot of '{}' at watermark {} failed: {}", PartitionNamespace(partition),
                 watermark_ms, written.status().ToString());
    co_return;
  }
  last_written_ms_[partition] = ClockOr(options_.clock).WallMs();
}

Task<Result<http::Response>> SnapshotWriter::Send(const std::string& partition,
                                                  std::string target, std::string body) {
  Result<http::Response> res = Status::Unavailable("not sent");
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      backoff.expires_after(options_.retry_base * (1 << (attempt - 1)));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    http::Request req{http::Verb::post, target, 11};
    req.set(http::Field::accept, "application/json");
    req.set(http::Field::content_type, "application/json");
    if (options_.credentials) {
      auto authorization = options_.credentials->ForPartition(partition);
      if (authorization && !authorization->empty()) {
        req.set(http::Field::authorization, *authorization);
      }
    }
    req.body() = body;
    res = co_await upstream_.Send(std::move(req), true);
    if (res.ok()) {
      const unsigned status = res->result_int();
      if (status != 429 && status < 500) break;  // only busy answers and 5xx are retried
    }
  }
  co_return res;
}

namespace {

// The page query: rank by id, project `fields`, the filter ANDed with the cursor.
std::string FacetQuery(const std::vector<std::string>& fields,
                       const std::optional<std::string>& filters_json, size_t page_size,
                       const std::optional<std::string>& cursor) {
  std::string q = R"({"rank_by":["id","asc"],"top_k":)";
  q += std::to_string(page_size);
  q += R"(,"include_attributes":[)";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) q += ',';
    AppendJsonString(fields[i], &q);
  }
  q += R"(],"consistency":{"level":"strong"})";
  if (cursor && filters_json) {
    q += R"(,"filters":["And",[["id","Gt",)" + *cursor + "]," + *filters_json + "]]";
  } else if (cursor) {
    q += R"(,"filters":["id","Gt",)" + *cursor + "]";
  } else if (filters_json) {
    q += R"(,"filters":)" + *filters_json;
  }
  q += '}';
  return q;
}

// An upstream answer that is not a page: nullopt for a 2xx, an empty page's OK for a 404.
std::optional<Status> NotAPage(const http::Response& res) {
  if (res.result_int() == 404) return Status::Ok();  // no such namespace: no rows
  if (res.result_int() / 100 == 2) return std::nullopt;
  return Status::IoError("upstream page read failed with status " +
                         std::to_string(res.result_int()) + ": " + res.body().substr(0, 300));
}

}  // namespace

// One page read in flight (the read ahead). Touched only on the reading coroutine's executor.
struct SnapshotWriter::PageFetch {
  explicit PageFetch(const asio::any_io_executor& ex)
      : done(ex, asio::steady_timer::time_point::max()) {}
  std::optional<Result<http::Response>> result;
  asio::steady_timer done;  // cancelled once `result` is set
};

Task<void> SnapshotWriter::FetchInto(std::shared_ptr<PageFetch> fetch, std::string partition,
                                     std::string target, std::string body) {
  fetch->result.emplace(co_await Send(partition, std::move(target), std::move(body)));
  fetch->done.cancel();
}

Task<Result<FacetPage>> SnapshotWriter::ReadFacetPage(std::string partition,
                                                     std::vector<std::string> fields,
                                                     std::optional<std::string> filters_json,
                                                     size_t page_size,
                                                     std::optional<std::string> cursor,
                                                     snapshots::FacetAggregator& agg) {
  const std::string target =
      "/v2/namespaces/" + std::string(PartitionNamespace(partition)) + "/query";
  auto res = co_await Send(partition, target, FacetQuery(fields, filters_json, page_size, cursor));
  if (!res.ok()) co_return res.status();
  FacetPage out;
  if (auto st = NotAPage(*res)) {
    if (!st->ok()) co_return *st;
    co_return out;
  }
  auto counted = CountFacetPage(res->body(), agg, nullptr);
  if (!counted.ok()) co_return Status::IoError("upstream page read: bad body");
  out.rows = counted->returned;
  if (counted->returned < page_size || counted->returned == 0) co_return out;
  if (!counted->last_id_json) co_return Status::IoError("upstream page read: a row without an id");
  out.next_cursor = std::move(counted->last_id_json);
  co_return out;
}

Task<Status> SnapshotWriter::ReadRows(const std::string& partition,
                                      const std::vector<std::string>& fields,
                                      snapshots::FacetAggregator& agg) {
  // Page N+1 is read while page N is counted: a first walk over page N gives its last id, the
  // next cursor, before any row is counted.
  const std::string target =
      "/v2/namespaces/" + std::string(PartitionNamespace(partition)) + "/query";
  const size_t page_size = options_.page_size;
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  auto start = [&](const std::optional<std::string>& cursor) {
    auto fetch = std::make_shared<PageFetch>(ex);
    asio::co_spawn(ex,
                   FetchInto(fetch, partition, target,
                             FacetQuery(fields, std::nullopt, page_size, cursor)),
                   asio::detached);
    return fetch;
  };
  std::shared_ptr<PageFetch> next = start(std::nullopt);
  for (;;) {
    if (!next->result) co_await next->done.async_wait(asio::as_tuple(asio::use_awaitable));
    Result<http::Response> res = std::move(*next->result);
    next.reset();
    if (!res.ok()) co_return res.status();
    if (auto st = NotAPage(*res)) co_return *st;
    bool more = false;
    auto counted = CountFacetPage(res->body(), agg, [&](const FacetPageCount& seen) {
      more = seen.returned >= page_size && seen.last_id_json.has_value();
      if (more) next = start(seen.last_id_json);
    });
    // A read ahead still in flight finishes on its own and is dropped.
    if (!counted.ok()) co_return Status::IoError("upstream page read: bad body");
    if (counted->returned < page_size || counted->returned == 0) co_return Status::Ok();
    if (!more) co_return Status::IoError("upstream page read: a row without an id");
  }
}

Task<Result<SnapshotWrite>> SnapshotWriter::Write(std::string partition, uint64_t watermark_ms,
                                                  std::vector<std::string> fields) {
  const RequestSlices::BackgroundWork busy = RequestSlices::BackgroundIn(options_.request_slices);
  using SteadyClock = std::chrono::steady_clock;
  const SteadyClock::time_point started = SteadyClock::now();
  snapshots::FacetAggregator agg(fields);
  Status read = co_await ReadRows(partition, fields, agg);
  if (!read.ok()) co_return read;
  const SteadyClock::time_point counted = SteadyClock::now();
  snapshots::SnapshotBody body =
      agg.Finish(std::string(PartitionNamespace(partition)), watermark_ms);
  for (const auto& skipped : body.fields_skipped) {
    metrics_->registry
        .GetCounter("layer_snapshot_fields_skipped_total",
                    "Facet fields left out of a snapshot (over the distinct-value cap)",
                    {{"field", skipped.name}, {"reason", skipped.reason}})
        .Inc();
  }
  std::string bytes = snapshots::SerializeSnapshotBody(body);
  std::string mirror;
  auto stored = co_await Blocking(
      [&] { return Store(partition, std::move(body), std::move(bytes), &mirror); });
  if (!stored.ok()) co_return stored.status();
  auto secs = [](SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); };
  spdlog::info("snapshot of '{}' at watermark {}: {} rows, {} fields read and counted in {:.3f} s, "
               "stored in {:.3f} s ({})",
               PartitionNamespace(partition), watermark_ms, stored->body.row_count.value_or(0),
               fields.size(), secs(counted - started), secs(SteadyClock::now() - counted),
               stored->deduped ? "deduped" : "stored");
  // The cache's copy is an accelerator: a failure to write it costs only an object-store read.
  Status mirrored = co_await cache_.RecordLatestSnapshot(partition, std::move(mirror));
  if (!mirrored.ok()) {
    spdlog::info("mirroring the latest snapshot of '{}' into the cache failed: {}",
                 PartitionNamespace(partition), mirrored.ToString());
  }
  co_return stored;
}

Result<SnapshotWrite> SnapshotWriter::Store(const std::string& partition,
                                            snapshots::SnapshotBody body, std::string bytes,
                                            std::string* mirror_bytes) {
  auto keys = snapshots::ListSnapshotKeys(objects_, partition);
  if (!keys.ok()) return keys.status();
  SnapshotWrite out;
  if (!keys->empty()) {
    auto newest = snapshots::ParseSnapshotKey(keys->back());
    if (newest && body.sha.compare(0, 7, newest->sha7) == 0) {
      auto stored = objects_.Get(keys->back());
      if (!stored.ok()) return stored.status();
      metrics_->deduped.Inc();
      out.deduped = true;
      out.key = keys->back();
      out.body = std::move(body);
      *mirror_bytes = std::move(*stored);
      return out;
    }
  }
  auto key = snapshots::SnapshotKey(partition, body.watermark_ms, body.sha);
  if (!key.ok()) return key.status();
  auto put = objects_.PutIfAbsent(*key, bytes);
  if (!put.ok()) return put.status();
  if (*put) metrics_->written.Inc();
  // Taken already: the same watermark and distribution were stored by another writer.
  out.key = std::move(*key);
  out.body = std::move(body);
  *mirror_bytes = std::move(bytes);
  return out;
}

Result<uint64_t> SnapshotWriter::PruneRetention() {
  std::vector<std::pair<std::string, int64_t>> retained;
  {
    std::lock_guard lock(mu_);
    for (const auto& [partition, policy] : policies_) {
      if (policy.retention_ms) retained.emplace_back(partition, *policy.retention_ms);
    }
  }
  const int64_t now = ClockOr(options_.clock).WallMs();
  uint64_t pruned = 0;
  for (const auto& [partition, retention_ms] : retained) {
    auto keys = snapshots::ListSnapshotKeys(objects_, partition);
    if (!keys.ok()) return keys.status();
    // Oldest first; the newest is always kept.
    for (size_t i = 0; i + 1 < keys->size(); ++i) {
      auto info = snapshots::ParseSnapshotKey((*keys)[i]);
      if (!info || static_cast<int64_t>(info->watermark_ms) >= now - retention_ms) break;
      if (Status st = objects_.Delete((*keys)[i]); !st.ok()) return st;
      ++pruned;
      metrics_->pruned.Inc();
    }
  }
  return pruned;
}

Status SnapshotWriter::Purge(std::string_view partition) {
  for (const std::string& prefix :
       {snapshots::SnapshotPrefix(partition), snapshots::OnDemandSnapshotPrefix(partition)}) {
    auto keys = objects_.List(prefix);
    if (!keys.ok()) return keys.status();
    for (const std::string& key : *keys) {
      if (Status st = objects_.Delete(key); !st.ok()) return st;
    }
  }
  std::lock_guard lock(mu_);
  last_written_ms_.erase(std::string(partition));
  return Status::Ok();
}

Task<void> SnapshotWriter::SweepLoop() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(options_.sweep_interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    Status loaded = co_await Blocking([this] { return LoadPolicies(); });
    if (!loaded.ok()) spdlog::warn("reloading snapshot policies failed: {}", loaded.ToString());
    auto pruned = co_await Blocking([this] { return PruneRetention(); });
    if (!pruned.ok()) {
      spdlog::warn("snapshot retention sweep failed: {}", pruned.status().ToString());
    } else if (*pruned > 0) {
      spdlog::info("snapshot retention deleted {} snapshots", *pruned);
    }
  }
}

}  // namespace layer::jobs
