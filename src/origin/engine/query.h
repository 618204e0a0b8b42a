// Queries (POST /v2/namespaces/{ns}/query and friends): parsing with the live 400/422 texts,
// execution by exhaustive scan (exact ANN/kNN, exact BM25), and rendering of rows.
//
// All functions read a NamespaceState under the caller's shared lock and never modify it.
#pragma once

#include <string>

#include "origin/engine/model.h"
#include "origin/engine/namespace_state.h"

namespace layer::origin {

struct QueryEnv {
  // Root-level vector_encoding of a multi-query ("" if none); overrides sub-queries.
  std::string forced_vector_encoding;
};

// A single query body → {"rows"|"aggregations"|"aggregation_groups", "billing", "performance"},
// as the response's JSON text (rows are written straight to text, never as json values).
ApiStatus RunQuery(const json::value& body, const NamespaceState& state, const QueryEnv& env,
                   std::string* result);

// A multi-query body (has "queries") → {"results": [...], "billing", "performance"}, as the
// response's JSON text.
ApiStatus RunMultiQuery(const json::object& body, const NamespaceState& state,
                        std::string* result);

// POST /v2/namespaces/{ns}/explain_query → {"plan_text": "..."} (validates like a query).
ApiStatus ExplainQuery(const json::value& body, const NamespaceState& state, json::object* result);

// POST /v1/namespaces/{ns}/_debug/recall → {"avg_recall", "avg_exhaustive_count", "avg_ann_count"}.
ApiStatus RunRecall(const json::value& body, const NamespaceState& state, json::object* result);

// Renders a stored attribute value for output (vectors per `vector_encoding`, datetimes as
// RFC 3339 strings).
json::value RenderAttr(const AttrSchema* schema, const json::value& v, bool base64_vectors);

}  // namespace layer::origin
