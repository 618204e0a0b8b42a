// Writes (POST /v2/namespaces/{ns}): parsing, validation and planning against a namespace state.
//
// PlanWrite is pure: it reads the committed state and produces a WritePlan (the new metadata and
// the per-document changes) or the live error, without touching the state, so a failed request
// changes nothing (per-request atomicity). The engine then logs the plan durably and applies it.
// Order inside one request (Turbopuffer's documented order): delete_by_filter, patch_by_filter, then id-based
// upserts, patches and deletes.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "origin/engine/model.h"
#include "origin/engine/namespace_state.h"

namespace layer::origin {

struct WritePlan {
  NamespaceMeta meta;                                // metadata after the write
  std::map<DocId, std::optional<Document>> changes;  // nullopt = delete
  json::object response;                             // the WriteResult body
  bool creates_namespace = false;
  bool has_effect = false;  // anything to persist (documents, schema or metadata)
};

// Copy/branch requests are recognised here and handled by the engine (they need a second
// namespace). Returns the source namespace name, or "" when the body is an ordinary write.
// Errors: mixing copy with other fields (W-16) and malformed copy bodies.
ApiStatus ParseCopySource(const json::object& body, std::string* source, bool* is_branch);

// Rewrites a legacy v1 write body (columnar "ids"/"vectors"/"attributes" or row "upserts", where
// a null vector means delete) into the v2 shape. Other bodies are returned unchanged.
json::object TranslateV1Write(const json::object& body);

// `exists` says whether the namespace already exists; `request_bytes` is the decoded body size.
ApiStatus PlanWrite(const json::object& body, const NamespaceState& state, bool exists,
                    int64_t now_ms, uint64_t request_bytes, WritePlan* plan);

// Applies a plan's document changes and metadata to `state`.
void ApplyWritePlan(WritePlan&& plan, NamespaceState* state);

// The WriteResult for a copy/branch of `rows` documents.
json::object CopyWriteResult(uint64_t rows, uint64_t bytes);

}  // namespace layer::origin
