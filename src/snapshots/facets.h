// FacetAggregator: builds a snapshot body (snapshot.h) from rows (docs/design.md §7.1).
//
// For each facet field, every distinct value with the number of rows holding it: JSON strings
// count as their text, other values as their JSON text ("3", "true", "null", "[1,2]" never: an
// array counts each distinct element once per row). A row without the field adds nothing to it.
// A field with more than `cap` distinct values is left out of `fields` and listed in
// `fields_skipped` (reason "exceeded_cap", with the number of distinct values observed), so every
// field a body holds is complete. `row_count` is the number of rows added.
//
// Not thread-safe: one aggregator per snapshot being built.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "snapshots/snapshot.h"

namespace layer::snapshots {

class FacetAggregator {
 public:
  explicit FacetAggregator(std::vector<std::string> fields, uint64_t cap = kMaxFacetValues);

  // Counts one row's attributes (the row's JSON object, `id` and other members ignored).
  void AddRow(const boost::json::object& row);
  uint64_t rows() const { return rows_; }

  // For callers that parse rows themselves (jobs/facet_page.h), with the same result as AddRow:
  // the fields, sorted and distinct (indexes below refer to this order); CountRow() once per row,
  // then CountText() with the text (FacetValueText) of each of the row's values of field `i`,
  // each distinct element of an array once.
  size_t field_count() const { return fields_.size(); }
  const std::string& field_name(size_t i) const { return fields_[i].name; }
  void CountRow() { ++rows_; }
  void CountText(size_t i, std::string_view text);

  // The sealed body (canonical order, sha set) of `ns` at `watermark_ms`.
  SnapshotBody Finish(std::string ns, uint64_t watermark_ms) const;

 private:
  // Heterogeneous lookup: counting a value already seen allocates nothing.
  struct TextHash {
    using is_transparent = void;
    // FNV-1a, inline: facet values are short, and a call of the library's hash costs more than
    // hashing them here.
    size_t operator()(std::string_view s) const {
      uint64_t h = 14695981039346656037ull;
      for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
      return static_cast<size_t>(h);
    }
  };
  struct Field {
    std::string name;
    std::unordered_map<std::string, uint64_t, TextHash, std::equal_to<>> counts;
  };
  void Count(Field& field, const boost::json::value& v, std::unordered_set<std::string>* seen);

  std::vector<Field> fields_;
  uint64_t cap_;
  uint64_t rows_ = 0;
};

// The text a value counts as: a string's own text, any other value's JSON text.
std::string FacetValueText(const boost::json::value& v);

}  // namespace layer::snapshots
