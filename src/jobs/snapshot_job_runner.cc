#include "jobs/snapshot_job_runner.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "coherence/coherence.h"
#include "common/json_text.h"
#include "common/tenant.h"
#include "common/thread.h"
#include "jobs/cache_filter.h"
#include "snapshots/facets.h"
#include "snapshots/snapshot.h"

namespace layer::jobs {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kSourceNames[] = {"auto", "stored", "cache", "origin"};

std::string Blank(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string() : std::string(s.substr(b));
}

}  // namespace

std::string_view SnapshotSourceName(SnapshotSource source) {
  return kSourceNames[static_cast<size_t>(source)];
}

std::optional<SnapshotSource> ParseSnapshotSource(std::string_view text) {
  for (size_t i = 0; i < std::size(kSourceNames); ++i) {
    if (kSourceNames[i] == text) return static_cast<SnapshotSource>(i);
  }
  return std::nullopt;
}

bool SnapshotJobParams::SameRequest(const SnapshotJobParams& other) const {
  return field == other.field && source == other.source && filters == other.filters &&
         page_size == other.page_size;
}

std::string SnapshotJobParamsToJson(const SnapshotJobParams& p) {
  std::string out = "{\"field\":";
  AppendJsonString(p.field, &out);
  out += ",\"source\":\"" + std::string(SnapshotSourceName(p.source)) + "\"";
  if (p.filters) out += ",\"filters\":" + *p.filters;
  out += fmt::format(",\"page_size\":{}", p.page_size);
  if (p.effective_source) {
    out += ",\"effective_source\":\"" + std::string(SnapshotSourceName(*p.effective_source)) + "\"";
  }
  if (p.sha) {
    out += ",\"sha\":";
    AppendJsonString(*p.sha, &out);
  }
  if (p.key) {
    out += ",\"key\":";
    AppendJsonString(*p.key, &out);
  }
  if (p.watermark_ms) out += fmt::format(",\"watermark_ms\":{}", *p.watermark_ms);
  out += '}';
  return out;
}

Result<SnapshotJobParams> SnapshotJobParamsFromJson(std::string_view text) {
  auto bad = [](std::string what) {
    return Status::Corruption("snapshot job params: " + std::move(what));
  };
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return bad("not a JSON object");
  const json::object& o = v.as_object();
  SnapshotJobParams p;
  const json::value* field = o.if_contains("field");
  const json::value* source = o.if_contains("source");
  const json::value* page_size = o.if_contains("page_size");
  if (!field || !field->is_string()) return bad("no field");
  p.field = std::string(field->as_string());
  auto parsed = source && source->is_string() ? ParseSnapshotSource(source->as_string())
                                              : std::nullopt;
  if (!parsed) return bad("no source");
  p.source = *parsed;
  if (!page_size || !page_size->is_int64()) return bad("no page_size");
  p.page_size = static_cast<int>(page_size->as_int64());
  if (const json::value* f = o.if_contains("filters")) p.filters = SerializeJson(*f);
  if (const json::value* e = o.if_contains("effective_source"); e && e->is_string()) {
    p.effective_source = ParseSnapshotSource(e->as_string());
  }
  if (const json::value* s = o.if_contains("sha"); s && s->is_string()) {
    p.sha = std::string(s->as_string());
  }
  if (const json::value* k = o.if_contains("key"); k && k->is_string()) {
    p.key = std::string(k->as_string());
  }
  if (const json::value* w = o.if_contains("watermark_ms")) {
    auto n = w->to_number<uint64_t>(ec);
    if (!ec) p.watermark_ms = n;
  }
  return p;
}

