#include "common/config.h"

#include <CLI/CLI.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>

namespace layer {
namespace {

constexpr std::string_view kRedacted = "<redacted>";

std::string ScopeNames(unsigned scopes) {
  std::string out;
  auto add = [&](unsigned bit, const char* name) {
    if (!(scopes & bit)) return;
    if (!out.empty()) out += '+';
    out += name;
  };
  add(kScopeRead, "read");
  add(kScopeWrite, "write");
  add(kScopeAdmin, "admin");
  return out;
}

}  // namespace

Status ValidateApiKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("API keys may not be empty");
  for (char c : key) {
    if (c <= ' ' || c == 0x7f || c == ',') {
      return Status::InvalidArgument(
          "API keys may not contain spaces, control characters or commas");
    }
  }
  return Status::Ok();
}

Result<AuthMode> ParseAuthMode(const std::string& s) {
  if (s == "derive" || s == "deriveFromStore") return AuthMode::kDerive;
  if (s == "keys") return AuthMode::kKeys;
  if (s == "open") return AuthMode::kOpen;
  return Status::InvalidArgument("auth mode must be one of derive, keys, open (got '" + s + "')");
}

std::string_view AuthModeName(AuthMode m) {
  switch (m) {
    case AuthMode::kDerive: return "derive";
    case AuthMode::kKeys: return "keys";
    case AuthMode::kOpen: return "open";
  }
  return "?";
}

Result<std::vector<GatewayKey>> ParseGatewayKeys(const std::string& spec) {
  std::vector<GatewayKey> keys;
  std::string_view rest = spec;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    GatewayKey k;
    size_t colon = item.find(':');
    k.key = std::string(item.substr(0, colon));
    if (k.key.empty()) return Status::InvalidArgument("gateway key entry has an empty key");
    for (char c : k.key) {
      if (c <= ' ' || c == 0x7f) {
        return Status::InvalidArgument("gateway keys may not contain spaces or control characters");
      }
    }
    if (colon != std::string_view::npos) {
      k.scopes = 0;
      std::string_view scopes = item.substr(colon + 1);
      while (!scopes.empty()) {
        size_t plus = scopes.find('+');
        std::string_view s = scopes.substr(0, plus);
        scopes = plus == std::string_view::npos ? std::string_view() : scopes.substr(plus + 1);
        if (s == "read") {
          k.scopes |= kScopeRead;
        } else if (s == "write") {
          k.scopes |= kScopeWrite;
        } else if (s == "admin") {
          k.scopes |= kScopeAdmin;
        } else {
          return Status::InvalidArgument("unknown gateway key scope '" + std::string(s) +
                                         "' (use read, write, admin joined with '+')");
        }
      }
      if (k.scopes == 0) return Status::InvalidArgument("gateway key has no scopes");
    }
    keys.push_back(std::move(k));
  }
  return keys;
}

std::string RedactConnectionString(std::string_view conninfo) {
  std::string out(conninfo);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos && out.find_first_of(" =") > scheme) {
    // URL: the password of the user info, then any password= query parameter.
    const size_t authority = scheme + 3;
    const size_t authority_end = std::min(out.find_first_of("/?", authority), out.size());
    const size_t at = out.rfind('@', authority_end == out.size() ? std::string::npos
                                                                 : authority_end - 1);
    if (at != std::string::npos && at >= authority) {
      const size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, kRedacted);
      }
    }
    const size_t query = out.find('?');
    for (size_t pos = query; pos != std::string::npos && pos < out.size();) {
      const size_t start = pos + 1;
      size_t end = out.find('&', start);
      if (end == std::string::npos) end = out.size();
      if (out.compare(start, 9, "password=") == 0) {
        out.replace(start + 9, end - start - 9, kRedacted);
        end = start + 9 + kRedacted.size();
      }
      pos = end < out.size() ? end : std::string::npos;
    }
    return out;
  }
  // key=value pairs: password=VALUE or password = 'quoted value'.
  std::string result;
  size_t i = 0;
  while (i < out.size()) {
    const size_t found = out.find("password", i);
    if (found == std::string::npos) break;
    size_t j = found + 8;
    while (j < out.size() && out[j] == ' ') ++j;
    const bool word_start = found == 0 || out[found - 1] == ' ';
    if (!word_start || j >= out.size() || out[j] != '=') {
      result.append(out, i, j - i);
      i = j;
      continue;
    }
    ++j;
    while (j < out.size() && out[j] == ' ') ++j;
    size_t end = j;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      if (end < out.size()) ++end;
    } else {
      while (end < out.size() && out[end] != ' ') ++end;
    }
    result.append(out, i, found - i);
    result += "password=";
    result += kRedacted;
    i = end;
  }
  result.append(out, std::min(i, out.size()), std::string::npos);
  return result;
}

