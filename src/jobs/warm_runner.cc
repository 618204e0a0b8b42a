#include "jobs/warm_runner.h"

#include "common/tenant.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>

#include "common/clock.h"
#include "common/metrics.h"
#include "common/thread.h"
#include "coherence/row_codec.h"
#include "tpuf/reserved.h"
#include "jobs/warm_page.h"
#include "common/json_text.h"

namespace layer::jobs {

namespace asio = boost::asio;
namespace json = boost::json;

using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr size_t kTopKLimit = 10000;
// The longest pause between two attempts of a checkpoint the store failed to take (WritePage).
constexpr std::chrono::milliseconds kMaxCheckpointBackoff{2000};
// Pages whose cache write and checkpoint may be in flight at once (each holds its rows).
constexpr size_t kWritesInFlight = 2;

bool Transient(unsigned status) { return status == 408 || status == 429 || status >= 500; }

// The page query: the same JSON, key for key, for every page of a job.
std::string PageQuery(size_t page_size, const std::optional<std::string>& cursor) {
  std::string q = R"({"rank_by":["id","asc"],"top_k":)";
  q += std::to_string(std::min(page_size + 1, kTopKLimit));
  q += R"(,"include_attributes":true,"consistency":{"level":"strong"})";
  if (cursor) {
    q += R"(,"filters":["id","Gt",)";
    q += *cursor;
    q += ']';
  }
  q += '}';
  return q;
}

// The namespace's id type as the page's first id tells it; nullopt when only the schema can
// (a string that looks like a UUID, or an id of no known shape).
std::optional<tpuf::IdType> IdTypeFromFirstRow(const WarmPage& page) {
  if (page.rows.empty()) return std::nullopt;
  const WarmRow& first = page.rows.front();
  if (first.id_kind == WarmRow::IdKind::kU64) return tpuf::IdType::kU64;
  if (first.id_kind == WarmRow::IdKind::kString && !tpuf::DocId::Uuid(first.id_text).ok()) {
    return tpuf::IdType::kString;
  }
  return std::nullopt;
}

// Keys the page's rows for the cache. A row the cache cannot key counts in `*unkeyed` (a row not
// warmed); a row a pending invalidation blocks is left out.
CacheBatch KeyRows(coherence::CacheCoherence& cache, const std::string& ns, WarmPage& page,
                   std::optional<tpuf::IdType> typed, uint64_t* unkeyed) {
  CacheBatch batch;
  batch.reserve(page.rows.size());
  for (WarmRow& row : page.rows) {
    std::optional<tpuf::DocId> id;
    if (row.id_kind == WarmRow::IdKind::kU64) {
      id = tpuf::DocId::U64(row.id_u64);
    } else if (row.id_kind == WarmRow::IdKind::kString) {
      id = tpuf::TypeWrittenIdString(row.id_text, typed);
    }
    if (!id) {
      ++*unkeyed;
      continue;
    }
    if (cache.BackfillBlocked(ns, *id)) continue;
    cache::CachedDoc doc;
    doc.attributes_json = std::move(row.attributes_json);
    doc.upserted_at = row.stamp;
    batch.emplace_back(std::move(*id), std::move(doc));
  }
  return batch;
}

}  // namespace

// One page read in flight. Touched only on the job's executor (one thread), so no lock.
struct WarmRunner::PageRead {
  explicit PageRead(const asio::any_io_executor& ex)
      : done(ex, asio::steady_timer::time_point::max()), backoff(ex) {}
  std::optional<Result<http::Response>> result;  // set once the read is over
  // The writes when the read began: what its page's put must leave out (coherence.h).
  WarmMark mark;
  asio::steady_timer done;     // cancelled when `result` is set, to wake AwaitRead
  asio::steady_timer backoff;  // between attempts
  bool abandoned = false;
};

// One page's cache write and checkpoint in flight. Touched only on the job's executor.
struct WarmRunner::PageWrite {
  explicit PageWrite(const asio::any_io_executor& ex)
      : done(ex, asio::steady_timer::time_point::max()) {}
  WriteOutcome outcome;
  bool finished = false;  // the write and checkpoint are over
  asio::steady_timer done;  // cancelled when `finished` is set, to wake AwaitWrite
};

