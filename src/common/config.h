// Gateway configuration: one value type, filled from flags with environment fallbacks.
//
// Precedence: command-line flag > environment variable > default. Validate() reports the first
// problem in words an operator can act on; `layer serve` prints it and exits non-zero.
// Redacted() renders the effective configuration with every secret replaced by "<redacted>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace CLI {
class App;
}

namespace layer {

enum class AuthMode {
  kDerive,  // docs/design.md §9.6: upstream key if configured, else any bearer (forwarded)
  kKeys,    // gateway keys with scopes
  kOpen,    // no inbound auth
};

enum Scope : unsigned { kScopeRead = 1, kScopeWrite = 2, kScopeAdmin = 4 };

struct GatewayKey {
  std::string key;
  unsigned scopes = kScopeRead | kScopeWrite | kScopeAdmin;
};

struct ServeConfig {
  // Listening.
  std::string listen = "0.0.0.0:8080";  // LAYER_LISTEN
  std::string port_file;                // write the bound port here once listening
  int threads = 0;                      // 0 = one per core; LAYER_THREADS
  // Scheduler time slice of the request threads (I/O workers and the cache's request pool), so
  // that they get a core as soon as they wake even while a warm or a flush keeps both busy;
  // 0 = the kernel's default slice. LAYER_REQUEST_SLICE_US, 100..100000 or 0.
  int64_t request_slice_us = 100;
  // Pins I/O worker i to the i-th CPU the process may use: "true", "false", or "auto" (pinned
  // when the gateway runs one worker per core, `threads` 0). LAYER_PIN_THREADS.
  std::string pin_threads = "auto";
  // Whether the I/O workers are pinned, from `pin_threads` and `threads`.
  bool PinsThreads() const {
    return pin_threads == "true" || (pin_threads == "auto" && threads == 0);
  }

  // Upstream (Turbopuffer or the local origin).
  std::string upstream;                 // TURBOPUFFER_BASE_URL; empty = embedded local origin
  std::string upstream_api_key;         // TURBOPUFFER_API_KEY (secret)
  std::string upstream_ca_file;         // LAYER_UPSTREAM_CA_FILE: extra trust anchors (PEM)
  int64_t upstream_connect_timeout_ms = 5000;
  int64_t upstream_timeout_ms = 60000;  // whole response, per attempt
  // How long the ids of a write whose outcome is unknown count as written to after the gateway
  // gave up on it: the upstream may still apply it meanwhile (docs/design.md §4.2.5).
  // LAYER_UNKNOWN_WRITE_HOLD_MS; 0 = not held.
  int64_t unknown_write_hold_ms = 60000;
  int upstream_max_idle = 64;           // idle keep-alive connections kept, in total
  int64_t upstream_idle_ttl_ms = 30000; // idle connections older than this are closed

  // Auth.
  AuthMode auth_mode = AuthMode::kDerive;  // LAYER_AUTH_MODE: derive|keys|open
  std::vector<GatewayKey> gateway_keys;    // LAYER_GATEWAY_KEYS: key[:read+write+admin],...
  // When callers' keys are tenants (derive mode, no upstream key): how long the upstream's
  // acceptance of a key is trusted before it is asked again. LAYER_KEY_VALIDATION_TTL, a duration.
  int64_t key_validation_ttl_ms = 60000;

  // Limits and timeouts for inbound connections.
  uint64_t max_body_bytes = 512ull << 20;  // LAYER_MAX_BODY_BYTES
  uint32_t max_header_bytes = 64 << 10;    // LAYER_MAX_HEADER_BYTES
  int64_t header_timeout_ms = 10000;       // time to receive a complete request head
  int64_t body_timeout_ms = 300000;        // time to receive the body once the head arrived
  int64_t idle_timeout_ms = 75000;         // keep-alive idle time between requests
  // Inbound connections open at once (LAYER_MAX_CONNECTIONS); lowered at start to fit the
  // open-file limit (docs/design.md §9.10).
  int64_t max_connections = 10000;
  int64_t drain_grace_ms = 30000;          // longest wait for in-flight requests on SIGTERM
  int64_t drain_delay_ms = 0;              // keep answering 503 at least this long first

  // Embedded local origin (used when no upstream is configured).
  std::string data_dir = "layer-data";  // LAYER_DATA_DIR: all local state lives under here
  int64_t origin_index_lag_ms = 0;      // LAYER_ORIGIN_INDEX_LAG_MS

