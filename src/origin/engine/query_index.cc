// Lazily built query indexes (namespace_state.h): a contiguous float column per vector attribute
// and an inverted index per full-text attribute. Both reproduce exactly the values the exhaustive
// per-document code computes (same tokens, same accumulation order), so answers do not change.
#include <algorithm>

#include "origin/engine/model.h"
#include "origin/engine/namespace_state.h"

namespace layer::origin {
namespace {

std::shared_ptr<const VectorColumn> BuildVectorColumn(const NamespaceState& state,
                                                      const std::string& attr) {
  auto col = std::make_shared<VectorColumn>();
  size_t n = state.docs.size();
  col->row.assign(n, -1);
  col->has_array.assign(n, false);
  // The column holds the vectors of the most common length; others stay on the slow path.
  std::map<size_t, size_t> lengths;
  for (const auto& [id, doc] : state.docs) {
    const auto* v = doc.attrs.if_contains(attr);
    if (v != nullptr && v->is_array()) ++lengths[v->get_array().size()];
  }
  size_t best_count = 0;
  for (const auto& [len, count] : lengths) {
    if (count > best_count) {
      col->dims = len;
      best_count = count;
    }
  }
  constexpr size_t kLanes = VectorColumn::kLanes;
  size_t i = 0;
  size_t arrays = 0;
  for (const auto& entry : state.docs) {
    const auto* v = entry.second.attrs.if_contains(attr);
    if (v != nullptr && v->is_array()) {
      col->has_array[i] = true;
      ++arrays;
      const auto& arr = v->get_array();
      bool exact = arr.size() == col->dims && col->dims > 0;
      for (size_t d = 0; exact && d < arr.size(); ++d) {
        if (!arr[d].is_double()) {
          exact = false;
          break;
        }
        double x = arr[d].get_double();
        exact = static_cast<double>(static_cast<float>(x)) == x;
      }
      if (exact) {
        size_t r = col->rows++;
        col->row[i] = static_cast<int64_t>(r);
        if (r % kLanes == 0) col->data.resize(col->data.size() + col->dims * kLanes, 0.0f);
        float* block = col->data.data() + (r / kLanes) * col->dims * kLanes + r % kLanes;
        double vn = 0;
        for (size_t d = 0; d < col->dims; ++d) {
          double b = arr[d].get_double();
          block[d * kLanes] = static_cast<float>(b);
          vn += b * b;
        }
        col->sq_norm.push_back(vn);
        col->entry.push_back(&entry);
      }
    }
    ++i;
  }
  col->complete = col->rows == arrays;
  return col;
}

std::shared_ptr<const TextIndex> BuildTextIndex(const NamespaceState& state,
                                                const std::string& attr, const FtsConfig& config) {
  auto idx = std::make_shared<TextIndex>();
  size_t n = state.docs.size();
  idx->has_attr.assign(n, false);
  idx->doc_len.assign(n, 0);
  std::unordered_map<std::string_view, uint32_t> tf;
  uint32_t i = 0;
  for (const auto& [id, doc] : state.docs) {
    const auto* v = doc.attrs.if_contains(attr);
    if (v != nullptr) {
      idx->has_attr[i] = true;
      std::vector<std::string> tokens = TokenizeValue(*v, config);
      idx->doc_len[i] = static_cast<uint32_t>(tokens.size());
      ++idx->docs_with_attr;
      idx->total_len += static_cast<double>(tokens.size());
      tf.clear();
      for (const auto& t : tokens) ++tf[t];
      for (const auto& [t, count] : tf) idx->postings[std::string(t)].emplace_back(i, count);
    }
    ++i;
  }
  idx->sorted_terms.reserve(idx->postings.size());
  for (const auto& [t, p] : idx->postings) idx->sorted_terms.push_back(t);
  std::sort(idx->sorted_terms.begin(), idx->sorted_terms.end());
  return idx;
}

std::string TextKey(const std::string& attr, const FtsConfig& c) {
  return attr + '\0' + std::to_string(c.k1) + '\0' + std::to_string(c.b) + '\0' +
         std::to_string(c.k3) + '\0' + c.language + '\0' + std::to_string(c.stemming) +
         std::to_string(c.remove_stopwords) + std::to_string(c.ascii_folding) +
         std::to_string(c.case_sensitive) + '\0' + std::to_string(c.max_token_length) + '\0' +
         c.tokenizer;
}

}  // namespace

std::shared_ptr<const VectorColumn> GetVectorColumn(const NamespaceState& state,
                                                    const std::string& attr) {
  std::lock_guard lock(state.indexes->mu);
  auto& slot = state.indexes->vectors[attr];
  if (slot == nullptr) slot = BuildVectorColumn(state, attr);
  return slot;
}

std::shared_ptr<const TextIndex> GetTextIndex(const NamespaceState& state, const std::string& attr,
                                              const FtsConfig& config) {
  std::lock_guard lock(state.indexes->mu);
  auto& slot = state.indexes->text[TextKey(attr, config)];
  if (slot == nullptr) slot = BuildTextIndex(state, attr, config);
  return slot;
}

}  // namespace layer::origin