// What the sweep timer's handler needs to know whether the runner still exists: the destructor
// sets `stopped` under `mu`, and the handler touches the runner only while holding `mu` with
// `stopped` unset.
struct WarmRunner::SweepState {
  std::mutex mu;
  bool stopped = false;
};

// A job's running totals, advanced by its page writes in page order, and what its page writes
// need to end the job: the read ahead to wake and drop.
struct WarmRunner::JobProgress {
  uint64_t scanned = 0, cache_errors = 0, approx_rows = 0;
  SteadyClock::duration cache_write{}, checkpoint{};
  std::shared_ptr<PageRead> reading;  // the page read ahead, if any
  bool ended = false;                 // a page write ended the job (cache cold, stopped)
};

WarmRunner::WarmRunner(http::IoPool& pool, JobStore& store, http::Upstream& upstream,
                       coherence::CacheCoherence& cache, watermark::ConsistencyWatcher* watcher,
                       WarmRunnerOptions options)
    : pool_(pool),
      store_(store),
      upstream_(upstream),
      cache_(cache),
      watcher_(watcher),
      options_(std::move(options)),
      store_thread_(std::make_unique<asio::thread_pool>(1)),
      page_thread_(std::make_unique<asio::thread_pool>(1)),
      sweep_interval_(options_.sweep_interval.count() > 0
                          ? options_.sweep_interval
                          : std::max(options_.lease / 3, std::chrono::milliseconds(1))),
      sweep_(std::make_shared<SweepState>()),
      sweep_timer_(std::make_unique<asio::steady_timer>(pool_.Next())) {
  asio::post(*store_thread_, [] { NameCurrentThread("layer-warm-jobs"); });
  asio::post(*page_thread_, [] { NameCurrentThread("layer-warm-page"); });
  std::lock_guard lock(sweep_->mu);
  ArmSweepLocked();
}

WarmRunner::~WarmRunner() {
  {
    // Waits for a sweep in progress, which may be starting jobs; none starts after this.
    std::lock_guard lock(sweep_->mu);
    sweep_->stopped = true;
    sweep_timer_->cancel();
  }
  store_thread_->join();
  page_thread_->join();
}

void WarmRunner::ArmSweepLocked() {
  sweep_timer_->expires_after(sweep_interval_);
  sweep_timer_->async_wait([this, sweep = sweep_](const boost::system::error_code& ec) {
    std::lock_guard lock(sweep->mu);
    if (ec || sweep->stopped) return;  // the runner may be gone: touch nothing of it
    // Store calls block: the sweep runs on the store thread, as every other one does.
    asio::post(*store_thread_, [this] { Sweep(); });
  });
}

void WarmRunner::Sweep() {
  std::lock_guard lock(sweep_->mu);
  if (sweep_->stopped) return;
  const int64_t now = ClockOr(options_.clock).WallMs();
  auto claimed = store_.ClaimExpired(options_.owner, now, options_.lease, ClaimScope::kExpired);
  if (!claimed.ok()) {
    spdlog::warn("warm jobs: claiming jobs whose lease expired failed: {}",
                 claimed.status().ToString());
  } else {
    for (WarmJob& job : *claimed) {
      // A job of ours whose lease ran out while it stalled comes back here: it keeps running once.
      const std::string id = job.id, ns = job.ns;
      const uint64_t scanned = job.documents_scanned;
      if (Start(std::move(job))) {
        spdlog::info("taking over warm job {} of '{}' after {} documents: its lease expired", id,
                     ns, scanned);
      }
    }
  }
  auto pruned =
      store_.Prune(now, options_.keep_finished_for, options_.keep_finished_max_per_namespace);
  if (!pruned.ok()) {
    spdlog::warn("warm jobs: pruning finished jobs failed: {}", pruned.status().ToString());
  }
  ArmSweepLocked();
}

bool WarmRunner::Start(WarmJob job) {
  {
    std::lock_guard lock(mu_);
    if (!active_.emplace(job.id, job.ns).second) return false;  // already running here
  }
  cache_.NoteWarmingChanged();
  asio::co_spawn(pool_.Next(), Run(std::move(job)), asio::detached);
  return true;
}

