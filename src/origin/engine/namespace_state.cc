#include "origin/engine/namespace_state.h"

#include "common/json_text.h"
#include "origin/engine/model.h"

namespace layer::origin {
namespace {

// Vector components are written in shortest f32 form so that re-parsing (Boost.JSON 1.81 is not
// exact for 17-digit doubles) and rounding back to f32 restores the exact value.
json::value DocToJson(const DocId& id, const Document& doc, const Schema& schema) {
  json::object attrs;
  for (const auto& kv : doc.attrs) {
    const AttrSchema* a = schema.Find(kv.key());
    if (a != nullptr && a->IsDenseVector() && kv.value().is_array()) {
      json::array arr;
      for (const auto& e : kv.value().get_array()) {
        arr.push_back(F32AsPrintableDouble(static_cast<float>(NumberAsDouble(e))));
      }
      attrs[kv.key()] = std::move(arr);
    } else {
      attrs[kv.key()] = kv.value();
    }
  }
  json::array pair;
  pair.push_back(IdToJson(id));
  pair.push_back(std::move(attrs));
  return pair;
}

json::object MetaToJson(const NamespaceMeta& meta) {
  json::object m;
  m["schema"] = meta.schema.ToStorageJson();
  m["distance_metric"] = meta.distance_metric;
  m["created_at_ms"] = meta.created_at_ms;
  m["updated_at_ms"] = meta.updated_at_ms;
  m["last_write_at_ms"] = meta.last_write_at_ms;
  m["pinning"] = meta.pinning;
  return m;
}

int64_t GetInt(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && IsNumber(*v) ? static_cast<int64_t>(NumberAsDouble(*v)) : 0;
}

}  // namespace

std::string EncodeLogRecord(const LogRecord& record) {
  json::object rec;
  rec["meta"] = MetaToJson(*record.meta);
  if (record.reset) rec["reset"] = true;
  json::array puts;
  for (const auto& [id, doc] : record.puts)
    puts.push_back(DocToJson(id, *doc, record.meta->schema));
  rec["puts"] = std::move(puts);
  json::array dels;
  for (const auto& id : record.deletes) dels.push_back(IdToJson(id));
  rec["deletes"] = std::move(dels);
  return SerializeJson(rec);
}

std::string EncodeSnapshot(const NamespaceState& state) {
  LogRecord rec;
  rec.meta = &state.meta;
  rec.reset = true;
  rec.puts.reserve(state.docs.size());
  for (const auto& [id, doc] : state.docs) rec.puts.emplace_back(id, &doc);
  return EncodeLogRecord(rec);
}

bool ApplyLogRecord(std::string_view payload, NamespaceState* state) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return false;
  (void)RestoreExactDoubles(payload, &v);
  const auto& rec = v.get_object();
  const auto* meta = rec.if_contains("meta");
  if (meta == nullptr || !meta->is_object()) return false;
  const auto& m = meta->get_object();
  NamespaceMeta nm;
  if (const auto* s = m.if_contains("schema"); s && s->is_object()) {
    nm.schema = Schema::FromStorageJson(s->get_object());
  }
  if (const auto* d = m.if_contains("distance_metric"); d && d->is_string()) {
    nm.distance_metric = d->get_string();
  }
  nm.created_at_ms = GetInt(m, "created_at_ms");
  nm.updated_at_ms = GetInt(m, "updated_at_ms");
  nm.last_write_at_ms = GetInt(m, "last_write_at_ms");
  if (const auto* p = m.if_contains("pinning")) nm.pinning = *p;
  state->InvalidateIndexes();
  state->meta = std::move(nm);
  if (const auto* r = rec.if_contains("reset"); r && r->is_bool() && r->get_bool()) {
    state->docs.clear();
  }
  if (const auto* puts = rec.if_contains("puts"); puts && puts->is_array()) {
    for (const auto& p : puts->get_array()) {
      if (!p.is_array() || p.get_array().size() != 2 || !p.get_array()[1].is_object()) return false;
      DocId id;
      if (!ParseRawId(p.get_array()[0], &id)) return false;
      Document doc;
      doc.attrs = p.get_array()[1].get_object();
      for (auto& kv : doc.attrs) {
        const AttrSchema* a = state->meta.schema.Find(kv.key());
        if (a != nullptr && a->IsDenseVector() && kv.value().is_array()) {
          for (auto& e : kv.value().get_array()) {
            e = static_cast<double>(static_cast<float>(NumberAsDouble(e)));
          }
        }
      }
      state->docs[std::move(id)] = std::move(doc);
    }
  }
  if (const auto* dels = rec.if_contains("deletes"); dels && dels->is_array()) {
    for (const auto& d : dels->get_array()) {
      DocId id;
      if (ParseRawId(d, &id)) state->docs.erase(id);
    }
  }
  return true;
}

uint64_t ApproxDocBytes(const DocId& id, const Document& doc) {
  uint64_t bytes = std::holds_alternative<uint64_t>(id) ? 8 : std::get<std::string>(id).size();
  for (const auto& kv : doc.attrs) {
    bytes += kv.key().size();
    const json::value& v = kv.value();
    if (v.is_string()) {
      bytes += v.get_string().size();
    } else if (v.is_array()) {
      for (const auto& e : v.get_array()) bytes += e.is_string() ? e.get_string().size() : 4;
    } else if (v.is_object()) {
      bytes += v.get_object().size() * 8;
    } else {
      bytes += 8;
    }
  }
  return bytes;
}

}  // namespace layer::origin
