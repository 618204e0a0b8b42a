#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "common/base64.h"
#include "origin/engine/model.h"
#include "origin/engine/query_plan.h"

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

enum class Metric { kCosine, kEuclideanSquared, kEuclidean };

Metric MetricOf(const std::string& name) {
  if (name == "euclidean_squared") return Metric::kEuclideanSquared;
  if (name == "euclidean") return Metric::kEuclidean;
  return Metric::kCosine;
}

using V4d = double __attribute__((vector_size(32)));
using V4f = float __attribute__((vector_size(16)));
static_assert(VectorColumn::kLanes == 8);

// Per lane of one column block (VectorColumn layout): Σ_d q[d]·x[d] for cosine, Σ_d (q[d]−x[d])²
// otherwise. Each lane is one row accumulated in dimension order with a separate multiply and
// add, so it equals VectorDistance's scalar loop bit for bit; the lanes only run side by side.
template <bool kDot>
inline __attribute__((always_inline)) void BlockSumsImpl(const double* q, const float* block,
                                                         size_t dims, double* out) {
  V4d acc0 = {0, 0, 0, 0};
  V4d acc1 = {0, 0, 0, 0};
  for (size_t d = 0; d < dims; ++d) {
    V4f lo, hi;
    std::memcpy(&lo, block + d * 8, sizeof lo);
    std::memcpy(&hi, block + d * 8 + 4, sizeof hi);
    V4d b0 = __builtin_convertvector(lo, V4d);
    V4d b1 = __builtin_convertvector(hi, V4d);
    V4d a = V4d{0, 0, 0, 0} + q[d];
    if constexpr (kDot) {
      acc0 += a * b0;
      acc1 += a * b1;
    } else {
      V4d d0 = a - b0;
      V4d d1 = a - b1;
      acc0 += d0 * d0;
      acc1 += d1 * d1;
    }
  }
  std::memcpy(out, &acc0, sizeof acc0);
  std::memcpy(out + 4, &acc1, sizeof acc1);
}

// AVX2 where the CPU has it (no FMA: contraction would change the rounding), SSE2 otherwise.
// Not under ThreadSanitizer: target_clones dispatches through an ifunc resolver that the dynamic
// loader runs before TSan's runtime is up, and the instrumented resolver crashes the process.
#if defined(__SANITIZE_THREAD__)
#define LAYER_AVX2_CLONES
#else
#define LAYER_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#endif
LAYER_AVX2_CLONES void BlockSums(bool dot, const double* q, const float* block, size_t dims,
                                 double* out) {
  if (dot) {
    BlockSumsImpl<true>(q, block, dims, out);
  } else {
    BlockSumsImpl<false>(q, block, dims, out);
  }
}

// A query vector prepared for the column kernel.
struct VectorProbe {
  Metric metric;
  std::vector<double> q;
  double qn = 0;  // sum of squares, in dimension order

  VectorProbe(const std::string& metric_name, const std::vector<float>& query)
      : metric(MetricOf(metric_name)), q(query.begin(), query.end()) {
    for (double a : q) qn += a * a;
  }

  void Sums(const float* block, size_t dims, double* out) const {
    BlockSums(metric == Metric::kCosine, q.data(), block, dims, out);
  }

  // The distance of column row `r` from its kernel sum, as VectorDistance computes it.
  double Finish(double sum, const VectorColumn& col, size_t r) const {
    switch (metric) {
      case Metric::kEuclideanSquared:
        return sum;
      case Metric::kEuclidean:
        return std::sqrt(sum);
      case Metric::kCosine:
        break;
    }
    double vn = col.sq_norm[r];
    return (qn == 0 || vn == 0) ? 1.0 : std::max(0.0, 1.0 - sum / std::sqrt(qn * vn));
  }
};

bool ColumnServes(const VectorColumn& col, const Query& q) {
  return col.dims > 0 && col.dims == q.query_vector.size();
}