Result<SnapshotJobParams> ParseSnapshotJobRequest(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return Status::InvalidArgument("the request body must be a JSON object");
  }
  const json::object& o = v.as_object();
  for (const auto& member : o) {
    const std::string_view k = member.key();
    if (k != "field" && k != "source" && k != "filters" && k != "page_size") {
      return Status::InvalidArgument(fmt::format(
          "unknown member \"{}\": the body takes field, source, filters and page_size", k));
    }
  }
  SnapshotJobParams p;
  const json::value* field = o.if_contains("field");
  if (!field || !field->is_string() || Blank(field->as_string()).empty()) {
    return Status::InvalidArgument("field is required and must be a non-blank string");
  }
  p.field = std::string(field->as_string());
  if (p.field == "id" || p.field == "vector" || p.field.starts_with("_hevlayer_")) {
    return Status::InvalidArgument(
        fmt::format("field \"{}\" cannot be snapshotted: it is not an attribute", p.field));
  }
  if (const json::value* source = o.if_contains("source")) {
    auto parsed =
        source->is_string() ? ParseSnapshotSource(source->as_string()) : std::nullopt;
    if (!parsed) {
      return Status::InvalidArgument("source must be one of auto, stored, cache, origin");
    }
    p.source = *parsed;
  }
  if (const json::value* filters = o.if_contains("filters"); filters && !filters->is_null()) {
    if (!filters->is_array() || filters->as_array().empty()) {
      return Status::InvalidArgument("filters must be a Turbopuffer filter (a JSON array)");
    }
    if (p.source == SnapshotSource::kStored) {
      return Status::InvalidArgument(
          "filters are not allowed with source stored: a stored snapshot counts every document");
    }
    p.filters = SerializeJson(*filters);
  }
  if (const json::value* page_size = o.if_contains("page_size")) {
    auto n = page_size->is_number() ? page_size->to_number<int64_t>(ec) : 0;
    if (!page_size->is_number() || ec || n < 1 || n > kMaxWarmPageSize) {
      return Status::InvalidArgument("page_size must be between 1 and 10000");
    }
    p.page_size = static_cast<int>(n);
  }
  return p;
}

std::string SnapshotJobToJson(const Job& job) {
  std::string out;
  out.reserve(384);
  out += "{\"id\":";
  AppendJsonString(job.id, &out);
  out += ",\"namespace\":";
  AppendJsonString(PartitionNamespace(job.ns), &out);
  out += ",\"status\":\"" + std::string(JobStatusName(job.status)) + "\"";
  out += fmt::format(",\"progress\":{}", job.progress);
  out += fmt::format(",\"documents_scanned\":{}", job.documents_scanned);
  if (job.stable_as_of) out += fmt::format(",\"stable_as_of\":{}", *job.stable_as_of);
  out += ",\"created_at\":\"" + FormatRfc3339Ms(job.created_at) + "\"";
  if (job.completed_at) out += ",\"completed_at\":\"" + FormatRfc3339Ms(*job.completed_at) + "\"";
  if (job.error) {
    out += ",\"error\":";
    AppendJsonString(*job.error, &out);
  }
  if (job.waiting && !job.finished()) {
    out += ",\"waiting\":";
    AppendJsonString(*job.waiting, &out);
  }
  auto params = SnapshotJobParamsFromJson(job.params);
  if (params.ok()) {
    out += ",\"field\":";
    AppendJsonString(params->field, &out);
    out += ",\"source\":\"" + std::string(SnapshotSourceName(params->source)) + "\"";
    if (params->effective_source) {
      out += ",\"effective_source\":\"" +
             std::string(SnapshotSourceName(*params->effective_source)) + "\"";
    }
    out += ",\"sha\":";
    if (params->sha) {
      AppendJsonString(*params->sha, &out);
    } else {
      out += "null";
    }
    out += fmt::format(",\"page_size\":{}", params->page_size);
    if (params->filters) out += ",\"filters\":" + *params->filters;
    if (params->key) {
      out += ",\"key\":";
      AppendJsonString(*params->key, &out);
    }
    if (params->watermark_ms) out += fmt::format(",\"watermark_ms\":{}", *params->watermark_ms);
  }
  out += '}';
  return out;
}

std::string SnapshotJobListToJson(std::span<const Job> jobs) {
  std::string out = "{\"snapshot_jobs\":[";
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i) out += ',';
    out += SnapshotJobToJson(jobs[i]);
  }
  out += "]}";
  return out;
}

// What a job found: its params' result members, or that it stopped (cancelled, lease lost).
struct SnapshotJobRunner::Outcome {
  bool stopped = false;
  SnapshotSource effective = SnapshotSource::kOrigin;
  std::string sha, key;
  uint64_t watermark_ms = 0;
  uint64_t documents_scanned = 0;
};

SnapshotJobRunner::SnapshotJobRunner(http::IoPool& pool, JobStore& store,
                                     http::Upstream& upstream, SnapshotWriter& writer,
                                     watermark::ConsistencyWatcher* watcher,
                                     SnapshotJobRunnerOptions options)
    : pool_(pool),
      store_(store),
      upstream_(upstream),
      writer_(writer),
      watcher_(watcher),
      options_(std::move(options)),
      store_thread_(std::make_unique<asio::thread_pool>(1)) {
  asio::post(*store_thread_, [] { NameCurrentThread("layer-snap-jobs"); });
}

