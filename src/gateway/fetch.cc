#include "gateway/fetch.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <unordered_map>

#include "gateway/passthrough.h"
#include "gateway/write_plan.h"
#include "http/errors.h"
#include "common/json_text.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

struct Projection {
  bool all = true;                 // no include_attributes: every non-reserved attribute
  std::vector<std::string> names;  // otherwise exactly these
  bool vector_dropped = false;
};

std::string CacheKey(std::string_view ns, const cache::DocId& id) {
  std::string k(ns);
  k += '\0';
  k += static_cast<char>(id.type);
  k += id.bytes;
  return k;
}

std::optional<cache::DocId> IdFromText(std::string_view text, cache::IdType type) {
  switch (type) {
    case cache::IdType::kU64: {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
      return cache::DocId::U64(v);
    }
    case cache::IdType::kUuid: {
      auto id = cache::DocId::Uuid(text);
      if (!id.ok()) return std::nullopt;
      return std::move(*id);
    }
    case cache::IdType::kString:
      return cache::DocId::String(text);
  }
  return std::nullopt;
}

std::optional<cache::DocId> IdFromJson(const json::value& v, cache::IdType type) {
  if (v.is_string()) return IdFromText(v.as_string(), type);
  if (type == cache::IdType::kU64) return CacheIdFromJson(v, type);
  return std::nullopt;
}

void AddName(Projection& p, std::string_view name) {
  if (name.empty()) return;
  if (name == "vector" || name == "vectors") {
    p.vector_dropped = true;
    return;
  }
  p.names.emplace_back(name);
}

Projection ProjectionFromQuery(std::string_view query) {
  Projection p;
  auto value = QueryParam(query, "include_attributes");
  if (!value) return p;
  p.all = false;
  std::string_view rest = *value;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    AddName(p, name);
  }
  return p;
}

// {"id":…,"attributes":{…}} for one document.
void AppendDocument(std::string* out, const FetchedRow& row, const Projection& p) {
  *out += "{\"id\":";
  *out += row.id_json;
  *out += ",\"attributes\":";
  if (p.all) {
    *out += row.attributes_json;
  } else {
    boost::system::error_code ec;
    json::value attrs = json::parse(row.attributes_json, ec);
    json::object picked;
    if (!ec && attrs.is_object()) {
      for (const auto& name : p.names) {
        if (name == kStampAttribute) {
          if (row.stamp > 0) picked[name] = row.stamp;
        } else if (auto* v = attrs.as_object().if_contains(name)) {
          picked[name] = *v;
        }
      }
    }
    AppendJson(picked, out);
  }
  *out += '}';
}

http::Response JsonResponse(std::string body, std::string_view cache_result,
                            const Projection& p) {
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "application/json");
  res.set("x-layer-cache", cache_result);
  if (p.vector_dropped) res.set("x-layer-warning", "vector_attribute_dropped");
  res.body() = std::move(body);
  return res;
}

http::Response NotFound(std::string message) {
  return http::MakeError(http::Code::not_found, "not_found", message);
}

std::string NamespaceNotFound(const std::string& ns) {
  return "namespace '" + ns + "' was not found";
}

// Reads the full rows of `ids` upstream. Rows come back keyed by CacheKey.
http::Task<Result<std::unordered_map<std::string, FetchedRow>>> ReadUpstream(
    RequestContext& ctx, http::Upstream& upstream, const CacheContext& cache,
    const std::vector<cache::DocId>& ids) {
  json::array values;
  for (const auto& id : ids) {
    if (id.type == cache::IdType::kU64) {
      values.emplace_back(id.as_u64());
    } else {
      values.emplace_back(id.ToText());
    }
  }
  json::object q;
  q["rank_by"] = json::array{"id", "asc"};
  q["top_k"] = ids.size();
  q["filters"] = ids.size() == 1 ? json::array{"id", "Eq", values[0]}
                                 : json::array{"id", "In", std::move(values)};
  q["include_attributes"] = true;
  q["consistency"] = json::object{
      {"level", cache.fetch_consistency == FetchConsistency::kStrong ? "strong" : "eventual"}};
  auto res = co_await SendUpstream(
      ctx, upstream,
      GatewayRequest(ctx, http::Verb::post, "/v2/namespaces/" + ctx.route.ns + "/query",
                     SerializeJson(q)));
  if (!res.ok()) co_return Status::Unavailable("Turbopuffer fetch failed: " + res.status().message());
  std::unordered_map<std::string, FetchedRow> out;
  if (res->result() == http::Code::not_found) co_return out;  // no such namespace: all missing
  if (res->result_int() / 100 != 2) {
    co_return Status::IoError("Turbopuffer fetch failed: status " +
                              std::to_string(res->result_int()) + ": " + res->body());
  }
  boost::system::error_code ec;
  json::value body = json::parse(res->body(), ec);
  const json::value* rows = ec || !body.is_object() ? nullptr : body.as_object().if_contains("rows");
  if (!rows || !rows->is_array()) co_return Status::IoError("Turbopuffer fetch failed: bad response");
  auto type = ids.front().type;
  for (const auto& r : rows->as_array()) {
    if (!r.is_object()) continue;
    const json::value* idv = r.as_object().if_contains("id");
    if (!idv) continue;
    auto id = IdFromJson(*idv, type);
    auto row = RowForCache(r.as_object());
    if (id && row) out.emplace(CacheKey(ctx.route.ns, *id), std::move(*row));
  }
  co_return out;
}

