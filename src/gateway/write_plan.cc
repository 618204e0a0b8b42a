#include "gateway/write_plan.h"

#include <boost/json.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "common/base64.h"
#include "common/json_text.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

constexpr std::string_view kRowOps[] = {"upsert_rows",  "upsert_columns",  "patch_rows",
                                        "patch_columns", "deletes",        "delete_by_filter",
                                        "patch_by_filter"};
constexpr std::string_view kConditionalOrFilter[] = {"upsert_condition", "patch_condition",
                                                     "delete_condition", "delete_by_filter",
                                                     "patch_by_filter"};
constexpr std::string_view kNonRowWrites[] = {"schema", "copy_from_namespace",
                                              "branch_from_namespace", "encryption"};

bool IsVectorKey(std::string_view name) { return name == "vector" || name == "vectors"; }

Status Invalid(std::string msg) { return Status::InvalidArgument(std::move(msg)); }
// A body Turbopuffer itself rejects (or judges): it is forwarded untouched so the client gets
// Turbopuffer's own answer. Internal to this file.
Status Malformed(std::string msg) { return Status::Corruption(std::move(msg)); }

Status ReservedError(std::string_view name) {
  return Invalid("attribute '" + std::string(name) + "' uses the reserved _hevlayer_* prefix");
}

// Little-endian f32 bytes of a vector given as a number array or a base64 string.
std::optional<std::string> VectorBytes(const json::value& v) {
  if (v.is_string()) {
    auto raw = Base64Decode(std::string_view(v.as_string()));
    if (!raw.ok() || raw->size() % 4 != 0) return std::nullopt;
    return std::move(*raw);
  }
  if (!v.is_array()) return std::nullopt;
  std::string out;
  out.resize(v.as_array().size() * 4);
  size_t i = 0;
  for (const auto& x : v.as_array()) {
    if (!x.is_number()) return std::nullopt;
    const double d = x.to_number<double>();
    if (!(std::fabs(d) <= std::numeric_limits<float>::max())) return std::nullopt;  // no f32
    float f = static_cast<float>(d);
    std::memcpy(out.data() + 4 * i++, &f, 4);  // x86-64 and aarch64 are little-endian
  }
  return out;
}

struct Planner {
  uint64_t stamp;
  StringIdType string_ids;
  const tpuf::AttributeTypes* known_types;  // the namespace's, as far as known (may be null)
  tpuf::AttributeTypes declared_types;      // by the write's own `schema`
  WritePlan plan;

  // Returns the typed id, or nullopt (and notes it) if the cache cannot key it.
  std::optional<tpuf::DocId> Id(const json::value& v) {
    auto id = tpuf::TypeWrittenId(v, string_ids);
    if (!id) plan.has_untyped_ids = true;
    return id;
  }

  static bool ValidIdShape(const json::value& v) {
    return v.is_uint64() || (v.is_int64() && v.as_int64() >= 0) || v.is_string();
  }

  // The type of attribute `name`: as this write declares it (a write the upstream accepts
  // declares the type the attribute has), else as known for the namespace; null if neither.
  const tpuf::AttributeType* TypeOf(std::string_view name) const {
    if (auto it = declared_types.find(name); it != declared_types.end()) return &it->second;
    if (known_types) {
      if (auto it = known_types->find(name); it != known_types->end()) return &it->second;
    }
    return nullptr;
  }

  // One row's attributes as JSON object text, each value in the form the upstream returns it in
  // (docs/design.md §4.2.8): values that need no rewriting are written out as they are.
  class RowText {
   public:
    explicit RowText(Planner& p) : p_(p) { text_.push_back('{'); }

    // `type` is TypeOf(name), looked up by the caller (once per column for columns). A null is
    // written as it is (a patch's removal).
    void Add(std::string_view name, const json::value& v, const tpuf::AttributeType* type) {
      if (form_unknown_) return;
      json::value rewritten;
      const json::value* out = &v;
      if (!v.is_null() && !tpuf::FormIndependentOfType(v)) {
        if (type == nullptr) {
          // Learning the namespace's schema may tell the type (write.cc plans again then).
          p_.plan.has_untyped_attributes = true;
          form_unknown_ = true;
          return;
        }
        switch (tpuf::CanonicalValue(*type, v, &rewritten)) {
          case tpuf::ValueForm::kCanonical:
            break;
          case tpuf::ValueForm::kRewritten:
            out = &rewritten;
            break;
          case tpuf::ValueForm::kUnknown:
            form_unknown_ = true;
            return;
        }
      }
      if (text_.size() > 1) text_.push_back(',');
      AppendJsonString(name, &text_);
      text_.push_back(':');
      AppendJson(*out, &text_);
    }

    RowEffect Finish(tpuf::DocId id, std::optional<std::string> vec) {
      RowEffect r{std::move(id), {}, std::move(vec)};
      r.form_unknown = form_unknown_;
      if (!form_unknown_) {
        text_.push_back('}');
        r.attributes_json = std::move(text_);
      }
      return r;
    }

