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

// Fills e->scores (per doc index) from the attribute's inverted index. Reproduces Bm25Scorer
// (text.h) exactly: same statistics, and each document's score accumulates the query terms'
// contributions in the same order.
void PrepareBm25(RankExpr* e, const NamespaceState& state, size_t num_docs) {
  for (auto& c : e->children) PrepareBm25(&c, state, num_docs);
  if (e->kind != RankExpr::Kind::kBm25) return;
  const AttrSchema* a = state.meta.schema.Find(e->attr);
  const FtsConfig& config = *a->fts;
  std::shared_ptr<const TextIndex> idx = GetTextIndex(state, e->attr, config);
  const auto& query_tokens = e->tokens;
  std::map<std::string, int> qtf;
  std::vector<std::string> order;
  for (size_t i = 0; i < query_tokens.size(); ++i) {
    if (qtf[query_tokens[i]]++ == 0) order.push_back(query_tokens[i]);
  }
  size_t n = idx->docs_with_attr;
  double avgdl = n > 0 ? idx->total_len / static_cast<double>(n) : 0;
  e->scores.assign(num_docs, 0.0);
  static const std::vector<std::pair<uint32_t, uint32_t>> kNoPostings;
  std::vector<bool> exact_hit;
  for (const auto& term : order) {
    bool prefix = e->last_as_prefix && !query_tokens.empty() && term == query_tokens.back();
    auto pit = idx->postings.find(term);
    const auto& postings = pit != idx->postings.end() ? pit->second : kNoPostings;
    size_t df = postings.size();
    double idf = std::log(1.0 + (static_cast<double>(n) - static_cast<double>(df) + 0.5) /
                                    (static_cast<double>(df) + 0.5));
    double q = qtf[term];
    double qweight = q * (config.k3 + 1) / (config.k3 + q);
    double weight = idf * qweight;
    for (const auto& [doc, count] : postings) {
      double dl = static_cast<double>(idx->doc_len[doc]);
      double norm = config.k1 * (1 - config.b + config.b * (avgdl > 0 ? dl / avgdl : 1));
      double tf = static_cast<double>(count);
      e->scores[doc] += weight * tf * (config.k1 + 1) / (tf + norm);
    }
    if (!prefix) continue;
    // Documents without the exact term but with a token that starts with it score 1.0.
    exact_hit.assign(num_docs, false);
    for (const auto& p : postings) exact_hit[p.first] = true;
    std::vector<bool> prefix_hit(num_docs, false);
    for (auto t = std::lower_bound(idx->sorted_terms.begin(), idx->sorted_terms.end(), term);
         t != idx->sorted_terms.end() && t->compare(0, term.size(), term) == 0; ++t) {
      if (*t == term) continue;
      for (const auto& p : idx->postings.at(*t)) {
        if (!exact_hit[p.first] && !prefix_hit[p.first]) {
          prefix_hit[p.first] = true;
          e->scores[p.first] += 1.0;
        }
      }
    }
  }
}

// Exact distances for up to kBlock column rows at once (independent accumulators give the CPU
// parallel work); each row still accumulates in dimension order, as VectorDistance does.
constexpr size_t kBlock = 4;

template <bool kCosine>
void BlockSums(const double* qd, size_t dims, const float* const* rows, size_t count, double* out) {
  double acc[kBlock] = {0, 0, 0, 0};
  if (count == kBlock) {
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3];
    for (size_t d = 0; d < dims; ++d) {
      double a = qd[d];
      double b0 = r0[d], b1 = r1[d], b2 = r2[d], b3 = r3[d];
      if constexpr (kCosine) {
        acc[0] += a * b0;
        acc[1] += a * b1;
        acc[2] += a * b2;
        acc[3] += a * b3;
      } else {
        acc[0] += (a - b0) * (a - b0);
        acc[1] += (a - b1) * (a - b1);
        acc[2] += (a - b2) * (a - b2);
        acc[3] += (a - b3) * (a - b3);
      }
    }
  } else {
    for (size_t k = 0; k < count; ++k) {
      for (size_t d = 0; d < dims; ++d) {
        double a = qd[d];
        double b = rows[k][d];
        if constexpr (kCosine) {
          acc[k] += a * b;
        } else {
          acc[k] += (a - b) * (a - b);
        }
      }
    }
  }
  for (size_t k = 0; k < count; ++k) out[k] = acc[k];
}

