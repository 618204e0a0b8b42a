#include "jobs/warm_runner.h"
#include "common/clock.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "gateway/fetch.h"
#include "gateway/write_plan.h"
#include "origin/engine/json_out.h"

namespace layer::jobs {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr size_t kTopKLimit = 10000;

bool Transient(unsigned status) { return status == 408 || status == 429 || status >= 500; }

}  // namespace

WarmRunner::WarmRunner(http::IoPool& pool, JobStore& store, http::Upstream& upstream,
                       gateway::CacheContext& cache, WarmRunnerOptions options)
    : pool_(pool), store_(store), upstream_(upstream), cache_(cache), options_(std::move(options)) {}

void WarmRunner::Start(WarmJob job) {
  {
    std::lock_guard lock(mu_);
    if (!active_.emplace(job.id, job.ns).second) return;  // already running here
  }
  cache_.warming_version.fetch_add(1, std::memory_order_release);
  asio::co_spawn(pool_.Next(), Run(std::move(job)), asio::detached);
}

Status WarmRunner::ResumeAll(bool cache_was_reset) {
  auto claimed = store_.ClaimExpired(options_.owner, WallClockMs(), std::chrono::seconds(30),
                                     ClaimScope::kAllRunning);
  if (!claimed.ok()) return claimed.status();
  for (auto& job : *claimed) {
    if (cache_was_reset) {
      job.cursor.reset();
      job.documents_scanned = 0;
      job.cache_errors = 0;
    }
    spdlog::info("resuming warm job {} of '{}' after {} documents", job.id, job.ns,
                 job.documents_scanned);
    Start(std::move(job));
  }
  return Status::Ok();
}

void WarmRunner::RequestStop(const std::string& id) {
  std::lock_guard lock(mu_);
  if (active_.count(id)) stop_.insert(id);
}

void WarmRunner::EndActive(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    active_.erase(id);
    stop_.erase(id);
  }
  cache_.warming_version.fetch_add(1, std::memory_order_release);
}

size_t WarmRunner::active() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

bool WarmRunner::Warming(std::string_view ns) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, n] : active_) {
    if (n == ns) return true;
  }
  return false;
}

http::Task<Result<http::Response>> WarmRunner::Send(http::Verb method, std::string target,
                                                    std::string body) {
  http::Request req{method, std::move(target), 11};
  req.set(http::Field::accept, "application/json");
  if (!body.empty()) req.set(http::Field::content_type, "application/json");
  if (!options_.upstream_authorization.empty()) {
    req.set(http::Field::authorization, options_.upstream_authorization);
  }
  req.body() = std::move(body);
  co_return co_await upstream_.Send(std::move(req), true);
}

http::Task<void> WarmRunner::ReadMetadata(const std::string& ns,
                                          std::optional<uint64_t>* stable_as_of,
                                          uint64_t* approx_rows) {
  int64_t poll_start = WallClockMs();
  auto res = co_await Send(http::Verb::get, "/v2/namespaces/" + ns + "/metadata", "");
  if (!res.ok() || res->result_int() != 200) co_return;
  boost::system::error_code ec;
  json::value v = json::parse(res->body(), ec);
  if (ec || !v.is_object()) co_return;
  if (cache_.watcher) cache_.watcher->Observe(ns, poll_start, res->body());
  const auto& o = v.as_object();
  if (const auto* n = o.if_contains("approx_row_count"); n && n->is_number()) {
    *approx_rows = n->to_number<uint64_t>();
  }
  const auto* index = o.if_contains("index");
  const auto* status = index && index->is_object() ? index->as_object().if_contains("status")
                                                   : nullptr;
  if (status && status->is_string() && status->as_string() == "up-to-date") {
    *stable_as_of = static_cast<uint64_t>(poll_start - options_.safety_margin_ms);
  }
}

http::Task<std::optional<cache::IdType>> WarmRunner::ReadIdType(const std::string& ns) {
  auto res = co_await Send(http::Verb::get, "/v1/namespaces/" + ns + "/schema", "");
  if (!res.ok() || res->result_int() / 100 != 2) co_return std::nullopt;
  co_return gateway::IdTypeFromSchema(res->body());
}