// Appends (doc index, distance) for every matched document holding a vector, like
// VectorDistance over each document's stored array, but from the namespace's float column
// (matched rows gathered into blocks for the kernel).
void RankByVector(const Query& q, const NamespaceState& state, const std::vector<DocRef>& all,
                  const std::vector<size_t>& matched,
                  std::vector<std::pair<size_t, double>>* ranked) {
  constexpr size_t kLanes = VectorColumn::kLanes;
  std::shared_ptr<const VectorColumn> col = GetVectorColumn(state, q.vector_attr);
  bool column_ok = ColumnServes(*col, q);
  VectorProbe probe(state.meta.distance_metric, q.query_vector);
  std::vector<float> block(col->dims * kLanes, 0.0f);
  std::vector<size_t> batch;
  batch.reserve(kLanes);
  auto flush = [&] {
    for (size_t k = 0; k < batch.size(); ++k) {
      auto r = static_cast<size_t>(col->row[batch[k]]);
      for (size_t d = 0; d < col->dims; ++d) block[d * kLanes + k] = col->At(r, d);
    }
    double sums[kLanes];
    probe.Sums(block.data(), col->dims, sums);
    for (size_t k = 0; k < batch.size(); ++k) {
      auto r = static_cast<size_t>(col->row[batch[k]]);
      ranked->emplace_back(batch[k], probe.Finish(sums[k], *col, r));
    }
    batch.clear();
  };
  for (size_t i : matched) {
    if (!col->has_array[i]) continue;
    if (column_ok && col->row[i] >= 0) {
      batch.push_back(i);
      if (batch.size() == kLanes) flush();
      continue;
    }
    const auto* v = all[i].second->attrs.if_contains(q.vector_attr);
    ranked->emplace_back(i, VectorDistance(state.meta.distance_metric, q.query_vector,
                                           v->get_array()));
  }
  if (!batch.empty()) flush();
}

