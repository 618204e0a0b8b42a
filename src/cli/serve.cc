#include "cli/serve.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "cli/origin.h"
#include "cli/port_file.h"
#include "cli/stamp_ceiling.h"
#include "common/log.h"
#include "common/thread.h"
#include "common/version.h"
#include "cache/guard.h"
#include "cache/redis/redis_cache.h"
#include "cache/rocksdb/rocksdb_cache.h"
#include "coherence/coherence.h"
#include "gateway/gateway.h"
#include "gateway/tenancy.h"
#include "gateway/warm.h"
#include "jobs/open_job_store.h"
#include "jobs/snapshot_job_runner.h"
#include "jobs/snapshot_writer.h"
#include "jobs/warm_runner.h"
#include "snapshots/open_object_store.h"
#include "snapshots/metered_object_store.h"
#include "watermark/consistency_watcher.h"
#include "http/server.h"
#include "http/upstream.h"

namespace layer::cli {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// SIGTERM/SIGINT: drain (keep serving health, refuse new API work, let in-flight requests
// finish), then stop. A second signal stops at once.
Task<void> DrainOnSignal(asio::signal_set& signals, http::HttpServer& server,
                               http::IoPool& pool, const ServeConfig& cfg) {
  auto [ec, sig] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) co_return;
  spdlog::info("signal {} received: draining (grace {} ms)", sig, cfg.drain_grace_ms);
  server.BeginDrain();
  signals.async_wait([&pool](const boost::system::error_code& e, int) {
    if (!e) {
      spdlog::warn("second signal: stopping now");
      pool.Stop();
    }
  });
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::milliseconds(cfg.drain_grace_ms);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(start + std::chrono::milliseconds(cfg.drain_delay_ms));
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  while (server.inflight() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (server.inflight() > 0) {
    spdlog::warn("drain grace period over with {} requests in flight", server.inflight());
  } else {
    spdlog::info("drained; exiting");
  }
  server.StopAccepting();
  pool.Stop();
}

// Where the cache records the tenancy it was kept under: a name no namespace or partition has.
constexpr std::string_view kTenancyRecordName = "@";
constexpr std::string_view kTenancyRecordKey = "tenancy";

// Opens a shared Redis cache (--cache redis://...): the tenancy it was kept under must be this
// gateway's, since it cannot be started over by one replica (docs/design.md §3.11, §9.7).
Result<std::shared_ptr<cache::DocumentCache>> OpenRedisCache(const ServeConfig& cfg) {
  auto ropts = cache::ParseRedisCacheUrl(cfg.cache);
  if (!ropts.ok()) return ropts.status();
  auto redis = cache::RedisCache::Open(*ropts);
  if (!redis.ok()) return redis.status();
  const std::string tenancy = gateway::PerKeyTenancy(cfg) ? "per-key" : "one";
  auto kept = (*redis)->GetNamespaceRecord(kTenancyRecordName, kTenancyRecordKey);
  if (!kept.ok()) return kept.status();
  if (*kept && **kept != tenancy) {
    return Status::InvalidArgument("the shared cache at " + cache::RedactRedisUrl(cfg.cache) +
                                   " was kept under the " + **kept + " tenancy, this gateway "
                                   "runs under the " + tenancy + " one: flush it or use another "
                                   "database");
  }
  if (!*kept) {
    if (Status st = (*redis)->PutNamespaceRecord(kTenancyRecordName, kTenancyRecordKey, tenancy);
        !st.ok()) {
      return st;
    }
  }
  spdlog::info("document cache: redis at {}", cache::RedactRedisUrl(cfg.cache));
  return std::shared_ptr<cache::DocumentCache>(std::move(*redis));
}

// Opens the cache (`*db`: the embedded one; null for a shared one) and the coherence core over it.
// Its request-lane threads enroll in `slices`.
Result<std::unique_ptr<coherence::CacheCoherence>> OpenCache(
    const ServeConfig& cfg, RequestSlices* slices, std::shared_ptr<cache::RocksDbCache>* db_out,
    bool* started_empty) {
  std::shared_ptr<cache::DocumentCache> shared;
  if (cfg.cache.starts_with("redis")) {
    auto redis = OpenRedisCache(cfg);
    if (!redis.ok()) return redis.status();
    shared = std::move(*redis);
  }
  cache::RocksDbCacheOptions copts;
  copts.path = cfg.cache.starts_with("rocksdb://") ? cfg.cache.substr(std::strlen("rocksdb://"))
               : cfg.cache_dir.empty() ? (std::filesystem::path(cfg.data_dir) / "cache").string()
                                       : cfg.cache_dir;
  copts.max_bytes = cfg.cache_max_bytes;
  copts.reset_on_start = cfg.cache_reset_on_start;
  auto db = shared ? Result<std::unique_ptr<cache::RocksDbCache>>(
                         std::unique_ptr<cache::RocksDbCache>())
                   : cache::RocksDbCache::Open(copts);
  if (!db.ok()) return db.status();
  // A cache kept under the other tenancy would hold partitions no write of this one invalidates
  // (docs/design.md §9.7): it starts over when the tenancy changes.
  const std::string tenancy = gateway::PerKeyTenancy(cfg) ? "per-key" : "one";
  auto kept = shared ? Result<std::optional<std::string>>(tenancy)
                     : (*db)->GetNamespaceRecord(kTenancyRecordName, kTenancyRecordKey);
  const bool mismatch = kept.ok() ? (*kept ? **kept != tenancy : !(*db)->started_empty())
                                  : true;
  if (mismatch) {
    spdlog::warn("the document cache in {} was kept under another tenancy (or cannot say which); "
                 "starting it over",
                 copts.path);
    db->reset();  // closes it before it is opened again
    copts.reset_on_start = true;
    db = cache::RocksDbCache::Open(copts);
    if (!db.ok()) return db.status();
  }
  if (Status st = shared ? Status::Ok()
                        : (*db)->PutNamespaceRecord(kTenancyRecordName, kTenancyRecordKey, tenancy);
      !st.ok()) {
    return st;
  }
  coherence::PartitionRegistry partitions;
  if (tenancy == "per-key") {
    auto registry = coherence::ReadPartitionRegistry(shared ? *shared : **db);
    if (!registry.ok()) return registry.status();
    partitions = std::move(*registry);
  }
  // A shared cache outlives this process: what it holds was not lost with a previous run.
  *started_empty = shared ? false : (*db)->started_empty();
  std::error_code ec;
  if (!shared) {
    spdlog::info("document cache: rocksdb in {} (max {} bytes)",
                 std::filesystem::absolute(copts.path, ec).string(), cfg.cache_max_bytes);
  }
  cache::CacheGuardOptions gopts;
  gopts.op_timeout = std::chrono::milliseconds(cfg.cache_op_timeout_ms);
  gopts.request_slices = slices;
  if (!shared) *db_out = std::shared_ptr<cache::RocksDbCache>(std::move(*db));
  std::shared_ptr<cache::DocumentCache> backend = shared ? shared : *db_out;
  coherence::CoherenceOptions options;
  options.backend_name = shared ? "redis" : "rocksdb";
  // A shared cache takes writes from other replicas, whose stamps and writes in flight a repair's
  // bound does not order (docs/design.md §4.2.7).
  options.repair = !shared;
  options.unknown_write_hold = std::chrono::milliseconds(cfg.unknown_write_hold_ms);
  // How long this replica may hold a write in flight (docs/design.md §4.9): two upstream attempts,
  // the hold of an unknown outcome, and a margin for mirroring it.
  options.shared_write_deadline = std::chrono::milliseconds(
      2 * cfg.upstream_timeout_ms + cfg.unknown_write_hold_ms + 10000);
  if (shared) {
    auto ropts = cache::ParseRedisCacheUrl(cfg.cache);  // parsed by OpenRedisCache already
    if (ropts.ok()) options.tombstone_ttl = ropts->tombstone_ttl;
  } else {
    options.tombstone_ttl = copts.tombstone_ttl;
  }
  // No stamp below one an earlier gateway on this data dir gave (docs/design.md §4.2.6).
  const std::string ceiling_path = (std::filesystem::path(cfg.data_dir) / "stamp-ceiling").string();
  auto floor = ReadStampCeiling(ceiling_path);
  if (!floor.ok()) return floor.status();
  options.stamp_floor = *floor;
  options.persist_stamp_ceiling = [ceiling_path](uint64_t ceiling) {
    return WriteStampCeiling(ceiling_path, ceiling);
  };
  options.partitions = std::move(partitions);
  options.fetch_consistency = cfg.fetch_consistency == "eventual"
                                  ? coherence::FetchConsistency::kEventual
                                  : coherence::FetchConsistency::kStrong;
  if (cfg.test_faults) {
    spdlog::warn("cache fault injection enabled at /_test/cache-faults (test mode)");
    options.faults = std::make_shared<cache::FaultInjectingCache>(backend);
    backend = options.faults;
  }
  auto guard = std::make_unique<cache::CacheGuard>(backend, gopts);
  (void)guard->PingSync();
  return std::make_unique<coherence::CacheCoherence>(std::move(guard), std::move(options));
}

// Writes the invalidations the cache could not take when they happened, as soon as it can.
Task<void> RetryPendingInvalidations(coherence::CacheCoherence& cache) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(250ms);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    co_await cache.RetryPending();
  }
}

}  // namespace

