// Engine: an in-process, Turbopuffer-compatible origin (the local "emulator").
//
// Engine::Handle takes one raw HTTP request (method, percent-encoded path, query string, body)
// and returns exactly the status and body Turbopuffer would, for every route in
// Turbopuffer's HTTP API (writes, queries, multi-query, explain, metadata v1/v2, schema,
// namespace listing, delete, hint_cache_warm, recall, legacy export/HEAD/delete).
//
// Durability: every acknowledged write is in the namespace's write-ahead log and fdatasync'ed
// before Handle returns; Open replays the logs (storage.h). Namespace deletes are durable too.
//
// Thread safety: Handle may be called from any number of threads. Each namespace has a
// shared_mutex: queries share it, writes/deletes/schema changes hold it exclusively, so writes to
// one namespace are serialised and each is atomic. Handle may block on disk I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace layer::origin {

struct EngineOptions {
  std::string data_dir;             // durable storage lives here (created if missing)
  int64_t index_lag_ms = 0;         // metadata reports "updating" for this long after a write
  std::function<int64_t()> now_ms;  // injectable clock (epoch ms); default system clock
};

struct OriginRequest {
  std::string_view method;            // "GET", "POST", "PATCH", "DELETE", "HEAD"
  std::string_view path;              // raw request path, still percent-encoded, no query string
  std::string_view query;             // raw query string without '?', may be empty
  std::string_view content_encoding;  // value of Content-Encoding ("" or "gzip")
  std::string_view body;              // raw body bytes
};

struct OriginResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, if any
};

class Engine {
 public:
  // Creates data_dir if needed and replays every namespace log found there.
  static Result<std::unique_ptr<Engine>> Open(EngineOptions options);
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  OriginResponse Handle(const OriginRequest& req);

 private:
  struct Namespace;
  class Router;

  explicit Engine(EngineOptions options);

  // Returns the catalog entry for `name`, creating an empty (non-existent) one if needed.
  std::shared_ptr<Namespace> Entry(const std::string& name);
  // Returns the entry only if it exists.
  std::shared_ptr<Namespace> Find(const std::string& name);
  std::string NamespaceDir(const std::string& name) const;
  int64_t Now() const;

  EngineOptions options_;
  std::mutex catalog_mu_;
  // Entries are never removed (a deleted namespace is marked non-existent), so a writer holding
  // an entry can never write into an orphan. Guarded by catalog_mu_.
  std::map<std::string, std::shared_ptr<Namespace>> namespaces_;
};

}  // namespace layer::origin