void WarmRunner::CreateAndStart(std::string ns) {
  asio::post(*store_thread_, [this, ns = std::move(ns)] {
    auto created = store_.Create({ns, kDefaultWarmPageSize, options_.owner});
    if (created.ok() && created->created) Start(std::move(created->job));
  });
}

Status WarmRunner::ResumeAll(bool cache_was_reset) {
  auto claimed = store_.ClaimExpired(options_.owner, ClockOr(options_.clock).WallMs(),
                                     options_.lease, ClaimScope::kAllRunning);
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

Task<Result<http::Response>> WarmRunner::Send(std::string_view partition, http::Verb method,
                                              std::string target, std::string body) {
  http::Request req{method, std::move(target), 11};
  req.set(http::Field::accept, "application/json");
  if (!body.empty()) req.set(http::Field::content_type, "application/json");
  if (options_.credentials) {
    auto authorization = options_.credentials->ForPartition(partition);
    if (authorization && !authorization->empty()) {
      req.set(http::Field::authorization, *authorization);
    }
  }
  req.body() = std::move(body);
  co_return co_await upstream_.Send(std::move(req), true);
}

Task<void> WarmRunner::ReadMetadata(const std::string& ns,
                                          std::optional<uint64_t>* stable_as_of,
                                          uint64_t* approx_rows) {
  int64_t poll_start = ClockOr(options_.clock).WallMs();
  auto res = co_await Send(ns, http::Verb::get,
                           "/v2/namespaces/" + std::string(PartitionNamespace(ns)) + "/metadata",
                           "");
  if (!res.ok() || res->result_int() != 200) co_return;
  boost::system::error_code ec;
  json::value v = json::parse(res->body(), ec);
  if (ec || !v.is_object()) co_return;
  if (watcher_) watcher_->Observe(ns, poll_start, res->body());
  const auto& o = v.as_object();
  if (const auto* n = o.if_contains("approx_row_count"); n && n->is_number()) {
    auto rows = n->to_number<uint64_t>(ec);
    if (!ec) *approx_rows = rows;
  }
  const auto* index = o.if_contains("index");
  const auto* status = index && index->is_object() ? index->as_object().if_contains("status")
                                                   : nullptr;
  if (status && status->is_string() && status->as_string() == "up-to-date") {
    *stable_as_of = static_cast<uint64_t>(poll_start - options_.safety_margin_ms);
  }
}

Task<std::optional<tpuf::IdType>> WarmRunner::ReadIdType(const std::string& ns) {
  auto res = co_await Send(
      ns, http::Verb::get, "/v1/namespaces/" + std::string(PartitionNamespace(ns)) + "/schema", "");
  if (!res.ok() || res->result_int() / 100 != 2) co_return std::nullopt;
  co_return tpuf::IdTypeFromSchema(res->body());
}

Task<std::shared_ptr<WarmRunner::PageRead>> WarmRunner::StartRead(
    const std::string& ns, size_t page_size, const std::optional<std::string>& cursor) {
  auto ex = co_await asio::this_coro::executor;
  auto read = std::make_shared<PageRead>(ex);
  LaunchRead(ex, read, ns, page_size, cursor);
  co_return read;
}

void WarmRunner::LaunchRead(const asio::any_io_executor& ex, std::shared_ptr<PageRead> read,
                            const std::string& ns, size_t page_size,
                            const std::optional<std::string>& cursor) {
  asio::co_spawn(ex,
                 ReadPage(std::move(read), ns,
                          "/v2/namespaces/" + std::string(PartitionNamespace(ns)) + "/query",
                          PageQuery(page_size, cursor)),
                 asio::detached);
}

Task<void> WarmRunner::ReadPage(std::shared_ptr<PageRead> read, std::string partition,
                                std::string target, std::string body) {
  read->mark = co_await cache_.MarkWarmRead(partition);  // before the read begins (§5.4)
  Result<http::Response> res = Status::Unavailable("not sent");
  for (int attempt = 0; attempt < options_.max_attempts && !read->abandoned; ++attempt) {
    if (attempt > 0) {
      read->backoff.expires_after(options_.retry_base * (1 << (attempt - 1)));
      co_await read->backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      if (read->abandoned) break;
    }
    res = co_await Send(partition, http::Verb::post, target, body);
    if (res.ok() && !Transient(res->result_int())) break;
  }
  read->result.emplace(std::move(res));
  read->done.cancel();
}

Task<Result<http::Response>> WarmRunner::AwaitRead(std::shared_ptr<PageRead> read) {
  if (!read->result) co_await read->done.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return std::move(*read->result);
}

void WarmRunner::Abandon(const std::shared_ptr<PageRead>& read) {
  if (!read) return;
  read->abandoned = true;
  read->backoff.cancel();
}

void WarmRunner::Forget(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    active_.erase(id);
    stop_.erase(id);
  }
  cache_.NoteWarmingChanged();
}