   private:
    Planner& p_;
    std::string text_;
    bool form_unknown_ = false;
  };

  Status Rows(json::object& body, std::string_view key, bool patch) {
    auto it = body.find(key);
    if (it == body.end()) return Status::Ok();
    if (!it->value().is_array()) return Malformed("`" + std::string(key) + "` must be an array of rows");
    size_t i = 0;
    for (auto& row_v : it->value().as_array()) {
      std::string where = std::string(key) + "[" + std::to_string(i++) + "]";
      if (!row_v.is_object()) return Malformed(where + " must be an object");
      auto& row = row_v.as_object();
      auto idit = row.find("id");
      if (idit == row.end() || !ValidIdShape(idit->value())) {
        return Malformed(where + " must have an `id` that is an unsigned integer or a string");
      }
      RowText attrs(*this);
      std::optional<std::string> vec;
      for (auto& [k, v] : row) {
        if (tpuf::IsReservedAttribute(k)) return ReservedError(k);
        if (patch && IsVectorKey(k)) {
          return Malformed("cannot patch vector or vectors values");
        }
        if (k == "id") continue;
        if (k == "vector") {
          vec = VectorBytes(v);
          continue;
        }
        if (k == "vectors") continue;
        if (!patch && v.is_null()) continue;  // a written null is an absent attribute
        attrs.Add(k, v, TypeOf(k));
      }
      // Typed before the stamp is inserted: inserting may rehash `row` and invalidate `idit`.
      auto id = Id(idit->value());
      row[tpuf::kStampAttribute] = stamp;
      if (id) {
        auto& list = patch ? plan.patches : plan.upserts;
        list.push_back(attrs.Finish(std::move(*id), std::move(vec)));
      }
    }
    return Status::Ok();
  }

  Status Columns(json::object& body, std::string_view key, bool patch) {
    auto it = body.find(key);
    if (it == body.end()) return Status::Ok();
    std::string name(key);
    if (!it->value().is_object()) return Malformed("`" + name + "` must be an object of columns");
    auto& cols = it->value().as_object();
    auto idit = cols.find("id");
    if (idit == cols.end() || !idit->value().is_array()) {
      return Malformed("`" + name + "` must have an `id` column (an array)");
    }
    const auto& ids = idit->value().as_array();
    for (const auto& id : ids) {
      if (!ValidIdShape(id)) {
        return Malformed("`" + name + ".id` entries must be unsigned integers or strings");
      }
    }
    // The attribute columns, each with its type looked up once.
    struct Column {
      std::string_view name;
      const json::array* cells;
      const tpuf::AttributeType* type;
    };
    std::vector<Column> columns;
    const json::value* vectors = nullptr;
    for (auto& [k, v] : cols) {
      if (tpuf::IsReservedAttribute(k)) return ReservedError(k);
      if (patch && IsVectorKey(k)) {
        return Malformed("cannot patch vector or vectors values");
      }
      if (k == "id" || (k == "vector" && !v.is_array())) continue;
      if (!v.is_array() || v.as_array().size() != ids.size()) {
        return Malformed("column `" + std::string(k) + "` of `" + name + "` must be an array with " +
                       std::to_string(ids.size()) + " entries, like `id`");
      }
      if (k == "vector") {
        vectors = &v;
      } else if (k != "vectors") {
        columns.push_back({k, &v.as_array(), TypeOf(k)});
      }
    }
    json::array stamps(ids.size(), json::value(stamp));
    for (size_t r = 0; r < ids.size(); ++r) {
      RowText attrs(*this);
      std::optional<std::string> vec;
      if (vectors) vec = VectorBytes(vectors->as_array()[r]);
      for (const Column& c : columns) {
        const json::value& cell = (*c.cells)[r];
        if (!patch && cell.is_null()) continue;
        attrs.Add(c.name, cell, c.type);
      }
      if (auto id = Id(ids[r])) {
        auto& list = patch ? plan.patches : plan.upserts;
        list.push_back(attrs.Finish(std::move(*id), std::move(vec)));
      }
    }
    cols[tpuf::kStampAttribute] = std::move(stamps);
    return Status::Ok();
  }

  Status Deletes(json::object& body) {
    auto it = body.find("deletes");
    if (it == body.end()) return Status::Ok();
    if (!it->value().is_array()) return Malformed("`deletes` must be an array of ids");
    for (const auto& v : it->value().as_array()) {
      if (!ValidIdShape(v)) return Malformed("`deletes` entries must be unsigned integers or strings");
      if (auto id = Id(v)) plan.deletes.push_back(std::move(*id));
    }
    return Status::Ok();
  }

