// Full-text tokenisation (word_v3-like and pre_tokenized_array) and BM25 scoring.
//
// Tokens: runs of ASCII alphanumerics or non-ASCII bytes, lower-cased unless case_sensitive,
// longer than max_token_length dropped, optional English stopword removal and Porter stemming.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tpuf/model/doc_model.h"
#include "tpuf/model/schema.h"

namespace layer::tpuf::model {

std::vector<std::string> TokenizeText(std::string_view text, const FtsConfig& config);

// Tokens of a stored attribute value: a string (word tokenisers) or an array of strings (each
// element tokenised, or taken verbatim for pre_tokenized_array).
std::vector<std::string> TokenizeValue(const json::value& v, const FtsConfig& config);

// Porter (1980) stemmer on a lower-case ASCII word.
std::string PorterStem(std::string word);

// Okapi BM25 over one attribute of a document set (k1/b from the config; Lucene idf
// ln(1 + (N - df + 0.5) / (df + 0.5)); N and avgdl over documents having the attribute).
class Bm25Scorer {
 public:
  // `docs_tokens[i]` are the tokens of document i (empty if it lacks the attribute and
  // `has_attr[i]` is false).
  Bm25Scorer(const FtsConfig& config, const std::vector<std::vector<std::string>>& docs_tokens,
             const std::vector<bool>& has_attr, const std::vector<std::string>& query_tokens,
             bool last_as_prefix);
  double Score(size_t doc_index) const;

 private:
  const FtsConfig& config_;
  const std::vector<std::vector<std::string>>& docs_tokens_;
  std::vector<std::string> terms_;    // distinct query terms
  std::vector<double> term_weights_;  // idf * query-term weight
  std::vector<bool> term_is_prefix_;
  double avgdl_ = 0;
};

}  // namespace layer::tpuf::model
