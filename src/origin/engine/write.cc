#include "origin/engine/write.h"

#include <set>

#include "origin/engine/model.h"

namespace layer::origin {
namespace {

constexpr size_t kMaxPatchByFilter = 50000;
constexpr size_t kMaxDeleteByFilter = 5000000;

struct RawRow {
  DocId id;
  const json::object* attrs = nullptr;  // row object (contains "id") or null for columns
  json::object column_attrs;            // built from columns
};

struct ParsedWrite {
  std::vector<RawRow> upserts;
  std::vector<RawRow> patches;
  std::vector<DocId> deletes;
  bool has_upserts = false, has_patches = false, has_deletes = false;
  std::optional<Filter> upsert_condition, patch_condition, delete_condition;
  std::optional<Filter> delete_by_filter;
  bool delete_by_filter_allow_partial = false;
  std::optional<Filter> patch_by_filter;
  const json::object* patch_by_filter_patch = nullptr;
  bool patch_by_filter_allow_partial = false;
  bool return_affected_ids = false;
  std::string distance_metric;
  std::vector<std::pair<std::string, AttrSchema>> schema_updates;
  bool has_schema = false;
};

ApiStatus ParseBool(const json::object& body, const char* key, bool* out) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_bool()) {
    return Unprocessable(std::string(key) + ": invalid type: " + SerdeUnexpected(*v) +
                         ", expected a boolean");
  }
  *out = v->get_bool();
  return {};
}

ApiStatus ParseRows(const json::object& body, const char* key, std::vector<RawRow>* out,
                    bool* present) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  *present = true;
  if (!v->is_array()) {
    return Unprocessable(std::string(key) + ": invalid type: " + SerdeUnexpected(*v) +
                         ", expected a sequence");
  }
  size_t i = 0;
  for (const auto& row : v->get_array()) {
    std::string path = std::string(key) + "[" + std::to_string(i++) + "]";
    if (!row.is_object()) {
      return Unprocessable(path + ": invalid type: " + SerdeUnexpected(row) + ", expected a map");
    }
    const auto* id = row.get_object().if_contains("id");
    if (id == nullptr) return Unprocessable(path + ": missing field `id`");
    RawRow r;
    if (!ParseRawId(*id, &r.id)) {
      return Unprocessable(path + ".id: data did not match any variant of untagged enum Id");
    }
    r.attrs = &row.get_object();
    out->push_back(std::move(r));
  }
  return {};
}

ApiStatus ParseColumns(const json::object& body, const char* key, std::vector<RawRow>* out,
                       bool* present) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  *present = true;
  if (!v->is_object()) {
    return Unprocessable(std::string(key) + ": invalid type: " + SerdeUnexpected(*v) +
                         ", expected a map");
  }
  const auto& cols = v->get_object();
  const auto* ids = cols.if_contains("id");
  if (ids == nullptr) return Unprocessable(std::string(key) + ": missing field `id`");
  auto bad_ids = [&] {
    return Unprocessable(std::string(key) +
                         ".id: data did not match any variant of untagged enum IdVec");
  };
  if (!ids->is_array()) return bad_ids();
  size_t n = ids->get_array().size();
  size_t first = out->size();
  for (const auto& idv : ids->get_array()) {
    RawRow r;
    if (!ParseRawId(idv, &r.id)) return bad_ids();
    out->push_back(std::move(r));
  }
  for (const auto& kv : cols) {
    if (kv.key() == "id") continue;
    if (!kv.value().is_array()) {
      return Unprocessable(std::string(key) + "." + std::string(kv.key()) + ": invalid type: " +
                           SerdeUnexpected(kv.value()) + ", expected a sequence");
    }
    const auto& col = kv.value().get_array();
    if (col.size() != n) {
      return BadRequest("column '" + std::string(kv.key()) + "' has " + std::to_string(col.size()) +
                        " values, but there are " + std::to_string(n) + " ids");
    }
    for (size_t i = 0; i < n; ++i) (*out)[first + i].column_attrs[kv.key()] = col[i];
  }
  return {};
}