SnapshotJobRunner::~SnapshotJobRunner() { store_thread_->join(); }

bool SnapshotJobRunner::Start(Job job) {
  {
    std::lock_guard lock(mu_);
    if (!active_.emplace(job.id, job.ns).second) return false;
  }
  asio::co_spawn(pool_.Next(), Run(std::move(job)), asio::detached);
  return true;
}

Status SnapshotJobRunner::ResumeAll() {
  auto claimed = store_.ClaimExpiredJobs(options_.owner, ClockOr(options_.clock).WallMs(),
                                         options_.lease, ClaimScope::kAllRunning,
                                         JobKind::kSnapshot);
  if (!claimed.ok()) return claimed.status();
  for (Job& job : *claimed) {
    spdlog::info("restarting snapshot job {} of '{}' from its first page", job.id,
                 PartitionNamespace(job.ns));
    Start(std::move(job));
  }
  return Status::Ok();
}

void SnapshotJobRunner::RequestStop(const std::string& id) {
  std::lock_guard lock(mu_);
  if (active_.count(id)) stop_.insert(id);
}

size_t SnapshotJobRunner::active() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

bool SnapshotJobRunner::StopRequested(const std::string& id) const {
  std::lock_guard lock(mu_);
  return stop_.count(id) > 0;
}

void SnapshotJobRunner::Forget(const std::string& id) {
  std::lock_guard lock(mu_);
  active_.erase(id);
  stop_.erase(id);
}

Task<void> SnapshotJobRunner::SweepLoop() {
  const std::chrono::milliseconds interval =
      options_.sweep_interval.count() > 0
          ? options_.sweep_interval
          : std::max(options_.lease / 3, std::chrono::milliseconds(1));
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    auto claimed = co_await Blocking([this] {
      return store_.ClaimExpiredJobs(options_.owner, ClockOr(options_.clock).WallMs(),
                                     options_.lease, ClaimScope::kExpired, JobKind::kSnapshot);
    });
    if (!claimed.ok()) {
      spdlog::warn("snapshot jobs: claiming jobs whose lease expired failed: {}",
                   claimed.status().ToString());
      continue;
    }
    for (Job& job : *claimed) {
      const std::string id = job.id;
      if (Start(std::move(job))) {
        spdlog::info("taking over snapshot job {}: its lease expired; it starts over", id);
      }
    }
  }
}

Task<std::optional<uint64_t>> SnapshotJobRunner::StableWatermark(const std::string& partition) {
  // A fresh look at the index first, so the watermark is as of the scan's start.
  const int64_t poll_start =
      watcher_ ? watcher_->NowMs() : ClockOr(options_.clock).WallMs();
  http::Request req = UpstreamRequest(
      partition, "/v2/namespaces/" + std::string(PartitionNamespace(partition)) + "/metadata");
  auto res = co_await upstream_.Send(std::move(req), true);
  std::optional<uint64_t> observed;
  if (res.ok() && res->result_int() == 200) {
    if (watcher_) {
      watcher_->Observe(partition, poll_start, res->body());
    } else if (watermark::IndexStatusOf(res->body()) == watermark::IndexStatus::kStable) {
      observed = static_cast<uint64_t>(poll_start - options_.safety_margin_ms);
    }
  }
  // While the index is updating, the last stable watermark still holds.
  if (watcher_) co_return watcher_->StableAsOf(partition);
  co_return observed;
}

Task<void> SnapshotJobRunner::End(const std::string& id, JobStatus status, std::string error,
                                  std::optional<uint64_t> stable_as_of) {
  std::optional<std::string> stored_error;
  if (!error.empty()) stored_error = std::move(error);
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  std::chrono::milliseconds delay(200);
  for (int attempt = 1;; ++attempt) {
    Status st = co_await Blocking([&] {
      return store_.Finish(id, options_.owner, status, stored_error, stable_as_of);
    });
    if (st.ok() || st.code() == StatusCode::kAborted || st.code() == StatusCode::kNotFound) break;
    if (attempt >= 5) {
      spdlog::warn("snapshot job {}: recording its end failed: {}; its lease lets the sweep take "
                   "it over",
                   id, st.ToString());
      break;
    }
    backoff.expires_after(delay);
    co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
    delay *= 2;
  }
  Forget(id);
}

