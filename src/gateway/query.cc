#include "gateway/query.h"

#include <cstddef>
#include <cstring>

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>

#include "common/json_text.h"
#include "gateway/passthrough.h"
#include "tpuf/reserved.h"

namespace layer::gateway {

namespace json = boost::json;

namespace {

// Whether `body` may hold a key HideReservedAttributes acts on: an "exclude_attributes" key, or an
// "include_attributes" key whose value is `true`, at any depth. Without a backslash every quote
// in valid JSON opens or closes a string, so such a key appears verbatim; a body with a backslash
// (perhaps an escaped key) always takes the full parse. Most queries are answered here without
// being parsed.
bool MayHideReserved(std::string_view body) {
  if (body.find('\\') != std::string_view::npos) return true;
  constexpr std::string_view kExclude = "\"exclude_attributes\"";
  constexpr std::string_view kInclude = "\"include_attributes\"";
  auto skip_space = [body](size_t i) {
    while (i < body.size() &&
           (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) {
      ++i;
    }
    return i;
  };
  // One pass over the quotes for both keys (both are 20 bytes long).
  static_assert(kExclude.size() == kInclude.size());
  const char* const begin = body.data();
  const char* const end = begin + body.size();
  for (const char* q = begin; end - q >= static_cast<ptrdiff_t>(kInclude.size()); ++q) {
    q = static_cast<const char*>(std::memchr(q, '"', static_cast<size_t>(end - q)));
    if (!q || end - q < static_cast<ptrdiff_t>(kInclude.size())) break;
    if (q[1] == 'e' && std::memcmp(q, kExclude.data(), kExclude.size()) == 0) return true;
    if (q[1] != 'i' || std::memcmp(q, kInclude.data(), kInclude.size()) != 0) continue;
    size_t i = skip_space(static_cast<size_t>(q - begin) + kInclude.size());
    if (i >= body.size() || body[i] != ':') continue;
    i = skip_space(i + 1);
    if (body.substr(i, 4) == "true") return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> HideReservedAttributes(std::string_view query_body) {
  if (!MayHideReserved(query_body)) return std::nullopt;
  boost::system::error_code ec;
  json::value root = ParseJson(query_body, ec);  // exact doubles: it is forwarded again
  if (ec || !root.is_object()) return std::nullopt;
  bool changed = false;
  auto rewrite = [&changed](json::object& q) {
    json::value* inc = q.if_contains("include_attributes");
    json::value* exc = q.if_contains("exclude_attributes");
    if (inc && exc) return;  // invalid together: the upstream answers
    if (inc && inc->is_bool() && inc->as_bool()) {
      q.erase("include_attributes");
      q["exclude_attributes"] = json::array{json::string(tpuf::kStampAttribute)};
      changed = true;
    } else if (exc && exc->is_array()) {
      for (const auto& v : exc->as_array()) {
        if (v.is_string() && v.as_string() == tpuf::kStampAttribute) return;
      }
      exc->as_array().emplace_back(json::string(tpuf::kStampAttribute));
      changed = true;
    }
  };
  auto& o = root.as_object();
  rewrite(o);
  if (json::value* queries = o.if_contains("queries"); queries && queries->is_array()) {
    for (auto& q : queries->as_array()) {
      if (q.is_object()) rewrite(q.as_object());
    }
  }
  if (!changed) return std::nullopt;
  return SerializeJson(root);
}

namespace {

// The body to forward in place of the client's: its reserved attributes hidden (decoded first when
// it is gzip), or nullopt to forward the client's body as it is.
std::optional<std::string> RewrittenQuery(const RequestContext& ctx) {
  const auto encoding = http::FieldValue(ctx.ex.request(), http::Field::content_encoding);
  if (encoding.empty() || boost::beast::iequals(encoding, "identity")) {
    return HideReservedAttributes(ctx.ex.body());  // no copy of a body that is not changed
  }
  if (auto decoded = DecodedBody(ctx, ctx.ex.body().size() * 64 + (64u << 20))) {
    return HideReservedAttributes(*decoded);
  }
  return std::nullopt;
}

// The client's answer from the upstream's: relayed, with the stable watermark on a 2xx.
http::Response QueryAnswer(const RequestContext& ctx, http::Response& upstream_res,
                           const watermark::ConsistencyWatcher* watcher,
                           const std::string& upstream_base, const std::string& public_url) {
  http::Response res = RelayResponse(ctx, upstream_res, upstream_base, public_url);
  if (watcher && res.result_int() / 100 == 2) {
    if (auto wm = watcher->StableAsOf(ctx.partition)) {
      res.set("x-layer-stable-as-of", std::to_string(*wm));
    }
  }
  return res;
}

}  // namespace

// The coroutine keeps only what lives across its awaits (its frame stays within Asio's frame
// cache); the work before and after them is in the helpers above.
Task<http::Response> Query(RequestContext& ctx, http::Upstream& upstream,
                           const watermark::ConsistencyWatcher* watcher,
                           const std::string& public_url) {
  if (!ctx.ex.ReadBufferedBody()) {
    if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  }
  // Forward, timed here rather than in SendUpstream's frame.
  http::Request up = ForwardRequest(ctx, RewrittenQuery(ctx), false);
  const auto t0 = std::chrono::steady_clock::now();
  auto sent = co_await upstream.Send(std::move(up), ctx.route.idempotent);
  AddUpstreamTime(ctx, t0);
  if (!sent.ok()) co_return UpstreamError(sent.status());
  co_return QueryAnswer(ctx, *sent, watcher, upstream.base(), public_url);
}

namespace {

// Erases every key with the reserved prefix from `o`; returns whether any was there.
bool EraseReserved(json::object& o) {
  bool changed = false;
  for (auto it = o.begin(); it != o.end();) {
    if (it->key().starts_with(tpuf::kReservedPrefix)) {
      it = o.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

}  // namespace

std::optional<std::string> StripReservedFromInfo(tpuf::RouteId route, std::string_view body) {
  boost::system::error_code ec;
  json::value root = ParseJson(body, ec);  // exact doubles: it is relayed again
  if (ec || !root.is_object()) return std::nullopt;
  json::object* target = &root.as_object();
  if (route == tpuf::RouteId::kMetadataV1 || route == tpuf::RouteId::kMetadataV2 ||
      route == tpuf::RouteId::kPatchMetadata) {
    json::value* schema = target->if_contains("schema");
    target = schema && schema->is_object() ? &schema->as_object() : nullptr;
  } else if (route == tpuf::RouteId::kLegacyNamespace) {
    json::value* attrs = target->if_contains("attributes");
    target = attrs && attrs->is_object() ? &attrs->as_object() : nullptr;
  }
  if (!target || !EraseReserved(*target)) return std::nullopt;
  return SerializeJson(root);
}

Task<http::Response> NamespaceInfo(RequestContext& ctx, http::Upstream& upstream,
                                   coherence::CacheCoherence& cache,
                                   watermark::ConsistencyWatcher* watcher,
                                   const std::string& public_url) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const int64_t poll_start = watcher ? watcher->NowMs() : 0;
  auto sent = co_await Forward(ctx, upstream, std::nullopt, true);
  if (!sent.ok()) co_return UpstreamError(sent.status());
  if (sent->result_int() / 100 != 2 || !sent->base()[http::Field::content_encoding].empty()) {
    co_return RelayResponse(ctx, *sent, upstream.base(), public_url);
  }
  if (auto stripped = StripReservedFromInfo(ctx.route.tpuf, sent->body())) {
    sent->body() = std::move(*stripped);
  }
  if (ctx.route.Is(tpuf::RouteId::kMetadataV2)) {
    // The Layer view of the namespace: its stable watermark and its cache state.
    const std::string& ns = ctx.partition;
    ctx.RememberCaller();  // accepted: the watcher may poll the namespace with it
    if (watcher) watcher->Observe(ns, poll_start, sent->body());
    boost::system::error_code ec;
    json::value body = ParseJson(sent->body(), ec);
    if (!ec && body.is_object()) {
      std::optional<uint64_t> warmed;
      coherence::CacheState state = co_await cache.StateOf(ns, &warmed);
      auto wm = watcher ? watcher->StableAsOf(ns) : std::nullopt;
      json::object layer{{"stable_as_of", wm ? json::value(*wm) : json::value(nullptr)},
                         {"is_stable", watcher && watcher->IsStable(ns)},
                         {"cache_state", coherence::CacheStateName(state)},
                         {"cache_warmed_through",
                          warmed ? json::value(*warmed) : json::value(nullptr)}};
      body.as_object()["layer"] = std::move(layer);
      sent->body() = SerializeJson(body);
    }
  }
  co_return RelayResponse(ctx, *sent, upstream.base(), public_url);
}

}  // namespace layer::gateway
