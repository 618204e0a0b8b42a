// What a write did upstream, as far as the gateway knows: the input of CacheCoherence::ApplyWrite
// (docs/design.md §4.2). The write handler builds one per write the upstream accepted, and one per
// write whose outcome it cannot know (docs/design.md §4.2.5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tpuf/doc_id.h"

namespace layer::coherence {

// One full row to cache (upserts) or one partial row to merge (patches).
// Attribute values are in the form the upstream returns them in (docs/design.md §4.2.8), unless
// `form_unknown`.
struct RowEffect {
  tpuf::DocId id;
  std::string attributes_json;            // JSON object without id, vector(s) and the stamp
  std::optional<std::string> vector_f32;  // little-endian f32 bytes of `vector`, if any
  // The upstream's form of some value of the row cannot be known (its attribute's type is not
  // known, or the type or value is one whose stored form is not pinned): the id is invalidated
  // instead of mirrored, and attributes_json is not used.
  bool form_unknown = false;
};

struct WriteOutcome {
  enum class Kind : uint8_t {
    // Applied, and the body says which rows: `upserts` are cached, `patches` merged into cached
    // full rows, `deletes` tombstoned.
    kRows,
    // Every id in `deletes` loses its cached version (a tombstone with the write's stamp, which
    // no older row can replace): the ids the upstream reports for a conditional or by-filter
    // write, or every id a write names whose outcome is unknown (its answer was lost, or a 5xx).
    // `has_untyped_ids` means some could not be typed, so the whole namespace is invalidated.
    kInvalidateIds,
    // Which rows the write touched, or whether it was applied, cannot be known: the whole
    // namespace is invalidated.
    kInvalidateNamespace,
  };

  Kind kind = Kind::kRows;
  uint64_t stamp = 0;  // the write's `_hevlayer_upserted_at`
  std::vector<RowEffect> upserts;
  std::vector<RowEffect> patches;
  std::vector<tpuf::DocId> deletes;
  bool has_untyped_ids = false;
  // Whether the upstream acknowledged the write (its answer came). Tombstones of an acknowledged
  // write may be repaired by a strong read that began after it; those of a write whose outcome is
  // unknown may not: it may still be applied late (docs/design.md §4.2.7).
  bool outcome_known = true;
};

}  // namespace layer::coherence