Status ParseHostPort(const std::string& s, std::string* host, uint16_t* port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size()) {
    return Status::InvalidArgument("listen address must be host:port (got '" + s + "')");
  }
  std::string h = s.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "0.0.0.0";
  unsigned p = 0;
  const char* b = s.data() + colon + 1;
  const char* e = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(b, e, p);
  if (ec != std::errc() || ptr != e || p > 65535) {
    return Status::InvalidArgument("listen port must be 0..65535 (got '" + s + "')");
  }
  *host = std::move(h);
  *port = static_cast<uint16_t>(p);
  return Status::Ok();
}

Status ServeConfig::Validate() const {
  std::string host;
  uint16_t port = 0;
  if (Status st = ParseHostPort(listen, &host, &port); !st.ok()) return st;
  if (threads < 0 || threads > 256) return Status::InvalidArgument("--threads must be 0..256");
  if (request_slice_us != 0 && (request_slice_us < 100 || request_slice_us > 100000)) {
    return Status::InvalidArgument("--request-slice-us must be 0 or 100..100000");
  }
  if (pin_threads != "auto" && pin_threads != "true" && pin_threads != "false") {
    return Status::InvalidArgument("--pin-threads must be auto, true or false (got '" +
                                   pin_threads + "')");
  }
  if (!upstream.empty()) {
    auto u = boost::urls::parse_absolute_uri(upstream);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) {
      return Status::InvalidArgument("--upstream must be an http:// or https:// URL (got '" +
                                     upstream + "')");
    }
    if (u->has_query() || u->has_fragment()) {
      return Status::InvalidArgument("--upstream may not carry a query string or fragment");
    }
  }
  if (!upstream_ca_file.empty()) {
    std::ifstream f(upstream_ca_file);
    if (!f) return Status::InvalidArgument("--upstream-ca-file cannot be read: " + upstream_ca_file);
  }
  if (auth_mode == AuthMode::kKeys && gateway_keys.empty()) {
    return Status::InvalidArgument("--auth-mode keys needs at least one --gateway-key");
  }
  if (auth_mode != AuthMode::kKeys && !gateway_keys.empty()) {
    return Status::InvalidArgument("--gateway-key is only used with --auth-mode keys");
  }
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return Status::InvalidArgument(std::string(name) + " must be positive");
    return Status::Ok();
  };
  if (unknown_write_hold_ms < 0) {
    return Status::InvalidArgument("--unknown-write-hold-ms must not be negative");
  }
  for (auto [v, name] : {std::pair{upstream_connect_timeout_ms, "--upstream-connect-timeout-ms"},
                         {upstream_timeout_ms, "--upstream-timeout-ms"},
                         {upstream_idle_ttl_ms, "--upstream-idle-ttl-ms"},
                         {header_timeout_ms, "--header-timeout-ms"},
                         {body_timeout_ms, "--body-timeout-ms"},
                         {idle_timeout_ms, "--idle-timeout-ms"},
                         {drain_grace_ms, "--drain-grace-ms"},
                         {key_validation_ttl_ms, "--key-validation-ttl"},
                         {watch_stable_interval_ms, "--watch-stable-interval"},
                         {snapshot_sweep_interval_ms, "--snapshot-sweep-interval"}}) {
    if (Status st = positive(v, name); !st.ok()) return st;
  }
  if (data_dir.empty()) return Status::InvalidArgument("--data-dir may not be empty");
  if (origin_index_lag_ms < 0) return Status::InvalidArgument("--origin-index-lag-ms must be >= 0");
  if (cache_max_bytes < (1u << 20)) {
    return Status::InvalidArgument("--cache-max-bytes must be at least 1 MiB");
  }
  if (cache_op_timeout_ms <= 0) return Status::InvalidArgument("--cache-op-timeout-ms must be positive");
  if (fetch_consistency != "strong" && fetch_consistency != "eventual") {
    return Status::InvalidArgument("--fetch-consistency must be strong or eventual");
  }
  if (!cache.empty()) {
    const bool rocks = cache.starts_with("rocksdb://");
    if (!rocks && !cache.starts_with("redis://") && !cache.starts_with("redis+unix://") &&
        !cache.starts_with("rediss://") && !cache.starts_with("redis-cluster://")) {
      return Status::InvalidArgument(
          "--cache must be redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB], "
          "redis+unix:///SOCKET, redis-cluster://HOST:PORT,HOST:PORT,... or rocksdb:///PATH");
    }
    if (rocks && !cache_dir.empty()) {
      return Status::InvalidArgument("--cache and --cache-dir both name the cache: give one");
    }
    if (rocks && !cache.starts_with("rocksdb:///")) {
      return Status::InvalidArgument("--cache rocksdb:///PATH needs an absolute path");
    }
  }
  if (!job_store.empty() && !job_store.starts_with("postgresql://") &&
      !job_store.starts_with("postgres://") && !job_store.starts_with("sqlite://")) {
    return Status::InvalidArgument(
        "--job-store must be postgresql://... or sqlite:///PATH (got '" +
        RedactConnectionString(job_store) + "')");
  }
  if (!object_store.empty() && !object_store_dir.empty()) {
    return Status::InvalidArgument(
        "--object-store and --object-store-dir both name the object store: give one");
  }
  if (!object_store.empty() && !object_store.starts_with("s3://") &&
      !object_store.starts_with("file://")) {
    return Status::InvalidArgument("--object-store must be s3://BUCKET/PREFIX or file:///PATH (got '" +
                                   object_store + "')");
  }
  if (!s3_endpoint.empty()) {
    auto u = boost::urls::parse_absolute_uri(s3_endpoint);
    if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty() ||
        u->has_query() || u->has_fragment()) {
      return Status::InvalidArgument("--s3-endpoint must be an http:// or https:// URL (got '" +
                                     s3_endpoint + "')");
    }
  }
  if (drain_delay_ms < 0) return Status::InvalidArgument("--drain-delay-ms must be >= 0");
  if (upstream_max_idle < 0) return Status::InvalidArgument("--upstream-max-idle must be >= 0");
  if (max_body_bytes == 0) return Status::InvalidArgument("--max-body-bytes must be positive");
  if (max_header_bytes < 1024) return Status::InvalidArgument("--max-header-bytes must be >= 1024");
  if (max_connections <= 0) return Status::InvalidArgument("--max-connections must be positive");
  if (!public_url.empty()) {
    auto u = boost::urls::parse_absolute_uri(public_url);
    if (!u || (u->scheme() != "http" && u->scheme() != "https")) {
      return Status::InvalidArgument("--public-url must be an http(s) URL");
    }
  }
  if (log_level != "trace" && log_level != "debug" && log_level != "info" && log_level != "warn" &&
      log_level != "error") {
    return Status::InvalidArgument("--log-level must be trace, debug, info, warn or error");
  }
  return Status::Ok();
}

