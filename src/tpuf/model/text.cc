#include "tpuf/model/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

namespace layer::tpuf::model {
namespace {

const std::set<std::string, std::less<>>& EnglishStopwords() {
  static const auto* kWords = new std::set<std::string, std::less<>>{
      "a",   "an",    "and",  "are",   "as",    "at",   "be",   "but", "by",  "for",  "if",
      "in",  "into",  "is",   "it",    "no",    "not",  "of",   "on",  "or",  "such", "that",
      "the", "their", "then", "there", "these", "they", "this", "to",  "was", "will", "with"};
  return *kWords;
}

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

}  // namespace

std::vector<std::string> TokenizeText(std::string_view text, const FtsConfig& config) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !IsWordByte(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && IsWordByte(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) continue;
    std::string tok(text.substr(start, i - start));
    if (static_cast<int64_t>(tok.size()) > config.max_token_length) continue;
    if (!config.case_sensitive) {
      for (char& c : tok) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (config.remove_stopwords && EnglishStopwords().count(tok) > 0) continue;
    if (config.stemming) tok = PorterStem(std::move(tok));
    out.push_back(std::move(tok));
  }
  return out;
}

std::vector<std::string> TokenizeValue(const json::value& v, const FtsConfig& config) {
  std::vector<std::string> out;
  if (v.is_string()) return TokenizeText(v.get_string(), config);
  if (!v.is_array()) return out;
  for (const auto& e : v.get_array()) {
    if (!e.is_string()) continue;
    if (config.pre_tokenized()) {
      out.emplace_back(e.get_string());
    } else {
      auto toks = TokenizeText(e.get_string(), config);
      out.insert(out.end(), toks.begin(), toks.end());
    }
  }
  return out;
}

// ---- Porter stemmer -------------------------------------------------------------------------

namespace {

class Porter {
 public:
  explicit Porter(std::string w) : b_(std::move(w)), k_(static_cast<int>(b_.size()) - 1) {}

  std::string Run() {
    if (k_ <= 1) return b_;
    Step1ab();
    if (k_ > 0) {
      Step1c();
      Step2();
      Step3();
      Step4();
      Step5();
    }
    return b_.substr(0, static_cast<size_t>(k_ + 1));
  }

 private:
  bool Cons(int i) const {
    switch (b_[i]) {
      case 'a':
      case 'e':
      case 'i':
      case 'o':
      case 'u':
        return false;
      case 'y':
        return i == 0 ? true : !Cons(i - 1);
      default:
        return true;
    }
  }
  // Number of VC sequences in b_[0..j_].
  int M() const {
    int n = 0, i = 0;
    while (true) {
      if (i > j_) return n;
      if (!Cons(i)) break;
      ++i;
    }
    ++i;
    while (true) {
      while (true) {
        if (i > j_) return n;
        if (Cons(i)) break;
        ++i;
      }
      ++i;
      ++n;
      while (true) {
        if (i > j_) return n;
        if (!Cons(i)) break;
        ++i;
      }
      ++i;
    }
  }
  bool VowelInStem() const {
    for (int i = 0; i <= j_; ++i) {
      if (!Cons(i)) return true;
    }
    return false;
  }
  bool DoubleC(int j) const { return j >= 1 && b_[j] == b_[j - 1] && Cons(j); }
  bool Cvc(int i) const {
    if (i < 2 || !Cons(i) || Cons(i - 1) || !Cons(i - 2)) return false;
    char ch = b_[i];
    return !(ch == 'w' || ch == 'x' || ch == 'y');
  }
  bool Ends(std::string_view s) {
    int len = static_cast<int>(s.size());
    if (len > k_ + 1) return false;
    if (b_.compare(static_cast<size_t>(k_ - len + 1), s.size(), s) != 0) return false;
    j_ = k_ - len;
    return true;
  }
  void SetTo(std::string_view s) {
    b_.replace(static_cast<size_t>(j_ + 1), static_cast<size_t>(k_ - j_), s);
    k_ = j_ + static_cast<int>(s.size());
    b_.resize(static_cast<size_t>(k_ + 1));
  }
  void R(std::string_view s) {
    if (M() > 0) SetTo(s);
  }
  void Step1ab() {
    if (b_[k_] == 's') {
      if (Ends("sses")) {
        k_ -= 2;
      } else if (Ends("ies")) {
        SetTo("i");
      } else if (b_[k_ - 1] != 's') {
        --k_;
      }
      b_.resize(static_cast<size_t>(k_ + 1));
    }
    if (Ends("eed")) {
      if (M() > 0) --k_;
      b_.resize(static_cast<size_t>(k_ + 1));
    } else if ((Ends("ed") || Ends("ing")) && VowelInStem()) {
      k_ = j_;
      b_.resize(static_cast<size_t>(k_ + 1));
      if (Ends("at")) {
        SetTo("ate");
      } else if (Ends("bl")) {
        SetTo("ble");
      } else if (Ends("iz")) {
        SetTo("ize");
      } else if (DoubleC(k_)) {
        --k_;
        char ch = b_[k_];
        if (ch == 'l' || ch == 's' || ch == 'z') ++k_;
        b_.resize(static_cast<size_t>(k_ + 1));
      } else if (j_ = k_, M() == 1 && Cvc(k_)) {
        j_ = k_;
        b_ += 'e';
        ++k_;
      }
    }
  }
  void Step1c() {
    if (Ends("y") && VowelInStem()) b_[k_] = 'i';
  }
  void Step2() {
    if (k_ < 1) return;
    static const std::pair<const char*, const char*> kRules[] = {
        {"ational", "ate"}, {"tional", "tion"}, {"enci", "ence"},   {"anci", "ance"},
        {"izer", "ize"},    {"bli", "ble"},     {"alli", "al"},     {"entli", "ent"},
        {"eli", "e"},       {"ousli", "ous"},   {"ization", "ize"}, {"ation", "ate"},
        {"ator", "ate"},    {"alism", "al"},    {"iveness", "ive"}, {"fulness", "ful"},
        {"ousness", "ous"}, {"aliti", "al"},    {"iviti", "ive"},   {"biliti", "ble"},
        {"logi", "log"}};
    for (const auto& [from, to] : kRules) {
      if (Ends(from)) {
        R(to);
        return;
      }
    }
  }
  void Step3() {
    static const std::pair<const char*, const char*> kRules[] = {
        {"icate", "ic"}, {"ative", ""}, {"alize", "al"}, {"iciti", "ic"},
        {"ical", "ic"},  {"ful", ""},   {"ness", ""}};
    for (const auto& [from, to] : kRules) {
      if (Ends(from)) {
        R(to);
        return;
      }
    }
  }
  void Step4() {
    if (k_ < 1) return;
    static const char* kSuffixes[] = {"al",  "ance",  "ence", "er",  "ic",  "able", "ible",
                                      "ant", "ement", "ment", "ent", "ion", "ou",   "ism",
                                      "ate", "iti",   "ous",  "ive", "ize"};
    for (const char* s : kSuffixes) {
      if (!Ends(s)) continue;
      if (std::string_view(s) == "ion" && !(j_ >= 0 && (b_[j_] == 's' || b_[j_] == 't'))) return;
      if (M() > 1) {
        k_ = j_;
        b_.resize(static_cast<size_t>(k_ + 1));
      }
      return;
    }
  }
  void Step5() {
    j_ = k_;
    if (b_[k_] == 'e') {
      int a = M();
      if (a > 1 || (a == 1 && !Cvc(k_ - 1))) --k_;
    }
    b_.resize(static_cast<size_t>(k_ + 1));
    j_ = k_;
    if (b_[k_] == 'l' && DoubleC(k_) && M() > 1) --k_;
    b_.resize(static_cast<size_t>(k_ + 1));
  }

