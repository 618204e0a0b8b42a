#include "coherence/row_codec.h"

#include <boost/json.hpp>

#include "common/json_text.h"
#include "tpuf/reserved.h"

namespace layer::coherence {

std::optional<FetchedRow> RowForCache(const boost::json::object& row) {
  const boost::json::value* id = row.if_contains("id");
  if (!id) return std::nullopt;
  FetchedRow out;
  out.id_json = SerializeJson(*id);
  boost::json::object attrs;
  for (const auto& [k, v] : row) {
    if (k == "id" || k == "vector" || k == "vectors" || k == "$dist" || k == "$score") continue;
    if (tpuf::IsReservedAttribute(k)) {
      if (k == tpuf::kStampAttribute && v.is_number()) {
        boost::system::error_code ec;
        auto stamp = v.to_number<uint64_t>(ec);  // a stamp that is no u64 counts as none
        if (!ec) out.stamp = stamp;
      }
      continue;
    }
    attrs[k] = v;
  }
  out.attributes_json = SerializeJson(attrs);
  return out;
}

}  // namespace layer::coherence
