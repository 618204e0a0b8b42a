// The upstream-row -> cached-record codec (docs/design.md §3.1): what of a full Turbopuffer row the
// cache keeps, and the row a cached record answers a fetch with.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace layer::coherence {

// A full upstream row, ready to cache and to answer a fetch.
struct FetchedRow {
  std::string id_json;          // the id as Turbopuffer returns it
  std::string attributes_json;  // every attribute but id, vector(s), $dist, $score, _hevlayer_*
  uint64_t stamp = 0;           // its _hevlayer_upserted_at, 0 when unstamped
};

// Parses a full upstream row (id + attributes) into what the cache stores: attributes without id,
// vector(s), $dist, $score and `_hevlayer_*` (the stamp is kept apart). nullopt without an id.
std::optional<FetchedRow> RowForCache(const boost::json::object& row);

}  // namespace layer::coherence
