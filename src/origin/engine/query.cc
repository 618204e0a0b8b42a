#include <algorithm>
#include <map>

#include "origin/engine/model.h"
#include "origin/engine/query_plan.h"

namespace layer::origin {

ApiStatus RunQuery(const json::value& body, const NamespaceState& state, const QueryEnv& env,
                   std::string* result) {
  Query q;
  ORIGIN_RETURN_IF_ERROR(ParseQuery(body, state.meta.schema, env, &q));
  ExecuteQuery(q, state, result);
  return {};
}

ApiStatus RunMultiQuery(const json::object& body, const NamespaceState& state,
                        std::string* result) {
  const auto& queries = body.at("queries");
  if (!queries.is_array()) {
    return Unprocessable("invalid type: " + SerdeUnexpected(queries) + ", expected a sequence");
  }
  const auto& arr = queries.get_array();
  for (const auto& sub : arr) {
    if (!sub.is_object()) {
      return Unprocessable("invalid type: " + SerdeUnexpected(sub) +
                           ", expected struct QueryRankBy");
    }
  }
  if (arr.empty()) return BadRequest("must send at least one sub-query");
  if (arr.size() > kMaxSubQueries) {
    return BadRequest("multi-query exceeds per-namespace concurrency budget: requires " +
                      std::to_string(arr.size()) +
                      " permits, max is 16 (see "
                      "https://turbopuffer.com/docs/limits)");
  }
  QueryEnv env;
  if (const auto* e = body.if_contains("vector_encoding"); e && !e->is_null()) {
    std::string got = e->is_string() ? std::string(e->get_string()) : SerializeJson(*e);
    if (got != "float" && got != "base64") {
      return Unprocessable("vector_encoding: unknown variant `" + got +
                           "`, expected `float` or `base64`");
    }
    env.forced_vector_encoding = got;
  }
  ORIGIN_RETURN_IF_ERROR(ValidateConsistency(body));
  std::vector<Query> parsed(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    ORIGIN_RETURN_IF_ERROR(ParseQuery(arr[i], state.meta.schema, env, &parsed[i]));
  }
  json::array results;
  uint64_t returned = 0;
  for (auto& q : parsed) {
    std::string text;
    ExecuteQuery(q, state, &text);
    json::object r = json::parse(text).as_object();
    returned += r["billing"].as_object()["billable_logical_bytes_returned"].to_number<uint64_t>();
    r.erase("billing");
    r.erase("performance");
    results.push_back(std::move(r));
  }
  if (const auto* rr = body.if_contains("rerank_by"); rr && !rr->is_null()) {
    if (!rr->is_array() || rr->get_array().empty() || !rr->get_array()[0].is_string() ||
        rr->get_array()[0].get_string() != "RRF") {
      return Unprocessable("rerank_by: data did not match any variant of untagged enum RerankBy");
    }
    double k = 60;
    std::vector<double> weights(results.size(), 1.0);
    if (rr->get_array().size() > 1 && rr->get_array()[1].is_object()) {
      const auto& opts = rr->get_array()[1].get_object();
      if (const auto* rc = opts.if_contains("rank_constant"); rc && IsNumber(*rc)) {
        k = NumberAsDouble(*rc);
      }
      if (const auto* w = opts.if_contains("weights"); w && w->is_array()) {
        for (size_t i = 0; i < w->get_array().size() && i < weights.size(); ++i) {
          weights[i] = NumberAsDouble(w->get_array()[i]);
        }
      }
    }
    std::map<DocId, std::pair<double, json::object>> fused;
    size_t max_limit = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      max_limit = std::max(max_limit, static_cast<size_t>(parsed[i].limit));
      const auto* rows = results[i].as_object().if_contains("rows");
      if (rows == nullptr) continue;
      size_t rank = 0;
      for (const auto& row : rows->get_array()) {
        ++rank;
        DocId id;
        if (!ParseRawId(row.get_object().at("id"), &id)) continue;
        auto& entry = fused[id];
        entry.first += weights[i] / (k + static_cast<double>(rank));
        for (const auto& kv : row.get_object()) {
          if (kv.key() != "$dist") entry.second[kv.key()] = kv.value();
        }
      }
    }
    std::vector<std::pair<DocId, std::pair<double, json::object>>> list(fused.begin(), fused.end());
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    if (list.size() > max_limit) list.resize(max_limit);
    json::array rows;
    for (auto& [id, entry] : list) {
      json::object row;
      row["id"] = IdToJson(id);
      row["$dist"] = F32AsPrintableDouble(static_cast<float>(entry.first));
      for (auto& kv : entry.second) {
        if (kv.key() != "id") row[kv.key()] = kv.value();
      }
      rows.push_back(std::move(row));
    }
    results = json::array{json::object{{"rows", std::move(rows)}}};
  }
  json::object out;
  out["results"] = std::move(results);
  out["billing"] = QueryBilling(returned);
  out["performance"] = QueryPerformance(state, state.docs.size());
  AppendJson(out, result);
  return {};
}