  // Document cache: LAYER_CACHE, redis://HOST:PORT[/DB], redis+unix:///SOCKET,
  // redis-cluster://HOST:PORT,HOST:PORT,... or rocksdb:///PATH;
  // empty = the embedded RocksDB in cache_dir (docs/design.md §3.8, §3.11).
  std::string cache;
  std::string cache_dir;                    // LAYER_CACHE_DIR; empty = <data_dir>/cache
  uint64_t cache_max_bytes = 8ull << 30;    // LAYER_CACHE_MAX_BYTES: oldest data evicted beyond
  bool cache_reset_on_start = false;        // LAYER_CACHE_RESET_ON_START
  int64_t cache_op_timeout_ms = 200;        // LAYER_CACHE_OP_TIMEOUT_MS
  std::string fetch_consistency = "strong"; // LAYER_FETCH_CONSISTENCY: strong|eventual
  // Job store (docs/design.md §5): postgresql://... (shared by replicas) or sqlite:///PATH;
  // empty = the embedded SQLite file <data_dir>/jobs.sqlite3. LAYER_JOB_STORE.
  std::string job_store;
  bool test_faults = false;  // --test-faults: cache fault injection at /_test/cache-faults
  // Object store (snapshots, docs/design.md §7.3). Credentials of an s3:// store come from
  // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, never from flags.
  std::string object_store;      // LAYER_OBJECT_STORE: s3://BUCKET/PREFIX or file:///PATH
  std::string object_store_dir;  // LAYER_OBJECT_STORE_DIR; both empty = <data_dir>/objects
  std::string s3_endpoint;       // LAYER_S3_ENDPOINT: S3-compatible store (path style); "" = AWS
  std::string s3_region;         // LAYER_S3_REGION; "" = $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1
  // How often the watcher polls a namespace whose index is up to date (its stable watermark then
  // moves, and with it the snapshot writer). LAYER_WATCH_STABLE_INTERVAL, a duration.
  int64_t watch_stable_interval_ms = 60000;
  // How often snapshot policies are reloaded and retention applied. LAYER_SNAPSHOT_SWEEP_INTERVAL.
  int64_t snapshot_sweep_interval_ms = 60000;

  // Operations.
  std::string public_url;  // LAYER_PUBLIC_URL: gateway origin used to rewrite Location
  std::string log_level = "info";
  bool access_log = true;

  Status Validate() const;
  std::string Redacted() const;
};

// A duration: an integer with a unit, "ms", "s", "m", "h" or "d" ("250ms", "60s", "5m", "30d"),
// or a bare integer of seconds. InvalidArgument for anything else or a negative value.
Result<int64_t> ParseDurationMs(std::string_view text);

// Registers every `serve` flag (with its environment variable) on `app`, writing into `cfg`.
void AddServeFlags(CLI::App& app, ServeConfig& cfg);

// `layer origin`: the local Turbopuffer-compatible server on its own.
struct OriginConfig {
  std::string listen = "127.0.0.1:8090";  // LAYER_ORIGIN_LISTEN
  std::string port_file;
  std::string data_dir = "layer-data/origin";  // LAYER_ORIGIN_DATA_DIR
  int64_t index_lag_ms = 0;                    // LAYER_ORIGIN_INDEX_LAG_MS
  bool test_faults = false;  // enables /_test/faults (fault injection); never in production
  // --api-key, repeatable; LAYER_ORIGIN_API_KEYS, comma-separated (secrets). Empty: the origin
  // accepts any bearer token or none; otherwise only these (docs/origin.md "API keys").
  std::vector<std::string> api_keys;
  int threads = 0;
  uint64_t max_body_bytes = 512ull << 20;
  std::string log_level = "info";
  bool access_log = false;

  Status Validate() const;
  // The effective configuration for the start-up log; API keys appear only as a count.
  std::string Redacted() const;
};
void AddOriginFlags(CLI::App& app, OriginConfig& cfg);

// An API key a client can send as `Authorization: Bearer <key>` and an operator can list in a
// comma-separated variable: non-empty, no spaces, control characters or commas.
Status ValidateApiKey(std::string_view key);

// Parses "key[:scope+scope]" entries separated by commas.
Result<std::vector<GatewayKey>> ParseGatewayKeys(const std::string& spec);
Result<AuthMode> ParseAuthMode(const std::string& s);
std::string_view AuthModeName(AuthMode m);

// Splits "host:port" ("[v6]:port" too). Port 0 asks the kernel for a free port.
Status ParseHostPort(const std::string& s, std::string* host, uint16_t* port);
// A database connection string (URL postgresql://USER:PASSWORD@HOST/DB?password=... or libpq's
// key=value form) with every password replaced by "<redacted>", for logs.
std::string RedactConnectionString(std::string_view conninfo);

}  // namespace layer
