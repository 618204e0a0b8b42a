// Exact JSON number parsing on top of Boost.JSON 1.81.
//
// Boost.JSON before 1.83 may round 16-17 digit decimals one ulp away from the nearest double
// (e.g. "1.6266288757324219"), while the live service (serde_json) parses exactly. Printing such a
// value back in shortest form would then change it. RestoreExactDoubles re-parses every floating
// point literal of `text` with std::from_chars and writes it into the matching node of `v`.
// Thread-safe; pure.
#pragma once

#include <boost/json.hpp>
#include <string_view>

namespace layer::origin {

// `v` must be the result of parsing exactly `text`. Returns false (leaving `v` as parsed) if the
// literals cannot be matched to the tree, e.g. because of duplicate object keys.
bool RestoreExactDoubles(std::string_view text, boost::json::value* v);

}  // namespace layer::origin
