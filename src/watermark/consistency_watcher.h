// ConsistencyWatcher: the per-namespace stable watermark (docs/design.md §6.1).
//
// Namespaces -- partitions (common/tenant.h), each polled with its tenant's credential -- are
// registered by successful writes (due for a poll at once), metadata reads and
// warms. Every `poll_interval` the watcher polls `GET /v2/namespaces/{ns}/metadata` upstream for
// each registered namespace that is due: namespaces whose index was last seen "updating" (or
// unknown) every tick, "up-to-date" ones every `stable_poll_interval`. When the index is
// up-to-date the stable watermark becomes `poll start − safety_margin` (epoch ms); otherwise the
// previous watermark holds. Poll failures leave the state unchanged; a 404 forgets the namespace.
//
// State lives in this process (each replica polls for itself). Thread-safe; Run() is the loop and
// runs on an IoPool worker until the pool stops.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "http/credentials.h"
#include "http/message.h"
#include "http/upstream.h"

namespace layer::watermark {

struct WatcherOptions {
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds stable_poll_interval{60000};
  int64_t safety_margin_ms = 500;
  // The credential of each namespace's tenant for the polls (docs/design.md §9.7); null: none.
  // A partition whose tenant has none is not polled until one is remembered.
  const http::Credentials* credentials = nullptr;
  const Clock* clock = nullptr;         // wall time of the polls; null: Clock::System()
};

enum class IndexStatus { kUnknown, kUpdating, kStable };

class ConsistencyWatcher {
 public:
  ConsistencyWatcher(http::Upstream& upstream, WatcherOptions options);

  // The watcher's wall time in epoch ms: callers that Observe() a metadata body they fetched
  // themselves take its poll start from here.
  int64_t NowMs() const { return ClockOr(options_.clock).WallMs(); }

  // Adds `ns` (no-op if present); `due_now` schedules a poll at the next tick.
  void Register(const std::string& ns, bool due_now);
  void Forget(const std::string& ns);
  // Applies a metadata body read at `poll_start_ms` (by the watcher or by a metadata request).
  // Returns the index status it shows.
  IndexStatus Observe(const std::string& ns, int64_t poll_start_ms, std::string_view body);

  // Set once, before Run: called (outside the watcher's lock) whenever a namespace's stable
  // watermark advances, with the new watermark (the snapshot writer's trigger).
  void SetOnAdvance(std::function<void(const std::string&, uint64_t)> on_advance) {
    on_advance_ = std::move(on_advance);
  }

  std::optional<uint64_t> StableAsOf(std::string_view ns) const;
  bool IsStable(std::string_view ns) const;
  std::vector<std::string> Namespaces() const;
  // Increases whenever a namespace is added to or removed from Namespaces().
  uint64_t namespaces_version() const {
    return namespaces_version_.load(std::memory_order_acquire);
  }

  Task<void> Run();


 private:
  struct State {
    IndexStatus status = IndexStatus::kUnknown;
    std::optional<uint64_t> stable_as_of;
    int64_t next_poll_ms = 0;
  };
  Task<void> Poll(const std::string& ns);

  http::Upstream& upstream_;
  const WatcherOptions options_;
  mutable std::mutex mu_;  // guards states_
  std::map<std::string, State, std::less<>> states_;
  std::atomic<uint64_t> namespaces_version_{0};
  std::function<void(const std::string&, uint64_t)> on_advance_;
};

// The index status a metadata body reports: index.status "up-to-date" → stable, "updating" →
// updating; without a status, updating if any "unindexed_bytes" > 0 appears, else unknown.
IndexStatus IndexStatusOf(std::string_view metadata_body);

}  // namespace layer::watermark