// Backfills rows read upstream, best effort and never over a pending invalidation.
http::Task<void> Backfill(CacheContext& cache, std::string ns,
                          std::vector<std::pair<cache::DocId, FetchedRow>> rows) {
  std::vector<std::pair<cache::DocId, cache::CachedDoc>> docs;
  for (auto& [id, row] : rows) {
    if (cache.pending.Blocks(ns, id)) continue;
    cache::CachedDoc doc;
    doc.attributes_json = std::move(row.attributes_json);
    doc.upserted_at = row.stamp;
    docs.emplace_back(std::move(id), std::move(doc));
  }
  if (docs.empty()) co_return;
  size_t n = docs.size();
  auto r = co_await cache.guard->PutIfNewerBatch(ns, std::move(docs));
  (r.ok() ? cache.metrics.backfills_ok : cache.metrics.backfills_error).Inc(n);
}

}  // namespace

std::optional<FetchedRow> RowForCache(const json::object& row) {
  const json::value* id = row.if_contains("id");
  if (!id) return std::nullopt;
  FetchedRow out;
  out.id_json = SerializeJson(*id);
  json::object attrs;
  for (const auto& [k, v] : row) {
    if (k == "id" || k == "vector" || k == "vectors" || k == "$dist" || k == "$score") continue;
    if (k.starts_with(kReservedPrefix)) {
      if (k == kStampAttribute && v.is_number()) {
        boost::system::error_code ec;
        auto stamp = v.to_number<uint64_t>(ec);  // a stamp that is no u64 counts as none
        if (!ec) out.stamp = stamp;
      }
      continue;
    }
    attrs[k] = v;
  }
  out.attributes_json = SerializeJson(attrs);
  return out;
}

cache::IdType IdTypeFromSchema(std::string_view schema_body) {
  boost::system::error_code ec;
  json::value schema = json::parse(schema_body, ec);
  std::string_view type = "uint";  // Turbopuffer's default id type
  if (!ec && schema.is_object()) {
    if (const auto* id = schema.as_object().if_contains("id")) {
      if (id->is_string()) type = id->as_string();
      if (id->is_object()) {
        if (const auto* t = id->as_object().if_contains("type"); t && t->is_string()) {
          type = t->as_string();
        }
      }
    }
  }
  return type == "uuid"     ? cache::IdType::kUuid
         : type == "string" ? cache::IdType::kString
                            : cache::IdType::kU64;
}

http::Task<Result<cache::IdType>> ResolveIdType(RequestContext& ctx, http::Upstream& upstream,
                                                CacheContext& cache) {
  if (auto known = cache.id_types.Known(ctx.route.ns)) co_return *known;
  auto res = co_await SendUpstream(
      ctx, upstream,
      GatewayRequest(ctx, http::Verb::get, "/v1/namespaces/" + ctx.route.ns + "/schema", ""));
  if (!res.ok()) co_return res.status();
  if (res->result() == http::Code::not_found) co_return Status::NotFound(NamespaceNotFound(ctx.route.ns));
  if (res->result_int() / 100 != 2) {
    co_return Status::IoError("reading the namespace schema failed: status " +
                              std::to_string(res->result_int()));
  }
  cache::IdType t = IdTypeFromSchema(res->body());
  cache.id_types.Learn(ctx.route.ns, t);
  co_return t;
}