namespace {
// A URL with the password of its userinfo (scheme://user:password@...) replaced.
std::string RedactUserinfo(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t at = url.rfind('@', url.find('?'));
  if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
  const size_t colon = url.find(':', scheme + 3);
  const size_t keep = colon != std::string::npos && colon < at ? colon + 1 : scheme + 3;
  return url.substr(0, keep) + std::string(kRedacted) + url.substr(at);
}
}  // namespace

std::string ServeConfig::Redacted() const {
  std::string keys;
  for (const auto& k : gateway_keys) {
    if (!keys.empty()) keys += ',';
    keys += fmt::format("{}:{}", kRedacted, ScopeNames(k.scopes));
  }
  return fmt::format(
      "listen={} threads={} request_slice_us={} pin_threads={} upstream={} upstream_api_key={} "
      "upstream_ca_file={} upstream_connect_timeout_ms={} upstream_timeout_ms={} "
      "upstream_max_idle={} upstream_idle_ttl_ms={} auth_mode={} gateway_keys=[{}] "
      "key_validation_ttl_ms={} "
      "max_body_bytes={} max_header_bytes={} header_timeout_ms={} body_timeout_ms={} "
      "idle_timeout_ms={} max_connections={} drain_grace_ms={} drain_delay_ms={} data_dir={} "
      "cache_dir={} cache_max_bytes={} cache_reset_on_start={} cache_op_timeout_ms={} fetch_consistency={} "
      "job_store={} object_store={} s3_endpoint={} s3_region={} public_url={} log_level={} access_log={}",
      listen, threads, request_slice_us, pin_threads,
      upstream.empty() ? "<embedded origin>" : upstream,
      upstream_api_key.empty() ? "<none>" : kRedacted,
      upstream_ca_file.empty() ? "<system>" : upstream_ca_file, upstream_connect_timeout_ms,
      upstream_timeout_ms, upstream_max_idle, upstream_idle_ttl_ms, AuthModeName(auth_mode), keys,
      key_validation_ttl_ms, max_body_bytes, max_header_bytes, header_timeout_ms, body_timeout_ms, idle_timeout_ms,
      max_connections, drain_grace_ms, drain_delay_ms, data_dir,
      !cache.empty() ? RedactUserinfo(cache) : cache_dir.empty() ? "<data_dir>/cache" : cache_dir,
      cache_max_bytes, cache_reset_on_start, cache_op_timeout_ms, fetch_consistency,
      job_store.empty() ? "<data_dir>/jobs.sqlite3" : RedactConnectionString(job_store),
      !object_store.empty()       ? object_store
      : !object_store_dir.empty() ? "file://" + object_store_dir
                                  : std::string("<data_dir>/objects"),
      s3_endpoint.empty() ? "<aws>" : s3_endpoint, s3_region.empty() ? "<default>" : s3_region,
      public_url.empty() ? "<from Host header>" : public_url,
      log_level, access_log);
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a duration (e.g. 250ms, 60s, 5m, 1h, 30d)");
  };
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) return bad();
  int64_t n = 0;
  for (size_t i = 0; i < digits; ++i) n = n * 10 + (text[i] - '0');
  const std::string_view unit = text.substr(digits);
  int64_t unit_ms = 0;
  if (unit.empty() || unit == "s") {
    unit_ms = 1000;
  } else if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else if (unit == "d") {
    unit_ms = 86'400'000;
  } else {
    return bad();
  }
  if (n > std::numeric_limits<int64_t>::max() / unit_ms) {
    return Status::InvalidArgument("'" + std::string(text) + "' is too long a duration");
  }
  return n * unit_ms;
}