  std::string b_;
  int k_;
  int j_ = 0;
};

}  // namespace

std::string PorterStem(std::string word) {
  for (char c : word) {
    if (!std::islower(static_cast<unsigned char>(c))) return word;
  }
  return Porter(std::move(word)).Run();
}

// ---- BM25 -----------------------------------------------------------------------------------

Bm25Scorer::Bm25Scorer(const FtsConfig& config,
                       const std::vector<std::vector<std::string>>& docs_tokens,
                       const std::vector<bool>& has_attr,
                       const std::vector<std::string>& query_tokens, bool last_as_prefix)
    : config_(config), docs_tokens_(docs_tokens) {
  std::map<std::string, int> qtf;
  std::vector<std::string> order;
  for (size_t i = 0; i < query_tokens.size(); ++i) {
    if (qtf[query_tokens[i]]++ == 0) order.push_back(query_tokens[i]);
  }
  size_t n = 0;
  double total_len = 0;
  for (size_t i = 0; i < docs_tokens.size(); ++i) {
    if (!has_attr[i]) continue;
    ++n;
    total_len += static_cast<double>(docs_tokens[i].size());
  }
  avgdl_ = n > 0 ? total_len / static_cast<double>(n) : 0;
  for (const auto& term : order) {
    bool prefix = last_as_prefix && !query_tokens.empty() && term == query_tokens.back();
    size_t df = 0;
    for (size_t i = 0; i < docs_tokens.size(); ++i) {
      if (!has_attr[i]) continue;
      for (const auto& t : docs_tokens[i]) {
        if (t == term) {
          ++df;
          break;
        }
      }
    }
    double idf = std::log(1.0 + (static_cast<double>(n) - static_cast<double>(df) + 0.5) /
                                    (static_cast<double>(df) + 0.5));
    double q = qtf[term];
    double qweight = q * (config.k3 + 1) / (config.k3 + q);
    terms_.push_back(term);
    term_weights_.push_back(idf * qweight);
    term_is_prefix_.push_back(prefix);
  }
}

double Bm25Scorer::Score(size_t doc_index) const {
  const auto& toks = docs_tokens_[doc_index];
  if (toks.empty()) return 0;
  double dl = static_cast<double>(toks.size());
  double norm = config_.k1 * (1 - config_.b + config_.b * (avgdl_ > 0 ? dl / avgdl_ : 1));
  double score = 0;
  for (size_t t = 0; t < terms_.size(); ++t) {
    const std::string& term = terms_[t];
    double tf = 0;
    bool prefix_hit = false;
    for (const auto& tok : toks) {
      if (tok == term) {
        tf += 1;
      } else if (term_is_prefix_[t] && tok.compare(0, term.size(), term) == 0) {
        prefix_hit = true;
      }
    }
    if (tf > 0) {
      score += term_weights_[t] * tf * (config_.k1 + 1) / (tf + norm);
    } else if (prefix_hit) {
      score += 1.0;
    }
  }
  return score;
}

}  // namespace layer::tpuf::model