http::Task<http::Response> FetchDocument(RequestContext& ctx, http::Upstream& upstream,
                                         CacheContext& cache) {
  const std::string& ns = ctx.route.ns;
  Projection proj = ProjectionFromQuery(ctx.query);
  // The id type is almost always known already: asking without a coroutine call saves a frame.
  std::optional<cache::IdType> type = cache.id_types.Known(ns);
  if (!type) {
    auto resolved = co_await ResolveIdType(ctx, upstream, cache);
    if (!resolved.ok()) {
      if (resolved.status().IsNotFound()) co_return NotFound(resolved.status().message());
      co_return UpstreamError(resolved.status());
    }
    type = *resolved;
  }
  auto id = IdFromText(ctx.route.param, *type);
  auto missing = [&] {
    return NotFound("document '" + ctx.route.param + "' was not found in namespace '" + ns + "'");
  };
  if (!id) co_return missing();

  bool cache_error = !cache.guard;
  if (cache.guard && !cache.pending.Blocks(ns, *id)) {
    // A record in memory is read right here on the I/O thread; anything that needs I/O (or a
    // breaker that is not closed) takes the guarded path with its deadline.
    cache::TryGetResult hit = cache.guard->TryGet(ns, *id);
    if (!hit) {
      auto slow = co_await cache.guard->Get(ns, *id);
      hit.emplace(std::move(slow));
    }
    if (!hit->ok()) {
      cache_error = true;
    } else if (std::optional<cache::CachedDoc>& doc = **hit; doc && !doc->tombstone) {
      cache.metrics.Lookups("hit").Inc();
      FetchedRow row{id->ToJson(), std::move(doc->attributes_json), doc->upserted_at};
      std::string body;
      body.reserve(row.id_json.size() + row.attributes_json.size() + 32);
      AppendDocument(&body, row, proj);
      co_return JsonResponse(std::move(body), "hit", proj);
    }
  } else if (cache.guard) {
    cache_error = true;  // a pending invalidation: the cache may be stale for this id
  }
  cache.metrics.Lookups(cache_error ? "error" : "miss").Inc();
  if (!cache_error) cache.OnCleanMiss(ns);

  std::string key = CacheKey(ns, *id);
  auto fetched = co_await cache.fetch_flights.Do(
      key, [&]() -> http::Task<Result<std::optional<FetchedRow>>> {
        std::vector<cache::DocId> one{*id};
        auto rows = co_await ReadUpstream(ctx, upstream, cache, one);
        if (!rows.ok()) co_return rows.status();
        auto it = rows->find(key);
        if (it == rows->end()) co_return std::optional<FetchedRow>();
        co_return std::optional<FetchedRow>(std::move(it->second));
      });
  if (!fetched.ok()) co_return UpstreamError(fetched.status());
  if (!*fetched) co_return missing();
  FetchedRow& row = **fetched;
  std::string body;
  AppendDocument(&body, row, proj);
  if (!cache_error) {
    // The backfill runs after the answer: it never adds to the miss's latency.
    std::vector<std::pair<cache::DocId, FetchedRow>> fill;
    fill.emplace_back(*id, row);
    boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                          Backfill(cache, ns, std::move(fill)), boost::asio::detached);
  }
  co_return JsonResponse(std::move(body), cache_error ? "miss-on-error" : "miss", proj);
}

