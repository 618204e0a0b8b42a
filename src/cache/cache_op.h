// CacheOp: one value per DocumentCache method, for per-operation metrics (CacheGuard) and
// per-operation fault knobs (FaultInjectingCache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace layer::cache {

enum class CacheOp : uint8_t {
  kGet = 0,
  kTryGet,
  kMultiGet,
  kPutIfNewer,
  kPutIfNewerBatch,
  kTombstone,
  kInvalidate,
  kPutVector,
  kGetVector,
  kBumpEpoch,
  kGetNamespaceRecord,
  kPutNamespaceRecord,
  kListNamespaceRecords,
  kScanNamespace,
  kPing,
  kStats,
  // WriteIntents (write_intents.h)
  kBeginIntent,
  kEndIntent,
  kLookup,
  kGeneration,
};

inline constexpr size_t kCacheOpCount = static_cast<size_t>(CacheOp::kGeneration) + 1;

// The metric label of an op: "get", "multi_get", "put_if_newer", ...
constexpr std::string_view CacheOpName(CacheOp op) {
  switch (op) {
    case CacheOp::kGet:
      return "get";
    case CacheOp::kTryGet:
      return "try_get";
    case CacheOp::kMultiGet:
      return "multi_get";
    case CacheOp::kPutIfNewer:
      return "put_if_newer";
    case CacheOp::kPutIfNewerBatch:
      return "put_if_newer_batch";
    case CacheOp::kTombstone:
      return "tombstone";
    case CacheOp::kInvalidate:
      return "invalidate";
    case CacheOp::kPutVector:
      return "put_vector";
    case CacheOp::kGetVector:
      return "get_vector";
    case CacheOp::kBumpEpoch:
      return "bump_epoch";
    case CacheOp::kGetNamespaceRecord:
      return "get_namespace_record";
    case CacheOp::kPutNamespaceRecord:
      return "put_namespace_record";
    case CacheOp::kListNamespaceRecords:
      return "list_namespace_records";
    case CacheOp::kScanNamespace:
      return "scan_namespace";
    case CacheOp::kPing:
      return "ping";
    case CacheOp::kStats:
      return "stats";
    case CacheOp::kBeginIntent:
      return "begin_intent";
    case CacheOp::kEndIntent:
      return "end_intent";
    case CacheOp::kLookup:
      return "lookup";
    case CacheOp::kGeneration:
      return "generation";
  }
  return "unknown";
}

// The op whose CacheOpName is `name`, if any.
constexpr std::optional<CacheOp> CacheOpFromName(std::string_view name) {
  for (size_t i = 0; i < kCacheOpCount; ++i) {
    if (CacheOpName(static_cast<CacheOp>(i)) == name) return static_cast<CacheOp>(i);
  }
  return std::nullopt;
}

}  // namespace layer::cache
