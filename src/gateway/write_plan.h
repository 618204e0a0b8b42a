// Planning a write (POST /v2/namespaces/{ns}): validation, stamping and the cache effects to
// apply once the upstream has accepted it (docs/design.md §4.2).
//
// PlanWrite is pure: it parses the (already decompressed) body, rejects what must never reach
// Turbopuffer (422 validation_error), stamps `_hevlayer_upserted_at` on every row-producing
// operation (rows and columns alike, one stamp per request), forces `return_affected_ids` on
// conditional and by-filter writes, and lists what to mirror, with every attribute value in the
// form the upstream returns it in (docs/design.md §4.2.8). It never touches the cache.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coherence/write_outcome.h"
#include "common/status.h"
#include "tpuf/canonical.h"
#include "tpuf/doc_id.h"
#include "tpuf/reserved.h"

namespace layer::gateway {

using coherence::RowEffect;
using tpuf::StringIdType;

struct WritePlan {
  // False when the body has no row-producing or deleting operation (schema-only, copy, branch):
  // the original bytes are forwarded unchanged and nothing is mirrored.
  bool row_write = false;
  // The body is a write whose shape the gateway cannot follow (e.g. rows that are not objects):
  // it is forwarded untouched so Turbopuffer answers it. Should Turbopuffer accept it anyway, the
  // affected ids are unknown and the whole namespace must be invalidated in the cache.
  bool upstream_decides = false;
  std::string upstream_body;  // the stamped JSON to send (row_write only)
  uint64_t stamp = 0;
  // Conditional or by-filter writes: effects come from the response's *_ids, not from the body.
  bool by_affected_ids = false;
  bool client_asked_affected_ids = false;
  std::vector<RowEffect> upserts;
  std::vector<RowEffect> patches;
  std::vector<tpuf::DocId> deletes;
  // Ids the cache cannot key safely (their type is unknown); they are never mirrored.
  bool has_untyped_ids = false;
  // Some row holds a value whose form upstream depends on the type of an attribute that neither
  // the write's `schema` nor the known types name: such rows are `form_unknown`. The namespace's
  // schema, read after the write was applied, may name it.
  bool has_untyped_attributes = false;
};

// InvalidArgument (answered 422 validation_error) for a body that must never reach Turbopuffer:
// a client-supplied `_hevlayer_*` attribute, no write operation at all, or the removed custom
// write keys. A body that is not a JSON object is reported as row_write=false, and a malformed
// write as upstream_decides, so Turbopuffer answers them exactly as without the gateway.
//
// `attribute_types` (may be null) are the namespace's attribute types as far as known; a type the
// write's own `schema` declares takes precedence. A row with a value whose upstream form the plan
// cannot tell (type unknown, or tpuf::CanonicalValue says kUnknown) is `form_unknown`.
Result<WritePlan> PlanWrite(std::string_view body, uint64_t stamp, StringIdType string_ids,
                            const tpuf::AttributeTypes* attribute_types = nullptr);

// Removes upserted_ids/patched_ids/deleted_ids from a WriteResult body (used when the gateway
// asked for them and the client did not). Returns nullopt if the body is not a JSON object.
std::optional<std::string> StripAffectedIds(std::string_view response_body);

// The affected ids of a WriteResult, typed for the cache.
struct AffectedIds {
  std::vector<tpuf::DocId> upserted, patched, deleted;
  bool has_untyped_ids = false;
};
AffectedIds ParseAffectedIds(std::string_view response_body, StringIdType string_ids);

}  // namespace layer::gateway
