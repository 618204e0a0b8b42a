#include "cache/fault_injecting_cache.h"

namespace layer::cache {

FaultInjectingCache::FaultInjectingCache(std::shared_ptr<DocumentCache> inner)
    : inner_(std::move(inner)) {}

void FaultInjectingCache::FailAll(Status status) {
  std::lock_guard lk(mu_);
  fail_all_ = std::move(status);
}

void FaultInjectingCache::FailOp(CacheOp op, Status status) {
  std::lock_guard lk(mu_);
  fail_op_[static_cast<size_t>(op)] = std::move(status);
}

void FaultInjectingCache::ClearFailures() {
  std::lock_guard lk(mu_);
  fail_all_.reset();
  for (auto& f : fail_op_) f.reset();
}

void FaultInjectingCache::SetLatency(std::chrono::milliseconds latency) {
  std::lock_guard lk(mu_);
  latency_ = latency;
}

void FaultInjectingCache::SetOpLatency(CacheOp op, std::chrono::milliseconds latency) {
  std::lock_guard lk(mu_);
  op_latency_[static_cast<size_t>(op)] = latency;
}

void FaultInjectingCache::ClearLatency() {
  {
    std::lock_guard lk(mu_);
    latency_ = std::chrono::milliseconds(0);
    for (auto& l : op_latency_) l.reset();
    ++wake_seq_;
  }
  wake_.notify_all();
}

void FaultInjectingCache::Disconnect() {
  std::lock_guard lk(mu_);
  disconnected_ = true;
}

void FaultInjectingCache::Reconnect() {
  {
    std::lock_guard lk(mu_);
    disconnected_ = false;
    ++wake_seq_;
  }
  wake_.notify_all();
}

void FaultInjectingCache::SetTryGetWouldBlock(bool would_block) {
  std::lock_guard lk(mu_);
  try_get_would_block_ = would_block;
}

bool FaultInjectingCache::disconnected() const {
  std::lock_guard lk(mu_);
  return disconnected_;
}

Status FaultInjectingCache::Before(CacheOp op) {
  const size_t i = static_cast<size_t>(op);
  calls_[i].fetch_add(1);
  std::unique_lock lk(mu_);
  std::chrono::milliseconds latency = op_latency_[i].value_or(latency_);
  if (latency.count() > 0) {
    const uint64_t seq = wake_seq_;
    wake_.wait_for(lk, latency, [&] { return wake_seq_ != seq; });
  }
  if (disconnected_) return Status::Unavailable("injected: cache disconnected");
  if (fail_op_[i]) return *fail_op_[i];
  if (fail_all_) return *fail_all_;
  return Status::Ok();
}

Result<std::optional<CachedDoc>> FaultInjectingCache::Get(std::string_view ns, const DocId& id) {
  if (Status s = Before(CacheOp::kGet); !s.ok()) return s;
  return inner_->Get(ns, id);
}

TryGetResult FaultInjectingCache::TryGet(std::string_view ns, const DocId& id) {
  calls_[static_cast<size_t>(CacheOp::kTryGet)].fetch_add(1);
  {
    const size_t get = static_cast<size_t>(CacheOp::kGet);
    std::lock_guard lk(mu_);
    if (try_get_would_block_ || op_latency_[get].value_or(latency_).count() > 0) {
      return std::nullopt;
    }
    if (disconnected_) return Status::Unavailable("injected: cache disconnected");
    if (fail_op_[get]) return *fail_op_[get];
    if (fail_all_) return *fail_all_;
  }
  return inner_->TryGet(ns, id);
}

Result<std::vector<std::optional<CachedDoc>>> FaultInjectingCache::MultiGet(
    std::string_view ns, std::span<const DocId> ids) {
  if (Status s = Before(CacheOp::kMultiGet); !s.ok()) return s;
  return inner_->MultiGet(ns, ids);
}

Result<bool> FaultInjectingCache::PutIfNewer(std::string_view ns, const DocId& id,
                                             const CachedDoc& doc) {
  if (Status s = Before(CacheOp::kPutIfNewer); !s.ok()) return s;
  return inner_->PutIfNewer(ns, id, doc);
}

Result<std::vector<bool>> FaultInjectingCache::PutIfNewerBatch(
    std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) {
  if (Status s = Before(CacheOp::kPutIfNewerBatch); !s.ok()) return s;
  return inner_->PutIfNewerBatch(ns, docs);
}

Status FaultInjectingCache::Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                                     bool repairable) {
  if (Status s = Before(CacheOp::kTombstone); !s.ok()) return s;
  return inner_->Tombstone(ns, id, stamp, repairable);
}