http::Task<http::Response> FetchDocuments(RequestContext& ctx, http::Upstream& upstream,
                                          CacheContext& cache) {
  const std::string& ns = ctx.route.ns;
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  auto invalid = [](std::string msg) {
    return http::MakeError(http::Code::unprocessable_entity, "validation_error", msg);
  };
  boost::system::error_code ec;
  json::value req = json::parse(ctx.ex.body(), ec);
  if (ec || !req.is_object()) co_return invalid("request body must be a JSON object");
  const json::value* ids_v = req.as_object().if_contains("ids");
  if (!ids_v || !ids_v->is_array() || ids_v->as_array().empty()) {
    co_return invalid("`ids` must be a non-empty array of document ids");
  }
  const auto& ids_in = ids_v->as_array();
  if (ids_in.size() > kMaxFetchIds) {
    co_return invalid("`ids` may hold at most " + std::to_string(kMaxFetchIds) + " ids (got " +
                      std::to_string(ids_in.size()) + ")");
  }
  for (const auto& v : ids_in) {
    if (!v.is_string() && !v.is_uint64() && !(v.is_int64() && v.as_int64() >= 0)) {
      co_return invalid("`ids` entries must be strings or unsigned integers");
    }
  }
  Projection proj;
  if (const json::value* inc = req.as_object().if_contains("include_attributes")) {
    if (!inc->is_array()) co_return invalid("`include_attributes` must be an array of names");
    proj.all = false;
    for (const auto& n : inc->as_array()) {
      if (!n.is_string()) co_return invalid("`include_attributes` must be an array of names");
      AddName(proj, n.as_string());
    }
  }

  auto type = co_await ResolveIdType(ctx, upstream, cache);
  bool ns_missing = !type.ok() && type.status().IsNotFound();
  if (!type.ok() && !ns_missing) co_return UpstreamError(type.status());

  // Typed ids; an id that cannot exist in this namespace is simply missing.
  std::vector<std::optional<cache::DocId>> typed;
  typed.reserve(ids_in.size());
  for (const auto& v : ids_in) typed.push_back(ns_missing ? std::nullopt : IdFromJson(v, *type));

  std::vector<cache::DocId> lookup;
  std::unordered_map<std::string, size_t> lookup_index;
  for (const auto& id : typed) {
    if (id && lookup_index.emplace(CacheKey(ns, *id), lookup.size()).second) {
      lookup.push_back(*id);
    }
  }
  std::unordered_map<std::string, FetchedRow> found;
  bool cache_error = !cache.guard;
  if (cache.guard && !lookup.empty()) {
    auto got = co_await cache.guard->MultiGet(ns, lookup);
    if (!got.ok()) {
      cache_error = true;
    } else {
      for (size_t i = 0; i < lookup.size(); ++i) {
        auto& rec = (*got)[i];
        if (!rec || rec->tombstone) continue;
        if (cache.pending.Blocks(ns, lookup[i])) {
          cache_error = true;
          continue;
        }
        found.emplace(CacheKey(ns, lookup[i]),
                      FetchedRow{lookup[i].ToJson(), std::move(rec->attributes_json),
                                 rec->upserted_at});
      }
    }
  }
  size_t hits = found.size();
  std::vector<cache::DocId> misses;
  for (const auto& id : lookup) {
    if (!found.count(CacheKey(ns, id))) misses.push_back(id);
  }
  if (!misses.empty()) {
    if (!cache_error) cache.OnCleanMiss(ns);
    auto rows = co_await ReadUpstream(ctx, upstream, cache, misses);
    if (!rows.ok()) co_return UpstreamError(rows.status());
    std::vector<std::pair<cache::DocId, FetchedRow>> fill;
    for (const auto& id : misses) {
      auto it = rows->find(CacheKey(ns, id));
      if (it == rows->end()) continue;
      if (!cache_error) fill.emplace_back(id, it->second);
      found.emplace(it->first, std::move(it->second));
    }
    if (!fill.empty()) {
      boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                            Backfill(cache, ns, std::move(fill)), boost::asio::detached);
    }
  }

  std::string body = "{\"documents\":[";
  std::string missing = "],\"missing\":[";
  bool first_doc = true, first_missing = true;
  for (size_t i = 0; i < ids_in.size(); ++i) {
    const FetchedRow* row = nullptr;
    if (typed[i]) {
      auto it = found.find(CacheKey(ns, *typed[i]));
      if (it != found.end()) row = &it->second;
    }
    if (row) {
      if (!first_doc) body += ',';
      first_doc = false;
      AppendDocument(&body, *row, proj);
    } else {
      if (!first_missing) missing += ',';
      first_missing = false;
      AppendJson(ids_in[i], &missing);
    }
  }
  body += missing;
  body += "]}";

  std::string_view result = cache_error           ? "miss-on-error"
                            : misses.empty()       ? "hit"
                            : hits == 0            ? "miss"
                                                   : "partial";
  cache.metrics.Lookups(cache_error ? "error" : result).Inc();
  co_return JsonResponse(std::move(body), result == "partial" ? "miss" : result, proj);
}

}  // namespace layer::gateway