bool WarmRunner::StopRequested(const std::string& id) const {
  std::lock_guard lock(mu_);
  return stop_.count(id) > 0;
}

Task<void> WarmRunner::End(const std::string& id, JobStatus status, std::string error,
                           std::optional<uint64_t> stable_as_of) {
  std::optional<std::string> stored_error;
  if (!error.empty()) stored_error = std::move(error);
  // A store that fails now may answer again shortly: a job left running in it would hold every
  // later warm of the namespace until its lease ran out, so recording the end is retried.
  asio::steady_timer backoff(co_await asio::this_coro::executor);
  std::chrono::milliseconds delay = options_.retry_base;
  for (int attempt = 1;; ++attempt) {
    Status st = co_await Blocking([&] {
      return store_.Finish(id, options_.owner, status, stored_error, stable_as_of);
    });
    if (st.ok() || st.code() == StatusCode::kAborted || st.code() == StatusCode::kNotFound) break;
    if (attempt >= options_.max_attempts) {
      spdlog::warn("warm job {}: recording its end failed: {}; its lease lets the sweep take it "
                   "over",
                   id, st.ToString());
      break;
    }
    backoff.expires_after(delay);
    co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
    delay *= 2;
  }
  Forget(id);
}

Task<void> WarmRunner::WaitForCredential(const WarmJob& job) {
  JobCheckpoint waiting;
  // The cursor as this process has it: none when the cache was reset at start (ResumeAll), which
  // "null" records (Run reads it as no cursor).
  waiting.cursor = job.cursor ? *job.cursor : "null";
  waiting.documents_scanned = job.documents_scanned;
  waiting.progress = job.progress;
  waiting.cache_errors = job.cache_errors;
  waiting.waiting =
      "waiting for an API key the upstream accepts: the gateway holds none for this job's caller "
      "(it restarted since the job began); warm the namespace again to continue";
  Status st = co_await Blocking([&] { return store_.Checkpoint(job.id, options_.owner, waiting); });
  if (!st.ok()) {
    spdlog::warn("warm job {}: recording that it waits for a credential failed: {}", job.id,
                 st.ToString());
  }
  spdlog::info("warm job {} of '{}' waits for a caller's API key", job.id,
               PartitionNamespace(job.ns));
  Forget(job.id);
}

