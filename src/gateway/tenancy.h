// Tenancy (docs/design.md §9.7): whose partition a request's Layer state lives in, and whether
// its caller may be answered from it.
//
// When the gateway forwards callers' own keys (derive mode with no upstream key, in front of a
// configured upstream), each key is a tenant: its cached documents, namespace records, jobs and
// watermarks live in its own partition, and before a request is answered from Layer state (a
// fetch, a warm route, an orchestrated hint) the key is validated against the upstream -- a read
// of the namespace's schema with it -- and the verdict is remembered for `--key-validation-ttl`,
// so that a revoked key stops being served within it. In every other mode there is one tenant and
// nothing is validated: the configured upstream key, or the gateway's own keys, define it.
//
// Thread-safe. Keys are held only as tags (hashes) here; the plaintext stays with the request and
// with http::Credentials.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "coherence/coherence.h"
#include "coherence/single_flight.h"
#include "common/clock.h"
#include "common/config.h"
#include "gateway/gateway.h"
#include "http/credentials.h"
#include "http/upstream.h"

namespace layer::gateway {

// Whether callers' keys are tenants under `cfg` (derive mode, no upstream key, a configured
// upstream). The embedded origin accepts every key, so it has one tenant.
bool PerKeyTenancy(const ServeConfig& cfg);

class KeyValidator {
 public:
  struct Options {
    std::chrono::milliseconds ttl{60000};
    size_t max_entries = 100000;  // verdicts remembered; the oldest are dropped past this
    const Clock* clock = nullptr;  // null: Clock::System()
  };
  KeyValidator(http::Upstream& upstream, coherence::CacheCoherence& cache, Options options);

  // Admits ctx's caller to the Layer state of ctx's partition: nullopt when admitted, otherwise
  // the answer to send -- the upstream's own 401/403 (status and body) for a key it rejects, a
  // 502 when it cannot be asked and has never accepted the key for this namespace. A key it
  // accepted before stays admitted while it cannot be asked (docs/design.md §8).
  Task<std::optional<http::Response>> Admit(RequestContext& ctx);

 private:
  struct Verdict {
    Clock::SteadyTime expires;
  };
  // The upstream's answer for the key of ctx on its namespace: accepted (2xx or 404), rejected
  // (the response to relay) or unknown (the status).
  struct Check {
    bool accepted = false;
    std::optional<http::Response> rejected;
    Status error;
  };
  Task<Result<Check>> AskUpstream(RequestContext& ctx);

  http::Upstream& upstream_;
  coherence::CacheCoherence& cache_;
  const Options options_;
  std::mutex mu_;  // guards accepted_
  // tag '\0' namespace -> until when the key is known accepted for the namespace
  std::unordered_map<std::string, Verdict> accepted_;
  coherence::SingleFlight<Check> flights_;
};

}  // namespace layer::gateway