// The `limit` nearest rows of a complete column in (distance, row) order — the exhaustive
// path's (distance, doc index) order, as rows ascend with doc index — scanning the column block
// by block and resolving only the winners to documents.
void NearestInColumn(const Query& q, const NamespaceState& state, const VectorColumn& col,
                     size_t limit, std::vector<DocRef>* refs, std::vector<double>* dists) {
  constexpr size_t kLanes = VectorColumn::kLanes;
  VectorProbe probe(state.meta.distance_metric, q.query_vector);
  size_t k = std::min(limit, col.rows);
  std::vector<std::pair<double, size_t>> heap;  // max-heap of the best k so far
  heap.reserve(k);
  double sums[kLanes];
  for (size_t base = 0; base < col.rows && k > 0; base += kLanes) {
    probe.Sums(col.data.data() + base * col.dims, col.dims, sums);
    size_t lanes = std::min(kLanes, col.rows - base);
    for (size_t lane = 0; lane < lanes; ++lane) {
      std::pair<double, size_t> cand(probe.Finish(sums[lane], col, base + lane), base + lane);
      if (heap.size() < k) {
        heap.push_back(cand);
        std::push_heap(heap.begin(), heap.end());
      } else if (cand < heap.front()) {
        std::pop_heap(heap.begin(), heap.end());
        heap.back() = cand;
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  std::sort_heap(heap.begin(), heap.end());
  for (const auto& [dist, r] : heap) {
    refs->emplace_back(&col.entry[r]->first, &col.entry[r]->second);
    dists->push_back(dist);
  }
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

// Whether RenderAttr would print `schema`'s values exactly as stored.
bool RendersAsStored(const AttrSchema* schema) {
  if (schema == nullptr) return true;
  auto info = ParseTypeName(schema->type);
  if (!info) return true;
  return info->base != TypeInfo::Base::kDenseVector && info->base != TypeInfo::Base::kDatetime &&
         info->base != TypeInfo::Base::kSparse;
}

// Appends attribute values as RenderAttr renders them, looking each name's schema up once per
// query rather than once per row.
class AttrWriter {
 public:
  AttrWriter(const Schema& schema, bool base64) : schema_(schema), base64_(base64) {}

  void Append(std::string_view name, const json::value& v, std::string* out) {
    out->push_back(',');
    AppendJsonString(name, out);
    out->push_back(':');
    const Entry& e = Lookup(name);
    if (e.as_stored) {
      AppendJson(v, out);
    } else {
      AppendJson(RenderAttr(e.schema, v, base64_), out);
    }
  }

 private:
  struct Entry {
    std::string name;
    const AttrSchema* schema;
    bool as_stored;
  };

  const Entry& Lookup(std::string_view name) {
    for (const auto& e : entries_) {
      if (e.name == name) return e;
    }
    const AttrSchema* a = schema_.Find(std::string(name));
    return entries_.emplace_back(Entry{std::string(name), a, RendersAsStored(a)});
  }

  const Schema& schema_;
  bool base64_;
  std::vector<Entry> entries_;
};

// Appends one result row as JSON text: id, `$dist` when given, then the projected attributes in
// stored order (include lists in list order, first mention only).
void AppendRow(const Query& q, AttrWriter* w, const DocRef& doc, const double* dist,
               std::string* out) {
  *out += "{\"id\":";
  if (const auto* n = std::get_if<uint64_t>(doc.first)) {
    AppendJsonUint(*n, out);
  } else {
    AppendJsonString(std::get<std::string>(*doc.first), out);
  }
  if (dist != nullptr) {
    *out += ",\"$dist\":";
    AppendDouble(F32AsPrintableDouble(static_cast<float>(*dist)), out);
  }
  const auto& attrs = doc.second->attrs;
  switch (q.projection) {
    case Query::Projection::kIdOnly:
      break;
    case Query::Projection::kAll:
      for (const auto& kv : attrs) w->Append(kv.key(), kv.value(), out);
      break;
    case Query::Projection::kList:
      for (size_t i = 0; i < q.attrs.size(); ++i) {
        const auto& name = q.attrs[i];
        if (std::find(q.attrs.begin(), q.attrs.begin() + static_cast<long>(i), name) !=
            q.attrs.begin() + static_cast<long>(i)) {
          continue;
        }
        if (const auto* v = attrs.if_contains(name)) w->Append(name, *v, out);
      }
      break;
    case Query::Projection::kExclude:
      for (const auto& kv : attrs) {
        if (std::find(q.attrs.begin(), q.attrs.end(), std::string_view(kv.key())) !=
            q.attrs.end()) {
          continue;
        }
        w->Append(kv.key(), kv.value(), out);
      }
      break;
  }
  out->push_back('}');
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

// Writes the result object of a ranked query as JSON text: rows (with `$dist` when has_dist),
// billing (bytes returned = the rows' text) and performance.
void EmitRows(const Query& q, const NamespaceState& state, const std::vector<DocRef>& refs,
              const std::vector<double>& scores, bool has_dist, std::string* out) {
  AttrWriter writer(state.meta.schema, q.base64);
  uint64_t returned = 0;
  *out += "{\"rows\":[";
  for (size_t k = 0; k < refs.size(); ++k) {
    if (k > 0) out->push_back(',');
    size_t before = out->size();
    AppendRow(q, &writer, refs[k], has_dist ? &scores[k] : nullptr, out);
    returned += out->size() - before;
  }
  *out += "],\"billing\":";
  AppendJson(QueryBilling(returned), out);
  *out += ",\"performance\":";
  AppendJson(QueryPerformance(state, state.docs.size()), out);
  out->push_back('}');
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

void ExecuteQuery(Query& q, const NamespaceState& state, std::string* out) {
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
  if (q.rank == Query::Rank::kVector && !q.filter) {
    std::shared_ptr<const VectorColumn> col = GetVectorColumn(state, q.vector_attr);
    if (col->complete && ColumnServes(*col, q)) {
      std::vector<DocRef> refs;
      std::vector<double> dists;
      NearestInColumn(q, state, *col, static_cast<size_t>(q.limit), &refs, &dists);
      EmitRows(q, state, refs, dists, true, out);
      return;
    }
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
    json::object result;
    RunAggregation(q, state, docs, &result);
    result["billing"] = QueryBilling(0);
    result["performance"] = QueryPerformance(state, all.size());
    AppendJson(result, out);
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
    if (v.is_int64()) return json::value(tpuf::FormatDatetime(v.get_int64()));
    if (v.is_array()) {
      json::array arr;
      for (const auto& e : v.get_array()) {
        arr.push_back(e.is_int64() ? json::value(tpuf::FormatDatetime(e.get_int64())) : e);
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