void AddServeFlags(CLI::App& app, ServeConfig& cfg) {
  app.add_option("--listen", cfg.listen, "host:port to listen on")
      ->envname("LAYER_LISTEN")
      ->capture_default_str();
  app.add_option("--port-file", cfg.port_file, "write the bound port to this file");
  app.add_option("--threads", cfg.threads, "worker threads (0 = one per core)")
      ->envname("LAYER_THREADS");
  app.add_option("--request-slice-us", cfg.request_slice_us,
                 "scheduler time slice of request threads in microseconds (0 = kernel default)")
      ->envname("LAYER_REQUEST_SLICE_US")
      ->capture_default_str();
  app.add_option("--pin-threads", cfg.pin_threads,
                 "pin I/O worker i to the i-th CPU the process may use: true, false, or auto "
                 "(pinned when there is one worker per core, --threads 0)")
      ->envname("LAYER_PIN_THREADS")
      ->capture_default_str();
  app.add_option("--upstream", cfg.upstream, "Turbopuffer base URL (empty = embedded origin)")
      ->envname("TURBOPUFFER_BASE_URL");
  app.add_option("--upstream-api-key", cfg.upstream_api_key, "Turbopuffer API key")
      ->envname("TURBOPUFFER_API_KEY");
  app.add_option("--upstream-ca-file", cfg.upstream_ca_file, "PEM CA bundle for the upstream")
      ->envname("LAYER_UPSTREAM_CA_FILE");
  app.add_option("--upstream-connect-timeout-ms", cfg.upstream_connect_timeout_ms)
      ->envname("LAYER_UPSTREAM_CONNECT_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--upstream-timeout-ms", cfg.upstream_timeout_ms, "upstream response timeout")
      ->envname("LAYER_UPSTREAM_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--unknown-write-hold-ms", cfg.unknown_write_hold_ms,
                 "how long a write whose outcome is unknown counts as in flight after the gateway "
                 "gave up on it (0 = not at all)")
      ->envname("LAYER_UNKNOWN_WRITE_HOLD_MS")
      ->capture_default_str();
  app.add_option("--upstream-max-idle", cfg.upstream_max_idle,
                 "idle upstream connections kept by the request threads, and as many by warm jobs")
      ->envname("LAYER_UPSTREAM_MAX_IDLE")
      ->capture_default_str();
  app.add_option("--upstream-idle-ttl-ms", cfg.upstream_idle_ttl_ms)
      ->envname("LAYER_UPSTREAM_IDLE_TTL_MS")
      ->capture_default_str();

  auto* mode = app.add_option("--auth-mode", "derive | keys | open")->envname("LAYER_AUTH_MODE");
  mode->each([&cfg](const std::string& v) {
    auto m = ParseAuthMode(v);
    if (!m.ok()) throw CLI::ValidationError("--auth-mode", m.status().message());
    cfg.auth_mode = *m;
  });
  auto* keys = app.add_option("--gateway-key", "gateway key, key[:read+write+admin]; repeatable")
                   ->envname("LAYER_GATEWAY_KEYS")
                   ->delimiter(',')
                   ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                   ->expected(1, CLI::detail::expected_max_vector_size);
  keys->each([&cfg](const std::string& v) {
    auto k = ParseGatewayKeys(v);
    if (!k.ok()) throw CLI::ValidationError("--gateway-key", k.status().message());
    for (auto& key : *k) cfg.gateway_keys.push_back(std::move(key));
  });

  // A duration flag (ParseDurationMs) with its environment twin, stored in milliseconds.
  auto add_duration = [&app](const char* flag, const char* env, const char* help,
                             int64_t* field) {
    app.add_option(flag)->description(help)->envname(env)->each(
        [name = std::string(flag), field](const std::string& v) {
          auto ms = ParseDurationMs(v);
          if (!ms.ok()) throw CLI::ValidationError(name, ms.status().message());
          *field = *ms;
        });
  };
  add_duration("--key-validation-ttl", "LAYER_KEY_VALIDATION_TTL",
               "how long an upstream's acceptance of a caller's key is trusted when keys are "
               "tenants (a duration: 250ms, 60s, 5m; default 60s)",
               &cfg.key_validation_ttl_ms);
  add_duration("--watch-stable-interval", "LAYER_WATCH_STABLE_INTERVAL",
               "how often a namespace whose index is up to date is polled (a duration)",
               &cfg.watch_stable_interval_ms);
  add_duration("--snapshot-sweep-interval", "LAYER_SNAPSHOT_SWEEP_INTERVAL",
               "how often snapshot policies are reloaded and retention applied (a duration)",
               &cfg.snapshot_sweep_interval_ms);

  app.add_option("--max-body-bytes", cfg.max_body_bytes)
      ->envname("LAYER_MAX_BODY_BYTES")
      ->capture_default_str();
  app.add_option("--max-header-bytes", cfg.max_header_bytes)
      ->envname("LAYER_MAX_HEADER_BYTES")
      ->capture_default_str();
  app.add_option("--header-timeout-ms", cfg.header_timeout_ms)
      ->envname("LAYER_HEADER_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--body-timeout-ms", cfg.body_timeout_ms)
      ->envname("LAYER_BODY_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", cfg.idle_timeout_ms)
      ->envname("LAYER_IDLE_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--max-connections", cfg.max_connections,
                 "inbound connections open at once; over it the longest-idle one is closed, or "
                 "the new one gets 503 (lowered to fit the open-file limit)")
      ->envname("LAYER_MAX_CONNECTIONS")
      ->capture_default_str();
  app.add_option("--drain-grace-ms", cfg.drain_grace_ms)
      ->envname("LAYER_DRAIN_GRACE_MS")
      ->capture_default_str();
  app.add_option("--drain-delay-ms", cfg.drain_delay_ms)
      ->envname("LAYER_DRAIN_DELAY_MS")
      ->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir, "directory for all local state")
      ->envname("LAYER_DATA_DIR")
      ->capture_default_str();
  app.add_option("--origin-index-lag-ms", cfg.origin_index_lag_ms,
                 "embedded origin: report index 'updating' this long after a write")
      ->envname("LAYER_ORIGIN_INDEX_LAG_MS");
  app.add_option("--cache", cfg.cache,
                 "document cache: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS], "
                 "redis+unix:///SOCKET, redis-cluster://[[USER]:PASSWORD@]HOST:PORT,HOST:PORT,... "
                 "or rocksdb:///PATH (default the embedded RocksDB in --cache-dir)")
      ->envname("LAYER_CACHE");
  app.add_option("--cache-dir", cfg.cache_dir, "document cache directory (default <data-dir>/cache)")
      ->envname("LAYER_CACHE_DIR");
  app.add_option("--cache-max-bytes", cfg.cache_max_bytes, "bound on the cache's size on disk")
      ->envname("LAYER_CACHE_MAX_BYTES")
      ->capture_default_str();
  app.add_option("--cache-reset-on-start", cfg.cache_reset_on_start, "empty the cache at start")
      ->envname("LAYER_CACHE_RESET_ON_START")
      ->capture_default_str();
  app.add_option("--cache-op-timeout-ms", cfg.cache_op_timeout_ms, "deadline of one cache call")
      ->envname("LAYER_CACHE_OP_TIMEOUT_MS")
      ->capture_default_str();
  app.add_option("--fetch-consistency", cfg.fetch_consistency,
                 "consistency of upstream reads on a fetch miss: strong|eventual")
      ->envname("LAYER_FETCH_CONSISTENCY")
      ->capture_default_str();
  app.add_option("--job-store", cfg.job_store,
                 "job store: postgresql://USER:PASSWORD@HOST:PORT/DB (shared by replicas) or "
                 "sqlite:///PATH (default <data-dir>/jobs.sqlite3)")
      ->envname("LAYER_JOB_STORE");
  app.add_option("--object-store", cfg.object_store,
                 "object store for snapshots: s3://BUCKET/PREFIX or file:///PATH "
                 "(default <data-dir>/objects); S3 credentials from AWS_ACCESS_KEY_ID, "
                 "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN")
      ->envname("LAYER_OBJECT_STORE");
  app.add_option("--object-store-dir", cfg.object_store_dir,
                 "local object store for snapshots (default <data-dir>/objects)")
      ->envname("LAYER_OBJECT_STORE_DIR");
  app.add_option("--s3-endpoint", cfg.s3_endpoint,
                 "S3-compatible endpoint URL (MinIO, R2, ...), path-style requests; default AWS")
      ->envname("LAYER_S3_ENDPOINT");
  app.add_option("--s3-region", cfg.s3_region,
                 "S3 region (default $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)")
      ->envname("LAYER_S3_REGION");
  app.add_flag("--test-faults", cfg.test_faults,
               "enable run-time cache fault injection at /_test/cache-faults (tests only)");
  app.add_option("--public-url", cfg.public_url, "gateway origin for rewritten Location headers")
      ->envname("LAYER_PUBLIC_URL");
  app.add_option("--log-level", cfg.log_level)->envname("LAYER_LOG_LEVEL")->capture_default_str();
  app.add_option("--access-log", cfg.access_log, "one log line per request")
      ->envname("LAYER_ACCESS_LOG")
      ->capture_default_str();
}

