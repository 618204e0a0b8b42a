// Facet pages: counts one upstream page of projected rows (the body of a `query` answer, rows
// ranked by id) into a FacetAggregator (snapshots/facets.h) without building a DOM.
//
// The result is the same as FacetAggregator::AddRow over the page parsed with Boost.JSON: every
// row that is an object counts as a row; a value counts as its FacetValueText -- strings as their
// unescaped text, integers in decimal, other numbers, and objects or arrays nested in an array,
// through Boost.JSON exactly as AddRow would see them -- and each distinct element of an array
// once per row. The page is indexed once (simdjson) and walked twice: first for the row count and
// the `id` of the last row, handed to `on_last_id` before any row is counted (so the next page's
// read can start), then to count.
//
// Pure computation; never blocks. Thread-safe (each thread keeps its own parser buffers).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "common/status.h"
#include "snapshots/facets.h"

namespace layer::jobs {

struct FacetPageCount {
  size_t returned = 0;  // rows in the answer, objects or not
  // The `id` of the last row as upstream wrote it; nullopt when there is none.
  std::optional<std::string> last_id_json;
};

// `body` may gain padding in its capacity. InvalidArgument when the body is not a JSON object with
// a `rows` array (nothing counted then, and `on_last_id` not called).
Result<FacetPageCount> CountFacetPage(
    std::string& body, snapshots::FacetAggregator& agg,
    const std::function<void(const FacetPageCount&)>& on_last_id);

}  // namespace layer::jobs
