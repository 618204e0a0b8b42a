// The inbound HTTP/1.1 server: Beast + Asio coroutines on an IoPool.
//
// Per connection: keep-alive; an idle timeout while waiting for the next request; a header
// timeout from the first byte of a request until its head is complete (a slow client cannot hold
// a connection forever); a header-size limit (431); a body-size limit (413) enforced from
// Content-Length before any body byte is read; `Expect: 100-continue` answered only when the
// handler asks for the body. Malformed requests get 400 and the connection is closed.
//
// Connection cap (docs/design.md §9.10): at most `max_connections` connections are open. A
// connection accepted beyond the cap closes the connection, of any I/O thread, that has waited
// longest for its next request (an idle keep-alive connection: HTTP/1.1 lets a server close it at
// any time; one whose request has begun to arrive is not idle); when there is none, the new
// connection gets `503 too_many_connections` and is closed. Accepting backs off while the process
// is out of file descriptors instead of spinning.
//
// The handler sees an Exchange: the request head at once, the body only on ReadBody(). A handler
// that answers without reading an announced body causes the connection to close afterwards.
// The server adds `x-request-id` (echoed or minted), records metrics and writes one access-log
// line per request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "http/io_pool.h"
#include "http/message.h"

namespace layer::http {

enum class BodyStatus { kOk, kTooLarge, kFailed };

// Per-request facts shared by the server and the handler.
struct RequestInfo {
  std::string request_id;
  std::string_view route = "unknown";  // metrics and access-log label; static storage only
  std::chrono::steady_clock::time_point start;
  double upstream_seconds = 0;         // time spent waiting on the upstream, summed
  uint64_t bytes_in = 0;               // request body bytes received
  bool drop_connection = false;        // close the connection without answering (fault tests)
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Request& request() const = 0;  // head always; body only after ReadBody()
  // Reads the whole body (sending 100 Continue first if the client asked for it). Idempotent.
  virtual Task<BodyStatus> ReadBody() = 0;
  // Parses what the connection has already received of the body, without waiting: true when the
  // whole body is read (then ReadBody() returns kOk at once), false when the handler must still
  // call ReadBody(). A handler that usually gets a small body in the same read as its head calls
  // this first and skips a suspension. (The default never reads: an exchange without a buffer.)
  virtual bool ReadBufferedBody() { return false; }
  // The body; the handler may move from it after ReadBody() returned kOk.
  virtual std::string& body() = 0;
  RequestInfo info;
};

using Handler = std::function<Task<Response>(Exchange&)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;
  uint64_t max_body_bytes = 512ull << 20;
  uint32_t max_header_bytes = 64 << 10;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{300000};
  std::chrono::milliseconds idle_timeout{75000};
  uint64_t max_connections = 10000;
  bool access_log = true;
};

// The connection cap to use under an open-file limit of `fd_limit` (the soft RLIMIT_NOFILE):
// `configured`, lowered so that min(1024, fd_limit / 2) descriptors stay free for the upstream,
// the cache and the job store. Never below 1.
uint64_t ConnectionCapForFdLimit(uint64_t configured, uint64_t fd_limit);

// Raises the soft RLIMIT_NOFILE of this process to its hard limit (at most 1 << 20) and returns
// the soft limit in force afterwards.
uint64_t RaiseFdLimit();

class HttpServer {
 public:
  HttpServer(IoPool& pool, ServerOptions options, Handler handler);
  ~HttpServer();

  // Binds and listens; port() is valid afterwards (useful with port 0).
  Status Listen();
  uint16_t port() const { return bound_port_; }
  // Starts accepting on the pool. Call after Listen() and before the pool runs out of work.
  void Start();
  // Stops accepting new connections (existing ones finish their current request).
  void StopAccepting();

  // Draining: every response closes its connection; handlers read draining() to refuse work.
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }
  int64_t inflight() const { return inflight_.load(); }
  // Connections open right now (also the `layer_http_connections` gauge).
  int64_t connections() const { return connections_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> inflight_{0};
  std::atomic<int64_t> connections_{0};
};

}  // namespace layer::http