ApiStatus ExplainQuery(const json::value& body, const NamespaceState& state, json::object* result) {
  Query q;
  ORIGIN_RETURN_IF_ERROR(ParseQuery(body, state.meta.schema, QueryEnv{}, &q));
  std::string plan = "ExhaustiveScan(namespace_size=" + std::to_string(state.docs.size()) + ")";
  if (q.filter) plan = "Filter(" + plan + ")";
  switch (q.rank) {
    case Query::Rank::kVector:
      plan = std::string(q.knn ? "ExactKnn" : "Ann") + "(attr=" + q.vector_attr + ", " + plan + ")";
      break;
    case Query::Rank::kScore:
      plan = "Bm25Rank(" + plan + ")";
      break;
    case Query::Rank::kAttributes:
      plan = "OrderBy(" + plan + ")";
      break;
    case Query::Rank::kNone:
      plan = "Aggregate(" + plan + ")";
      break;
  }
  if (q.has_limit) plan = "Limit(" + std::to_string(q.limit) + ", " + plan + ")";
  (*result)["plan_text"] = plan;
  return {};
}

ApiStatus RunRecall(const json::value& body_value, const NamespaceState& state,
                    json::object* result) {
  if (!body_value.is_object()) {
    return Unprocessable("invalid type: " + SerdeUnexpected(body_value) +
                         ", expected struct Recall");
  }
  const auto& body = body_value.get_object();
  int64_t num = 25, top_k = 10;
  bool num_given = false;
  if (const auto* v = body.if_contains("num"); v && !v->is_null()) {
    if (!v->is_int64() && !v->is_uint64()) {
      return Unprocessable("num: invalid type: " + SerdeUnexpected(*v) + ", expected usize");
    }
    num = v->is_int64() ? v->get_int64() : static_cast<int64_t>(v->get_uint64());
    num_given = true;
  }
  if (const auto* v = body.if_contains("top_k"); v && !v->is_null()) {
    if (!v->is_int64() && !v->is_uint64()) {
      return Unprocessable("top_k: invalid type: " + SerdeUnexpected(*v) + ", expected usize");
    }
    top_k = v->is_int64() ? v->get_int64() : static_cast<int64_t>(v->get_uint64());
  }
  if (const auto* v = body.if_contains("include_ground_truth");
      v && !v->is_null() && !v->is_bool()) {
    return Unprocessable("include_ground_truth: invalid type: " + SerdeUnexpected(*v) +
                         ", expected a boolean");
  }
  std::optional<Filter> filter;
  if (const auto* f = body.if_contains("filters"); f && !f->is_null()) {
    Filter parsed;
    ApiStatus st = ParseFilter(*f, FilterContext{&state.meta.schema, "filters"}, &parsed);
    if (!st.ok()) {
      if (st.error().http_status == 422) {
        return Unprocessable(
            "filters: data did not match any variant of untagged enum FiltersInput");
      }
      return st;
    }
    filter = std::move(parsed);
  }
  bool has_rank = body.contains("rank_by") && !body.at("rank_by").is_null();
  if (has_rank && num_given && num != 1) {
    return BadRequest("rank_by and num cannot be specified together");
  }
  if (num < 1 || num > 200) return BadRequest("samples must be between 1 and 200");
  if (top_k < 1 || top_k > kMaxTopK) return BadRequest("top_k must be between 1 and 10000");
  size_t matching = 0;
  std::string vattr = state.meta.schema.VectorAttr();
  for (const auto& [id, doc] : state.docs) {
    if (!vattr.empty() && !doc.attrs.contains(vattr)) continue;
    if (!filter || EvalFilter(*filter, id, doc, nullptr, nullptr)) ++matching;
  }
  double count = static_cast<double>(std::min<size_t>(matching, static_cast<size_t>(top_k)));
  (*result)["avg_recall"] = 1.0;
  (*result)["avg_exhaustive_count"] = count;
  (*result)["avg_ann_count"] = count;
  return {};
}

}  // namespace layer::origin