ApiStatus ParseIdList(const json::object& body, const char* key, std::vector<DocId>* out,
                      bool* present) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  *present = true;
  auto bad = [&] {
    return Unprocessable(std::string(key) +
                         ": data did not match any variant of untagged enum IdVec");
  };
  if (!v->is_array()) return bad();
  for (const auto& e : v->get_array()) {
    DocId id;
    if (!ParseRawId(e, &id)) return bad();
    out->push_back(std::move(id));
  }
  return {};
}

ApiStatus ParseCondition(const json::object& body, const char* key, const Schema& schema,
                         std::optional<Filter>* out) {
  const auto* v = body.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  FilterContext ctx{&schema, key};
  Filter f;
  ORIGIN_RETURN_IF_ERROR(ParseFilter(*v, ctx, &f));
  *out = std::move(f);
  return {};
}

const json::object& RowAttrs(const RawRow& r) { return r.attrs ? *r.attrs : r.column_attrs; }

ApiStatus ParseMetric(const json::object& body, std::string* out) {
  const auto* v = body.if_contains("distance_metric");
  if (v == nullptr || v->is_null()) return {};
  std::string got = v->is_string() ? std::string(v->get_string()) : SerializeJson(*v);
  if (!v->is_string() ||
      (got != "cosine_distance" && got != "euclidean_squared" && got != "euclidean")) {
    return Unprocessable("distance_metric: unknown variant `" + got +
                         "`, expected one of `Unknown`, `euclidean_squared`, `cosine_distance`, "
                         "`euclidean`, `Query`");
  }
  *out = got;
  return {};
}

// Looks a document up through the plan's overlay.
const Document* Lookup(const WritePlan& plan, const NamespaceState& state, const DocId& id) {
  auto it = plan.changes.find(id);
  if (it != plan.changes.end()) return it->second ? &*it->second : nullptr;
  auto jt = state.docs.find(id);
  return jt != state.docs.end() ? &jt->second : nullptr;
}

// Normalises `attrs` into `doc` (skipping "id"; a null removes the attribute), inferring schema
// entries into `schema`.
ApiStatus ApplyAttrs(const json::object& attrs, bool is_patch, Schema* schema, Document* doc) {
  for (const auto& kv : attrs) {
    if (kv.key() == "id") continue;
    std::string name(kv.key());
    const AttrSchema* declared = schema->Find(name);
    if (is_patch && (name == "vector" || (declared && declared->IsDenseVector()))) {
      return BadRequest("patching vectors is currently unsupported");
    }
    if (kv.value().is_null()) {
      doc->attrs.stable_erase(name);  // the other attributes keep their order
      continue;
    }
    if (!name.empty() && name[0] == '$') {
      return BadRequest("attribute name '" + name + "' must not start with '$'");
    }
    std::optional<AttrSchema> inferred;
    json::value normalized;
    ORIGIN_RETURN_IF_ERROR(NormalizeValue(name, kv.value(), declared, &inferred, &normalized));
    if (inferred) schema->Set(name, std::move(*inferred));
    doc->attrs[name] = std::move(normalized);
  }
  return {};
}

bool RowHasVector(const json::object& attrs, const Schema& schema) {
  for (const auto& kv : attrs) {
    if (kv.value().is_null()) continue;
    if (kv.key() == "vector") return true;
    const AttrSchema* a = schema.Find(kv.key());
    if (a && a->IsDenseVector()) return true;
  }
  return false;
}

json::array IdsJson(const std::vector<DocId>& ids) {
  json::array arr;
  for (const auto& id : ids) arr.push_back(IdToJson(id));
  return arr;
}

}  // namespace

ApiStatus ParseCopySource(const json::object& body, std::string* source, bool* is_branch) {
  source->clear();
  const json::value* v = body.if_contains("copy_from_namespace");
  const char* key = "copy_from_namespace";
  *is_branch = false;
  if (v == nullptr || v->is_null()) {
    v = body.if_contains("branch_from_namespace");
    key = "branch_from_namespace";
    *is_branch = true;
  }
  if (v == nullptr || v->is_null()) return {};
  if (v->is_string()) {
    *source = v->get_string();
  } else if (v->is_object()) {
    const auto* s = v->get_object().if_contains("source_namespace");
    if (s == nullptr) return Unprocessable(std::string(key) + ": missing field `source_namespace`");
    if (!s->is_string()) {
      return Unprocessable(std::string(key) + ".source_namespace: invalid type: " +
                           SerdeUnexpected(*s) + ", expected a string");
    }
    *source = s->get_string();
  } else {
    return Unprocessable(std::string(key) + ": data did not match any variant of untagged enum " +
                         (*is_branch ? "BranchFromNamespace" : "CopyFromNamespace"));
  }
  static const std::set<std::string_view> kAllowed = {
      "copy_from_namespace", "branch_from_namespace", "encryption", "disable_backpressure"};
  for (const auto& kv : body) {
    if (kAllowed.count(kv.key()) == 0 && !kv.value().is_null()) {
      return BadRequest(std::string(key) + " cannot be used with other write request fields");
    }
  }
  return {};
}

