#include "tpuf/model/filter.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "tpuf/model/json_out.h"
#include "tpuf/model/text.h"

namespace layer::tpuf::model {
namespace {

const std::map<std::string_view, FilterOp>& OpTable() {
  static const auto* kOps = new std::map<std::string_view, FilterOp>{
      {"Eq", FilterOp::kEq},
      {"NotEq", FilterOp::kNotEq},
      {"In", FilterOp::kIn},
      {"NotIn", FilterOp::kNotIn},
      {"Contains", FilterOp::kContains},
      {"NotContains", FilterOp::kNotContains},
      {"ContainsAny", FilterOp::kContainsAny},
      {"NotContainsAny", FilterOp::kNotContainsAny},
      {"Lt", FilterOp::kLt},
      {"Lte", FilterOp::kLte},
      {"Gt", FilterOp::kGt},
      {"Gte", FilterOp::kGte},
      {"AnyLt", FilterOp::kAnyLt},
      {"AnyLte", FilterOp::kAnyLte},
      {"AnyGt", FilterOp::kAnyGt},
      {"AnyGte", FilterOp::kAnyGte},
      {"Glob", FilterOp::kGlob},
      {"NotGlob", FilterOp::kNotGlob},
      {"IGlob", FilterOp::kIGlob},
      {"NotIGlob", FilterOp::kNotIGlob},
      {"Regex", FilterOp::kRegex},
      {"ContainsAllTokens", FilterOp::kContainsAllTokens},
      {"ContainsAnyToken", FilterOp::kContainsAnyToken},
      {"ContainsTokenSequence", FilterOp::kContainsTokenSequence},
      {"Fuzzy", FilterOp::kFuzzy},
  };
  return *kOps;
}

ApiError Shape(const FilterContext& ctx) {
  return Unprocessable(ctx.field +
                       ": data did not match any variant of untagged enum FiltersInput");
}

ApiError TypeMismatch(std::string_view attr, std::string_view op, std::string_view expects,
                      const json::value& got) {
  return BadRequestRaw("filter error in key `" + std::string(attr) + "`: type mismatch, " +
                       std::string(op) + " expects " + std::string(expects) + ", but got '" +
                       DisplayValue(got) + "'");
}

bool IsRefNew(const json::value& v, std::string* attr) {
  if (!v.is_object()) return false;
  const auto* r = v.get_object().if_contains("$ref_new");
  if (r == nullptr || !r->is_string()) return false;
  *attr = r->get_string();
  return true;
}

// Converts one operand element for attribute type `info` (filter leniency: any number for a
// numeric attribute). False on mismatch.
bool ConvertOperand(const std::optional<TypeInfo>& info, const json::value& v, json::value* out) {
  if (!info || v.is_null()) {
    *out = v;
    return true;
  }
  using B = TypeInfo::Base;
  switch (info->base) {
    case B::kInt:
    case B::kUint:
    case B::kFloat:
      if (!IsNumber(v)) return false;
      *out = v;
      return true;
    case B::kDatetime:
      if (IsNumber(v)) {
        *out = v;
        return true;
      }
      return ConvertScalar(info->base, v, out);
    case B::kDenseVector:
    case B::kSparse:
      *out = v;
      return true;
    default:
      return ConvertScalar(info->base, v, out);
  }
}

ApiStatus ParseIdOperand(const Filter& f, std::string_view op_name, const json::value& v,
                         IdType id_type, json::value* out) {
  auto convert = [&](const json::value& e, json::value* o) {
    if (e.is_null()) {
      *o = nullptr;
      return true;
    }
    DocId id;
    if (!ParseRawId(e, &id)) return false;
    if (id_type != IdType::kUnset && ConformId(id_type, &id).has_value()) return false;
    *o = IdToJson(id);
    return true;
  };
  std::string tname(IdTypeName(id_type).empty() ? "uint" : IdTypeName(id_type));
  bool list_op = f.op == FilterOp::kIn || f.op == FilterOp::kNotIn;
  if (list_op) {
    json::array arr;
    const json::array* src = v.is_array() ? &v.get_array() : nullptr;
    json::array single;
    if (src == nullptr) {
      single.push_back(v);
      src = &single;
    }
    for (const auto& e : *src) {
      json::value c;
      if (!convert(e, &c)) return TypeMismatch("id", op_name, tname + " or []" + tname, v);
      arr.push_back(std::move(c));
    }
    *out = std::move(arr);
    return {};
  }
  if (!convert(v, out)) return TypeMismatch("id", op_name, tname, v);
  return {};
}

ApiStatus ParseLeaf(const json::array& arr, const FilterContext& ctx, Filter* out) {
  if (arr.size() < 3 || arr.size() > 4 || !arr[0].is_string() || !arr[1].is_string()) {
    return Shape(ctx);
  }
  out->kind = Filter::Kind::kLeaf;
  out->attr = arr[0].get_string();
  std::string op_name(arr[1].get_string());
  auto it = OpTable().find(op_name);
  if (it == OpTable().end()) return Shape(ctx);
  out->op = it->second;
  const json::value& operand = arr[2];
  if (IsRefNew(operand, &out->ref_new_attr)) return {};

  const AttrSchema* attr = ctx.schema ? ctx.schema->Find(out->attr) : nullptr;
  if (out->attr == "id") {
    IdType id_type = ctx.schema ? ctx.schema->id_type() : IdType::kUnset;
    return ParseIdOperand(*out, op_name, operand, id_type, &out->operand);
  }
  std::optional<TypeInfo> info;
  if (attr != nullptr) info = ParseTypeName(attr->type);
  bool index_op =
      out->op == FilterOp::kGlob || out->op == FilterOp::kNotGlob || out->op == FilterOp::kIGlob ||
      out->op == FilterOp::kNotIGlob || out->op == FilterOp::kRegex ||
      out->op == FilterOp::kFuzzy || out->op == FilterOp::kContainsAllTokens ||
      out->op == FilterOp::kContainsAnyToken || out->op == FilterOp::kContainsTokenSequence;
  if (attr != nullptr && attr->filterable == std::optional<bool>(false) && !index_op) {
    return BadRequest("attribute '" + out->attr + "' is not filterable");
  }
  std::string elem = attr ? ElementTypeName(attr->type) : "";
  switch (out->op) {
    case FilterOp::kEq:
    case FilterOp::kNotEq:
    case FilterOp::kLt:
    case FilterOp::kLte:
    case FilterOp::kGt:
    case FilterOp::kGte: {
      if (info && info->array) {
        out->operand = operand;
        return {};
      }
      if (!ConvertOperand(info, operand, &out->operand)) {
        return TypeMismatch(out->attr, op_name, elem, operand);
      }
      return {};
    }
    case FilterOp::kIn:
    case FilterOp::kNotIn: {
      json::array list;
      if (operand.is_array()) {
        for (const auto& e : operand.get_array()) {
          json::value c;
          if (!ConvertOperand(info, e, &c)) {
            return TypeMismatch(out->attr, op_name, elem + " or []" + elem, operand);
          }
          list.push_back(std::move(c));
        }
      } else {
        json::value c;
        if (!ConvertOperand(info, operand, &c)) {
          return TypeMismatch(out->attr, op_name, elem + " or []" + elem, operand);
        }
        list.push_back(std::move(c));
      }
      out->operand = std::move(list);
      return {};
    }
    case FilterOp::kContains:
    case FilterOp::kNotContains:
    case FilterOp::kAnyLt:
    case FilterOp::kAnyLte:
    case FilterOp::kAnyGt:
    case FilterOp::kAnyGte: {
      if (operand.is_array() || !ConvertOperand(info, operand, &out->operand)) {
        return TypeMismatch(out->attr, op_name, elem, operand);
      }
      return {};
    }
    case FilterOp::kContainsAny:
    case FilterOp::kNotContainsAny: {
      if (!operand.is_array()) return TypeMismatch(out->attr, op_name, "[]" + elem, operand);
      json::array list;
      for (const auto& e : operand.get_array()) {
        json::value c;
        if (!ConvertOperand(info, e, &c)) {
          return TypeMismatch(out->attr, op_name, "[]" + elem, operand);
        }
        list.push_back(std::move(c));
      }
      out->operand = std::move(list);
      return {};
    }
    case FilterOp::kGlob:
    case FilterOp::kNotGlob:
    case FilterOp::kIGlob:
    case FilterOp::kNotIGlob:
      if (!operand.is_string()) return TypeMismatch(out->attr, op_name, "string", operand);
      out->operand = operand;
      return {};
    case FilterOp::kRegex: {
      if (!operand.is_string()) return TypeMismatch(out->attr, op_name, "string", operand);
      out->operand = operand;
      try {
        out->regex = std::make_shared<const std::regex>(std::string(operand.get_string()),
                                                        std::regex::ECMAScript);
      } catch (const std::regex_error&) {
        return BadRequest("invalid regex in filter for key `" + out->attr + "`");
      }
      return {};
    }
    case FilterOp::kContainsAllTokens:
    case FilterOp::kContainsAnyToken:
    case FilterOp::kContainsTokenSequence: {
      if (attr == nullptr || !attr->fts) {
        return BadRequest("filter error in key `" + out->attr + "`: " + op_name +
                          " requires full-text search to be enabled for the attribute");
      }
      out->fts = attr->fts;
      if (attr->fts->pre_tokenized()) {
        if (!operand.is_array()) return TypeMismatch(out->attr, op_name, "[]string", operand);
        for (const auto& e : operand.get_array()) {
          if (!e.is_string()) return TypeMismatch(out->attr, op_name, "[]string", operand);
          out->tokens.emplace_back(e.get_string());
        }
      } else {
        if (!operand.is_string()) return TypeMismatch(out->attr, op_name, "string", operand);
        out->tokens = TokenizeText(operand.get_string(), *attr->fts);
      }
      if (arr.size() == 4 && arr[3].is_object()) {
        const auto* p = arr[3].get_object().if_contains("last_as_prefix");
        out->last_as_prefix = p != nullptr && p->is_bool() && p->get_bool();
      }
      out->operand = operand;
      return {};
    }
    case FilterOp::kFuzzy: {
      if (!operand.is_string()) return TypeMismatch(out->attr, op_name, "string", operand);
      out->operand = operand;
      size_t qlen = operand.get_string().size();
      out->fuzzy_distance = qlen >= 3 ? 1 : 0;
      if (arr.size() == 4 && arr[3].is_object()) {
        const auto& opts = arr[3].get_object();
        if (const auto* cs = opts.if_contains("case_sensitive"); cs && cs->is_bool()) {
          out->fuzzy_case_sensitive = cs->get_bool();
        }
        if (const auto* med = opts.if_contains("max_edit_distance"); med && med->is_array()) {
          int64_t best_min = -1;
          for (const auto& rule : med->get_array()) {
            if (!rule.is_object()) continue;
            const auto* mq = rule.get_object().if_contains("min_query_chars");
            const auto* d = rule.get_object().if_contains("distance");
            if (!mq || !d || !IsNumber(*mq) || !IsNumber(*d)) continue;
            auto m = static_cast<int64_t>(NumberAsDouble(*mq));
            if (m <= static_cast<int64_t>(qlen) && m > best_min) {
              best_min = m;
              out->fuzzy_distance = static_cast<int>(NumberAsDouble(*d));
            }
          }
          if (best_min < 0) out->fuzzy_distance = 0;
        }
      }
      return {};
    }
  }
  return Shape(ctx);
}

}  // namespace

ApiStatus ParseFilter(const json::value& v, const FilterContext& ctx, Filter* out) {
  if (!v.is_array() || v.get_array().empty()) return Shape(ctx);
  const auto& arr = v.get_array();
  if (arr[0].is_string()) {
    std::string_view head = arr[0].get_string();
    if (head == "And" || head == "Or") {
      if (arr.size() != 2 || !arr[1].is_array()) return Shape(ctx);
      out->kind = head == "And" ? Filter::Kind::kAnd : Filter::Kind::kOr;
      for (const auto& child : arr[1].get_array()) {
        Filter f;
        ORIGIN_RETURN_IF_ERROR(ParseFilter(child, ctx, &f));
        out->children.push_back(std::move(f));
      }
      return {};
    }
    if (head == "Not") {
      if (arr.size() != 2) return Shape(ctx);
      out->kind = Filter::Kind::kNot;
      Filter f;
      ORIGIN_RETURN_IF_ERROR(ParseFilter(arr[1], ctx, &f));
      out->children.push_back(std::move(f));
      return {};
    }
  }
  return ParseLeaf(arr, ctx, out);
}

json::value AttrValue(const DocId& id, const Document& doc, std::string_view attr) {
  if (attr == "id") return IdToJson(id);
  const auto* v = doc.attrs.if_contains(attr);
  return v ? *v : json::value(nullptr);
}

bool GlobMatch(std::string_view p, std::string_view t, bool ci) {
  auto eq = [ci](char a, char b) {
    if (!ci) return a == b;
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  };
  size_t pi = 0, ti = 0, star_p = std::string_view::npos, star_t = 0;
  while (ti < t.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') ++pi;
        star_p = pi;
        star_t = ti;
        continue;
      }
      if (c == '?') {
        ++pi;
        ++ti;
        continue;
      }
      if (c == '[') {
        size_t j = pi + 1;
        bool negate = j < p.size() && (p[j] == '!' || p[j] == '^');
        if (negate) ++j;
        bool matched = false;
        size_t start = j;
        while (j < p.size() && (p[j] != ']' || j == start)) {
          if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            char lo = p[j], hi = p[j + 2], ch = t[ti];
            if (ci) {
              ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
              lo = static_cast<char>(std::tolower(static_cast<unsigned char>(lo)));
              hi = static_cast<char>(std::tolower(static_cast<unsigned char>(hi)));
            }
            if (ch >= lo && ch <= hi) matched = true;
            j += 3;
          } else {
            if (eq(p[j], t[ti])) matched = true;
            ++j;
          }
        }
        if (j < p.size() && matched != negate) {
          pi = j + 1;
          ++ti;
          continue;
        }
      } else {
        if (c == '\\' && pi + 1 < p.size()) c = p[++pi];
        if (eq(c, t[ti])) {
          ++pi;
          ++ti;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    ti = ++star_t;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

namespace {

int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool Equal(const json::value& a, const json::value& b) {
  return !a.is_null() && !b.is_null() && CompareValues(a, b) == 0;
}

bool InList(const json::value& v, const json::value& list) {
  if (!list.is_array()) return Equal(v, list);
  for (const auto& e : list.get_array()) {
    if (Equal(v, e)) return true;
  }
  return false;
}

bool Compare(FilterOp op, const json::value& v, const json::value& operand) {
  int c = CompareValues(v, operand);  // null sorts first
  switch (op) {
    case FilterOp::kLt:
    case FilterOp::kAnyLt:
      return c < 0;
    case FilterOp::kLte:
    case FilterOp::kAnyLte:
      return c <= 0;
    case FilterOp::kGt:
    case FilterOp::kAnyGt:
      return !v.is_null() && c > 0;
    case FilterOp::kGte:
    case FilterOp::kAnyGte:
      return !v.is_null() && c >= 0;
    default:
      return false;
  }
}

bool Glob(const Filter& f, const json::value& v, bool ci) {
  std::string_view pattern = f.operand.get_string();
  if (v.is_string()) return GlobMatch(pattern, v.get_string(), ci);
  if (v.is_array()) {
    for (const auto& e : v.get_array()) {
      if (e.is_string() && GlobMatch(pattern, e.get_string(), ci)) return true;
    }
  }
  return false;
}

bool TokenMatch(const Filter& f, const json::value& v) {
  if (v.is_null() || !f.fts) return false;
  std::vector<std::string> doc = TokenizeValue(v, *f.fts);
  auto has_exact = [&](const std::string& t) {
    return std::find(doc.begin(), doc.end(), t) != doc.end();
  };
  auto has_prefix = [&](const std::string& t) {
    return std::any_of(doc.begin(), doc.end(),
                       [&](const std::string& d) { return d.compare(0, t.size(), t) == 0; });
  };
  auto has = [&](const std::string& t) {
    bool is_last = f.last_as_prefix && !f.tokens.empty() && &t == &f.tokens.back();
    return is_last ? has_prefix(t) : has_exact(t);
  };
  switch (f.op) {
    case FilterOp::kContainsAllTokens:
      return std::all_of(f.tokens.begin(), f.tokens.end(), has);
    case FilterOp::kContainsAnyToken:
      return std::any_of(f.tokens.begin(), f.tokens.end(), has);
    case FilterOp::kContainsTokenSequence: {
      if (f.tokens.empty()) return true;
      if (doc.size() < f.tokens.size()) return false;
      for (size_t i = 0; i + f.tokens.size() <= doc.size(); ++i) {
        if (std::equal(f.tokens.begin(), f.tokens.end(), doc.begin() + static_cast<long>(i))) {
          return true;
        }
      }
      return false;
    }
    default:
      return false;
  }
}

bool FuzzyMatch(const Filter& f, const json::value& v) {
  if (!v.is_string()) return false;
  FtsConfig cfg;
  cfg.case_sensitive = f.fuzzy_case_sensitive;
  cfg.max_token_length = 1 << 20;
  auto doc = TokenizeText(v.get_string(), cfg);
  auto query = TokenizeText(f.operand.get_string(), cfg);
  if (query.empty()) return false;
  for (const auto& q : query) {
    bool found = false;
    for (const auto& d : doc) {
      if (EditDistance(q, d) <= f.fuzzy_distance) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

bool EvalFilter(const Filter& f, const DocId& id, const Document& doc, const Document* ref_new,
                const DocId* ref_new_id) {
  switch (f.kind) {
    case Filter::Kind::kAnd:
      for (const auto& c : f.children) {
        if (!EvalFilter(c, id, doc, ref_new, ref_new_id)) return false;
      }
      return true;
    case Filter::Kind::kOr:
      for (const auto& c : f.children) {
        if (EvalFilter(c, id, doc, ref_new, ref_new_id)) return true;
      }
      return false;
    case Filter::Kind::kNot:
      return !EvalFilter(f.children[0], id, doc, ref_new, ref_new_id);
    case Filter::Kind::kLeaf:
      break;
  }
  static const json::value kNull;
  json::value id_value;
  const json::value* vp;
  if (f.attr == "id") {
    id_value = IdToJson(id);
    vp = &id_value;
  } else {
    vp = doc.attrs.if_contains(f.attr);
    if (vp == nullptr) vp = &kNull;
  }
  const json::value& v = *vp;
  json::value ref_operand;
  const json::value* operand = &f.operand;
  if (!f.ref_new_attr.empty()) {
    if (ref_new != nullptr && ref_new_id != nullptr) {
      ref_operand = AttrValue(*ref_new_id, *ref_new, f.ref_new_attr);
    }
    operand = &ref_operand;
  }
  switch (f.op) {
    case FilterOp::kEq:
      return operand->is_null() ? v.is_null() : Equal(v, *operand);
    case FilterOp::kNotEq:
      return operand->is_null() ? !v.is_null() : !Equal(v, *operand);
    case FilterOp::kIn:
    case FilterOp::kNotIn: {
      bool in = false;
      if (v.is_array()) {
        for (const auto& e : v.get_array()) in = in || InList(e, *operand);
      } else {
        in = InList(v, *operand);
      }
      return f.op == FilterOp::kIn ? in : !in;
    }
    case FilterOp::kContains:
    case FilterOp::kNotContains:
    case FilterOp::kContainsAny:
    case FilterOp::kNotContainsAny: {
      bool any = f.op == FilterOp::kContainsAny || f.op == FilterOp::kNotContainsAny;
      bool hit = false;
      if (v.is_array()) {
        for (const auto& e : v.get_array())
          hit = hit || (any ? InList(e, *operand) : Equal(e, *operand));
      } else {
        hit = any ? InList(v, *operand) : Equal(v, *operand);
      }
      return (f.op == FilterOp::kContains || f.op == FilterOp::kContainsAny) ? hit : !hit;
    }
    case FilterOp::kLt:
    case FilterOp::kLte:
    case FilterOp::kGt:
    case FilterOp::kGte:
      return Compare(f.op, v, *operand);
    case FilterOp::kAnyLt:
    case FilterOp::kAnyLte:
    case FilterOp::kAnyGt:
    case FilterOp::kAnyGte:
      if (!v.is_array()) return !v.is_null() && Compare(f.op, v, *operand);
      for (const auto& e : v.get_array()) {
        if (Compare(f.op, e, *operand)) return true;
      }
      return false;
    case FilterOp::kGlob:
      return Glob(f, v, false);
    case FilterOp::kNotGlob:
      return !Glob(f, v, false);
    case FilterOp::kIGlob:
      return Glob(f, v, true);
    case FilterOp::kNotIGlob:
      return !Glob(f, v, true);
    case FilterOp::kRegex:
      return v.is_string() && f.regex && std::regex_search(std::string(v.get_string()), *f.regex);
    case FilterOp::kContainsAllTokens:
    case FilterOp::kContainsAnyToken:
    case FilterOp::kContainsTokenSequence:
      return TokenMatch(f, v);
    case FilterOp::kFuzzy:
      return FuzzyMatch(f, v);
  }
  return false;
}

}  // namespace layer::tpuf::model