Task<void> SnapshotJobRunner::WaitForCredential(const Job& job) {
  JobCheckpoint waiting;
  waiting.documents_scanned = job.documents_scanned;
  waiting.waiting =
      "waiting for an API key the upstream accepts: the gateway holds none for this job's caller "
      "(it restarted since the job began); post the snapshot job again to continue";
  Status st =
      co_await Blocking([&] { return store_.Checkpoint(job.id, options_.owner, waiting); });
  if (!st.ok()) {
    spdlog::warn("snapshot job {}: recording that it waits for a credential failed: {}", job.id,
                 st.ToString());
  }
  Forget(job.id);
}

Task<Result<SnapshotJobRunner::Outcome>> SnapshotJobRunner::RunStored(
    const Job& job, const SnapshotJobParams& params) {
  auto latest = co_await writer_.Blocking(
      [&] { return snapshots::ReadLatestSnapshot(writer_.objects(), job.ns); });
  if (!latest.ok()) {
    co_return Status::IoError("reading the latest stored snapshot failed: " +
                              latest.status().message());
  }
  const std::string ns(PartitionNamespace(job.ns));
  if (!*latest) {
    co_return Status::NotFound("namespace '" + ns +
                               "' has no stored snapshot (set a snapshot policy, or use source "
                               "origin)");
  }
  const snapshots::StoredSnapshot& stored = **latest;
  for (const auto& f : stored.body.fields) {
    if (f.name != params.field) continue;
    Outcome out;
    out.effective = SnapshotSource::kStored;
    out.sha = stored.body.sha;
    out.key = stored.key;
    out.watermark_ms = stored.body.watermark_ms;
    for (const auto& value : f.values) out.documents_scanned += value.n;
    co_return out;
  }
  for (const auto& f : stored.body.fields_skipped) {
    if (f.name == params.field) {
      co_return Status::NotFound(fmt::format(
          "field '{}' is not in the latest stored snapshot of '{}': it has more than {} distinct "
          "values",
          params.field, ns, f.cap));
    }
  }
  co_return Status::NotFound(fmt::format(
      "field '{}' is not in the latest stored snapshot of '{}' (use source origin)", params.field,
      ns));
}

Task<Result<SnapshotJobRunner::Outcome>> SnapshotJobRunner::RunOrigin(
    const Job& job, const SnapshotJobParams& params) {
  const std::string& partition = job.ns;
  const std::string ns(PartitionNamespace(partition));
  std::optional<uint64_t> wm = co_await StableWatermark(partition);
  if (!wm) {
    co_return Status::Unavailable(
        "no stable watermark observed for namespace '" + ns +
        "' yet: its index has not been seen up to date; retry once it has caught up");
  }
  std::vector<std::string> fields;
  fields.push_back(params.field);
  snapshots::FacetAggregator agg(fields);
  Outcome out;
  out.effective = SnapshotSource::kOrigin;
  std::optional<std::string> cursor;
  const size_t page_size = static_cast<size_t>(std::max(1, params.page_size));
  for (;;) {
    auto page = co_await writer_.ReadFacetPage(partition, fields, params.filters, page_size,
                                               cursor, agg);
    if (!page.ok()) {
      co_return Status::IoError("upstream page read failed: " + page.status().message());
    }
    out.documents_scanned += page->rows;
    Status st = co_await CheckpointPage(job, &out);
    if (!st.ok()) co_return st;
    if (out.stopped) co_return out;
    if (!page->next_cursor) break;
    cursor = std::move(page->next_cursor);
  }
  Status stored = co_await StoreBody(partition, agg, *wm, &out);
  if (!stored.ok()) co_return stored;
  co_return out;
}

Task<Status> SnapshotJobRunner::CheckpointPage(const Job& job, Outcome* out) {
  JobCheckpoint cp;
  cp.documents_scanned = out->documents_scanned;
  Status st = co_await Blocking([&] { return store_.Checkpoint(job.id, options_.owner, cp); });
  if (st.code() == StatusCode::kAborted || st.code() == StatusCode::kNotFound ||
      StopRequested(job.id)) {
    out->stopped = true;  // cancelled, deleted, or taken over
    co_return Status::Ok();
  }
  if (!st.ok()) co_return Status::IoError("the job store failed: " + st.message());
  co_return Status::Ok();
}

