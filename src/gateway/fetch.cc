#include "gateway/fetch.h"

#include <boost/json.hpp>

#include <span>
#include <unordered_set>

#include "common/json_text.h"
#include "gateway/passthrough.h"
#include "http/errors.h"
#include "tpuf/reserved.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

struct Projection {
  bool all = true;                 // no include_attributes: every non-reserved attribute
  std::vector<std::string> names;  // otherwise exactly these
  bool vector_dropped = false;
};

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
void AppendDocument(std::string* out, const coherence::FetchedRow& row, const Projection& p) {
  *out += "{\"id\":";
  *out += row.id_json;
  *out += ",\"attributes\":";
  if (p.all) {
    *out += row.attributes_json;
  } else {
    boost::system::error_code ec;
    json::value attrs = ParseJson(row.attributes_json, ec);
    json::object picked;
    if (!ec && attrs.is_object()) {
      for (const auto& name : p.names) {
        if (name == tpuf::kStampAttribute) {
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

// Reads the full rows of `ids` upstream (the coherence core's RowReader for this request).
Task<Result<coherence::RowsById>> ReadUpstream(RequestContext& ctx, http::Upstream& upstream,
                                               coherence::FetchConsistency consistency,
                                               std::span<const tpuf::DocId> ids) {
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
      {"level", consistency == coherence::FetchConsistency::kStrong ? "strong" : "eventual"}};
  auto res = co_await SendUpstream(
      ctx, upstream,
      GatewayRequest(ctx, http::Verb::post, "/v2/namespaces/" + ctx.route.ns + "/query",
                     SerializeJson(q)));
  if (!res.ok()) co_return Status::Unavailable("Turbopuffer fetch failed: " + res.status().message());
  coherence::RowsById out;
  if (res->result() == http::Code::not_found) co_return out;  // no such namespace: all missing
  if (res->result_int() / 100 != 2) {
    co_return Status::IoError("Turbopuffer fetch failed: status " +
                              std::to_string(res->result_int()) + ": " + res->body());
  }
  boost::system::error_code ec;
  json::value body = ParseJson(res->body(), ec);  // exact doubles: rows are written out again
  const json::value* rows = ec || !body.is_object() ? nullptr : body.as_object().if_contains("rows");
  if (!rows || !rows->is_array()) co_return Status::IoError("Turbopuffer fetch failed: bad response");
  auto type = ids.front().type;
  for (const auto& r : rows->as_array()) {
    if (!r.is_object()) continue;
    const json::value* idv = r.as_object().if_contains("id");
    if (!idv) continue;
    auto id = tpuf::ParseIdJson(*idv, type);
    auto row = coherence::RowForCache(r.as_object());
    if (id && row) out.emplace(coherence::IdKey(*id), std::move(*row));
  }
  co_return out;
}

}  // namespace

Task<Result<tpuf::IdType>> ResolveIdType(RequestContext& ctx, http::Upstream& upstream,
                                         coherence::CacheCoherence& cache) {
  if (auto known = cache.KnownIdType(ctx.partition)) co_return *known;
  co_return co_await ReadSchema(ctx, upstream, cache);
}

Task<Result<tpuf::IdType>> ReadSchema(RequestContext& ctx, http::Upstream& upstream,
                                      coherence::CacheCoherence& cache) {
  auto res = co_await SendUpstream(
      ctx, upstream,
      GatewayRequest(ctx, http::Verb::get, "/v1/namespaces/" + ctx.route.ns + "/schema", ""));
  if (!res.ok()) co_return res.status();
  if (res->result() == http::Code::not_found) {
    co_return Status::NotFound(NamespaceNotFound(ctx.route.ns));
  }
  if (res->result_int() / 100 != 2) {
    co_return Status::IoError("reading the namespace schema failed: status " +
                              std::to_string(res->result_int()));
  }
  co_return cache.LearnSchema(ctx.partition, res->body());
}

Task<http::Response> FetchDocument(RequestContext& ctx, http::Upstream& upstream,
                                   coherence::CacheCoherence& cache) {
  const std::string& ns = ctx.route.ns;
  Projection proj = ProjectionFromQuery(ctx.query);
  // The id type is almost always known already: asking without a coroutine call saves a frame.
  std::optional<tpuf::IdType> type = cache.KnownIdType(ctx.partition);
  if (!type) {
    auto resolved = co_await ResolveIdType(ctx, upstream, cache);
    if (!resolved.ok()) {
      if (resolved.status().IsNotFound()) co_return NotFound(resolved.status().message());
      co_return UpstreamError(resolved.status());
    }
    type = *resolved;
  }
  auto id = tpuf::ParseIdText(ctx.route.param, *type);
  auto missing = [&] {
    return NotFound("document '" + ctx.route.param + "' was not found in namespace '" + ns + "'");
  };
  if (!id) co_return missing();

  const auto consistency = cache.fetch_consistency();
  auto fetched = co_await cache.FetchOne(
      ctx.partition, *id, [&](std::span<const tpuf::DocId> ids) {
        return ReadUpstream(ctx, upstream, consistency, ids);
      });
  if (!fetched.ok()) co_return UpstreamError(fetched.status());
  if (!fetched->row) co_return missing();
  const coherence::FetchedRow& row = *fetched->row;
  std::string body;
  body.reserve(row.id_json.size() + row.attributes_json.size() + 32);
  AppendDocument(&body, row, proj);
  co_return JsonResponse(std::move(body), coherence::CacheHeaderValue(fetched->outcome), proj);
}

Task<http::Response> FetchDocuments(RequestContext& ctx, http::Upstream& upstream,
                                    coherence::CacheCoherence& cache) {
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
  std::vector<std::optional<tpuf::DocId>> typed;
  typed.reserve(ids_in.size());
  for (const auto& v : ids_in) {
    typed.push_back(ns_missing ? std::nullopt : tpuf::ParseIdJson(v, *type));
  }
  std::vector<tpuf::DocId> lookup;
  std::unordered_set<std::string> seen;
  for (const auto& id : typed) {
    if (id && seen.insert(coherence::IdKey(*id)).second) lookup.push_back(*id);
  }
  const auto consistency = cache.fetch_consistency();
  auto fetched = co_await cache.FetchMany(
      ctx.partition, std::move(lookup), [&](std::span<const tpuf::DocId> ids) {
        return ReadUpstream(ctx, upstream, consistency, ids);
      });
  if (!fetched.ok()) co_return UpstreamError(fetched.status());
  const coherence::RowsById& found = fetched->rows;

  std::string body = "{\"documents\":[";
  std::string missing = "],\"missing\":[";
  bool first_doc = true, first_missing = true;
  for (size_t i = 0; i < ids_in.size(); ++i) {
    const coherence::FetchedRow* row = nullptr;
    if (typed[i]) {
      auto it = found.find(coherence::IdKey(*typed[i]));
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

  co_return JsonResponse(std::move(body), coherence::CacheHeaderValue(fetched->outcome), proj);
}

}  // namespace layer::gateway
