// PostgresJobStore: the JobStore that gateway replicas share, in a PostgreSQL database (libpq).
//
// Schema: one table, layer_jobs, one row per job of any kind (the Job record, as the SQLite store
// holds it), and layer_schema_version, which records the schema's version per component
// ('jobs'). Open() creates or migrates the schema in one transaction that first takes a
// transaction-level advisory lock, so replicas starting together migrate once and the others
// find the schema done. A database whose schema is newer than this build's is refused.
//
// The rules of job_store.h hold across every process sharing the database:
// - one running job per (namespace, kind): a partial unique index, and CreateJob inserts with
//   ON CONFLICT DO NOTHING, returning the running job when the insert found one;
// - Checkpoint and Finish are one UPDATE conditional on (running, owner), so a job claimed or
//   cancelled meanwhile is never written by its old owner (it then gets Aborted);
// - ClaimExpiredJobs selects the claimable rows FOR UPDATE SKIP LOCKED and hands them over in the
//   same statement: two claimers, in this process or another, never get the same job, and
//   neither waits for the other.
// Times are epoch ms from the store's clock (replicas' clocks should agree to well within a
// lease, as NTP keeps them).
//
// Connections: a pool of at most `pool_size` libpq connections (a PGconn is not thread-safe;
// each call takes one for its duration, and waits up to `acquire_timeout` for one). A pooled
// connection is checked before use (pending input such as a termination notice is read first)
// and replaced when the server closed it; one that breaks during a call is discarded and the
// call fails with Unavailable (retryable), so a restarted server or a killed backend costs at
// most the call in flight. Every statement runs under `statement_timeout` (a timeout is a
// retryable Timeout).
//
// Failure: Unavailable (retryable) when the server cannot be reached or closed the connection;
// Timeout for a statement or lock timeout; IoError (retryable for serialization failures and
// deadlocks) for other server errors. A failed call changes nothing, except that a connection
// lost while a statement ran leaves it unknown whether that statement committed (the rules above
// still hold; a caller that retries a Checkpoint or Finish may get Aborted for its own write).
//
// Blocking: every call is a network round trip or a few. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "jobs/job_store.h"

namespace layer::jobs {

struct PostgresJobStoreOptions {
  // A libpq connection string: postgresql://USER:PASSWORD@HOST:PORT/DB?PARAMS (or key=value).
  std::string conninfo;
  // Lease granted by Create and renewed by Checkpoint. A runner must checkpoint more often.
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  size_t pool_size = 4;  // most connections open at once
  // How long a call waits for a free pooled connection before failing with Unavailable.
  std::chrono::milliseconds acquire_timeout = std::chrono::seconds(10);
  // libpq's connect_timeout, unless the connection string sets one (whole seconds, at least 2).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(5);
  // The server-side statement_timeout (and lock_timeout) of every statement.
  std::chrono::milliseconds statement_timeout = std::chrono::seconds(10);
  // The store's clock (created_at, leases, completed_at). Null = Clock::System().
  const Clock* clock = nullptr;
};

class PostgresJobStore final : public JobStore {
 public:
  // Connects and creates or migrates the schema (see the top). InvalidArgument for an empty
  // connection string, a zero pool or a non-positive lease; Unavailable when the server cannot be
  // reached; IoError when the schema cannot be prepared (including one newer than this build's).
  static Result<std::unique_ptr<PostgresJobStore>> Open(PostgresJobStoreOptions options);

  ~PostgresJobStore() override;
  PostgresJobStore(const PostgresJobStore&) = delete;
  PostgresJobStore& operator=(const PostgresJobStore&) = delete;

  Result<CreateJobOutcome> CreateJob(const CreateJobRequest& request) override;
  Result<Job> GetJob(std::string_view id) override;
  Result<std::vector<Job>> ListJobs(std::string_view ns, std::optional<JobKind> kind) override;
  Result<Job> CancelJob(std::string_view id) override;
  Result<std::vector<Job>> ClaimExpiredJobs(std::string_view owner, int64_t now_ms,
                                            std::chrono::milliseconds lease, ClaimScope scope,
                                            JobKind kind) override;
  Status Checkpoint(std::string_view id, std::string_view owner,
                    const JobCheckpoint& checkpoint) override;
  Status Finish(std::string_view id, std::string_view owner, JobStatus status,
                std::optional<std::string> error, std::optional<uint64_t> stable_as_of) override;
  Result<uint64_t> ReleaseOwner(std::string_view owner) override;
  Result<uint64_t> DeleteNamespace(std::string_view ns) override;
  Result<uint64_t> Prune(int64_t now_ms, std::chrono::milliseconds keep_finished_for,
                         uint64_t keep_finished_max_per_namespace) override;

  // The server process ids of the pool's open connections (idle or in use): for tests that break
  // them (pg_terminate_backend).
  std::vector<int> BackendPids();
  // How many connections the pool has opened since Open (reconnects included).
  uint64_t connections_opened();

  class Conn;  // one libpq connection (postgres_job_store.cc)

 private:
  explicit PostgresJobStore(PostgresJobStoreOptions options);
  int64_t NowMs() const;

  // A pooled connection for one call; returned to the pool (or closed, when broken) on
  // destruction.
  class Lease;
  Result<Lease> Acquire();
  void Return(std::unique_ptr<Conn> conn);
  Result<std::unique_ptr<Conn>> Connect();
  Status PrepareSchema(Conn& conn);
  // NotFound or Aborted for a Checkpoint/Finish of `id` by `owner` that changed no row.
  Status WhyNotOwned(Conn& conn, std::string_view id, std::string_view owner);

  const PostgresJobStoreOptions options_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  size_t open_ = 0;                          // connections idle or in use; guarded by mu_
  std::vector<Conn*> in_use_;                // guarded by mu_
  uint64_t opened_total_ = 0;                // guarded by mu_
};

}  // namespace layer::jobs
