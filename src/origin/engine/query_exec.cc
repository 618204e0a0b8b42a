#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "common/base64.h"
#include "origin/engine/json_out.h"
#include "origin/engine/query_plan.h"
#include "origin/engine/text.h"

namespace layer::origin {
namespace {

double VectorDistance(const std::string& metric, const std::vector<float>& q,
                      const json::array& v) {
  double dot = 0, qn = 0, vn = 0, sq = 0;
  for (size_t i = 0; i < q.size() && i < v.size(); ++i) {
    double a = q[i];
    double b = NumberAsDouble(v[i]);
    dot += a * b;
    qn += a * a;
    vn += b * b;
    sq += (a - b) * (a - b);
  }
  if (metric == "euclidean_squared") return sq;
  if (metric == "euclidean") return std::sqrt(sq);
  if (qn == 0 || vn == 0) return 1.0;
  // One sqrt of the product keeps identical vectors at exactly 0 (sqrt(x*x) == x).
  return std::max(0.0, 1.0 - dot / std::sqrt(qn * vn));
}

void PrepareBm25(RankExpr* e, const NamespaceState& state, const std::vector<DocRef>& all) {
  for (auto& c : e->children) PrepareBm25(&c, state, all);
  if (e->kind != RankExpr::Kind::kBm25) return;
  const AttrSchema* a = state.meta.schema.Find(e->attr);
  const FtsConfig& cfg = *a->fts;
  std::vector<std::vector<std::string>> tokens(all.size());
  std::vector<bool> has(all.size(), false);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto* v = all[i].second->attrs.if_contains(e->attr);
    if (v == nullptr) continue;
    has[i] = true;
    tokens[i] = TokenizeValue(*v, cfg);
  }
  Bm25Scorer scorer(cfg, tokens, has, e->tokens, e->last_as_prefix);
  e->scores.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) e->scores[i] = has[i] ? scorer.Score(i) : 0;
}

double EvalRank(const RankExpr& e, size_t index, const DocRef& doc) {
  switch (e.kind) {
    case RankExpr::Kind::kBm25:
      return e.scores[index];
    case RankExpr::Kind::kSum: {
      double s = 0;
      for (const auto& c : e.children) s += EvalRank(c, index, doc);
      return s;
    }
    case RankExpr::Kind::kMax: {
      double s = 0;
      for (const auto& c : e.children) s = std::max(s, EvalRank(c, index, doc));
      return s;
    }
    case RankExpr::Kind::kProduct:
      return e.weight * EvalRank(e.children[0], index, doc);
    case RankExpr::Kind::kAttribute: {
      const auto* v = doc.second->attrs.if_contains(e.attr);
      return v != nullptr && IsNumber(*v) ? NumberAsDouble(*v) : 0.0;
    }
    case RankExpr::Kind::kSaturate:
    case RankExpr::Kind::kDecay: {
      double x = std::pow(std::max(0.0, EvalRank(e.children[0], index, doc)), e.exponent);
      double m = std::pow(e.midpoint, e.exponent);
      if (x + m == 0) return 0;
      return e.kind == RankExpr::Kind::kSaturate ? x / (x + m) : m / (x + m);
    }
    case RankExpr::Kind::kFilter:
      return EvalFilter(e.filter, *doc.first, *doc.second, nullptr, nullptr) ? 1.0 : 0.0;
    case RankExpr::Kind::kSparse: {
      const auto* v = doc.second->attrs.if_contains(e.attr);
      if (v == nullptr || !v->is_object()) return 0;
      double s = 0;
      for (const auto& kv : e.sparse_query) {
        const auto* w = v->get_object().if_contains(kv.key());
        if (w != nullptr && IsNumber(kv.value())) {
          s += static_cast<double>(static_cast<float>(NumberAsDouble(kv.value()))) *
               NumberAsDouble(*w);
        }
      }
      return s;
    }
  }
  return 0;
}

json::value RowsProjection(const Query& q, const Schema& schema, const DocRef& doc,
                           std::optional<double> dist) {
  json::object row;
  row["id"] = IdToJson(*doc.first);
  if (dist) row["$dist"] = F32AsPrintableDouble(static_cast<float>(*dist));
  const auto& attrs = doc.second->attrs;
  switch (q.projection) {
    case Query::Projection::kIdOnly:
      break;
    case Query::Projection::kAll:
      for (const auto& kv : attrs) {
        row[kv.key()] = RenderAttr(schema.Find(kv.key()), kv.value(), q.base64);
      }
      break;
    case Query::Projection::kList:
      for (const auto& name : q.attrs) {
        if (const auto* v = attrs.if_contains(name)) {
          row[name] = RenderAttr(schema.Find(name), *v, q.base64);
        }
      }
      break;
    case Query::Projection::kExclude:
      for (const auto& kv : attrs) {
        if (std::find(q.attrs.begin(), q.attrs.end(), std::string_view(kv.key())) !=
            q.attrs.end()) {
          continue;
        }
        row[kv.key()] = RenderAttr(schema.Find(kv.key()), kv.value(), q.base64);
      }
      break;
  }
  return row;
}

}  // namespace

