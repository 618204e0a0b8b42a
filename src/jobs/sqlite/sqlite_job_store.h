// SqliteJobStore: the embedded JobStore, one SQLite database file under the data directory.
//
// Durability: WAL journal, synchronous=FULL by default (NORMAL on request). With either setting a
// committed call (Create, Checkpoint, Finish, ...) survives kill -9 of the process; FULL also
// survives power loss, except for Checkpoint: a warm writes one per page, so checkpoints commit
// without waiting for the disk (synchronous=NORMAL for their transaction; the next call that
// does wait makes them durable too). A power loss can then lose the checkpoints since the last
// other call, and the job resumes from an earlier page: pages are idempotent, and the embedded
// cache is discarded after an unclean shutdown anyway.
//
// Schema: one table, warm_jobs, one row per job of any kind (the Job record: its kind and its
// params JSON text in columns of their own); PRAGMA user_version holds the schema's version.
// Open() creates the schema in an empty file and migrates, in place and in one transaction, a
// file of the first schema (warm jobs only, each with a page_size column): every row there
// becomes a warm job whose params hold its page size, and the page_size column is dropped. The
// table keeps the name it had then, so that a gateway built before kinds that opens a migrated
// file fails on the missing column instead of creating an empty table beside it.
//
// Concurrency: one connection guarded by a mutex, so calls are serialised in-process; every
// multi-statement operation runs in a BEGIN IMMEDIATE transaction, and a partial unique index
// enforces one running job per (namespace, kind), so the rules of job_store.h also hold when
// several processes open the same file (they wait up to `busy_timeout` for each other's write
// lock).
//
// Blocking: every call does file I/O (and, but for Checkpoint, fsync on commit). Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "jobs/job_store.h"

struct sqlite3;

namespace layer::jobs {

struct SqliteJobStoreOptions {
  std::string path;  // the database file (e.g. <data-dir>/jobs.sqlite3); parent dirs created
  // Lease granted by Create and renewed by Checkpoint. A runner must checkpoint more often.
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  // How long a call waits for another process's write lock before failing with Unavailable.
  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5);
  bool synchronous_full = true;  // false: synchronous=NORMAL (still safe against kill -9)
  // The store's clock (its wall time: created_at, leases, completed_at). Null = Clock::System().
  const Clock* clock = nullptr;
};

class SqliteJobStore final : public JobStore {
 public:
  // Opens (or creates) the database at `options.path`, creating or migrating the schema (see the
  // top). InvalidArgument for an empty path or non-positive lease; IoError when SQLite cannot open
  // or initialise the file (including a file that is not a SQLite database, and one whose schema
  // is newer than this build's).
  static Result<std::unique_ptr<SqliteJobStore>> Open(SqliteJobStoreOptions options);

  ~SqliteJobStore() override;
  SqliteJobStore(const SqliteJobStore&) = delete;
  SqliteJobStore& operator=(const SqliteJobStore&) = delete;

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

  // The connection's PRAGMA synchronous right now (1 NORMAL, 2 FULL), or -1 when closed or on an
  // error: what the next call other than Checkpoint commits with.
  int SynchronousLevel();

 private:
  explicit SqliteJobStore(SqliteJobStoreOptions options);
  Status Init();
  int64_t NowMs() const;

  // These expect mu_ held.
  // Creates the schema, or migrates an older one (see the top).
  Status PrepareSchemaLocked();
  Status Exec(const char* sql);
  Result<std::optional<Job>> GetLocked(std::string_view id);
  // Shared by Checkpoint and Finish: NotFound / Aborted unless `id` is running and owned.
  Status CheckOwnedLocked(std::string_view id, std::string_view owner);

  const SqliteJobStoreOptions options_;
  std::mutex mu_;
  sqlite3* db_ = nullptr;  // guarded by mu_
};

}  // namespace layer::jobs