Status OriginConfig::Validate() const {
  std::string host;
  uint16_t port = 0;
  if (Status st = ParseHostPort(listen, &host, &port); !st.ok()) return st;
  if (data_dir.empty()) return Status::InvalidArgument("--data-dir may not be empty");
  if (index_lag_ms < 0) return Status::InvalidArgument("--index-lag-ms must be >= 0");
  if (threads < 0 || threads > 256) return Status::InvalidArgument("--threads must be 0..256");
  if (max_body_bytes == 0) return Status::InvalidArgument("--max-body-bytes must be positive");
  for (const auto& key : api_keys) {
    if (Status st = ValidateApiKey(key); !st.ok()) {
      return Status::InvalidArgument("--api-key: " + st.message());
    }
  }
  return Status::Ok();
}

std::string OriginConfig::Redacted() const {
  return fmt::format(
      "listen={} data_dir={} index_lag_ms={} test_faults={} api_keys={} threads={} "
      "max_body_bytes={} log_level={} access_log={}",
      listen, data_dir, index_lag_ms, test_faults,
      api_keys.empty() ? std::string("<none: any bearer token accepted>")
                       : fmt::format("{} x{}", kRedacted, api_keys.size()),
      threads, max_body_bytes, log_level, access_log);
}

void AddOriginFlags(CLI::App& app, OriginConfig& cfg) {
  app.add_option("--listen", cfg.listen, "host:port to listen on")
      ->envname("LAYER_ORIGIN_LISTEN")
      ->capture_default_str();
  app.add_option("--port-file", cfg.port_file, "write the bound port to this file");
  app.add_option("--data-dir", cfg.data_dir, "where namespaces are stored")
      ->envname("LAYER_ORIGIN_DATA_DIR")
      ->capture_default_str();
  app.add_option("--index-lag-ms", cfg.index_lag_ms,
                 "report index status 'updating' this long after each write")
      ->envname("LAYER_ORIGIN_INDEX_LAG_MS")
      ->capture_default_str();
  app.add_flag("--test-faults", cfg.test_faults,
               "enable run-time fault injection at /_test/faults and key replacement at "
               "/_test/keys (tests only)");
  // No capture_default_str: the keys are secrets and must not appear in --help.
  app.add_option("--api-key", cfg.api_keys,
                 "accept only this bearer token (repeatable; default: accept any)")
      ->envname("LAYER_ORIGIN_API_KEYS")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->expected(1, CLI::detail::expected_max_vector_size);
  app.add_option("--threads", cfg.threads, "worker threads (0 = one per core)");
  app.add_option("--max-body-bytes", cfg.max_body_bytes)->capture_default_str();
  app.add_option("--log-level", cfg.log_level)->capture_default_str();
  app.add_option("--access-log", cfg.access_log)->capture_default_str();
}

}  // namespace layer