http::Task<void> WarmRunner::Run(WarmJob job) {
  const std::string id = job.id;
  const std::string ns = job.ns;
  auto finish = [&](JobStatus status, std::optional<std::string> error,
                    std::optional<uint64_t> stable) {
    Status st = store_.Finish(id, options_.owner, status, std::move(error), stable);
    if (!st.ok()) spdlog::warn("warm job {}: recording its end failed: {}", id, st.ToString());
    EndActive(id);
  };
  auto stop_requested = [&] {
    std::lock_guard lock(mu_);
    return stop_.count(id) > 0;
  };

  std::optional<uint64_t> start_wm;
  uint64_t approx_rows = 0;
  co_await ReadMetadata(ns, &start_wm, &approx_rows);
  // While the index is updating, the last stable watermark still holds (reference §7.3).
  if (!start_wm && cache_.watcher) start_wm = cache_.watcher->StableAsOf(ns);

  std::optional<json::value> cursor;
  if (job.cursor) {
    boost::system::error_code ec;
    json::value c = json::parse(*job.cursor, ec);
    if (!ec) cursor = std::move(c);
  }
  uint64_t scanned = job.documents_scanned;
  uint64_t cache_errors = job.cache_errors;
  const size_t page_size = static_cast<size_t>(std::max(1, job.page_size));
  auto typed = cache_.id_types.Known(ns);
  asio::steady_timer backoff(co_await asio::this_coro::executor);

  for (;;) {
    if (stop_requested()) {
      EndActive(id);
      co_return;  // the store already says cancelled
    }
    json::object q;
    q["rank_by"] = json::array{"id", "asc"};
    q["top_k"] = std::min(page_size + 1, kTopKLimit);
    q["include_attributes"] = true;
    q["consistency"] = json::object{{"level", "strong"}};
    if (cursor) q["filters"] = json::array{"id", "Gt", *cursor};
    std::string body = origin::SerializeJson(q);

    Result<http::Response> res = Status::Unavailable("not sent");
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      if (attempt > 0) {
        backoff.expires_after(options_.retry_base * (1 << (attempt - 1)));
        co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      res = co_await Send(http::Verb::post, "/v2/namespaces/" + ns + "/query", body);
      if (res.ok() && !Transient(res->result_int())) break;
    }
    if (!res.ok()) {
      finish(JobStatus::kFailed, "upstream page read failed: " + res.status().message(),
             std::nullopt);
      co_return;
    }
    if (res->result_int() == 404) {
      finish(JobStatus::kFailed, "namespace '" + ns + "' was not found upstream", std::nullopt);
      co_return;
    }
    if (res->result_int() / 100 != 2) {
      finish(JobStatus::kFailed,
             "upstream page read failed with status " + std::to_string(res->result_int()) + ": " +
                 res->body().substr(0, 300),
             std::nullopt);
      co_return;
    }
    boost::system::error_code ec;
    json::value page = json::parse(res->body(), ec);
    const json::value* rows = ec || !page.is_object() ? nullptr : page.as_object().if_contains("rows");
    if (!rows || !rows->is_array()) {
      finish(JobStatus::kFailed, "upstream page read returned an unexpected body", std::nullopt);
      co_return;
    }
    const auto& arr = rows->as_array();
    const size_t take = std::min(arr.size(), page_size);
    // The namespace's id type follows from the ids themselves, or from its schema.
    if (!typed && take > 0) {
      const auto* first = arr[0].is_object() ? arr[0].as_object().if_contains("id") : nullptr;
      if (first && first->is_number()) {
        typed = cache::IdType::kU64;
      } else if (first && first->is_string() && !cache::DocId::Uuid(first->as_string()).ok()) {
        typed = cache::IdType::kString;
      } else {
        typed = co_await ReadIdType(ns);
      }
      if (typed) cache_.id_types.Learn(ns, *typed);
    }
    std::vector<std::pair<cache::DocId, cache::CachedDoc>> docs;
    for (size_t i = 0; i < take; ++i) {
      if (!arr[i].is_object()) continue;
      const auto& row = arr[i].as_object();
      const auto* idv = row.if_contains("id");
      if (!idv) continue;
      auto doc_id = gateway::CacheIdFromJson(*idv, typed);
      auto fetched = gateway::RowForCache(row);
      if (!doc_id || !fetched) {
        ++cache_errors;  // a row the cache cannot key is a row not warmed
        continue;
      }
      if (cache_.pending.Blocks(ns, *doc_id)) continue;
      cache::CachedDoc doc;
      doc.attributes_json = std::move(fetched->attributes_json);
      doc.upserted_at = fetched->stamp;
      docs.emplace_back(std::move(*doc_id), std::move(doc));
    }
    if (!docs.empty()) {
      size_t n = docs.size();
      auto put = co_await cache_.guard->PutIfNewerBatch(ns, std::move(docs));
      if (!put.ok()) {
        if (cache_.guard->breaker_state() != cache::BreakerState::kClosed) {
          finish(JobStatus::kFailed, "cache_cold: the cache became unavailable: " +
                                         put.status().message(),
                 std::nullopt);
          co_return;
        }
        cache_errors += n;
      }
    }
    scanned += take;
    if (take > 0) cursor = arr[take - 1].as_object().at("id");
    WarmJobCheckpoint cp;
    if (cursor) cp.cursor = origin::SerializeJson(*cursor);
    cp.documents_scanned = scanned;
    cp.cache_errors = cache_errors;
    cp.progress = approx_rows > 0 ? std::min(0.999, double(scanned) / double(approx_rows)) : 0.0;
    Status st = store_.Checkpoint(id, options_.owner, cp);
    if (!st.ok()) {  // cancelled, or the lease was lost to another replica
      EndActive(id);
      co_return;
    }
    const bool more = arr.size() > page_size || (page_size >= kTopKLimit && arr.size() == kTopKLimit);
    if (!more) break;
  }

  if (start_wm) {
    Status st = co_await cache_.guard->PutNamespaceRecord(ns, std::string(gateway::kWarmedThroughRecord),
                                                          std::to_string(*start_wm));
    if (!st.ok()) spdlog::warn("warm job {}: recording cache_warmed_through failed", id);
  }
  finish(JobStatus::kCompleted, std::nullopt, start_wm);
  spdlog::info("warm job {} of '{}' completed: {} documents", id, ns, scanned);
}

}  // namespace layer::jobs