json::object QueryPerformance(const NamespaceState& state, size_t scanned) {
  json::object perf;
  perf["approx_namespace_size"] = static_cast<uint64_t>(state.docs.size());
  perf["cache_hit_ratio"] = 1.0;
  perf["cache_temperature"] = "hot";
  perf["exhaustive_search_count"] = static_cast<uint64_t>(scanned);
  perf["query_execution_ms"] = 1;
  perf["server_total_ms"] = 1;
  return perf;
}

json::object QueryBilling(uint64_t returned) {
  json::object b;
  b["billable_logical_bytes_queried"] = kMinBilledBytes;
  b["billable_logical_bytes_returned"] = returned;
  return b;
}

namespace {

json::value GroupValue(const Schema& schema, const std::string& attr, const json::value& v) {
  if (v.is_null()) return nullptr;
  return RenderAttr(schema.Find(attr), v, false);
}

void RunAggregation(const Query& q, const NamespaceState& state, const std::vector<DocRef>& matched,
                    json::object* out) {
  const Schema& schema = state.meta.schema;
  auto contribution = [&](const DocRef& d, bool* is_float) -> json::value {
    if (q.agg_fn == "Count") return 1;
    json::value v = AttrValue(*d.first, *d.second, q.agg_attr);
    if (v.is_double()) *is_float = true;
    return IsNumber(v) ? v : json::value(0);
  };
  struct Acc {
    int64_t i = 0;
    double f = 0;
    bool is_float = false;
    json::value Result() const { return is_float ? json::value(f) : json::value(i); }
    void Add(const json::value& v, bool flt) {
      is_float = is_float || flt;
      f += NumberAsDouble(v);
      if (v.is_int64()) {
        i += v.get_int64();
      } else if (v.is_uint64()) {
        i += static_cast<int64_t>(v.get_uint64());
      } else {
        i += static_cast<int64_t>(v.get_double());
      }
    }
  };
  if (q.group_by.empty()) {
    Acc acc;
    if (q.agg_fn == "Sum") {
      const AttrSchema* a = schema.Find(q.agg_attr);
      acc.is_float = a != nullptr && a->type == "float";
    }
    for (const auto& d : matched) {
      bool flt = false;
      json::value c = contribution(d, &flt);
      acc.Add(c, flt);
    }
    json::object aggs;
    aggs[q.agg_label] = acc.Result();
    (*out)["aggregations"] = std::move(aggs);
    return;
  }
  struct KeyLess {
    bool operator()(const std::vector<json::value>& a, const std::vector<json::value>& b) const {
      for (size_t i = 0; i < a.size(); ++i) {
        int c = CompareValues(a[i], b[i]);
        if (c != 0) return c < 0;
      }
      return false;
    }
  };
  std::map<std::vector<json::value>, Acc, KeyLess> groups;
  for (const auto& d : matched) {
    std::vector<std::vector<json::value>> keys(1);
    for (const auto& g : q.group_by) {
      json::value v = AttrValue(*d.first, *d.second, g.attr);
      std::vector<json::value> options;
      if (g.for_each_unique && v.is_array()) {
        std::vector<json::value> uniq;
        for (const auto& e : v.get_array()) {
          bool dup = false;
          for (const auto& u : uniq) dup = dup || CompareValues(u, e) == 0;
          if (!dup) uniq.push_back(e);
        }
        options = std::move(uniq);
      } else {
        options.push_back(v);
      }
      std::vector<std::vector<json::value>> next;
      for (const auto& k : keys) {
        for (const auto& o : options) {
          auto nk = k;
          nk.push_back(o);
          next.push_back(std::move(nk));
        }
      }
      keys = std::move(next);
    }
    bool flt = false;
    json::value c = contribution(d, &flt);
    for (auto& k : keys) groups[std::move(k)].Add(c, flt);
  }
  json::array out_groups;
  int64_t n = 0;
  for (const auto& [key, acc] : groups) {
    if (n++ >= q.limit) break;
    json::object g;
    for (size_t i = 0; i < q.group_by.size(); ++i) {
      g[q.group_by[i].out_name] = GroupValue(schema, q.group_by[i].attr, key[i]);
    }
    g[q.agg_label] = acc.Result();
    out_groups.push_back(std::move(g));
  }
  (*out)["aggregation_groups"] = std::move(out_groups);
}

// Executes a parsed query; rows carry `$dist` scores as doubles (rounded on output).
}  // namespace