json::object TranslateV1Write(const json::object& body) {
  const auto* ids = body.if_contains("ids");
  const auto* upserts = body.if_contains("upserts");
  if ((ids == nullptr || !ids->is_array()) && (upserts == nullptr || !upserts->is_array())) {
    return body;
  }
  json::object out;
  for (const auto& kv : body) {
    if (kv.key() != "ids" && kv.key() != "vectors" && kv.key() != "attributes" &&
        kv.key() != "upserts") {
      out[kv.key()] = kv.value();
    }
  }
  json::array rows, deletes;
  if (ids != nullptr && ids->is_array()) {
    const auto* vectors = body.if_contains("vectors");
    const auto* attrs = body.if_contains("attributes");
    for (size_t i = 0; i < ids->get_array().size(); ++i) {
      const json::value* vec = vectors && vectors->is_array() && i < vectors->get_array().size()
                                   ? &vectors->get_array()[i]
                                   : nullptr;
      if (vectors != nullptr && vectors->is_array() && (vec == nullptr || vec->is_null())) {
        deletes.push_back(ids->get_array()[i]);
        continue;
      }
      json::object row;
      row["id"] = ids->get_array()[i];
      if (vec != nullptr) row["vector"] = *vec;
      if (attrs != nullptr && attrs->is_object()) {
        for (const auto& col : attrs->get_object()) {
          if (col.value().is_array() && i < col.value().get_array().size()) {
            row[col.key()] = col.value().get_array()[i];
          }
        }
      }
      rows.push_back(std::move(row));
    }
  } else {
    for (const auto& u : upserts->get_array()) {
      if (!u.is_object()) {
        rows.push_back(u);
        continue;
      }
      const auto& uo = u.get_object();
      const auto* vec = uo.if_contains("vector");
      if (uo.contains("vector") && vec->is_null()) {
        if (const auto* id = uo.if_contains("id")) deletes.push_back(*id);
        continue;
      }
      json::object row;
      for (const auto& kv : uo) {
        if (kv.key() == "attributes" && kv.value().is_object()) {
          for (const auto& a : kv.value().get_object()) row[a.key()] = a.value();
        } else {
          row[kv.key()] = kv.value();
        }
      }
      rows.push_back(std::move(row));
    }
  }
  if (!rows.empty()) out["upsert_rows"] = std::move(rows);
  if (!deletes.empty()) out["deletes"] = std::move(deletes);
  return out;
}

