#include "snapshots/facets.h"

#include <algorithm>

#include "common/json_text.h"

namespace layer::snapshots {

std::string FacetValueText(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return SerializeJson(v);
}

FacetAggregator::FacetAggregator(std::vector<std::string> fields, uint64_t cap) : cap_(cap) {
  std::sort(fields.begin(), fields.end());
  fields.erase(std::unique(fields.begin(), fields.end()), fields.end());
  for (auto& f : fields) fields_.push_back({std::move(f), {}});
}

void FacetAggregator::Count(Field& field, const boost::json::value& v,
                            std::unordered_set<std::string>* seen) {
  std::string text = FacetValueText(v);
  if (seen) {
    if (!seen->insert(text).second) return;  // once per row
  }
  ++field.counts[std::move(text)];
}

void FacetAggregator::CountText(size_t i, std::string_view text) {
  auto& counts = fields_[i].counts;
  auto it = counts.find(text);
  if (it != counts.end()) {
    ++it->second;
  } else {
    counts.emplace(std::string(text), 1);
  }
}

void FacetAggregator::AddRow(const boost::json::object& row) {
  ++rows_;
  for (Field& field : fields_) {
    const boost::json::value* v = row.if_contains(field.name);
    if (!v) continue;
    if (v->is_array()) {
      std::unordered_set<std::string> seen;
      for (const auto& element : v->as_array()) Count(field, element, &seen);
    } else {
      Count(field, *v, nullptr);
    }
  }
}

SnapshotBody FacetAggregator::Finish(std::string ns, uint64_t watermark_ms) const {
  SnapshotBody body;
  body.ns = std::move(ns);
  body.watermark_ms = watermark_ms;
  body.row_count = rows_;
  for (const Field& field : fields_) {
    if (field.counts.size() > cap_) {
      body.fields_skipped.push_back({field.name, "exceeded_cap", field.counts.size(), cap_});
      continue;
    }
    SnapshotField out{field.name, {}};
    out.values.reserve(field.counts.size());
    for (const auto& [v, n] : field.counts) out.values.push_back({v, n});
    body.fields.push_back(std::move(out));
  }
  Seal(body);
  return body;
}

}  // namespace layer::snapshots
