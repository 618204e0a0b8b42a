// In-memory state of one namespace and its serialised form in the write-ahead log.
//
// NamespaceState is guarded by Namespace::mu (engine.cc); these helpers are not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "origin/engine/model.h"

namespace layer::origin {

struct NamespaceMeta {
  Schema schema;
  std::string distance_metric;  // "" until the first vector write
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t last_write_at_ms = 0;
  json::value pinning;  // null when not pinned
};

// Query-side indexes derived from a namespace's documents and schema (query_index.cc). Each is
// immutable once built; "doc index" below is a document's position in `docs` iteration order.

// One dense-vector attribute as a contiguous float array (the stored values are f32-exact),
// in blocks of kLanes rows stored dimension-major, so one pass over a block computes kLanes
// distances with SIMD lanes: element d of row r is data[(r / kLanes) * dims * kLanes +
// d * kLanes + r % kLanes]. The last block is zero-padded.
struct VectorColumn {
  static constexpr size_t kLanes = 8;
  size_t dims = 0;
  size_t rows = 0;
  std::vector<float> data;
  std::vector<int64_t> row;     // per doc index: row in `data`, -1 = not in the column
  std::vector<double> sq_norm;  // per row: sum of squares, accumulated in dimension order
  std::vector<bool> has_array;  // per doc index: the attribute holds an array
  // Per row: the document (pointers into NamespaceState::docs, valid while the index is).
  std::vector<const std::pair<const DocId, Document>*> entry;
  // Every document holding an array for the attribute is in the column.
  bool complete = false;

  float At(size_t r, size_t d) const {
    return data[(r / kLanes) * dims * kLanes + d * kLanes + r % kLanes];
  }
};

// Tokens of one full-text attribute, inverted: term -> (doc index, term frequency).
struct TextIndex {
  std::vector<bool> has_attr;     // per doc index
  std::vector<uint32_t> doc_len;  // per doc index: number of tokens
  size_t docs_with_attr = 0;
  double total_len = 0;
  std::unordered_map<std::string, std::vector<std::pair<uint32_t, uint32_t>>> postings;
  std::vector<std::string> sorted_terms;  // for prefix matches
};

// The lazily built indexes of one NamespaceState. Queries (holding the namespace lock shared)
// build and read them under `mu`; every change to the documents or the metadata replaces the
// whole object (NamespaceState::InvalidateIndexes), so a stale index is never consulted.
struct QueryIndexes {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const VectorColumn>> vectors;  // guarded by mu
  std::map<std::string, std::shared_ptr<const TextIndex>> text;        // guarded by mu
};

struct NamespaceState {
  NamespaceMeta meta;
  std::map<DocId, Document> docs;  // ordered by id: the live tie-break and export order
  // Derived from docs and meta; indexes point into `docs`, so a copy starts with fresh indexes
  // (a move keeps them: map nodes do not move). Whoever changes docs or meta calls
  // InvalidateIndexes().
  std::shared_ptr<QueryIndexes> indexes = std::make_shared<QueryIndexes>();

  NamespaceState() = default;
  NamespaceState(const NamespaceState& o) : meta(o.meta), docs(o.docs) {}
  NamespaceState& operator=(const NamespaceState& o) {
    if (this != &o) {
      meta = o.meta;
      docs = o.docs;
      InvalidateIndexes();
    }
    return *this;
  }
  NamespaceState(NamespaceState&&) = default;
  NamespaceState& operator=(NamespaceState&&) = default;

  void InvalidateIndexes() { indexes = std::make_shared<QueryIndexes>(); }
};

// The column for `attr`, built on first use. Never null.
std::shared_ptr<const VectorColumn> GetVectorColumn(const NamespaceState& state,
                                                    const std::string& attr);
// The text index for `attr` tokenised with `config`, built on first use. Never null.
std::shared_ptr<const TextIndex> GetTextIndex(const NamespaceState& state, const std::string& attr,
                                              const FtsConfig& config);

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