ApiStatus PlanWrite(const json::object& body, const NamespaceState& state, bool exists,
                    int64_t now_ms, uint64_t request_bytes, WritePlan* plan) {
  ParsedWrite w;
  plan->meta = state.meta;
  Schema& schema = plan->meta.schema;

  // --- 1. Shape (422) checks, in the order serde would meet the fields. -----------------------
  ORIGIN_RETURN_IF_ERROR(ParseRows(body, "upsert_rows", &w.upserts, &w.has_upserts));
  ORIGIN_RETURN_IF_ERROR(ParseColumns(body, "upsert_columns", &w.upserts, &w.has_upserts));
  ORIGIN_RETURN_IF_ERROR(ParseRows(body, "patch_rows", &w.patches, &w.has_patches));
  ORIGIN_RETURN_IF_ERROR(ParseColumns(body, "patch_columns", &w.patches, &w.has_patches));
  ORIGIN_RETURN_IF_ERROR(ParseIdList(body, "deletes", &w.deletes, &w.has_deletes));
  ORIGIN_RETURN_IF_ERROR(ParseMetric(body, &w.distance_metric));
  ORIGIN_RETURN_IF_ERROR(ParseBool(body, "return_affected_ids", &w.return_affected_ids));
  ORIGIN_RETURN_IF_ERROR(
      ParseBool(body, "delete_by_filter_allow_partial", &w.delete_by_filter_allow_partial));
  ORIGIN_RETURN_IF_ERROR(
      ParseBool(body, "patch_by_filter_allow_partial", &w.patch_by_filter_allow_partial));
  if (const auto* s = body.if_contains("schema"); s && !s->is_null()) {
    w.has_schema = true;
    ORIGIN_RETURN_IF_ERROR(ParseSchemaInput(*s, "schema.", &w.schema_updates));
  }
  if (const auto* e = body.if_contains("encryption"); e && e->is_object()) {
    const auto* mode = e->get_object().if_contains("mode");
    bool default_mode = mode && mode->is_string() && mode->get_string() == "default";
    if (!default_mode) {
      return ApiError{
          403, "💔 customer-managed encryption is not available for this namespace", {}, false};
    }
  }

  // Filter shapes are deserialisation (422) errors too, so they precede every 400 below.
  for (const char* key :
       {"upsert_condition", "patch_condition", "delete_condition", "delete_by_filter"}) {
    std::optional<Filter> unused;
    ApiStatus st = ParseCondition(body, key, Schema{}, &unused);
    if (!st.ok() && st.error().http_status == 422) return st;
  }

  // --- 2. Schema, id type, distance metric. ---------------------------------------------------
  ORIGIN_RETURN_IF_ERROR(MergeSchema(w.schema_updates, &schema));
  IdType id_type = schema.id_type();
  if (id_type == IdType::kUnset) {
    const DocId* first = !w.upserts.empty()   ? &w.upserts[0].id
                         : !w.patches.empty() ? &w.patches[0].id
                         : !w.deletes.empty() ? &w.deletes[0]
                                              : nullptr;
    if (first != nullptr) {
      id_type = std::holds_alternative<uint64_t>(*first) ? IdType::kUint : IdType::kString;
    }
  }
  auto conform = [&](DocId* id) -> ApiStatus {
    if (auto err = ConformId(id_type, id)) return BadRequest(*err);
    return {};
  };
  for (auto& r : w.upserts) ORIGIN_RETURN_IF_ERROR(conform(&r.id));
  for (auto& r : w.patches) ORIGIN_RETURN_IF_ERROR(conform(&r.id));
  for (auto& id : w.deletes) ORIGIN_RETURN_IF_ERROR(conform(&id));
  if (id_type != IdType::kUnset && schema.Find("id") == nullptr) {
    AttrSchema id_attr;
    id_attr.type = std::string(IdTypeName(id_type));
    schema.Set("id", std::move(id_attr));
  }
  {
    std::set<DocId> seen;
    std::vector<std::string> dups;
    auto check = [&](const DocId& id) {
      if (!seen.insert(id).second) dups.push_back(IdToDisplay(id));
    };
    for (const auto& r : w.upserts) check(r.id);
    for (const auto& r : w.patches) check(r.id);
    for (const auto& id : w.deletes) check(id);
    if (!dups.empty()) {
      std::string list;
      for (const auto& d : dups) list += (list.empty() ? "" : ", ") + d;
      return BadRequest(
          "This upsert contains duplicate document IDs and was not written. You should ensure "
          "that individual upserts do not include duplicate documents. The duplicated IDs in "
          "this batch were the following: " +
          list);
    }
  }
  bool ns_has_vector = !state.meta.schema.VectorAttr().empty();
  bool write_has_vector = !schema.VectorAttr().empty() && state.meta.schema.VectorAttr().empty();
  for (const auto& r : w.upserts)
    write_has_vector = write_has_vector || RowHasVector(RowAttrs(r), schema);
  if (!w.distance_metric.empty() && !plan->meta.distance_metric.empty() &&
      w.distance_metric != plan->meta.distance_metric) {
    return BadRequest("distance metric mismatch, expected " + plan->meta.distance_metric +
                      ", got " + w.distance_metric);
  }
  if (write_has_vector && plan->meta.distance_metric.empty() && w.distance_metric.empty()) {
    if (exists && !ns_has_vector && !state.docs.empty()) {
      return BadRequest("Vector provided for namespace without vector attribute");
    }
    return BadRequest("distance_metric must be specified for write to namespace with a vector");
  }
  if (plan->meta.distance_metric.empty() && !w.distance_metric.empty()) {
    plan->meta.distance_metric = w.distance_metric;
  }

  // Conditions and by-filter filters see the schema as extended by this request's declarations.
  ORIGIN_RETURN_IF_ERROR(ParseCondition(body, "upsert_condition", schema, &w.upsert_condition));
  ORIGIN_RETURN_IF_ERROR(ParseCondition(body, "patch_condition", schema, &w.patch_condition));
  ORIGIN_RETURN_IF_ERROR(ParseCondition(body, "delete_condition", schema, &w.delete_condition));
  ORIGIN_RETURN_IF_ERROR(ParseCondition(body, "delete_by_filter", schema, &w.delete_by_filter));
  if (const auto* pbf = body.if_contains("patch_by_filter"); pbf && !pbf->is_null()) {
    if (!pbf->is_object()) {
      return Unprocessable("patch_by_filter: invalid type: " + SerdeUnexpected(*pbf) +
                           ", expected struct PatchByFilter");
    }
    const auto& o = pbf->get_object();
    const auto* filters = o.if_contains("filters");
    const auto* patch = o.if_contains("patch");
    if (filters == nullptr) return Unprocessable("patch_by_filter: missing field `filters`");
    if (patch == nullptr) return Unprocessable("patch_by_filter: missing field `patch`");
    if (!patch->is_object()) {
      return Unprocessable("patch_by_filter.patch: invalid type: " + SerdeUnexpected(*patch) +
                           ", expected a map");
    }
    Filter f;
    ORIGIN_RETURN_IF_ERROR(
        ParseFilter(*filters, FilterContext{&schema, "patch_by_filter.filters"}, &f));
    w.patch_by_filter = std::move(f);
    w.patch_by_filter_patch = &patch->get_object();
  }

  // --- 3. Execute against an overlay. ---------------------------------------------------------
  std::vector<DocId> upserted, patched, deleted;
  uint64_t rows_upserted = 0, rows_patched = 0, rows_deleted = 0;
  bool rows_remaining = false;
  bool by_filter = w.delete_by_filter.has_value() || w.patch_by_filter.has_value();

  if (w.delete_by_filter) {
    for (const auto& [id, doc] : state.docs) {
      if (!EvalFilter(*w.delete_by_filter, id, doc, nullptr, nullptr)) continue;
      if (rows_deleted >= kMaxDeleteByFilter) {
        if (!w.delete_by_filter_allow_partial) {
          return BadRequest("delete_by_filter matched more than " +
                            std::to_string(kMaxDeleteByFilter) +
                            " documents; set delete_by_filter_allow_partial to delete in batches");
        }
        rows_remaining = true;
        break;
      }
      plan->changes[id] = std::nullopt;
      deleted.push_back(id);
      ++rows_deleted;
    }
  }
  if (w.patch_by_filter) {
    std::vector<DocId> matches;
    for (const auto& [id, doc] : state.docs) {
      if (Lookup(*plan, state, id) == nullptr) continue;  // deleted above
      if (EvalFilter(*w.patch_by_filter, id, doc, nullptr, nullptr)) matches.push_back(id);
    }
    if (matches.size() > kMaxPatchByFilter) {
      if (!w.patch_by_filter_allow_partial) {
        return BadRequest("patch_by_filter matched more than " + std::to_string(kMaxPatchByFilter) +
                          " documents; set patch_by_filter_allow_partial to patch in batches");
      }
      matches.resize(kMaxPatchByFilter);
      rows_remaining = true;
    }
    for (const auto& id : matches) {
      Document doc = *Lookup(*plan, state, id);
      ORIGIN_RETURN_IF_ERROR(ApplyAttrs(*w.patch_by_filter_patch, true, &schema, &doc));
      plan->changes[id] = std::move(doc);
      patched.push_back(id);
      ++rows_patched;
    }
  }
  for (const auto& r : w.upserts) {
    Document doc;
    ORIGIN_RETURN_IF_ERROR(ApplyAttrs(RowAttrs(r), false, &schema, &doc));
    if (w.upsert_condition) {
      const Document* current = Lookup(*plan, state, r.id);
      if (current != nullptr && !EvalFilter(*w.upsert_condition, r.id, *current, &doc, &r.id)) {
        continue;
      }
    }
    plan->changes[r.id] = std::move(doc);
    upserted.push_back(r.id);
    ++rows_upserted;
  }
  for (const auto& r : w.patches) {
    const Document* current = Lookup(*plan, state, r.id);
    Document doc = current ? *current : Document{};
    ORIGIN_RETURN_IF_ERROR(ApplyAttrs(RowAttrs(r), true, &schema, &doc));  // validates always
    if (current == nullptr) continue;
    if (w.patch_condition && !EvalFilter(*w.patch_condition, r.id, *current, &doc, &r.id)) continue;
    plan->changes[r.id] = std::move(doc);
    patched.push_back(r.id);
    ++rows_patched;
  }
  for (const auto& id : w.deletes) {
    if (w.delete_condition) {
      const Document* current = Lookup(*plan, state, id);
      if (current == nullptr || !EvalFilter(*w.delete_condition, id, *current, nullptr, nullptr)) {
        continue;
      }
    }
    plan->changes[id] = std::nullopt;
    deleted.push_back(id);
    ++rows_deleted;
  }

  // --- 4. Metadata and response. --------------------------------------------------------------
  bool any_op =
      w.has_upserts || w.has_patches || w.has_deletes || w.delete_by_filter || w.patch_by_filter;
  plan->creates_namespace = !exists && (any_op || w.has_schema);
  plan->has_effect = plan->creates_namespace || !plan->changes.empty() || w.has_schema ||
                     plan->meta.distance_metric != state.meta.distance_metric;
  if (plan->creates_namespace) plan->meta.created_at_ms = now_ms;
  if (plan->has_effect) plan->meta.updated_at_ms = now_ms;
  if (!plan->changes.empty() || plan->creates_namespace) plan->meta.last_write_at_ms = now_ms;

  json::object& r = plan->response;
  r["status"] = "OK";
  r["message"] = "documents committed successfully";
  r["rows_affected"] = rows_upserted + rows_patched + rows_deleted;
  if (w.has_upserts) r["rows_upserted"] = rows_upserted;
  if (w.has_patches || w.patch_by_filter) r["rows_patched"] = rows_patched;
  if (w.has_deletes || w.delete_by_filter) r["rows_deleted"] = rows_deleted;
  if (rows_remaining) r["rows_remaining"] = true;
  if (w.return_affected_ids) {
    // Only non-empty lists are reported (as Turbopuffer reports them).
    if (!upserted.empty()) r["upserted_ids"] = IdsJson(upserted);
    if (!patched.empty()) r["patched_ids"] = IdsJson(patched);
    if (!deleted.empty()) r["deleted_ids"] = IdsJson(deleted);
  }
  json::object billing;
  billing["billable_logical_bytes_written"] = request_bytes;
  if (by_filter || w.upsert_condition || w.patch_condition || w.delete_condition) {
    json::object q;
    uint64_t queried = 0;
    for (const auto& [id, doc] : state.docs) queried += ApproxDocBytes(id, doc);
    q["billable_logical_bytes_queried"] = queried;
    q["billable_logical_bytes_returned"] = 0;
    billing["query"] = std::move(q);
  }
  r["billing"] = std::move(billing);
  json::object perf;
  perf["server_total_ms"] = 1;
  r["performance"] = std::move(perf);
  return {};
}

void ApplyWritePlan(WritePlan&& plan, NamespaceState* state) {
  state->InvalidateIndexes();
  for (auto& [id, doc] : plan.changes) {
    if (doc) {
      state->docs[id] = std::move(*doc);
    } else {
      state->docs.erase(id);
    }
  }
  state->meta = std::move(plan.meta);
}

json::object CopyWriteResult(uint64_t rows, uint64_t bytes) {
  json::object r;
  r["status"] = "OK";
  r["message"] = "documents committed successfully";
  r["rows_affected"] = rows;
  json::object billing;
  billing["billable_logical_bytes_written"] = bytes;
  r["billing"] = std::move(billing);
  json::object perf;
  perf["server_total_ms"] = 1;
  r["performance"] = std::move(perf);
  return r;
}

}  // namespace layer::origin
