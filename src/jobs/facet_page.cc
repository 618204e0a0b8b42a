#include "jobs/facet_page.h"

#include "jobs/ondemand_json.h"

#include <simdjson.h>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <string_view>
#include <vector>

namespace layer::jobs {
namespace {

namespace od = simdjson::ondemand;

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// The text of a value Boost.JSON would see: parses `raw` (one JSON value) with it.
bool BoostText(std::string_view raw, std::string* out) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(raw, ec);
  if (ec) return false;
  *out = snapshots::FacetValueText(v);
  return true;
}

// The FacetValueText of `v` (a scalar, or anything inside an array) as a view into the page (an
// unescaped string: the parser's string buffer), valid while the page's document lives; a text
// that has to be made (through Boost.JSON) is appended to `owned`, whose elements stay put. False
// on malformed JSON.
bool ValueText(od::value& v, std::string_view* out, std::deque<std::string>& owned) {
  od::json_type type;
  if (v.type().get(type)) return false;
  switch (type) {
    case od::json_type::string: {
      // Without escapes the text is the token between its quotes: no copy.
      std::string_view token = TrimRight(v.raw_json_token());
      bool plain = token.size() >= 2 && token.back() == '"';
      for (size_t k = 1; plain && k + 1 < token.size(); ++k) plain = token[k] != '\\';
      if (plain) {
        *out = token.substr(1, token.size() - 2);
        return true;
      }
      return !v.get_string().get(*out);
    }
    case od::json_type::boolean: {
      bool b = false;
      if (v.get_bool().get(b)) return false;
      *out = b ? "true" : "false";
      return true;
    }
    case od::json_type::null: {
      bool null = false;
      if (v.is_null().get(null) || !null) return false;
      *out = "null";
      return true;
    }
    case od::json_type::number: {
      std::string_view token = TrimRight(v.raw_json_token());
      // Integers print as Boost.JSON prints its int64/uint64: plain decimal, which is the token
      // itself unless it is "-0" (a double to Boost.JSON).
      const bool integral = token.find_first_of(".eE") == std::string_view::npos && token != "-0";
      if (integral && !token.empty()) {
        const char* end = token.data() + token.size();
        int64_t i = 0;
        uint64_t u = 0;
        auto [pi, ei] = std::from_chars(token.data(), end, i);
        auto [pu, eu] = std::from_chars(token.data(), end, u);
        if ((ei == std::errc() && pi == end) || (eu == std::errc() && pu == end)) {
          *out = token;
          return true;
        }
      }
      // Doubles, and integers beyond 64 bits (doubles too).
      if (!BoostText(token, &owned.emplace_back())) return false;
      *out = owned.back();
      return true;
    }
    case od::json_type::array:
    case od::json_type::object: {
      // Rare (an array or object inside an array, or an object value): its text, once read to
      // its end, through Boost.JSON.
      const char* start = v.raw_json_token().data();
      const char* end = nullptr;
      if (!ValidateJsonValue(v) || v.current_location().get(end) || end < start) return false;
      std::string_view raw = TrimRight(std::string_view(start, static_cast<size_t>(end - start)));
      if (!BoostText(raw, &owned.emplace_back())) return false;
      *out = owned.back();
      return true;
    }
  }
  return false;
}

// Counts one row object's facet values. False on malformed JSON.
bool CountRow(od::object& row, snapshots::FacetAggregator& agg,
              std::vector<std::string_view>& elements, std::deque<std::string>& owned) {
  agg.CountRow();
  owned.clear();
  for (auto field_r : row) {
    od::field field;
    if (std::move(field_r).get(field)) return false;
    // The key as written (between its quotes, which the index found); unescaped only when it
    // has an escape.
    const char* first = field.key().raw();
    const char* last = first;
    bool escaped = false;
    while (*last != '"') escaped |= *last++ == '\\';
    std::string_view key(first, static_cast<size_t>(last - first));
    if (escaped && field.unescaped_key().get(key)) return false;
    size_t i = 0;
    while (i < agg.field_count() && agg.field_name(i) != key) ++i;
    if (i == agg.field_count()) continue;  // not a facet (e.g. id): skipped unread
    od::value v = field.value();
    od::json_type type;
    if (v.type().get(type)) return false;
    std::string_view text;
    if (type != od::json_type::array) {
      if (!ValueText(v, &text, owned)) return false;
      agg.CountText(i, text);
      continue;
    }
    od::array arr;
    if (v.get_array().get(arr)) return false;
    elements.clear();
    for (auto element_r : arr) {
      od::value element;
      if (std::move(element_r).get(element)) return false;
      if (!ValueText(element, &text, owned)) return false;
      elements.push_back(text);
    }
    // Each distinct element once per row.
    if (elements.size() > 1) {
      std::sort(elements.begin(), elements.end());
      elements.erase(std::unique(elements.begin(), elements.end()), elements.end());
    }
    for (std::string_view e : elements) agg.CountText(i, e);
  }
  return true;
}

Status Bad() { return Status::InvalidArgument("the page is not a JSON object with a rows array"); }

bool FindRows(od::document& doc, od::array* rows) {
  od::object root;
  return !doc.get_object().get(root) && !root.find_field_unordered("rows").get_array().get(*rows);
}

}  // namespace

Result<FacetPageCount> CountFacetPage(
    std::string& body, snapshots::FacetAggregator& agg,
    const std::function<void(const FacetPageCount&)>& on_last_id) {
  thread_local od::parser parser;
  const size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  od::document doc;
  if (parser.iterate(body.data(), size, body.capacity()).get(doc)) return Bad();

  // Pass 1: the row count and the last row's id.
  FacetPageCount count;
  od::array rows;
  if (!FindRows(doc, &rows)) return Bad();
  std::string_view last_id;  // in `body`
  for (auto row_r : rows) {
    od::value row;
    if (std::move(row_r).get(row)) return Bad();
    ++count.returned;
    last_id = {};
    od::object obj;
    od::value id;
    if (row.get_object().get(obj) || obj.find_field_unordered("id").get(id)) continue;
    last_id = TrimRight(id.raw_json_token());
  }
  if (!last_id.empty()) count.last_id_json.emplace(last_id);
  if (on_last_id) on_last_id(count);

  // Pass 2: the counts.
  if (doc.rewind(), !FindRows(doc, &rows)) return Bad();
  std::vector<std::string_view> elements;
  std::deque<std::string> owned;
  for (auto row_r : rows) {
    od::value row;
    if (std::move(row_r).get(row)) return Bad();
    od::json_type type;
    if (row.type().get(type)) return Bad();
    if (type != od::json_type::object) continue;
    od::object obj;
    if (row.get_object().get(obj)) return Bad();
    if (!CountRow(obj, agg, elements, owned)) return Bad();
  }
  return count;
}

}  // namespace layer::jobs
