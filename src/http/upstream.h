// Upstream: the interface to Turbopuffer (or anything that speaks its HTTP API).
//
// Contract: Send() forwards one request and returns the upstream's response whatever its
// status. A non-OK Result means a transport failure, and its code says whether the upstream may
// have acted on the request: Unavailable when it was certainly not sent (the host could not be
// resolved or connected to, TLS failed), Timeout or IoError when it was sent, or perhaps sent,
// and no whole answer came back (the connection dropped, the answer was too slow). The caller
// answers 502 upstream_error. Send() never retries
// a request unless `idempotent` is set, and then only when a reused keep-alive connection failed
// before any response byte arrived. Must be called from an IoPool worker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/io_pool.h"
#include "http/message.h"

namespace layer::http {

struct UpstreamOptions {
  std::string base_url;  // http(s)://host[:port][/prefix]
  std::string ca_file;   // extra PEM trust anchors; system roots are always trusted
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds response_timeout{60000};
  int max_idle = 64;  // idle connections kept across all workers
  std::chrono::milliseconds idle_ttl{30000};
  uint64_t max_response_bytes = 2ull << 30;
};

class Upstream {
 public:
  virtual ~Upstream() = default;
  // `req.target()` is the path and query relative to the upstream base URL; Host is set here.
  virtual Task<Result<Response>> Send(Request req, bool idempotent) = 0;
  // "scheme://host[:port][/prefix]": the upstream base URL as it appears in a Location header.
  virtual const std::string& base() const = 0;
};

// The production implementation: HTTP/1.1 over TCP or TLS with a keep-alive pool sharded per
// IoPool worker (no locks on the request path). Send() must be called on a worker of `pool`.
Result<std::unique_ptr<Upstream>> MakeHttpUpstream(IoPool& pool, UpstreamOptions options);

}  // namespace layer::http
