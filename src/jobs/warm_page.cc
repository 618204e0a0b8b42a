#include "jobs/warm_page.h"

#include "jobs/ondemand_json.h"

#include <simdjson.h>
#include <boost/json.hpp>

#include <cmath>
#include <functional>
#include <string_view>

#include "coherence/row_codec.h"
#include "tpuf/reserved.h"
#include "common/json_text.h"

namespace layer::jobs {
namespace {

namespace od = simdjson::ondemand;

constexpr int kMaxDepth = 1000;  // below simdjson's own limit (1024)

bool Dropped(std::string_view key) {
  return key == "id" || key == "vector" || key == "vectors" || key == "$dist" || key == "$score";
}

// Appends `s` as a JSON string literal (quotes, backslashes and control characters escaped).
void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of characters that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

// A non-negative integer number as u64 (7, 7.0, 7e0); nullopt otherwise. Consumes `v`.
std::optional<uint64_t> AsU64(od::value& v) {
  uint64_t u = 0;
  if (!v.get_uint64().get(u)) return u;
  double d = 0;
  if (v.get_double().get(d)) return std::nullopt;
  if (!(d >= 0 && d < 18446744073709551616.0) || std::trunc(d) != d) return std::nullopt;
  return static_cast<uint64_t>(d);
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// The text of `v`, which starts at `start`, once `v` has been read to its end.
bool SliceAfter(od::value& v, const char* start, std::string_view* out) {
  const char* end = nullptr;
  if (v.current_location().get(end) || end < start) return false;
  *out = TrimRight(std::string_view(start, static_cast<size_t>(end - start)));
  return !out->empty();
}

enum class RowResult { kOk, kSkip, kFail };

// One row of the page: an object with an id becomes `row`; anything else is skipped.
RowResult SliceRow(od::value row_v, size_t size_hint, WarmRow* row,
                   std::optional<std::string>* id_json) {
  id_json->reset();
  od::object obj;
  if (row_v.get_object().get(obj)) return RowResult::kSkip;  // not an object: not a document
  bool has_id = false;
  std::string& attrs = row->attributes_json;
  attrs.reserve(size_hint);  // the previous row's size: rows of a page tend to be alike
  attrs.assign(1, '{');
  for (auto field_r : obj) {
    od::field field;
    std::string_view key;
    if (std::move(field_r).get(field) || field.unescaped_key().get(key)) return RowResult::kFail;
    od::value v = field.value();
    if (key == "id") {
      const char* start = v.raw_json_token().data();
      od::json_type type;
      if (v.type().get(type)) return RowResult::kFail;
      if (type == od::json_type::number) {
        uint64_t u = 0;
        if (!v.get_uint64().get(u)) {
          row->id_kind = WarmRow::IdKind::kU64;
          row->id_u64 = u;
        } else if (!ValidateJsonValue(v, 0)) {
          return RowResult::kFail;
        }
      } else if (type == od::json_type::string) {
        std::string_view s;
        if (v.get_string().get(s)) return RowResult::kFail;
        row->id_kind = WarmRow::IdKind::kString;
        row->id_text.assign(s);
      } else if (!ValidateJsonValue(v, 0)) {
        return RowResult::kFail;
      }
      std::string_view text;
      if (!SliceAfter(v, start, &text)) return RowResult::kFail;
      id_json->emplace(text);
      has_id = true;
      continue;
    }
    if (Dropped(key)) continue;  // skipped unread
    if (key.starts_with(tpuf::kReservedPrefix)) {
      if (key == tpuf::kStampAttribute) {
        od::json_type type;
        if (v.type().get(type)) return RowResult::kFail;
        if (type == od::json_type::number) {
          auto stamp = AsU64(v);
          if (!stamp) return RowResult::kFail;  // left to the slow path, as it was before
          row->stamp = *stamp;
        }
      }
      continue;
    }
    const char* start = v.raw_json_token().data();
    std::string_view text;
    if (!ValidateJsonValue(v, 0) || !SliceAfter(v, start, &text)) return RowResult::kFail;
    if (attrs.size() > 1) attrs.push_back(',');
    AppendJsonString(key, &attrs);
    attrs.push_back(':');
    attrs.append(text);
  }
  attrs.push_back('}');
  return has_id ? RowResult::kOk : RowResult::kSkip;
}

// Indexes `body` with this thread's parser (its buffers are reused from page to page). False when
// simdjson refuses the body outright.
bool Index(std::string& body, od::document* doc) {
  thread_local od::parser parser;
  const size_t size = body.size();
  body.reserve(size + simdjson::SIMDJSON_PADDING);
  return !parser.iterate(body.data(), size, body.capacity()).get(*doc);
}

// The page's `rows` array, from the start of the document. False when the body is not an object
// with a `rows` array.
bool FindRows(od::document& doc, od::array* rows) {
  od::object root;
  return !doc.get_object().get(root) && !root.find_field_unordered("rows").get_array().get(*rows);
}

std::optional<WarmPagePeek> PeekRows(od::array& rows, size_t index) {
  WarmPagePeek peek;
  for (auto row_r : rows) {
    od::value row;
    if (std::move(row_r).get(row)) return std::nullopt;
    if (peek.returned++ != index) continue;  // skipped unread
    od::object obj;
    od::value id;
    if (row.get_object().get(obj) || obj.find_field_unordered("id").get(id)) continue;
    std::string_view text = TrimRight(id.raw_json_token());
    if (!text.empty()) peek.id_json.emplace(text);
  }
  return peek;
}

// simdjson on-demand: slices every kept value out of the page. nullopt when the page has to go
// to the slow path.
std::optional<WarmPage> SliceRows(od::array& rows, size_t limit) {
  WarmPage page;
  page.rows.reserve(std::min<size_t>(limit, 10000));
  std::optional<std::string> id_json;
  size_t size_hint = 0;
  for (auto row_r : rows) {
    od::value row_v;
    if (std::move(row_r).get(row_v)) return std::nullopt;
    if (page.returned++ >= limit) continue;  // counted, skipped unread
    WarmRow row;
    switch (SliceRow(row_v, size_hint, &row, &id_json)) {
      case RowResult::kFail:
        return std::nullopt;
      case RowResult::kSkip:
        break;
      case RowResult::kOk:
        size_hint = row.attributes_json.size() + 64;
        page.rows.push_back(std::move(row));
        break;
    }
    page.last_id_json = std::move(id_json);
  }
  page.taken = std::min(page.returned, limit);
  return page;
}

// Boost.JSON and RowForCache: the way pages were read before slicing.
Result<WarmPage> ParseSlow(std::string_view body, size_t limit) {
  boost::system::error_code ec;
  boost::json::value v = ParseJson(body, ec);  // exact doubles: rows are written out again
  const boost::json::value* rows =
      ec || !v.is_object() ? nullptr : v.as_object().if_contains("rows");
  if (!rows || !rows->is_array()) {
    return Status::InvalidArgument("the page is not a JSON object with a rows array");
  }
  const auto& arr = rows->as_array();
  WarmPage page;
  page.returned = arr.size();
  page.taken = std::min(arr.size(), limit);
  for (size_t i = 0; i < page.taken; ++i) {
    page.last_id_json.reset();
    if (!arr[i].is_object()) continue;
    const auto& obj = arr[i].as_object();
    const auto* id = obj.if_contains("id");
    if (!id) continue;
    page.last_id_json = SerializeJson(*id);
    auto fetched = coherence::RowForCache(obj);
    if (!fetched) continue;
    WarmRow row;
    if (id->is_uint64() || (id->is_int64() && id->as_int64() >= 0)) {
      row.id_kind = WarmRow::IdKind::kU64;
      row.id_u64 = id->is_uint64() ? id->as_uint64() : static_cast<uint64_t>(id->as_int64());
    } else if (id->is_string()) {
      row.id_kind = WarmRow::IdKind::kString;
      row.id_text = id->as_string();
    }
    row.attributes_json = std::move(fetched->attributes_json);
    row.stamp = fetched->stamp;
    page.rows.push_back(std::move(row));
  }
  return page;
}

// A page `doc` indexes, read from the top: the fast path, else the slow one.
Result<WarmPage> ParseIndexed(od::document& doc, std::string_view body, size_t limit) {
  od::array rows;
  if (FindRows(doc, &rows)) {
    if (auto page = SliceRows(rows, limit)) return std::move(*page);
  }
  return ParseSlow(body, limit);
}

}  // namespace

std::optional<WarmPagePeek> PeekWarmPage(std::string& body, size_t index) {
  od::document doc;
  od::array rows;
  if (!Index(body, &doc) || !FindRows(doc, &rows)) return std::nullopt;
  return PeekRows(rows, index);
}

Result<WarmPage> ParseWarmPage(std::string body, size_t limit) {
  od::document doc;
  if (!Index(body, &doc)) return ParseSlow(body, limit);
  return ParseIndexed(doc, body, limit);
}

Result<WarmPage> PeekAndParseWarmPage(
    std::string body, size_t limit, size_t peek_index,
    const std::function<void(const std::optional<WarmPagePeek>&)>& on_peek) {
  od::document doc;
  od::array rows;
  std::optional<WarmPagePeek> peek;
  if (Index(body, &doc) && FindRows(doc, &rows)) peek = PeekRows(rows, peek_index);
  on_peek(peek);
  // A clean peek leaves the document ready to be read again from the top; after any error the
  // page is parsed from scratch, exactly as ParseWarmPage would.
  if (!peek) return ParseWarmPage(std::move(body), limit);
  doc.rewind();
  return ParseIndexed(doc, body, limit);
}

namespace od = simdjson::ondemand;

bool ValidateJsonValue(od::value v, int depth) {
  if (depth > kMaxDepth) return false;
  od::json_type type;
  if (v.type().get(type)) return false;
  switch (type) {
    case od::json_type::object: {
      od::object o;
      if (v.get_object().get(o)) return false;
      for (auto field_r : o) {
        od::field field;
        std::string_view key;
        if (std::move(field_r).get(field) || field.unescaped_key().get(key)) return false;
        if (!ValidateJsonValue(field.value(), depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::array: {
      od::array a;
      if (v.get_array().get(a)) return false;
      for (auto item_r : a) {
        od::value item;
        if (std::move(item_r).get(item) || !ValidateJsonValue(item, depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::number: {
      double d;
      return !v.get_double().get(d);
    }
    case od::json_type::string: {
      std::string_view s;
      return !v.get_string().get(s);
    }
    case od::json_type::boolean: {
      bool b;
      return !v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      return !v.is_null().get(is_null) && is_null;
    }
  }
  return false;
}

}  // namespace layer::jobs
