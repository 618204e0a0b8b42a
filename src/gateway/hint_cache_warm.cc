#include "gateway/hint_cache_warm.h"

#include <boost/json.hpp>

#include "gateway/passthrough.h"
#include "http/errors.h"
#include "common/json_text.h"
#include "snapshots/snapshot.h"

namespace layer::gateway {
namespace {

namespace json = boost::json;

constexpr std::string_view kOptions[] = {"turbopuffer", "documents", "snapshots", "page_size"};

http::Response Invalid(std::string msg) {
  return http::MakeError(http::Code::unprocessable_entity, "validation_error", msg);
}

// nullopt = absent (default on); an error message for a malformed value.
struct BoolOption {
  bool value = true;
  std::optional<std::string> error;
};

BoolOption ParseBool(std::string_view query, std::string_view name) {
  BoolOption out;
  auto v = QueryParam(query, name);
  if (!v) return out;
  if (*v == "true" || *v == "1") {
    out.value = true;
  } else if (*v == "false" || *v == "0") {
    out.value = false;
  } else {
    out.error = std::string(name) + " must be true, false, 1 or 0";
  }
  return out;
}

json::object Step(bool enabled, std::string_view status) {
  return json::object{{"enabled", enabled}, {"status", status}};
}

}  // namespace

bool IsOrchestratedHint(std::string_view query) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::string key;
    if (!PercentDecode(kv.substr(0, kv.find('=')), &key)) continue;
    for (auto opt : kOptions) {
      if (key == opt) return true;
    }
  }
  return false;
}

unsigned HintRequiredScope(std::string_view query) {
  // The documents step starts a warm job, which POST /warm allows only with the write scope. A
  // malformed value is refused (422) before any step runs, whatever the scope.
  const BoolOption docs = ParseBool(query, "documents");
  return IsOrchestratedHint(query) && docs.value && !docs.error ? kScopeWrite : kScopeRead;
}

Task<http::Response> OrchestrateHintCacheWarm(RequestContext& ctx, http::Upstream& upstream,
                                                    coherence::CacheCoherence& cache, WarmServices& warm) {
  if (auto err = co_await ReadBodyOrError(ctx)) co_return std::move(*err);
  const std::string& ns = ctx.route.ns;
  BoolOption tp = ParseBool(ctx.query, "turbopuffer");
  BoolOption docs = ParseBool(ctx.query, "documents");
  BoolOption snaps = ParseBool(ctx.query, "snapshots");
  for (const auto* o : {&tp, &docs, &snaps}) {
    if (o->error) co_return Invalid(*o->error);
  }
  auto page_size = ParsePageSize(ctx.query);
  if (!page_size.ok()) co_return Invalid(page_size.status().message());
  if ((docs.value || snaps.value) && !co_await cache.Available()) {
    co_return CacheCold(ns);
  }

  json::object out{{"namespace", ns}};
  if (tp.value) {
    auto res = co_await SendUpstream(
        ctx, upstream,
        GatewayRequest(ctx, http::Verb::get, "/v1/namespaces/" + ns + "/hint_cache_warm", ""));
    if (!res.ok()) co_return UpstreamError(res.status());
    if (res->result_int() / 100 != 2) {
      co_return UpstreamError(Status::IoError("Turbopuffer hint_cache_warm failed with status " +
                                              std::to_string(res->result_int()) + ": " +
                                              res->body().substr(0, 300)));
    }
    out["turbopuffer"] = Step(true, "completed");
  } else {
    out["turbopuffer"] = Step(false, "skipped");
  }

  // The snapshots step runs before the documents step (the answer lists them in the documented
  // order): a failure of the object store or the cache then answers the call without having
  // started a warm job whose id the caller would never see.
  json::object snapshots_step = Step(false, "skipped");
  if (snaps.value) {
    // The cache's mirror of the latest body spares reading it from the object store when the
    // store's newest key is still the mirrored one (docs/design.md §7.2): a snapshot stored by
    // anyone else, or a corrupt newest object, is seen at once. A mirror that does not decode or
    // is of another namespace counts as none. The object store may block: off the event loop.
    std::optional<snapshots::StoredSnapshot> mirror;
    if (auto mirrored = co_await cache.LatestSnapshot(ctx.partition)) {
      snapshots::ParseOptions check;
      check.expected_namespace = ns;
      auto body = snapshots::ParseSnapshotBody(*mirrored, check);
      auto key = body.ok() ? snapshots::SnapshotKey(ctx.partition, body->watermark_ms, body->sha)
                           : Result<std::string>(body.status());
      if (body.ok() && key.ok()) {
        mirror = snapshots::StoredSnapshot{std::move(*key), std::move(*mirrored),
                                           std::move(*body)};
      }
    }
    auto newest = co_await warm.snapshots.Blocking(
        [&] { return snapshots::LatestSnapshotKey(warm.objects, ctx.partition); });
    Result<std::optional<snapshots::StoredSnapshot>> latest =
        std::optional<snapshots::StoredSnapshot>();
    bool from_mirror = false;
    if (mirror && (!newest.ok() || (*newest && **newest == mirror->key))) {
      // The newest, or the store cannot say: the mirror stands in for it (§8).
      latest = std::optional<snapshots::StoredSnapshot>(std::move(*mirror));
      from_mirror = true;
    } else if (!newest.ok()) {
      latest = newest.status();
    } else if (*newest) {
      latest = co_await warm.snapshots.Blocking(
          [&] { return snapshots::ReadLatestSnapshot(warm.objects, ctx.partition); });
    }
    if (!latest.ok()) {
      co_return UpstreamError(Status::IoError("reading the latest snapshot failed: " +
                                              latest.status().message()));
    }
    if (!*latest) {
      snapshots_step = Step(true, "no_snapshot");
    } else {
      const snapshots::StoredSnapshot& s = **latest;
      if (!from_mirror) {
        Status st = co_await cache.RecordLatestSnapshot(ctx.partition, s.bytes);
        if (!st.ok()) co_return CacheCold(ns);
      }
      snapshots_step = Step(true, "completed");
      snapshots_step["key"] = s.key;
      snapshots_step["watermark_ms"] = s.body.watermark_ms;
      snapshots_step["sha"] = s.body.sha;
    }
  }

  if (docs.value) {
    auto job = co_await StartOrJoinWarm(ctx, warm, *page_size);
    if (!job.ok()) co_return JobStoreError(job.status());
    json::object step = Step(true, "started");
    step["job"] = json::parse(jobs::WarmJobToJson(*job));
    out["documents"] = std::move(step);
  } else {
    out["documents"] = Step(false, "skipped");
  }
  out["snapshots"] = std::move(snapshots_step);
  http::Response res{http::Code::ok, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() = SerializeJson(out);
  co_return res;
}

}  // namespace layer::gateway