Task<void> WarmRunner::Run(WarmJob job) {
  const std::string id = job.id;
  const std::string ns = job.ns;  // the partition (common/tenant.h)

  if (options_.credentials && !options_.credentials->ForPartition(ns)) {
    co_await WaitForCredential(job);
    co_return;
  }
  const RequestSlices::BackgroundWork busy = RequestSlices::BackgroundIn(options_.request_slices);
  // Before any page is read: writes through the namespace's other partitions reach this one.
  co_await cache_.RegisterPartition(ns);

  std::optional<uint64_t> start_wm;
  uint64_t approx_rows = 0;
  co_await ReadMetadata(ns, &start_wm, &approx_rows);
  // While the index is updating, the last stable watermark still holds (docs/design.md §6.2).
  if (!start_wm && watcher_) start_wm = watcher_->StableAsOf(ns);

  std::optional<std::string> cursor;  // JSON text of the last id paged
  if (job.cursor) {
    boost::system::error_code ec;
    json::value c = json::parse(*job.cursor, ec);
    if (!ec && !c.is_null()) cursor = SerializeJson(c);
  }
  auto progress = std::make_shared<JobProgress>();
  progress->scanned = job.documents_scanned;
  progress->cache_errors = job.cache_errors;
  progress->approx_rows = approx_rows;
  const size_t page_size = static_cast<size_t>(std::max(1, job.page_size));
  auto typed = cache_.KnownIdType(ns);

  if (StopRequested(id)) {
    Forget(id);
    co_return;  // the store already says cancelled
  }
  // Where the job's time goes, for its completion log line: waiting for upstream pages (the
  // pipeline's goal is that this is nearly all of it), parsing, cache writes and checkpoints.
  const SteadyClock::time_point started = SteadyClock::now();
  SteadyClock::duration upstream_wait{}, parse{};
  std::shared_ptr<PageRead>& next = progress->reading;
  next = co_await StartRead(ns, page_size, cursor);
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  // Page writes in flight, oldest first; each waits for the one before it (see WritePage).
  std::deque<std::shared_ptr<PageWrite>> writing;
  // Ends the job early: the read ahead is dropped, the pages being written finish first (their
  // verdict wins: a cache that went cold, a stop), then the job fails with `failure` or, when
  // that is empty, just stops.
  auto finish_early = [&](std::string failure) -> Task<void> {
    Abandon(next);
    if (!writing.empty()) {
      WriteOutcome w = co_await AwaitWrite(writing.back());  // the last waits for all the others
      writing.clear();
      if (!w.failure.empty()) failure = std::move(w.failure);
      if (w.stop && w.failure.empty()) failure.clear();
    }
    if (failure.empty()) {
      Forget(id);
    } else {
      co_await End(id, JobStatus::kFailed, std::move(failure), std::nullopt);
    }
  };
  for (;;) {
    SteadyClock::time_point t0 = SteadyClock::now();
    Result<http::Response> res = co_await AwaitRead(next);  // a page write may wake it
    upstream_wait += SteadyClock::now() - t0;
    auto mark = next->mark;
    next.reset();
    // Stopped (the store already says cancelled), or a page write ended the job.
    if (StopRequested(id) || progress->ended) {
      co_await finish_early(std::string());
      co_return;
    }
    std::string failure;
    if (!res.ok()) {
      failure = "upstream page read failed: " + res.status().message();
    } else if (res->result_int() == 404) {
      failure = "namespace '" + std::string(PartitionNamespace(ns)) + "' was not found upstream";
    } else if (res->result_int() / 100 != 2) {
      failure = "upstream page read failed with status " + std::to_string(res->result_int()) +
                ": " + res->body().substr(0, 300);
    }
    if (!failure.empty()) {
      co_await finish_early(std::move(failure));
      co_return;
    }

    // Read page N+1 while page N is parsed, written and checkpointed: a look at page N gives
    // its last id (the next cursor) before the parse does.
    auto has_more = [&](size_t returned) {
      return returned > page_size || (page_size >= kTopKLimit && returned == kTopKLimit);
    };
    // One trip to the page thread: it peeks, starts the read of page N+1 on the job's executor
    // at once, then parses (and, once the id type is known, keys) page N while the previous
    // page is still being written. The read is registered before the trip, so a page write that
    // ends the job meanwhile drops it, started or not.
    t0 = SteadyClock::now();
    auto ahead = std::make_shared<PageRead>(ex);
    next = ahead;
    bool reading_ahead = false;
    std::optional<WarmPagePeek> peek;
    uint64_t unkeyed = 0;
    CacheBatch batch;
    Result<WarmPage> page = co_await OffLoop(*page_thread_, [&]() -> Result<WarmPage> {
      auto read_ahead = [&](const std::optional<WarmPagePeek>& seen) {
        peek = seen;
        if (!peek || !peek->id_json || !has_more(peek->returned)) return;
        reading_ahead = true;
        asio::post(ex, [this, ex, ahead, ns, page_size, after = *peek->id_json] {
          LaunchRead(ex, ahead, ns, page_size, after);
        });
      };
      Result<WarmPage> p =
          PeekAndParseWarmPage(std::move(res->body()), page_size, page_size - 1, read_ahead);
      if (p.ok() && typed) batch = KeyRows(cache_, ns, *p, typed, &unkeyed);
      return p;
    });
    if (!reading_ahead) next.reset();
    parse += SteadyClock::now() - t0;
    if (!page.ok() || (page->taken > 0 && !page->last_id_json)) {
      co_await finish_early("upstream page read returned an unexpected body");
      co_return;
    }
    const bool more = has_more(page->returned);
    if (page->taken > 0) cursor = std::move(page->last_id_json);
    if (next && (!more || cursor != peek->id_json)) {  // the parse has the last word
      Abandon(next);
      next.reset();
    }
    if (more && !next) next = co_await StartRead(ns, page_size, cursor);

    if (!typed && !page->rows.empty()) {
      // The namespace's id type follows from the ids themselves, or from its schema.
      typed = IdTypeFromFirstRow(*page);
      if (!typed) typed = co_await ReadIdType(ns);
      if (typed) cache_.LearnIdType(ns, *typed);
      batch = co_await OffLoop(*page_thread_,
                                     [&] { return KeyRows(cache_, ns, *page, typed, &unkeyed); });
    }

    // Page N's write starts at once and waits inside for page N-1's checkpoint, so the next
    // read is never held up by a write; at most kWritesInFlight pages are held in memory.
    auto write = std::make_shared<PageWrite>(ex);
    std::shared_ptr<PageWrite> previous = writing.empty() ? nullptr : writing.back();
    asio::co_spawn(ex,
                   WritePage(write, std::move(previous), progress, id, ns, std::move(batch),
                             std::move(mark), page->taken, unkeyed, cursor),
                   asio::detached);
    writing.push_back(std::move(write));
    if (!more || writing.size() > kWritesInFlight) {
      WriteOutcome w = co_await AwaitWrite(more ? writing.front() : writing.back());
      writing.pop_front();
      if (!more) writing.clear();
      if (!w.failure.empty() || w.stop) {
        co_await finish_early(std::move(w.failure));
        co_return;
      }
    }
    if (!more) break;
  }

  if (start_wm) {
    Status st = co_await cache_.RecordWarmedThrough(ns, *start_wm);
    if (!st.ok()) spdlog::warn("warm job {}: recording cache_warmed_through failed", id);
  }
  co_await End(id, JobStatus::kCompleted, std::string(), start_wm);
  auto secs = [](SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); };
  const SteadyClock::duration total = SteadyClock::now() - started;
  for (auto [stage, d] : {std::pair{"total", total}, std::pair{"upstream_wait", upstream_wait},
                          std::pair{"parse", parse}, std::pair{"cache_write", progress->cache_write},
                          std::pair{"checkpoint", progress->checkpoint}}) {
    MetricsOr(options_.metrics)
        .GetCounter("layer_warm_stage_microseconds_total",
                    "Time completed warm jobs spent, by stage (the stages overlap; total is wall "
                    "time)",
                    {{"stage", stage}})
        .Inc(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
  }
  spdlog::info(
      "warm job {} of '{}' completed: {} documents in {:.2f} s ({:.2f} s waiting for "
      "upstream pages, {:.2f} s parsing, {:.2f} s writing the cache, {:.2f} s "
      "checkpointing)",
      id, ns, progress->scanned, secs(total), secs(upstream_wait),
      secs(parse), secs(progress->cache_write), secs(progress->checkpoint));
}