  Status PatchByFilter(json::object& body) {
    auto it = body.find("patch_by_filter");
    if (it == body.end()) return Status::Ok();
    if (!it->value().is_object()) return Malformed("`patch_by_filter` must be an object");
    auto pit = it->value().as_object().find("patch");
    if (pit == it->value().as_object().end() || !pit->value().is_object()) {
      return Malformed("`patch_by_filter.patch` must be an object of attributes");
    }
    auto& patch = pit->value().as_object();
    for (const auto& [k, v] : patch) {
      if (tpuf::IsReservedAttribute(k)) return ReservedError(k);
      if (IsVectorKey(k)) {
        return Malformed("cannot patch vector or vectors values");
      }
    }
    patch[tpuf::kStampAttribute] = stamp;
    return Status::Ok();
  }
};

void CollectIds(const json::object& o, std::string_view key, StringIdType string_ids,
                std::vector<tpuf::DocId>* out, bool* untyped) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) return;
  for (const auto& v : it->value().as_array()) {
    if (auto id = tpuf::TypeWrittenId(v, string_ids)) {
      out->push_back(std::move(*id));
    } else {
      *untyped = true;
    }
  }
}

}  // namespace

Result<WritePlan> PlanWrite(std::string_view body, uint64_t stamp, StringIdType string_ids,
                            const tpuf::AttributeTypes* attribute_types) {
  boost::system::error_code ec;
  json::value root = ParseJson(body, ec);  // exact doubles: they are written out again
  Planner p{stamp, string_ids, attribute_types, {}, {}};
  p.plan.stamp = stamp;
  if (ec || !root.is_object()) return std::move(p.plan);  // the upstream answers its own error
  json::object& o = root.as_object();

  if (o.contains("upserts") || o.contains("patches")) {
    return Invalid(
        "custom write bodies were removed; use native Turbopuffer write keys (upsert_rows, "
        "upsert_columns, patch_rows, patch_columns, deletes, ...)");
  }
  bool row_op = false;
  for (auto k : kRowOps) row_op |= o.contains(k);
  if (!row_op) {
    bool other = false;
    for (auto k : kNonRowWrites) other |= o.contains(k);
    if (!other) {
      return Invalid(
          "request body must include a native Turbopuffer write operation (upsert_rows, "
          "upsert_columns, patch_rows, patch_columns, deletes, delete_by_filter, "
          "patch_by_filter, schema, copy_from_namespace or branch_from_namespace)");
    }
    return std::move(p.plan);
  }

  if (const json::value* schema = o.if_contains("schema")) {
    p.declared_types = tpuf::AttributeTypesOfSchema(*schema);
  }
  Status st = p.Rows(o, "upsert_rows", false);
  if (st.ok()) st = p.Columns(o, "upsert_columns", false);
  if (st.ok()) st = p.Rows(o, "patch_rows", true);
  if (st.ok()) st = p.Columns(o, "patch_columns", true);
  if (st.ok()) st = p.Deletes(o);
  if (st.ok()) st = p.PatchByFilter(o);
  if (st.code() == StatusCode::kCorruption) {
    WritePlan unchecked;
    unchecked.stamp = stamp;
    unchecked.upstream_decides = true;
    return unchecked;
  }
  if (!st.ok()) return st;

  WritePlan& plan = p.plan;
  plan.row_write = true;
  for (auto k : kConditionalOrFilter) plan.by_affected_ids |= o.contains(k);
  auto rai = o.find("return_affected_ids");
  plan.client_asked_affected_ids =
      rai != o.end() && rai->value().is_bool() && rai->value().as_bool();
  if (plan.by_affected_ids) {
    // Effects come from the upstream's answer; the body only tells what was attempted.
    plan.upserts.clear();
    plan.patches.clear();
    plan.deletes.clear();
    plan.has_untyped_ids = false;
    plan.has_untyped_attributes = false;
    o["return_affected_ids"] = true;
  }
  plan.upstream_body = SerializeJson(root);
  return std::move(plan);
}

std::optional<std::string> StripAffectedIds(std::string_view response_body) {
  boost::system::error_code ec;
  json::value v = ParseJson(response_body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  auto& o = v.as_object();
  o.erase("upserted_ids");
  o.erase("patched_ids");
  o.erase("deleted_ids");
  return SerializeJson(v);
}

AffectedIds ParseAffectedIds(std::string_view response_body, StringIdType string_ids) {
  AffectedIds out;
  boost::system::error_code ec;
  json::value v = json::parse(response_body, ec);
  if (ec || !v.is_object()) {
    out.has_untyped_ids = true;
    return out;
  }
  const auto& o = v.as_object();
  CollectIds(o, "upserted_ids", string_ids, &out.upserted, &out.has_untyped_ids);
  CollectIds(o, "patched_ids", string_ids, &out.patched, &out.has_untyped_ids);
  CollectIds(o, "deleted_ids", string_ids, &out.deleted, &out.has_untyped_ids);
  return out;
}

}  // namespace layer::gateway