int RunServe(const ServeConfig& cfg) {
  if (Status st = InitLogging(cfg.log_level); !st.ok()) {
    std::fprintf(stderr, "layer serve: %s\n", st.message().c_str());
    return 2;
  }
  spdlog::info("layer {} starting", kVersion);
  if (cfg.auth_mode == AuthMode::kKeys && !cfg.upstream.empty() && cfg.upstream_api_key.empty()) {
    spdlog::warn("--auth-mode keys without --upstream-api-key: requests reach the upstream "
                 "without credentials (gateway keys are never forwarded)");
  }
  if (cfg.request_slice_us > 0 && !PerThreadSlicesSupported()) {
    spdlog::info("this kernel has no per-thread scheduler slices (Linux 6.12+): "
                 "--request-slice-us has no effect");
  }
  // Request threads have the short slice while warm and snapshot jobs run (docs/design.md §9.11).
  // It outlives every thread that enrolls.
  RequestSlices slices(std::chrono::microseconds(cfg.request_slice_us));
  // The cache is opened first so that it is destroyed last: coroutines still pending on the I/O
  // pools when they are destroyed (a backfill, a mirror) may refer to it until then.
  bool cache_started_empty = false;
  std::shared_ptr<cache::RocksDbCache> db;
  auto opened = OpenCache(cfg, &slices, &db, &cache_started_empty);
  if (!opened.ok()) {
    spdlog::error("cannot open the document cache: {}", opened.status().ToString());
    return 1;
  }
  coherence::CacheCoherence& cache = **opened;
  http::IoPool pool(cfg.threads, &slices, "layer-io", cfg.PinsThreads());
  std::unique_ptr<EmbeddedOrigin> local_origin;
  std::string upstream_url = cfg.upstream;
  if (upstream_url.empty()) {
    std::string dir = (std::filesystem::path(cfg.data_dir) / "origin").string();
    std::error_code ec;
    spdlog::info("no upstream configured: serving the local Turbopuffer-compatible origin "
                 "in-process, data in {}",
                 std::filesystem::absolute(dir, ec).string());
    auto started = StartEmbeddedOrigin(pool, dir, cfg.origin_index_lag_ms);
    if (!started.ok()) {
      spdlog::error("cannot start the local origin: {}", started.status().ToString());
      return 1;
    }
    local_origin = std::move(*started);
    upstream_url = local_origin->base_url;
  }

  spdlog::info("configuration: {}", cfg.Redacted());
  http::UpstreamOptions uopts;
  uopts.base_url = upstream_url;
  uopts.ca_file = cfg.upstream_ca_file;
  uopts.connect_timeout = std::chrono::milliseconds(cfg.upstream_connect_timeout_ms);
  uopts.response_timeout = std::chrono::milliseconds(cfg.upstream_timeout_ms);
  uopts.max_idle = cfg.upstream_max_idle;
  uopts.idle_ttl = std::chrono::milliseconds(cfg.upstream_idle_ttl_ms);
  auto upstream = http::MakeHttpUpstream(pool, uopts);
  if (!upstream.ok()) {
    spdlog::error("upstream: {}", upstream.status().message());
    return 2;
  }
  // Warm jobs page through the upstream on a thread of their own, with their own upstream
  // connections: reading a warm's pages (a MiB each) never takes an I/O thread from requests, and
  // the I/O threads' CPU time, which the scheduler weighs when they wake, stays the requests'.
  http::IoPool background(1, nullptr, "layer-warm-io");
  auto background_upstream = http::MakeHttpUpstream(background, uopts);
  if (!background_upstream.ok()) {
    spdlog::error("upstream: {}", background_upstream.status().message());
    return 2;
  }

  // Background work's upstream credential: the upstream key, or its callers' own (§9.7).
  http::Credentials credentials(cfg.upstream_api_key.empty() ? std::string()
                                                             : "Bearer " + cfg.upstream_api_key);
  gateway::Gateway gw(cfg, **upstream, cache, credentials);
  watermark::WatcherOptions watch_opts;
  watch_opts.credentials = &credentials;
  watch_opts.stable_poll_interval = std::chrono::milliseconds(cfg.watch_stable_interval_ms);
  watermark::ConsistencyWatcher watcher(**upstream, watch_opts);
  gw.AttachWatcher(&watcher);

  auto opened_jobs = jobs::OpenJobStore({cfg.job_store, cfg.data_dir});
  if (!opened_jobs.ok()) {
    spdlog::error("cannot open the job store: {}", opened_jobs.status().ToString());
    return opened_jobs.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  spdlog::info("job store: {}", opened_jobs->description);
  jobs::JobStore& job_store = *opened_jobs->store;
  jobs::WarmRunnerOptions wopts;
  wopts.owner = jobs::NewJobId();
  wopts.credentials = &credentials;
  wopts.request_slices = &slices;
  jobs::WarmRunner warm_runner(background, job_store, **background_upstream, cache, &watcher,
                               wopts);
  snapshots::ObjectStoreSettings object_settings;
  object_settings.url = cfg.object_store;
  object_settings.default_dir = cfg.object_store_dir.empty()
                                    ? (std::filesystem::path(cfg.data_dir) / "objects").string()
                                    : cfg.object_store_dir;
  object_settings.s3_endpoint = cfg.s3_endpoint;
  object_settings.s3_region = cfg.s3_region;
  object_settings.s3_credentials = snapshots::S3Credentials::FromEnvironment();
  auto objects = snapshots::OpenObjectStore(object_settings);
  if (!objects.ok()) {
    spdlog::error("cannot open the object store: {}", objects.status().ToString());
    return objects.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  spdlog::info("object store: {}", objects->description);
  // Every call is measured (layer_object_store_request_seconds{op}, ..._errors_total{op}).
  snapshots::MeteredObjectStore object_store(std::move(objects->store));
  jobs::SnapshotWriterOptions snap_opts;
  snap_opts.credentials = &credentials;
  snap_opts.request_slices = &slices;
  snap_opts.sweep_interval = std::chrono::milliseconds(cfg.snapshot_sweep_interval_ms);
  jobs::SnapshotWriter snapshot_writer(background, **background_upstream, object_store, cache,
                                       snap_opts);
  if (Status st = snapshot_writer.LoadPolicies(); !st.ok()) {
    spdlog::warn("reading snapshot policies failed: {}; the next sweep reads them again",
                 st.ToString());
  }
  watcher.SetOnAdvance([&snapshot_writer](const std::string& partition, uint64_t watermark_ms) {
    snapshot_writer.OnWatermark(partition, watermark_ms);
  });
  jobs::SnapshotJobRunnerOptions snap_job_opts;
  snap_job_opts.owner = wopts.owner;
  snap_job_opts.credentials = &credentials;
  snap_job_opts.request_slices = &slices;
  jobs::SnapshotJobRunner snapshot_jobs(background, job_store, **background_upstream,
                                        snapshot_writer, &watcher, snap_job_opts);
  gateway::WarmServices warm{job_store, warm_runner, object_store, snapshot_writer,
                             &snapshot_jobs};
  cache.SetWarmHooks(
      [&warm_runner](std::string_view ns) { return warm_runner.Warming(ns); },
      [&warm_runner](const std::string& ns) { warm_runner.CreateAndStart(ns); });
  gw.AttachWarm(&warm);
  // A shared store's running jobs may be other replicas' live ones: the sweep takes only those
  // whose lease expired.
  if (Status st = opened_jobs->shared ? Status::Ok() : warm_runner.ResumeAll(cache_started_empty);
      !st.ok()) {
    spdlog::warn("resuming warm jobs failed: {}", st.ToString());
  }
  if (Status st = opened_jobs->shared ? Status::Ok() : snapshot_jobs.ResumeAll(); !st.ok()) {
    spdlog::warn("resuming snapshot jobs failed: {}", st.ToString());
  }
  http::ServerOptions sopts;
  uint16_t port = 0;
  if (Status st = ParseHostPort(cfg.listen, &sopts.host, &port); !st.ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  sopts.port = port;
  sopts.max_body_bytes = cfg.max_body_bytes;
  sopts.max_header_bytes = cfg.max_header_bytes;
  sopts.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  sopts.body_timeout = std::chrono::milliseconds(cfg.body_timeout_ms);
  sopts.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  const uint64_t fd_limit = http::RaiseFdLimit();
  const auto configured = static_cast<uint64_t>(cfg.max_connections);  // positive: Validate()
  sopts.max_connections = http::ConnectionCapForFdLimit(configured, fd_limit);
  if (sopts.max_connections < configured) {
    spdlog::warn("--max-connections {} lowered to {}: the open-file limit is {}",
                 cfg.max_connections, sopts.max_connections, fd_limit);
  }
  sopts.access_log = cfg.access_log;
  http::HttpServer server(pool, sopts, [&gw](http::Exchange& ex) { return gw.Handle(ex); });
  gw.AttachServer(&server);
  // Caught from before the port is announced: whoever reads the port file may signal at once
  // (a signal that comes before the wait below begins is queued for it).
  asio::signal_set signals(pool.at(0), SIGTERM, SIGINT);
  if (Status st = ListenAndWritePort(server, cfg.port_file); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  spdlog::info("listening on http://{}:{} with {} worker threads, upstream {}", sopts.host,
               server.port(), pool.size(), (*upstream)->base());

  asio::co_spawn(pool.at(0), RetryPendingInvalidations(cache), asio::detached);
  asio::co_spawn(pool.Next(), watcher.Run(), asio::detached);
  asio::co_spawn(background.at(0), snapshot_writer.SweepLoop(), asio::detached);
  asio::co_spawn(background.at(0), snapshot_jobs.SweepLoop(), asio::detached);
  asio::co_spawn(pool.at(0), DrainOnSignal(signals, server, pool, cfg), asio::detached);
  server.Start();
  background.Start();
  pool.Start();
  pool.Join();
  background.Stop();
  background.Join();
  if (size_t pending = cache.pending_invalidations(); pending > 0) {
    // The cache survives a clean stop, but these ids (or namespaces) may hold rows that are stale
    // now: it is discarded instead, so that nothing it holds outlives what was lost here.
    if (db) {
      spdlog::warn("{} cache invalidations could not be written; discarding the cache", pending);
      db->Discard();
    } else {
      // A shared cache cannot be discarded by one replica (docs/design.md §3.11).
      spdlog::error("{} cache invalidations could not be written to the shared cache; what they "
                    "cover may be served stale by other gateways until it is rewritten or "
                    "evicted",
                    pending);
    }
  }
  return 0;
}

}  // namespace layer::cli