Task<void> WarmRunner::WritePage(std::shared_ptr<PageWrite> w,
                                       std::shared_ptr<PageWrite> previous,
                                       std::shared_ptr<JobProgress> progress, std::string id,
                                       std::string ns, CacheBatch batch, WarmMark mark,
                                       uint64_t taken, uint64_t unkeyed,
                                       std::optional<std::string> cursor) {
  // The cache write goes first, while the previous page may still be checkpointing: pages hold
  // disjoint ids, so their writes need no order among themselves.
  uint64_t not_warmed = unkeyed;  // a row the cache cannot key is a row not warmed
  std::string failure;
  if (!batch.empty()) {
    const size_t n = batch.size();
    SteadyClock::time_point t0 = SteadyClock::now();
    auto put = co_await cache_.PutWarmPage(ns, std::move(batch), std::move(mark));
    progress->cache_write += SteadyClock::now() - t0;
    if (!put.ok()) {
      if (!cache_.guard() || cache_.guard()->breaker_state() != cache::BreakerState::kClosed) {
        failure = "cache_cold: the cache became unavailable: " + put.status().message();
      }
      not_warmed += n;
    }
  }
  auto report = [&](WriteOutcome outcome) {
    if (!outcome.failure.empty() || outcome.stop) {
      // The job ends here: wake the job if it waits for a page read ahead, which is dropped.
      progress->ended = true;
      if (std::shared_ptr<PageRead> read = progress->reading) {
        Abandon(read);
        if (!read->result) read->result.emplace(Status::Unavailable("the warm job ended"));
        read->done.cancel();
      }
    }
    w->outcome = std::move(outcome);
    w->finished = true;
    w->done.cancel();
  };
  // Checkpoints go in page order, and the totals they carry advance in page order.
  if (previous) {
    WriteOutcome before = co_await AwaitWrite(std::move(previous));
    if (!before.failure.empty() || before.stop) {  // the job ended there: this page is dropped
      report(std::move(before));
      co_return;
    }
  }
  if (!failure.empty()) {
    report(WriteOutcome{std::move(failure), false});
    co_return;
  }
  // Only now, with the page in the cache, may a checkpoint claim it.
  progress->cache_errors += not_warmed;
  progress->scanned += taken;
  WarmJobCheckpoint cp;
  cp.cursor = std::move(cursor);
  cp.documents_scanned = progress->scanned;
  cp.cache_errors = progress->cache_errors;
  cp.progress = progress->approx_rows > 0
                    ? std::min(0.999, double(progress->scanned) / double(progress->approx_rows))
                    : 0.0;
  SteadyClock::time_point t0 = SteadyClock::now();
  Status st = co_await Blocking([&] { return store_.Checkpoint(id, options_.owner, cp); });
  if (!st.ok() && st.retryable()) {
    // A store out of reach for a moment (a restart, a failover, a connection broken mid-call)
    // may answer shortly: the checkpoint is tried again, with backoff, for up to a lease, while
    // the pages behind it wait (checkpoints go in page order). Repeating is safe: a checkpoint
    // that committed before its connection broke writes the same values again, and a lease that
    // ran out meanwhile lets another replica claim the job, which the repeat then finds
    // (Aborted: this runner stops).
    spdlog::warn(
        "warm job {}: checkpointing after {} documents failed: {}; trying again for up "
        "to {} s",
        id, cp.documents_scanned, st.ToString(),
        std::chrono::duration_cast<std::chrono::seconds>(options_.lease).count());
    asio::steady_timer backoff(co_await asio::this_coro::executor);
    std::chrono::milliseconds delay = options_.retry_base;
    const SteadyClock::time_point give_up = SteadyClock::now() + options_.lease;
    while (!st.ok() && st.retryable() && SteadyClock::now() < give_up && !StopRequested(id)) {
      backoff.expires_after(delay);
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      delay = std::min(delay * 2, kMaxCheckpointBackoff);
      st = co_await Blocking([&] { return store_.Checkpoint(id, options_.owner, cp); });
    }
    if (st.ok()) spdlog::info("warm job {}: checkpointed again; the job store answers", id);
  }
  progress->checkpoint += SteadyClock::now() - t0;
  if (!st.ok() && st.code() != StatusCode::kAborted && st.code() != StatusCode::kNotFound) {
    // The store could not record the page: the job fails (End keeps trying to record that), so a
    // later warm of the namespace is never held by a job nobody runs.
    report(WriteOutcome{"the job store failed: " + st.message(), false});
    co_return;
  }
  // Cancelled, deleted, or the lease was lost to another replica: stop quietly.
  report(WriteOutcome{std::string(), !st.ok() || StopRequested(id)});
}

Task<WarmRunner::WriteOutcome> WarmRunner::AwaitWrite(std::shared_ptr<PageWrite> w) {
  if (!w->finished) co_await w->done.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return w->outcome;
}

}  // namespace layer::jobs