// Appends (doc index, distance) for every matched document holding a vector, like
// VectorDistance over each document's stored array, but from the namespace's float column.
void RankByVector(const Query& q, const NamespaceState& state, const std::vector<DocRef>& all,
                  const std::vector<size_t>& matched,
                  std::vector<std::pair<size_t, double>>* ranked) {
  const std::string& metric = state.meta.distance_metric;
  std::shared_ptr<const VectorColumn> col = GetVectorColumn(state, q.vector_attr);
  bool column_ok = col->dims > 0 && col->dims == q.query_vector.size();
  bool cosine = metric != "euclidean_squared" && metric != "euclidean";
  std::vector<double> qd(q.query_vector.begin(), q.query_vector.end());
  double qn = 0;
  for (double a : qd) qn += a * a;
  std::vector<size_t> batch;
  batch.reserve(kBlock);
  auto flush = [&] {
    const float* rows[kBlock];
    for (size_t k = 0; k < batch.size(); ++k) {
      rows[k] = col->data.data() + static_cast<size_t>(col->row[batch[k]]) * col->dims;
    }
    double sums[kBlock];
    if (cosine) {
      BlockSums<true>(qd.data(), col->dims, rows, batch.size(), sums);
    } else {
      BlockSums<false>(qd.data(), col->dims, rows, batch.size(), sums);
    }
    for (size_t k = 0; k < batch.size(); ++k) {
      double dist;
      if (metric == "euclidean_squared") {
        dist = sums[k];
      } else if (metric == "euclidean") {
        dist = std::sqrt(sums[k]);
      } else {
        double vn = col->sq_norm[static_cast<size_t>(col->row[batch[k]])];
        dist = (qn == 0 || vn == 0) ? 1.0 : std::max(0.0, 1.0 - sums[k] / std::sqrt(qn * vn));
      }
      ranked->emplace_back(batch[k], dist);
    }
    batch.clear();
  };
  for (size_t i : matched) {
    if (!col->has_array[i]) continue;
    if (column_ok && col->row[i] >= 0) {
      batch.push_back(i);
      if (batch.size() == kBlock) flush();
      continue;
    }
    const auto* v = all[i].second->attrs.if_contains(q.vector_attr);
    ranked->emplace_back(i, VectorDistance(metric, q.query_vector, v->get_array()));
  }
  if (!batch.empty()) flush();
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

namespace {

// Writes the rows (with `$dist` when has_dist), billing and performance of a ranked result.
void EmitRows(const Query& q, const NamespaceState& state, const std::vector<DocRef>& refs,
              const std::vector<double>& scores, bool has_dist, json::object* out) {
  json::array rows;
  rows.reserve(refs.size());
  uint64_t returned = 0;
  for (size_t k = 0; k < refs.size(); ++k) {
    json::value row = RowsProjection(q, state.meta.schema, refs[k],
                                     has_dist ? std::optional<double>(scores[k]) : std::nullopt);
    returned += SerializeJson(row).size();
    rows.push_back(std::move(row));
  }
  (*out)["rows"] = std::move(rows);
  (*out)["billing"] = QueryBilling(returned);
  (*out)["performance"] = QueryPerformance(state, state.docs.size());
}

// For an id-ordered query (paging), the first document that can match: a top-level
// ["id","Gt"|"Gte",x] condition (alone or in an And) on uint ids rules out every smaller id.
// Only a shortcut: the full filter is still evaluated on every document from there on.
std::map<DocId, Document>::const_iterator FirstIdCandidate(const Filter& f,
                                                           const std::map<DocId, Document>& docs) {
  auto best = docs.begin();
  auto consider = [&](const Filter& leaf) {
    if (leaf.kind != Filter::Kind::kLeaf || leaf.attr != "id" || !leaf.ref_new_attr.empty()) return;
    if (leaf.op != FilterOp::kGt && leaf.op != FilterOp::kGte) return;
    uint64_t x;
    if (leaf.operand.is_uint64()) {
      x = leaf.operand.get_uint64();
    } else if (leaf.operand.is_int64() && leaf.operand.get_int64() >= 0) {
      x = static_cast<uint64_t>(leaf.operand.get_int64());
    } else {
      return;
    }
    DocId key(x);
    auto it = leaf.op == FilterOp::kGt ? docs.upper_bound(key) : docs.lower_bound(key);
    if (best != docs.end() && (it == docs.end() || best->first < it->first)) best = it;
  };
  if (f.kind == Filter::Kind::kAnd) {
    for (const auto& c : f.children) consider(c);
  } else {
    consider(f);
  }
  return best;
}

// Queries answered in id order (no rank_by, or rank_by id ascending) need only the first `limit`
// matches in map order: the exhaustive path sorts by (id, doc index), which is the same order.
bool IdOrdered(const Query& q) {
  if (q.aggregate || !q.per_attrs.empty()) return false;
  if (q.rank != Query::Rank::kNone && q.rank != Query::Rank::kAttributes) return false;
  return q.order.empty() || (q.order.size() == 1 && q.order[0].attr == "id" && !q.order[0].desc);
}

}  // namespace

void ExecuteQuery(Query& q, const NamespaceState& state, json::object* out) {
  if (IdOrdered(q)) {
    size_t limit = static_cast<size_t>(q.limit);
    std::vector<DocRef> refs;
    auto it = q.filter ? FirstIdCandidate(*q.filter, state.docs) : state.docs.begin();
    for (; it != state.docs.end() && refs.size() < limit; ++it) {
      if (!q.filter || EvalFilter(*q.filter, it->first, it->second, nullptr, nullptr)) {
        refs.emplace_back(&it->first, &it->second);
      }
    }
    EmitRows(q, state, refs, {}, false, out);
    return;
  }
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
    RankByVector(q, state, all, matched, &ranked);
    auto less = [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    };
    size_t k = std::min(limit, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(k), ranked.end(), less);
    ranked.resize(k);
  } else if (q.rank == Query::Rank::kScore) {
    PrepareBm25(&q.score, state, all.size());
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
  std::vector<DocRef> refs;
  std::vector<double> scores;
  refs.reserve(ranked.size());
  scores.reserve(ranked.size());
  for (const auto& [i, score] : ranked) {
    refs.push_back(all[i]);
    scores.push_back(score);
  }
  EmitRows(q, state, refs, scores, has_dist, out);
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
