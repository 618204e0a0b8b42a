#include "gateway/tenancy.h"

#include "gateway/passthrough.h"

namespace layer::gateway {

bool PerKeyTenancy(const ServeConfig& cfg) {
  return cfg.auth_mode == AuthMode::kDerive && cfg.upstream_api_key.empty() &&
         !cfg.upstream.empty();
}

KeyValidator::KeyValidator(http::Upstream& upstream, coherence::CacheCoherence& cache,
                           Options options)
    : upstream_(upstream), cache_(cache), options_(options) {}

Task<Result<KeyValidator::Check>> KeyValidator::AskUpstream(RequestContext& ctx) {
  auto res = co_await SendUpstream(
      ctx, upstream_,
      GatewayRequest(ctx, http::Verb::get, "/v1/namespaces/" + ctx.route.ns + "/schema", ""));
  Check check;
  if (!res.ok()) {
    check.error = res.status();
    co_return check;
  }
  const unsigned status = res->result_int();
  if (status / 100 == 2 || status == 404) {
    check.accepted = true;
    // The schema read tells the namespace's id and attribute types too, which a fetch or a write
    // would read next (docs/design.md §4.4.1, §4.2.8).
    if (status / 100 == 2) (void)cache_.LearnSchema(ctx.partition, res->body());
  } else if (status == 401 || status == 403) {
    http::Response rejected{res->result(), 11};
    if (auto ct = (*res)[http::Field::content_type]; !ct.empty()) {
      rejected.set(http::Field::content_type, ct);
    }
    rejected.body() = std::move(res->body());
    check.rejected = std::move(rejected);
  } else {
    check.error = Status::Unavailable("validating the API key upstream failed: status " +
                                      std::to_string(status));
  }
  co_return check;
}

Task<std::optional<http::Response>> KeyValidator::Admit(RequestContext& ctx) {
  const Clock& clock = ClockOr(options_.clock);
  std::string key(ctx.tenant);
  key += '\0';
  key += ctx.route.ns;
  bool known = false;  // accepted once, though perhaps longer ago than the ttl
  {
    std::lock_guard lock(mu_);
    auto it = accepted_.find(key);
    if (it != accepted_.end()) {
      if (clock.Steady() < it->second.expires) co_return std::nullopt;
      known = true;
    }
  }
  auto asked = co_await flights_.Do(key, [&] { return AskUpstream(ctx); });
  if (asked.ok() && asked->accepted) {
    std::lock_guard lock(mu_);
    if (accepted_.size() >= options_.max_entries && !accepted_.count(key)) {
      const auto now = clock.Steady();
      std::erase_if(accepted_, [&](const auto& e) { return e.second.expires <= now; });
      if (accepted_.size() >= options_.max_entries) accepted_.clear();
    }
    accepted_[key] = Verdict{clock.Steady() + options_.ttl};
    co_return std::nullopt;
  }
  if (asked.ok() && asked->rejected) {
    std::lock_guard lock(mu_);
    accepted_.erase(key);
    co_return std::move(*asked->rejected);
  }
  // The upstream cannot say now: a key it accepted before keeps being served (the upstream being
  // down is no reason to stop answering hits); any other is not.
  if (known) co_return std::nullopt;
  co_return UpstreamError(asked.ok() ? asked->error : asked.status());
}

}  // namespace layer::gateway