Task<Status> SnapshotJobRunner::StoreBody(const std::string& partition,
                                          const snapshots::FacetAggregator& agg,
                                          uint64_t watermark_ms, Outcome* out) {
  snapshots::SnapshotBody body =
      agg.Finish(std::string(PartitionNamespace(partition)), watermark_ms);
  auto key = snapshots::OnDemandSnapshotKey(partition, watermark_ms, body.sha);
  if (!key.ok()) co_return key.status();
  std::string bytes = snapshots::SerializeSnapshotBody(body);
  auto put = co_await writer_.Blocking(
      [&] { return writer_.objects().PutIfAbsent(*key, bytes); });
  // Taken already: the same watermark and distribution were stored by an earlier job.
  if (!put.ok()) {
    co_return Status::IoError("storing the snapshot failed: the object store failed: " +
                              put.status().message());
  }
  out->sha = body.sha;
  out->key = *key;
  out->watermark_ms = watermark_ms;
  co_return Status::Ok();
}

http::Request SnapshotJobRunner::UpstreamRequest(const std::string& partition,
                                                 std::string target) const {
  http::Request req{http::Verb::get, std::move(target), 11};
  req.set(http::Field::accept, "application/json");
  if (options_.credentials) {
    auto authorization = options_.credentials->ForPartition(partition);
    if (authorization && !authorization->empty()) {
      req.set(http::Field::authorization, *authorization);
    }
  }
  return req;
}

Task<Result<std::string>> SnapshotJobRunner::UpstreamGet(const std::string& partition,
                                                         std::string target) {
  http::Request req = UpstreamRequest(partition, std::move(target));
  auto res = co_await upstream_.Send(std::move(req), true);
  if (!res.ok()) co_return res.status();
  if (res->result_int() != 200) {
    co_return Status::IoError(fmt::format("the upstream answered {}: {}", res->result_int(),
                                          std::string(res->body()).substr(0, 300)));
  }
  co_return std::string(res->body());
}

Task<Result<SnapshotJobRunner::Outcome>> SnapshotJobRunner::RunCache(
    const Job& job, const SnapshotJobParams& params) {
  const std::string& partition = job.ns;
  const std::string ns(PartitionNamespace(partition));
  coherence::CacheCoherence& cache = writer_.cache();
  auto whole = co_await cache.WholeNamespace(partition);
  if (!whole.ok()) {
    co_return Status::Unavailable("cache_cold: the cache does not hold every row of '" + ns +
                                  "': " + whole.status().message());
  }
  const uint64_t warmed_through = *whole;
  std::optional<CacheRowFilter> filter;
  if (params.filters) {
    // Operands are read by the attributes' types, as the upstream reads them.
    std::string target = "/v1/namespaces/" + ns + "/schema";
    auto schema = co_await UpstreamGet(partition, std::move(target));
    if (!schema.ok()) {
      co_return Status::IoError("reading the namespace schema upstream failed: " +
                                schema.status().message());
    }
    auto parsed = CacheRowFilter::Parse(*params.filters, *schema);
    if (auto* refused = std::get_if<FilterRefusal>(&parsed)) {
      co_return Status::InvalidArgument("filters: " + refused->message);
    }
    filter.emplace(std::move(std::get<CacheRowFilter>(parsed)));
  }
  std::optional<uint64_t> wm = co_await StableWatermark(partition);
  std::vector<std::string> fields;
  fields.push_back(params.field);
  snapshots::FacetAggregator agg(fields);
  Outcome out;
  out.effective = SnapshotSource::kCache;
  std::optional<tpuf::DocId> after;
  const size_t page_size = static_cast<size_t>(std::max(1, params.page_size));
  for (;;) {
    auto page = co_await cache.ScanCached(partition, after, page_size);
    if (!page.ok()) {
      co_return Status::Unavailable("cache_cold: the cache stopped holding every row of '" + ns +
                                    "' during the scan: " + page.status().message());
    }
    for (const auto& [id, doc] : page->rows) {
      boost::system::error_code ec;
      // Exact doubles: the counted texts are written out again (docs/design.md §4.2.8).
      json::value row = ParseJson(doc.attributes_json, ec);
      if (ec || !row.is_object()) {
        co_return Status::Corruption("a cached row of '" + ns + "' is not a JSON object");
      }
      if (filter) {
        auto matches = filter->Matches(id, row.as_object());
        if (!matches.ok()) co_return matches.status();
        if (!*matches) continue;
      }
      agg.AddRow(row.as_object());
      ++out.documents_scanned;
    }
    Status st = co_await CheckpointPage(job, &out);
    if (!st.ok()) co_return st;
    if (out.stopped) co_return out;
    if (!page->resume_after) break;
    after = std::move(page->resume_after);
  }
  // Nothing may have left the cache short of a row while it was read.
  auto still = co_await cache.WholeNamespace(partition);
  if (!still.ok() || *still != warmed_through) {
    co_return Status::Unavailable(
        "cache_cold: the cache stopped holding every row of '" + ns + "' during the scan" +
        (still.ok() ? std::string(": it was warmed again") : ": " + still.status().message()));
  }
  Status stored = co_await StoreBody(partition, agg, wm.value_or(warmed_through), &out);
  if (!stored.ok()) co_return stored;
  co_return out;
}

