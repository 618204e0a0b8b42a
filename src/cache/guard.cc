#include "cache/guard.h"

#include <algorithm>
#include <exception>
#include <future>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.h"
#include "common/thread.h"

namespace layer::cache {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

// The Status of a backend call's outcome, whichever type it returns.
const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

enum OutcomeLabel { kOk = 0, kError = 1, kTimeoutLabel = 2, kRejected = 3 };
constexpr std::string_view kOutcomeNames[] = {"ok", "error", "timeout", "rejected"};

// A failure is anything that says the cache could not answer.
bool IsFailure(const Status& s) {
  return !s.ok() && s.code() != StatusCode::kInvalidArgument && s.code() != StatusCode::kNotFound;
}

std::string ErrorKind(const Status& s) {
  // "IoError" -> "io_error"
  std::string out;
  for (char c : StatusCodeName(s.code())) {
    if (c >= 'A' && c <= 'Z') {
      if (!out.empty()) out.push_back('_');
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Runs a backend call; nothing escapes.
template <typename R, typename Fn>
R RunCatching(Fn& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cache backend threw: ") + e.what());
  } catch (...) {
    return Status::Internal("cache backend threw");
  }
}

// Shared between a waiting coroutine and the pool thread running the backend call. The pool side
// touches the waiter's timer and executor only under `mu` and only while not abandoned, so a late
// call never reaches into an io_context that may be gone.
template <typename R>
struct PendingCall {
  std::mutex mu;
  std::optional<R> result;                  // set by the pool thread unless abandoned
  bool abandoned = false;                   // set once the waiter stops waiting
  asio::steady_timer* timer = nullptr;      // the waiter's deadline timer (in its frame)
  std::optional<asio::any_io_executor> ex;  // the waiter's executor
};

// Marks the call abandoned when the waiting coroutine's frame goes away by any path.
template <typename R>
struct AbandonOnExit {
  std::shared_ptr<PendingCall<R>> call;
  ~AbandonOnExit() {
    std::lock_guard lk(call->mu);
    call->abandoned = true;
    call->timer = nullptr;
    call->ex.reset();
  }
};

}  // namespace

std::string_view BreakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

CacheGuard::CacheGuard(std::shared_ptr<DocumentCache> backend, CacheGuardOptions options)
    : backend_(std::move(backend)),
      intents_(backend_ ? backend_->write_intents() : nullptr),
      options_(std::move(options)),
      metrics_(MetricsOr(options_.metrics)),
      pool_(std::make_unique<asio::thread_pool>(std::max(1, options_.threads))),
      bulk_pool_(std::make_unique<asio::thread_pool>(1)) {
  asio::post(*bulk_pool_, [] { NameCurrentThread("layer-cache-bulk"); });
  for (size_t op = 0; op < kCacheOpCount; ++op) {
    std::string name(CacheOpName(static_cast<CacheOp>(op)));
    for (size_t o = 0; o < 4; ++o) {
      durations_[op][o] = &metrics_.GetHistogram(
          "layer_cache_op_duration_seconds", "Document cache operation latency (guarded)",
          {{"op", name}, {"status", std::string(kOutcomeNames[o])}});
    }
    common_errors_[op][0] =
        &metrics_.GetCounter("layer_cache_op_errors_total", "Document cache operation errors",
                             {{"op", name}, {"kind", "timeout"}});
    common_errors_[op][1] =
        &metrics_.GetCounter("layer_cache_op_errors_total", "Document cache operation errors",
                             {{"op", name}, {"kind", "circuit_open"}});
  }
  state_gauge_ = &metrics_.GetGauge("layer_cache_breaker_state",
                                    "Document cache breaker: 0 closed, 1 open, 2 half-open");
  state_gauge_->Set(0);
  try_get_fallbacks_ = &metrics_.GetCounter(
      "layer_cache_try_get_fallbacks_total",
      "Non-blocking cache reads the backend declined (would need I/O); the caller used Get");
}

CacheGuard::~CacheGuard() {
  // Lets late backend calls finish; they hold their own copies of everything they touch.
  pool_->join();
  bulk_pool_->join();
}

void CacheGuard::PrepareRequestThread() const {
  thread_local bool prepared = false;
  if (prepared) return;
  prepared = true;
  NameCurrentThread("layer-cache");
  if (options_.request_slices) {
    // Ends with the thread (the pool's threads are joined before the guard, and so before the
    // RequestSlices, goes).
    thread_local RequestSlices::Enrollment enrolled;
    enrolled = options_.request_slices->EnrollCurrentThread();
  }
}

SteadyClock::time_point CacheGuard::Now() const { return ClockOr(options_.clock).Steady(); }

void CacheGuard::SetStateLocked(BreakerState s) {
  state_ = s;
  state_gauge_->Set(static_cast<double>(static_cast<int>(s)));
}

CacheGuard::Ticket CacheGuard::Admit() {
  std::lock_guard lk(mu_);
  switch (state_) {
    case BreakerState::kClosed:
      return {true, false};
    case BreakerState::kOpen:
      if (Now() - opened_at_ >= options_.open_interval) {
        SetStateLocked(BreakerState::kHalfOpen);
        probe_started_ = Now();
        return {true, true};
      }
      return {false, false};
    case BreakerState::kHalfOpen:
      // A probe whose caller vanished without reporting must not wedge the breaker.
      if (Now() - probe_started_ >= options_.open_interval + options_.op_timeout) {
        probe_started_ = Now();
        return {true, true};
      }
      return {false, false};
  }
  return {false, false};
}

void CacheGuard::RecordRejected(CacheOp op) {
  const size_t i = static_cast<size_t>(op);
  durations_[i][kRejected]->Observe(0);
  common_errors_[i][1]->Inc();
}

void CacheGuard::Finish(CacheOp op, const Ticket& ticket, const Status& status,
                        SteadyClock::duration elapsed) {
  const size_t i = static_cast<size_t>(op);
  const double secs = std::chrono::duration<double>(elapsed).count();
  const bool failure = IsFailure(status);
  if (status.ok() || !failure) {
    durations_[i][kOk]->Observe(secs);
  } else if (status.IsTimeout()) {
    durations_[i][kTimeoutLabel]->Observe(secs);
    common_errors_[i][0]->Inc();
  } else {
    durations_[i][kError]->Observe(secs);
    metrics_
        .GetCounter("layer_cache_op_errors_total", "Document cache operation errors",
                    {{"op", std::string(CacheOpName(op))}, {"kind", ErrorKind(status)}})
        .Inc();
  }

  std::lock_guard lk(mu_);
  if (failure) {
    last_error_ = status;
    // Only a call admitted while closed, or the probe, moves the breaker; late failures of calls
    // admitted before it opened do not extend the open interval.
    if (ticket.probe || state_ == BreakerState::kClosed) {
      if (state_ == BreakerState::kClosed || connected_) {
        spdlog::warn("document cache: breaker opens after {} failed: {}", CacheOpName(op),
                     status.ToString());
      }
      SetStateLocked(BreakerState::kOpen);
      opened_at_ = Now();
      connected_ = false;
    }
    return;
  }
  if (ticket.probe && state_ == BreakerState::kHalfOpen) {
    SetStateLocked(BreakerState::kClosed);
    spdlog::info("document cache: breaker closes ({} probe succeeded)", CacheOpName(op));
  }
  if (state_ == BreakerState::kClosed && !connected_) {
    connected_ = true;
    ++generation_;
    connected_at_ = SteadyClock::now();
  }
}

template <typename R, typename Fn>
Task<R> CacheGuard::Call(CacheOp op, Fn fn, CacheLane lane, bool always) {
  Ticket ticket = Admit();
  if (!ticket.admitted && always) {
    ticket.admitted = true;  // not a probe: its outcome moves nothing (Finish)
  } else if (!ticket.admitted) {
    RecordRejected(op);
    co_return Status::Unavailable("cache circuit open");
  }
  const SteadyClock::time_point start = SteadyClock::now();
  const bool bulk = lane == CacheLane::kBulk;
  const std::chrono::milliseconds deadline =
      bulk || always ? options_.bulk_op_timeout : options_.op_timeout;
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto call = std::make_shared<PendingCall<R>>();
  call->timer = &timer;
  call->ex.emplace(timer.get_executor());
  AbandonOnExit<R> abandon{call};  // declared after `timer`, so it runs before the timer dies
  asio::post(bulk ? *bulk_pool_ : *pool_, [this, bulk, call, fn = std::move(fn)]() mutable {
    if (!bulk) PrepareRequestThread();
    R r = RunCatching<R>(fn);
    std::lock_guard lk(call->mu);
    if (call->abandoned) return;  // the caller timed out: discard
    call->result.emplace(std::move(r));
    // Wake the waiter on its own executor (timers are not thread-safe).
    asio::post(*call->ex, [call] {
      std::lock_guard lk2(call->mu);
      if (!call->abandoned) call->timer->cancel();
    });
  });
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  std::optional<R> result;
  {
    std::lock_guard lk(call->mu);
    call->abandoned = true;
    call->timer = nullptr;
    call->ex.reset();
    result = std::move(call->result);
  }
  if (!result) {
    result.emplace(Status::Timeout("cache " + std::string(CacheOpName(op)) + " timed out after " +
                                   std::to_string(deadline.count()) + " ms"));
  }
  Finish(op, ticket, StatusOf(*result), SteadyClock::now() - start);
  co_return std::move(*result);
}

template <typename R, typename Fn>
R CacheGuard::CallSync(CacheOp op, Fn fn) {
  const Ticket ticket = Admit();
  if (!ticket.admitted) {
    RecordRejected(op);
    return Status::Unavailable("cache circuit open");
  }
  const SteadyClock::time_point start = SteadyClock::now();
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> future = promise->get_future();
  asio::post(*pool_, [this, promise, fn = std::move(fn)]() mutable {
    PrepareRequestThread();
    promise->set_value(RunCatching<R>(fn));
  });
  std::optional<R> result;
  if (future.wait_for(options_.op_timeout) == std::future_status::ready) {
    result.emplace(future.get());
  } else {
    result.emplace(Status::Timeout("cache " + std::string(CacheOpName(op)) + " timed out after " +
                                   std::to_string(options_.op_timeout.count()) + " ms"));
  }
  Finish(op, ticket, StatusOf(*result), SteadyClock::now() - start);
  return std::move(*result);
}

// The public methods are plain functions returning Call's coroutine (not coroutines awaiting it):
// the callable is handed to Call as an ordinary argument, never as a temporary inside a co_await
// expression (GCC 12 mishandles such temporaries). Each callable captures the backend's
// shared_ptr and owns copies of its inputs, so a late call stays valid after the caller has gone;
// those that capture `this` rely on the destructor joining the pool.

Task<Result<std::optional<CachedDoc>>> CacheGuard::Get(std::string ns, DocId id) {
  return Call<Result<std::optional<CachedDoc>>>(
      CacheOp::kGet,
      [b = backend_, ns = std::move(ns), id = std::move(id)] { return b->Get(ns, id); });
}

TryGetResult CacheGuard::TryGet(std::string_view ns, const DocId& id) {
  {
    std::lock_guard lk(mu_);
    // Open: Get rejects. Half-open: Get is the probe, which must go through the deadline path.
    if (state_ != BreakerState::kClosed) return std::nullopt;
  }
  const SteadyClock::time_point start = SteadyClock::now();
  auto fn = [&] { return backend_->TryGet(ns, id); };
  TryGetResult result = RunCatching<TryGetResult>(fn);
  if (!result) {
    try_get_fallbacks_->Inc();
    return std::nullopt;
  }
  Finish(CacheOp::kTryGet, Ticket{true, false}, result->status(), SteadyClock::now() - start);
  return result;
}

Task<Result<std::vector<std::optional<CachedDoc>>>> CacheGuard::MultiGet(
    std::string ns, std::vector<DocId> ids) {
  return Call<Result<std::vector<std::optional<CachedDoc>>>>(
      CacheOp::kMultiGet,
      [b = backend_, ns = std::move(ns), ids = std::move(ids)] { return b->MultiGet(ns, ids); });
}

Task<Result<bool>> CacheGuard::PutIfNewer(std::string ns, DocId id, CachedDoc doc) {
  return Call<Result<bool>>(CacheOp::kPutIfNewer,
                            [b = backend_, ns = std::move(ns), id = std::move(id),
                             doc = std::move(doc)] { return b->PutIfNewer(ns, id, doc); });
}

Task<Result<std::vector<bool>>> CacheGuard::PutIfNewerBatch(
    std::string ns, std::vector<std::pair<DocId, CachedDoc>> docs, CacheLane lane) {
  return Call<Result<std::vector<bool>>>(
      CacheOp::kPutIfNewerBatch,
      [b = backend_, ns = std::move(ns), docs = std::move(docs)] {
        return b->PutIfNewerBatch(ns, docs);
      },
      lane);
}

Task<Status> CacheGuard::Tombstone(std::string ns, DocId id, uint64_t stamp, bool repairable) {
  return Call<Status>(CacheOp::kTombstone,
                      [b = backend_, ns = std::move(ns), id = std::move(id), stamp, repairable] {
                        return b->Tombstone(ns, id, stamp, repairable);
                      });
}

Task<Status> CacheGuard::Invalidate(std::string ns, std::vector<DocId> ids) {
  return Call<Status>(
      CacheOp::kInvalidate,
      [b = backend_, ns = std::move(ns), ids = std::move(ids)] { return b->Invalidate(ns, ids); });
}

Task<Status> CacheGuard::PutVector(std::string ns, DocId id, std::string f32le) {
  return Call<Status>(CacheOp::kPutVector,
                      [b = backend_, ns = std::move(ns), id = std::move(id), v = std::move(f32le)] {
                        return b->PutVector(ns, id, v);
                      });
}

Task<Result<std::optional<std::string>>> CacheGuard::GetVector(std::string ns, DocId id) {
  return Call<Result<std::optional<std::string>>>(
      CacheOp::kGetVector,
      [b = backend_, ns = std::move(ns), id = std::move(id)] { return b->GetVector(ns, id); });
}

Task<Status> CacheGuard::BumpEpoch(std::string ns) {
  return Call<Status>(CacheOp::kBumpEpoch, [this, b = backend_, ns = std::move(ns)] {
    Status s = b->BumpEpoch(ns);
    records_version_.fetch_add(1, std::memory_order_release);
    return s;
  });
}

Task<Result<std::optional<std::string>>> CacheGuard::GetNamespaceRecord(std::string ns,
                                                                              std::string key) {
  return Call<Result<std::optional<std::string>>>(
      CacheOp::kGetNamespaceRecord, [b = backend_, ns = std::move(ns), key = std::move(key)] {
        return b->GetNamespaceRecord(ns, key);
      });
}

Task<Status> CacheGuard::PutNamespaceRecord(std::string ns, std::string key,
                                                  std::string value) {
  return Call<Status>(
      CacheOp::kPutNamespaceRecord,
      [this, b = backend_, ns = std::move(ns), key = std::move(key), value = std::move(value)] {
        Status s = b->PutNamespaceRecord(ns, key, value);
        records_version_.fetch_add(1, std::memory_order_release);
        return s;
      });
}

Task<Result<std::vector<std::pair<std::string, std::string>>>>
CacheGuard::ListNamespaceRecords(std::string key) {
  return Call<Result<std::vector<std::pair<std::string, std::string>>>>(
      CacheOp::kListNamespaceRecords,
      [b = backend_, key = std::move(key)] { return b->ListNamespaceRecords(key); });
}

Task<Result<ScanPage>> CacheGuard::ScanNamespace(std::string ns, std::optional<DocId> after,
                                                 size_t limit) {
  return Call<Result<ScanPage>>(
      CacheOp::kScanNamespace,
      [b = backend_, ns = std::move(ns), after = std::move(after), limit] {
        return b->ScanNamespace(ns, after, limit);
      },
      CacheLane::kBulk);
}

Task<Status> CacheGuard::Ping() {
  return Call<Status>(CacheOp::kPing, [b = backend_] { return b->Ping(); });
}

Task<Result<CacheStats>> CacheGuard::Stats() {
  return Call<Result<CacheStats>>(CacheOp::kStats,
                                  [b = backend_]() -> Result<CacheStats> { return b->Stats(); });
}

Task<Result<IntentStart>> CacheGuard::BeginIntent(std::string ns, std::vector<DocId> ids,
                                                  bool whole_namespace, uint64_t proposed_stamp,
                                                  std::chrono::milliseconds deadline) {
  return Call<Result<IntentStart>>(
      CacheOp::kBeginIntent,
      [b = backend_, w = intents_, ns = std::move(ns), ids = std::move(ids), whole_namespace,
       proposed_stamp, deadline]() -> Result<IntentStart> {
        if (!w) return Status::Internal("the cache keeps no write intents");
        return w->BeginIntent(ns, ids, whole_namespace, proposed_stamp, deadline);
      },
      CacheLane::kRequest, /*always=*/true);
}

Task<Status> CacheGuard::EndIntent(std::string ns, std::vector<DocId> ids, bool whole_namespace,
                                   uint64_t generation) {
  return Call<Status>(
      CacheOp::kEndIntent,
      [b = backend_, w = intents_, ns = std::move(ns), ids = std::move(ids), whole_namespace,
       generation] {
        if (!w) return Status::Internal("the cache keeps no write intents");
        return w->EndIntent(ns, ids, whole_namespace, generation);
      },
      CacheLane::kRequest, /*always=*/true);
}

Task<Result<std::vector<IntentLookup>>> CacheGuard::Lookup(std::string ns, std::vector<DocId> ids) {
  return Call<Result<std::vector<IntentLookup>>>(
      CacheOp::kLookup, [b = backend_, w = intents_, ns = std::move(ns),
                         ids = std::move(ids)]() -> Result<std::vector<IntentLookup>> {
        if (!w) return Status::Internal("the cache keeps no write intents");
        return w->Lookup(ns, ids);
      });
}

Task<Result<uint64_t>> CacheGuard::Generation(std::string ns) {
  return Call<Result<uint64_t>>(
      CacheOp::kGeneration, [b = backend_, w = intents_, ns = std::move(ns)]() -> Result<uint64_t> {
        if (!w) return Status::Internal("the cache keeps no write intents");
        return w->Generation(ns);
      });
}

Status CacheGuard::PingSync() {
  return CallSync<Status>(CacheOp::kPing, [b = backend_] { return b->Ping(); });
}

Result<CacheStats> CacheGuard::StatsSync() {
  return CallSync<Result<CacheStats>>(
      CacheOp::kStats, [b = backend_]() -> Result<CacheStats> { return b->Stats(); });
}

bool CacheGuard::connected() const {
  std::lock_guard lk(mu_);
  return connected_;
}

std::chrono::steady_clock::time_point CacheGuard::connected_at() const {
  std::lock_guard lk(mu_);
  return connected_at_;
}

uint64_t CacheGuard::generation() const {
  std::lock_guard lk(mu_);
  return generation_;
}

Status CacheGuard::last_error() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

BreakerState CacheGuard::breaker_state() const {
  std::lock_guard lk(mu_);
  return state_;
}

}  // namespace layer::cache
