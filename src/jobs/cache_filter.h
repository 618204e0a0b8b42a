// CacheRowFilter: a Turbopuffer filter evaluated on cached rows (docs/design.md §7.8), with the
// evaluator the local origin answers queries with (tpuf/model/filter.h), so a filter selects the
// rows of the cache that it selects upstream.
//
// Cached attributes are in the form the upstream returns them in (docs/design.md §4.2.8); each
// row is read back into the evaluator's stored form (datetimes as epoch ms, uuids canonical) by
// the namespace's schema, as the origin reads a written row.
//
// Thread-compatible: Matches() may run concurrently on one const filter.
#pragma once

#include <boost/json/object.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"
#include "tpuf/doc_id.h"

namespace layer::tpuf::model {
struct Filter;
class Schema;
}  // namespace layer::tpuf::model

namespace layer::jobs {

// Why a filter was refused: the status and message the upstream would answer a query with.
struct FilterRefusal {
  int http_status = 400;
  std::string message;
};

class CacheRowFilter {
 public:
  // Parses `filters_json` (a Turbopuffer filter, JSON text) against the namespace's schema,
  // `schema_json` (the body of GET /v1/namespaces/{ns}/schema; "{}" when unknown: operands are
  // then taken as they are and attributes inferred from their values). A filter the upstream
  // would refuse, or one only a conditional write may use ({"$ref_new": …}), is a FilterRefusal.
  static std::variant<CacheRowFilter, FilterRefusal> Parse(std::string_view filters_json,
                                                           std::string_view schema_json);

  CacheRowFilter(CacheRowFilter&&) noexcept;
  CacheRowFilter& operator=(CacheRowFilter&&) noexcept;
  ~CacheRowFilter();

  // Whether the row (`attributes`: a cached row's attribute object) matches. InvalidArgument
  // when one of its values cannot be read in its attribute's type (the cache then cannot say).
  Result<bool> Matches(const tpuf::DocId& id, const boost::json::object& attributes) const;

 private:
  CacheRowFilter();
  std::unique_ptr<tpuf::model::Schema> schema_;
  std::unique_ptr<tpuf::model::Filter> filter_;
};

}  // namespace layer::jobs