Task<void> SnapshotJobRunner::Run(Job job) {
  const std::string id = job.id;
  const std::string partition = job.ns;
  auto params = SnapshotJobParamsFromJson(job.params);
  if (!params.ok()) {
    co_await End(id, JobStatus::kFailed, params.status().message(), std::nullopt);
    co_return;
  }
  if (options_.credentials && !options_.credentials->ForPartition(partition)) {
    co_await WaitForCredential(job);
    co_return;
  }
  if (StopRequested(id)) {
    Forget(id);
    co_return;
  }
  const RequestSlices::BackgroundWork busy = RequestSlices::BackgroundIn(options_.request_slices);
  Result<Outcome> outcome = Status::Internal("not run");
  switch (params->source) {
    case SnapshotSource::kStored:
      outcome = co_await RunStored(job, *params);
      break;
    case SnapshotSource::kCache:
      outcome = co_await RunCache(job, *params);
      break;
    case SnapshotSource::kOrigin:
      outcome = co_await RunOrigin(job, *params);
      break;
    case SnapshotSource::kAuto: {
      // The latest full snapshot answers when it has the field and no filter narrows the count;
      // else the cache when it holds the whole namespace and can evaluate the filter; else the
      // origin (docs/design.md §7.8).
      if (!params->filters) {
        outcome = co_await RunStored(job, *params);
        if (outcome.ok() || !outcome.status().IsNotFound()) break;
      }
      auto whole = co_await writer_.cache().WholeNamespace(partition);
      if (whole.ok()) {
        outcome = co_await RunCache(job, *params);
        const StatusCode code = outcome.ok() ? StatusCode::kOk : outcome.status().code();
        if (code != StatusCode::kUnavailable && code != StatusCode::kInvalidArgument) break;
        spdlog::info("snapshot job {} of '{}': the cache cannot answer ({}); reading the origin",
                     id, PartitionNamespace(partition), outcome.status().message());
      }
      outcome = co_await RunOrigin(job, *params);
      break;
    }
  }
  if (outcome.ok() && outcome->stopped) {
    Forget(id);
    co_return;
  }
  if (!outcome.ok()) {
    spdlog::info("snapshot job {} of '{}' failed: {}", id, PartitionNamespace(partition),
                 outcome.status().message());
    co_await End(id, JobStatus::kFailed, outcome.status().message(), std::nullopt);
    co_return;
  }
  params->effective_source = outcome->effective;
  params->sha = outcome->sha;
  params->key = outcome->key;
  params->watermark_ms = outcome->watermark_ms;
  JobCheckpoint cp;
  cp.documents_scanned = outcome->documents_scanned;
  cp.params = SnapshotJobParamsToJson(*params);
  Status st = co_await Blocking([&] { return store_.Checkpoint(id, options_.owner, cp); });
  if (!st.ok()) {
    if (st.code() != StatusCode::kAborted && st.code() != StatusCode::kNotFound) {
      co_await End(id, JobStatus::kFailed, "the job store failed: " + st.message(), std::nullopt);
    } else {
      Forget(id);
    }
    co_return;
  }
  spdlog::info("snapshot job {} of '{}' completed: field '{}' from {}, {} documents, sha {}", id,
               PartitionNamespace(partition), params->field,
               SnapshotSourceName(outcome->effective), outcome->documents_scanned,
               outcome->sha.substr(0, 7));
  co_await End(id, JobStatus::kCompleted, std::string(), outcome->watermark_ms);
}

}  // namespace layer::jobs
