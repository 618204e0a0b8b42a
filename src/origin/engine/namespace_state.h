// In-memory state of one namespace and its serialised form in the write-ahead log.
//
// NamespaceState is guarded by Namespace::mu (engine.cc); these helpers are not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "origin/engine/doc_model.h"
#include "origin/engine/schema.h"

namespace layer::origin {

struct NamespaceMeta {
  Schema schema;
  std::string distance_metric;  // "" until the first vector write
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t last_write_at_ms = 0;
  json::value pinning;  // null when not pinned
};

struct NamespaceState {
  NamespaceMeta meta;
  std::map<DocId, Document> docs;  // ordered by id: the live tie-break and export order
};

// One log record: the namespace metadata after the write plus the documents it put and deleted.
// With `reset` the record replaces all documents (snapshots, copy_from_namespace).
struct LogRecord {
  const NamespaceMeta* meta = nullptr;
  std::vector<std::pair<DocId, const Document*>> puts;
  std::vector<DocId> deletes;
  bool reset = false;
};

std::string EncodeLogRecord(const LogRecord& record);
// Applies a record payload to `state`; false if the payload is not a valid record.
bool ApplyLogRecord(std::string_view payload, NamespaceState* state);
// A record holding the whole state (used for compaction).
std::string EncodeSnapshot(const NamespaceState& state);

// Approximate logical size of a document (for metadata and billing).
uint64_t ApproxDocBytes(const DocId& id, const Document& doc);

}  // namespace layer::origin
