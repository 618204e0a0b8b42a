// FaultInjectingCache: a DocumentCache decorator for tests that injects errors, latency and
// disconnects in front of another backend.
//
// Knobs (all thread-safe, effective for calls that start after the knob is set):
//  * FailAll(status) / FailOp(op, status): the op returns `status` without reaching the inner
//    backend (Stats() returns empty stats with backend "fault-injecting").
//  * SetLatency(d) / SetOpLatency(op, d): the op sleeps `d` before running. Sleeping callers wake
//    early when ClearLatency() or Reconnect() is called, so tests do not wait out long latencies.
//  * Disconnect() / Reconnect(): while disconnected every op fails with Unavailable.
//  * TryGet (non-blocking) follows the kGet knobs, since a caller falls back from it to Get: an
//    injected latency makes it answer "would block" at once without sleeping (so the caller's Get
//    takes the latency, on the guard's threads and under its deadline), an injected failure or a
//    disconnect is returned at once. SetTryGetWouldBlock(true) makes every TryGet answer "would
//    block", to drive the slow path with no other fault.
// A per-op knob overrides the global one. Ownership: shares the inner backend.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "cache/cache_op.h"
#include "cache/document_cache.h"
#include "cache/write_intents.h"

namespace layer::cache {

class FaultInjectingCache final : public DocumentCache, public WriteIntents {
 public:
  explicit FaultInjectingCache(std::shared_ptr<DocumentCache> inner);

  void FailAll(Status status);
  void FailOp(CacheOp op, Status status);
  void ClearFailures();
  void SetLatency(std::chrono::milliseconds latency);
  void SetOpLatency(CacheOp op, std::chrono::milliseconds latency);
  void ClearLatency();
  void Disconnect();
  void Reconnect();
  void SetTryGetWouldBlock(bool would_block);
  bool disconnected() const;
  // Calls that reached this decorator (injected failures included), per op.
  uint64_t calls(CacheOp op) const { return calls_[static_cast<size_t>(op)].load(); }

  Result<std::optional<CachedDoc>> Get(std::string_view ns, const DocId& id) override;
  TryGetResult TryGet(std::string_view ns, const DocId& id) override;
  Result<std::vector<std::optional<CachedDoc>>> MultiGet(std::string_view ns,
                                                         std::span<const DocId> ids) override;
  Result<bool> PutIfNewer(std::string_view ns, const DocId& id, const CachedDoc& doc) override;
  Result<std::vector<bool>> PutIfNewerBatch(
      std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) override;
  Status Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                   bool repairable = false) override;
  Status Invalidate(std::string_view ns, std::span<const DocId> ids) override;
  Status PutVector(std::string_view ns, const DocId& id, std::string_view f32le) override;
  Result<std::optional<std::string>> GetVector(std::string_view ns, const DocId& id) override;
  Status BumpEpoch(std::string_view ns) override;
  Result<std::optional<std::string>> GetNamespaceRecord(std::string_view ns,
                                                        std::string_view key) override;
  Status PutNamespaceRecord(std::string_view ns, std::string_view key,
                            std::string_view value) override;
  Result<ScanPage> ScanNamespace(std::string_view ns, const std::optional<DocId>& after,
                                 size_t limit) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListNamespaceRecords(
      std::string_view key) override;
  Status Ping() override;
  CacheStats Stats() override;
  // The inner backend's write intents, behind the same knobs (null when it has none).
  WriteIntents* write_intents() override;
  Result<IntentStart> BeginIntent(std::string_view ns, std::span<const DocId> ids,
                                  bool whole_namespace, uint64_t proposed_stamp,
                                  std::chrono::milliseconds deadline) override;
  Status EndIntent(std::string_view ns, std::span<const DocId> ids, bool whole_namespace,
                   uint64_t generation) override;
  Result<std::vector<IntentLookup>> Lookup(std::string_view ns,
                                           std::span<const DocId> ids) override;
  Result<uint64_t> Generation(std::string_view ns) override;

 private:
  // Applies latency, then returns the failure to inject for `op`, if any.
  Status Before(CacheOp op);

  const std::shared_ptr<DocumentCache> inner_;
  std::array<std::atomic<uint64_t>, kCacheOpCount> calls_{};

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable wake_;
  uint64_t wake_seq_ = 0;  // bumped to cut sleeps short
  bool disconnected_ = false;
  bool try_get_would_block_ = false;
  std::optional<Status> fail_all_;
  std::array<std::optional<Status>, kCacheOpCount> fail_op_;
  std::chrono::milliseconds latency_{0};
  std::array<std::optional<std::chrono::milliseconds>, kCacheOpCount> op_latency_;
};

}  // namespace layer::cache