void ExecuteQuery(Query& q, const NamespaceState& state, json::object* out) {
  const Schema& schema = state.meta.schema;
  std::vector<DocRef> all;
  all.reserve(state.docs.size());
  for (const auto& [id, doc] : state.docs) all.emplace_back(&id, &doc);
  std::vector<size_t> matched;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!q.filter || EvalFilter(*q.filter, *all[i].first, *all[i].second, nullptr, nullptr)) {
      matched.push_back(i);
    }
  }
  if (q.aggregate) {
    std::vector<DocRef> docs;
    for (size_t i : matched) docs.push_back(all[i]);
    RunAggregation(q, state, docs, out);
    (*out)["billing"] = QueryBilling(0);
    (*out)["performance"] = QueryPerformance(state, all.size());
    return;
  }
  size_t limit = static_cast<size_t>(q.limit);
  std::vector<std::pair<size_t, double>> ranked;  // (doc index, score)
  bool has_dist = true;
  if (q.rank == Query::Rank::kVector) {
    for (size_t i : matched) {
      const auto* v = all[i].second->attrs.if_contains(q.vector_attr);
      if (v == nullptr || !v->is_array()) continue;
      ranked.emplace_back(
          i, VectorDistance(state.meta.distance_metric, q.query_vector, v->get_array()));
    }
    auto less = [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    };
    size_t k = std::min(limit, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(k), ranked.end(), less);
    ranked.resize(k);
  } else if (q.rank == Query::Rank::kScore) {
    PrepareBm25(&q.score, state, all);
    for (size_t i : matched) {
      double s = EvalRank(q.score, i, all[i]);
      if (s > 0) ranked.emplace_back(i, s);
    }
    auto more = [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    };
    size_t k = std::min(limit, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(k), ranked.end(), more);
    ranked.resize(k);
  } else {
    has_dist = false;
    static const json::value kNull;
    auto less = [&](size_t a, size_t b) {
      for (const auto& key : q.order) {
        int c;
        if (key.attr == "id") {
          c = *all[a].first < *all[b].first ? -1 : (*all[b].first < *all[a].first ? 1 : 0);
        } else {
          const json::value* va = all[a].second->attrs.if_contains(key.attr);
          const json::value* vb = all[b].second->attrs.if_contains(key.attr);
          c = CompareValues(va ? *va : kNull, vb ? *vb : kNull);
        }
        if (c != 0) return key.desc ? c > 0 : c < 0;
      }
      return a < b;  // document order is id order
    };
    if (q.per_attrs.empty()) {
      size_t k = std::min(limit, matched.size());
      std::partial_sort(matched.begin(), matched.begin() + static_cast<long>(k), matched.end(),
                        less);
      matched.resize(k);
      for (size_t i : matched) ranked.emplace_back(i, 0);
    } else {
      std::sort(matched.begin(), matched.end(), less);
      std::map<std::vector<json::value>, int64_t,
               bool (*)(const std::vector<json::value>&, const std::vector<json::value>&)>
          per_counts([](const std::vector<json::value>& a, const std::vector<json::value>& b) {
            for (size_t i = 0; i < a.size(); ++i) {
              int c = CompareValues(a[i], b[i]);
              if (c != 0) return c < 0;
            }
            return false;
          });
      for (size_t i : matched) {
        if (ranked.size() >= limit) break;
        std::vector<json::value> key;
        for (const auto& a : q.per_attrs)
          key.push_back(AttrValue(*all[i].first, *all[i].second, a));
        if (per_counts[key]++ >= q.per_limit) continue;
        ranked.emplace_back(i, 0);
      }
    }
  }
  json::array rows;
  uint64_t returned = 0;
  for (const auto& [i, score] : ranked) {
    json::value row =
        RowsProjection(q, schema, all[i], has_dist ? std::optional<double>(score) : std::nullopt);
    returned += SerializeJson(row).size();
    rows.push_back(std::move(row));
  }
  (*out)["rows"] = std::move(rows);
  (*out)["billing"] = QueryBilling(returned);
  (*out)["performance"] = QueryPerformance(state, all.size());
}

json::value RenderAttr(const AttrSchema* schema, const json::value& v, bool base64_vectors) {
  if (schema == nullptr) return v;
  auto info = ParseTypeName(schema->type);
  if (!info) return v;
  if (info->base == TypeInfo::Base::kDenseVector && v.is_array()) {
    if (base64_vectors) {
      std::string bytes;
      bytes.resize(v.get_array().size() * 4);
      size_t off = 0;
      for (const auto& e : v.get_array()) {
        float f = static_cast<float>(NumberAsDouble(e));
        std::memcpy(bytes.data() + off, &f, 4);
        off += 4;
      }
      return json::value(Base64Encode(bytes));
    }
    json::array arr;
    arr.reserve(v.get_array().size());
    for (const auto& e : v.get_array()) {
      arr.push_back(F32AsPrintableDouble(static_cast<float>(NumberAsDouble(e))));
    }
    return arr;
  }
  if (info->base == TypeInfo::Base::kDatetime) {
    if (v.is_int64()) return json::value(FormatDatetime(v.get_int64()));
    if (v.is_array()) {
      json::array arr;
      for (const auto& e : v.get_array()) {
        arr.push_back(e.is_int64() ? json::value(FormatDatetime(e.get_int64())) : e);
      }
      return arr;
    }
  }
  if (info->base == TypeInfo::Base::kSparse && v.is_object()) {
    json::object o;
    for (const auto& kv : v.get_object()) {
      o[kv.key()] = F32AsPrintableDouble(static_cast<float>(NumberAsDouble(kv.value())));
    }
    return o;
  }
  return v;
}

}  // namespace layer::origin