Status FaultInjectingCache::Invalidate(std::string_view ns, std::span<const DocId> ids) {
  if (Status s = Before(CacheOp::kInvalidate); !s.ok()) return s;
  return inner_->Invalidate(ns, ids);
}

Status FaultInjectingCache::PutVector(std::string_view ns, const DocId& id,
                                      std::string_view f32le) {
  if (Status s = Before(CacheOp::kPutVector); !s.ok()) return s;
  return inner_->PutVector(ns, id, f32le);
}

Result<std::optional<std::string>> FaultInjectingCache::GetVector(std::string_view ns,
                                                                  const DocId& id) {
  if (Status s = Before(CacheOp::kGetVector); !s.ok()) return s;
  return inner_->GetVector(ns, id);
}

Status FaultInjectingCache::BumpEpoch(std::string_view ns) {
  if (Status s = Before(CacheOp::kBumpEpoch); !s.ok()) return s;
  return inner_->BumpEpoch(ns);
}

Result<std::optional<std::string>> FaultInjectingCache::GetNamespaceRecord(std::string_view ns,
                                                                           std::string_view key) {
  if (Status s = Before(CacheOp::kGetNamespaceRecord); !s.ok()) return s;
  return inner_->GetNamespaceRecord(ns, key);
}

Status FaultInjectingCache::PutNamespaceRecord(std::string_view ns, std::string_view key,
                                               std::string_view value) {
  if (Status s = Before(CacheOp::kPutNamespaceRecord); !s.ok()) return s;
  return inner_->PutNamespaceRecord(ns, key, value);
}

Result<std::vector<std::pair<std::string, std::string>>> FaultInjectingCache::ListNamespaceRecords(
    std::string_view key) {
  if (Status s = Before(CacheOp::kListNamespaceRecords); !s.ok()) return s;
  return inner_->ListNamespaceRecords(key);
}

Result<ScanPage> FaultInjectingCache::ScanNamespace(std::string_view ns,
                                                    const std::optional<DocId>& after,
                                                    size_t limit) {
  if (Status s = Before(CacheOp::kScanNamespace); !s.ok()) return s;
  return inner_->ScanNamespace(ns, after, limit);
}

Status FaultInjectingCache::Ping() {
  if (Status s = Before(CacheOp::kPing); !s.ok()) return s;
  return inner_->Ping();
}

CacheStats FaultInjectingCache::Stats() {
  if (Status s = Before(CacheOp::kStats); !s.ok()) return CacheStats{"fault-injecting", 0, 0};
  return inner_->Stats();
}

WriteIntents* FaultInjectingCache::write_intents() {
  return inner_->write_intents() ? this : nullptr;
}

Result<IntentStart> FaultInjectingCache::BeginIntent(std::string_view ns,
                                                     std::span<const DocId> ids,
                                                     bool whole_namespace, uint64_t proposed_stamp,
                                                     std::chrono::milliseconds deadline) {
  if (Status s = Before(CacheOp::kBeginIntent); !s.ok()) return s;
  return inner_->write_intents()->BeginIntent(ns, ids, whole_namespace, proposed_stamp, deadline);
}

Status FaultInjectingCache::EndIntent(std::string_view ns, std::span<const DocId> ids,
                                      bool whole_namespace, uint64_t generation) {
  if (Status s = Before(CacheOp::kEndIntent); !s.ok()) return s;
  return inner_->write_intents()->EndIntent(ns, ids, whole_namespace, generation);
}

Result<std::vector<IntentLookup>> FaultInjectingCache::Lookup(std::string_view ns,
                                                              std::span<const DocId> ids) {
  if (Status s = Before(CacheOp::kLookup); !s.ok()) return s;
  return inner_->write_intents()->Lookup(ns, ids);
}

Result<uint64_t> FaultInjectingCache::Generation(std::string_view ns) {
  if (Status s = Before(CacheOp::kGeneration); !s.ok()) return s;
  return inner_->write_intents()->Generation(ns);
}

}  // namespace layer::cache
