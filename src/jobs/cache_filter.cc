#include "jobs/cache_filter.h"

#include <boost/json.hpp>

#include "common/json_text.h"
#include "tpuf/model/filter.h"
#include "tpuf/model/schema.h"

namespace layer::jobs {

namespace model = tpuf::model;

namespace {

bool UsesRefNew(const model::Filter& f) {
  if (!f.ref_new_attr.empty()) return true;
  for (const auto& c : f.children) {
    if (UsesRefNew(c)) return true;
  }
  return false;
}

FilterRefusal Refusal(const model::ApiError& e) { return FilterRefusal{e.http_status, e.message}; }

}  // namespace

CacheRowFilter::CacheRowFilter() = default;
CacheRowFilter::CacheRowFilter(CacheRowFilter&&) noexcept = default;
CacheRowFilter& CacheRowFilter::operator=(CacheRowFilter&&) noexcept = default;
CacheRowFilter::~CacheRowFilter() = default;

std::variant<CacheRowFilter, FilterRefusal> CacheRowFilter::Parse(std::string_view filters_json,
                                                                  std::string_view schema_json) {
  CacheRowFilter out;
  out.schema_ = std::make_unique<model::Schema>();
  out.filter_ = std::make_unique<model::Filter>();
  boost::system::error_code ec;
  boost::json::value schema = ParseJson(schema_json, ec);
  if (!ec && schema.is_object()) {
    std::vector<std::pair<std::string, model::AttrSchema>> attrs;
    model::ApiStatus st = model::ParseSchemaInput(schema, "", &attrs);
    if (st.ok()) st = model::MergeSchema(attrs, out.schema_.get());
    if (!st.ok()) {
      return FilterRefusal{502, "the namespace schema could not be read: " + st.error().message};
    }
  }
  // Exact doubles: an operand compares with cached values that were read exactly.
  boost::json::value filters = ParseJson(filters_json, ec);
  if (ec) return FilterRefusal{400, "filters: not JSON"};
  model::FilterContext ctx;
  ctx.schema = out.schema_.get();
  if (model::ApiStatus st = model::ParseFilter(filters, ctx, out.filter_.get()); !st.ok()) {
    return Refusal(st.error());
  }
  if (UsesRefNew(*out.filter_)) {
    return FilterRefusal{400, "filters: $ref_new is only allowed in conditional writes"};
  }
  return out;
}

Result<bool> CacheRowFilter::Matches(const tpuf::DocId& id,
                                     const boost::json::object& attributes) const {
  model::Document doc;
  for (const auto& [name, value] : attributes) {
    if (value.is_null()) continue;
    std::optional<model::AttrSchema> inferred;
    boost::json::value stored;
    model::ApiStatus st =
        model::NormalizeValue(name, value, schema_->Find(name), &inferred, &stored);
    if (!st.ok()) {
      return Status::InvalidArgument("attribute '" + std::string(name) +
                                     "' of a cached row cannot be read: " + st.error().message);
    }
    doc.attrs[name] = std::move(stored);
  }
  model::DocId doc_id;
  if (id.type == tpuf::IdType::kU64) {
    doc_id = id.as_u64();
  } else {
    doc_id = id.ToText();
  }
  return model::EvalFilter(*filter_, doc_id, doc, nullptr, nullptr);
}

}  // namespace layer::jobs
