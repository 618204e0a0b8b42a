#include "jobs/sqlite/sqlite_job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace layer::jobs {

namespace {

// The schema's version, in PRAGMA user_version. The first schema (warm jobs only, their page size
// in a page_size column) never set it: 0 with a warm_jobs table is version 1.
constexpr int64_t kSchemaVersion = 3;

// The table keeps the name it had when it held only warm jobs: see the header.
constexpr const char* kSchema = R"sql(
CREATE TABLE warm_jobs (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order
  id                TEXT NOT NULL UNIQUE,
  namespace         TEXT NOT NULL,
  kind              TEXT NOT NULL DEFAULT 'warm',
  status            TEXT NOT NULL,
  progress          REAL NOT NULL DEFAULT 0,
  documents_scanned INTEGER NOT NULL DEFAULT 0,          -- u64 stored as its int64 bit pattern
  stable_as_of      INTEGER,
  created_at        INTEGER NOT NULL,
  completed_at      INTEGER,
  error             TEXT,
  waiting           TEXT,                                -- why a running job waits, if it does
  cache_errors      INTEGER NOT NULL DEFAULT 0,
  params            TEXT NOT NULL DEFAULT '{}',          -- JSON object: the kind's own fields
  cursor            TEXT,
  owner             TEXT NOT NULL DEFAULT '',
  lease_expires_at  INTEGER NOT NULL DEFAULT 0,
  updated_at        INTEGER NOT NULL
);
CREATE UNIQUE INDEX warm_jobs_one_running ON warm_jobs(namespace, kind) WHERE status = 'running';
CREATE INDEX warm_jobs_by_namespace ON warm_jobs(namespace, created_at, seq);
CREATE INDEX warm_jobs_running_lease ON warm_jobs(lease_expires_at) WHERE status = 'running';
)sql";

// Version 1 -> 2: every job so far is a warm job, whose page size moves into its params. The
// one-running index keeps its name but now covers (namespace, kind).
constexpr const char* kMigrateFrom1 = R"sql(
ALTER TABLE warm_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'warm';
ALTER TABLE warm_jobs ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
UPDATE warm_jobs SET params = json_object('page_size', page_size);
DROP INDEX IF EXISTS warm_jobs_one_running;
ALTER TABLE warm_jobs DROP COLUMN page_size;
CREATE UNIQUE INDEX warm_jobs_one_running ON warm_jobs(namespace, kind) WHERE status = 'running';
)sql";

// Version 2 -> 3: a running job can say why it waits.
constexpr const char* kMigrateFrom2 = R"sql(
ALTER TABLE warm_jobs ADD COLUMN waiting TEXT;
)sql";

constexpr const char* kColumns =
    "id, namespace, kind, status, progress, documents_scanned, stable_as_of, created_at, "
    "completed_at, error, cache_errors, params, cursor, owner, lease_expires_at, updated_at, "
    "waiting";

Status SqlError(sqlite3* db, int rc, std::string_view what) {
  std::string msg =
      fmt::format("sqlite job store: {}: {}", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  int primary = rc & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::Unavailable(msg);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return Status::Corruption(msg);
  return Status::IoError(msg, primary == SQLITE_IOERR);
}

// A prepared statement, finalised on destruction. Bind indexes are 1-based.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepare_status() const {
    return rc_ == SQLITE_OK ? Status::Ok() : SqlError(db_, rc_, "prepare");
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void BindU64(int i, uint64_t v) { sqlite3_bind_int64(s_, i, static_cast<int64_t>(v)); }
  void Bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void BindNull(int i) { sqlite3_bind_null(s_, i); }
  void Bind(int i, const std::optional<std::string>& v) {
    v ? Bind(i, std::string_view(*v)) : BindNull(i);
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }
  // Runs a statement that returns no rows.
  Status Run(std::string_view what) {
    int rc = Step();
    return rc == SQLITE_DONE ? Status::Ok() : SqlError(db_, rc, what);
  }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Double(int col) const { return sqlite3_column_double(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) {
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    begin_ = rc == SQLITE_OK ? Status::Ok() : SqlError(db_, rc, "begin");
  }
  ~Txn() {
    if (begin_.ok() && !done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  const Status& begin_status() const { return begin_; }
  Status Commit() {
    int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqlError(db_, rc, "commit");
    done_ = true;
    return Status::Ok();
  }

 private:
  sqlite3* db_;
  Status begin_;
  bool done_ = false;
};

// While in scope, commits on a synchronous=FULL connection do not wait for the disk
// (synchronous=NORMAL); FULL comes back at the end. Declare it before the Txn it covers, so the
// transaction has ended (committed or rolled back) when FULL is restored.
class RelaxedSync {
 public:
  RelaxedSync(sqlite3* db, bool connection_is_full) : db_(connection_is_full ? db : nullptr) {
    if (db_) sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr);
  }
  ~RelaxedSync() {
    if (db_) sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  }
  RelaxedSync(const RelaxedSync&) = delete;
  RelaxedSync& operator=(const RelaxedSync&) = delete;

 private:
  sqlite3* db_;
};

// Reads a row selected with kColumns.
Result<Job> ReadJob(const Stmt& s) {
  Job j;
  j.id = s.Text(0);
  j.ns = s.Text(1);
  auto kind = ParseJobKind(s.Text(2));
  if (!kind) return Status::Corruption("sqlite job store: unknown kind for job " + j.id);
  j.kind = *kind;
  auto status = ParseJobStatus(s.Text(3));
  if (!status) return Status::Corruption("sqlite job store: bad status for job " + j.id);
  j.status = *status;
  j.progress = s.Double(4);
  j.documents_scanned = static_cast<uint64_t>(s.Int(5));
  if (!s.IsNull(6)) j.stable_as_of = static_cast<uint64_t>(s.Int(6));
  j.created_at = s.Int(7);
  if (!s.IsNull(8)) j.completed_at = s.Int(8);
  if (!s.IsNull(9)) j.error = s.Text(9);
  j.cache_errors = static_cast<uint64_t>(s.Int(10));
  j.params = s.Text(11);
  if (!s.IsNull(12)) j.cursor = s.Text(12);
  j.owner = s.Text(13);
  j.lease_expires_at = s.Int(14);
  j.updated_at = s.Int(15);
  if (!s.IsNull(16)) j.waiting = s.Text(16);
  return j;
}

// Reads every row of a SELECT of kColumns.
Result<std::vector<Job>> ReadJobs(sqlite3* db, Stmt& s) {
  std::vector<Job> out;
  for (;;) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) return out;
    if (rc != SQLITE_ROW) return SqlError(db, rc, "select");
    auto job = ReadJob(s);
    if (!job.ok()) return job.status();
    out.push_back(std::move(job).value());
  }
}

int64_t LeaseEnd(int64_t now, std::chrono::milliseconds lease) {
  int64_t l = lease.count();
  return now > INT64_MAX - l ? INT64_MAX : now + l;
}

}  // namespace

SqliteJobStore::SqliteJobStore(SqliteJobStoreOptions options) : options_(std::move(options)) {}

SqliteJobStore::~SqliteJobStore() {
  std::lock_guard lock(mu_);
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(SqliteJobStoreOptions options) {
  if (options.path.empty()) return Status::InvalidArgument("sqlite job store: empty path");
  if (options.lease.count() <= 0) {
    return Status::InvalidArgument("sqlite job store: lease must be positive");
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore(std::move(options)));
  Status st = store->Init();
  if (!st.ok()) return st;
  return store;
}

Status SqliteJobStore::Init() {
  std::lock_guard lock(mu_);
  std::filesystem::path parent = std::filesystem::path(options_.path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return Status::IoError("sqlite job store: mkdir " + parent.string() + ": " + ec.message());
  }
  int rc =
      sqlite3_open_v2(options_.path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqlError(db_, rc, "open " + options_.path);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return st;
  }
  sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));
  // journal_mode answers with a row; Exec() ignores rows.
  for (const char* sql : {"PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON"}) {
    if (Status st = Exec(sql); !st.ok()) return st;
  }
  if (Status st =
          Exec(options_.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      !st.ok()) {
    return st;
  }
  return PrepareSchemaLocked();
}

Status SqliteJobStore::PrepareSchemaLocked() {
  // BEGIN IMMEDIATE: processes opening a file together create or migrate it once.
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  int64_t version = 0;
  {
    Stmt s(db_, "PRAGMA user_version");
    if (Status st = s.prepare_status(); !st.ok()) return st;
    if (int rc = s.Step(); rc != SQLITE_ROW) return SqlError(db_, rc, "read the schema version");
    version = s.Int(0);
  }
  if (version == kSchemaVersion) return Status::Ok();  // the transaction wrote nothing
  if (version > kSchemaVersion) {
    return Status::IoError(
        fmt::format("sqlite job store: {} has schema version {}, newer than this build's {}",
                    options_.path, version, kSchemaVersion));
  }
  bool has_table = false;
  {
    Stmt s(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'warm_jobs'");
    if (Status st = s.prepare_status(); !st.ok()) return st;
    int rc = s.Step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(db_, rc, "read the schema");
    has_table = rc == SQLITE_ROW;
  }
  if (!has_table) {
    if (Status st = Exec(kSchema); !st.ok()) return st;
  } else {
    if (version <= 1) {
      if (Status st = Exec(kMigrateFrom1); !st.ok()) return st;
    }
    if (Status st = Exec(kMigrateFrom2); !st.ok()) return st;
  }
  if (Status st = Exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion).c_str()); !st.ok()) {
    return st;
  }
  return txn.Commit();
}

int SqliteJobStore::SynchronousLevel() {
  std::lock_guard lock(mu_);
  if (!db_) return -1;
  Stmt s(db_, "PRAGMA synchronous");
  if (!s.prepare_status().ok() || s.Step() != SQLITE_ROW) return -1;
  return static_cast<int>(s.Int(0));
}

Status SqliteJobStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);  // sqlite3_errmsg(db_) still holds the same text
  return rc == SQLITE_OK ? Status::Ok() : SqlError(db_, rc, "exec");
}

int64_t SqliteJobStore::NowMs() const { return ClockOr(options_.clock).WallMs(); }

Result<std::optional<Job>> SqliteJobStore::GetLocked(std::string_view id) {
  Stmt s(db_, fmt::format("SELECT {} FROM warm_jobs WHERE id = ?1", kColumns));
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, id);
  auto rows = ReadJobs(db_, s);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<Job>();
  return std::optional<Job>(std::move(rows->front()));
}

Result<CreateJobOutcome> SqliteJobStore::CreateJob(const CreateJobRequest& request) {
  const std::string_view kind = JobKindName(request.kind);
  if (request.ns.empty())
    return Status::InvalidArgument(fmt::format("{} job: empty namespace", kind));
  if (request.owner.empty())
    return Status::InvalidArgument(fmt::format("{} job: empty owner", kind));
  if (Status st = ValidateJobParams(request.kind, request.params); !st.ok()) return st;
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  {
    Stmt s(db_, fmt::format("SELECT {} FROM warm_jobs WHERE namespace = ?1 AND kind = ?2 AND "
                            "status = 'running'",
                            kColumns));
    if (Status st = s.prepare_status(); !st.ok()) return st;
    s.Bind(1, std::string_view(request.ns));
    s.Bind(2, kind);
    auto rows = ReadJobs(db_, s);
    if (!rows.ok()) return rows.status();
    if (!rows->empty()) return CreateJobOutcome{std::move(rows->front()), false};
  }
  const int64_t now = NowMs();
  Job job;
  job.id = NewJobId();
  job.ns = request.ns;
  job.kind = request.kind;
  job.status = JobStatus::kRunning;
  job.created_at = now;
  job.params = request.params;
  job.owner = request.owner;
  job.lease_expires_at = LeaseEnd(now, options_.lease);
  job.updated_at = now;
  Stmt s(db_,
         "INSERT INTO warm_jobs (id, namespace, kind, status, created_at, params, owner, "
         "lease_expires_at, updated_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?4)");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, std::string_view(job.id));
  s.Bind(2, std::string_view(job.ns));
  s.Bind(3, kind);
  s.Bind(4, now);
  s.Bind(5, std::string_view(job.params));
  s.Bind(6, std::string_view(job.owner));
  s.Bind(7, job.lease_expires_at);
  if (Status st = s.Run("insert"); !st.ok()) return st;
  if (Status st = txn.Commit(); !st.ok()) return st;
  return CreateJobOutcome{std::move(job), true};
}

Result<Job> SqliteJobStore::GetJob(std::string_view id) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  auto job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (!job->has_value()) return Status::NotFound(fmt::format("job {} not found", id));
  return std::move(**job);
}

Result<std::vector<Job>> SqliteJobStore::ListJobs(std::string_view ns,
                                                  std::optional<JobKind> kind) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Stmt s(db_, fmt::format("SELECT {} FROM warm_jobs WHERE namespace = ?1 AND "
                          "(?2 IS NULL OR kind = ?2) ORDER BY created_at, seq",
                          kColumns));
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, ns);
  kind ? s.Bind(2, JobKindName(*kind)) : s.BindNull(2);
  return ReadJobs(db_, s);
}

Status SqliteJobStore::CheckOwnedLocked(std::string_view id, std::string_view owner) {
  auto job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (!job->has_value()) return Status::NotFound(fmt::format("job {} not found", id));
  const Job& j = **job;
  if (j.status != JobStatus::kRunning) {
    return Status::Aborted(fmt::format("job {} is {}", id, JobStatusName(j.status)));
  }
  if (j.owner != owner) {
    return Status::Aborted(fmt::format("job {}: lease lost to '{}'", id, j.owner));
  }
  return Status::Ok();
}

Status SqliteJobStore::Checkpoint(std::string_view id, std::string_view owner,
                                  const JobCheckpoint& checkpoint) {
  if (Status st = ValidateCheckpoint(checkpoint); !st.ok()) return st;
  const double progress = CheckpointProgress(checkpoint);
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  RelaxedSync relaxed(db_, options_.synchronous_full);  // see the header: checkpoints
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  if (Status st = CheckOwnedLocked(id, owner); !st.ok()) return st;
  const int64_t now = NowMs();
  Stmt s(db_,
         "UPDATE warm_jobs SET cursor = COALESCE(?2, cursor), documents_scanned = ?3, "
         "progress = ?4, cache_errors = ?5, lease_expires_at = ?6, updated_at = ?7, waiting = ?8, "
         "params = COALESCE(?9, params) WHERE id = ?1");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, id);
  s.Bind(2, checkpoint.cursor);
  s.BindU64(3, checkpoint.documents_scanned);
  s.Bind(4, progress);
  s.BindU64(5, checkpoint.cache_errors);
  s.Bind(6, LeaseEnd(now, options_.lease));
  s.Bind(7, now);
  s.Bind(8, checkpoint.waiting);
  s.Bind(9, checkpoint.params);
  if (Status st = s.Run("checkpoint"); !st.ok()) return st;
  return txn.Commit();
}

Status SqliteJobStore::Finish(std::string_view id, std::string_view owner, JobStatus status,
                              std::optional<std::string> error,
                              std::optional<uint64_t> stable_as_of) {
  if (status != JobStatus::kCompleted && status != JobStatus::kFailed) {
    return Status::InvalidArgument("job finish: status must be completed or failed");
  }
  if (status == JobStatus::kFailed && !error) error = "failed";
  if (status == JobStatus::kCompleted) error.reset();
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  if (Status st = CheckOwnedLocked(id, owner); !st.ok()) return st;
  const int64_t now = NowMs();
  Stmt s(db_,
         "UPDATE warm_jobs SET status = ?2, error = ?3, stable_as_of = ?4, completed_at = ?5, "
         "updated_at = ?5, waiting = NULL, progress = CASE WHEN ?2 = 'completed' THEN 1.0 ELSE progress END, "
         "lease_expires_at = 0 WHERE id = ?1");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, id);
  s.Bind(2, JobStatusName(status));
  s.Bind(3, error);
  stable_as_of ? s.BindU64(4, *stable_as_of) : s.BindNull(4);
  s.Bind(5, now);
  if (Status st = s.Run("finish"); !st.ok()) return st;
  return txn.Commit();
}

Result<Job> SqliteJobStore::CancelJob(std::string_view id) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  const int64_t now = NowMs();
  Stmt s(db_,
         "UPDATE warm_jobs SET status = 'cancelled', completed_at = ?2, updated_at = ?2, "
         "lease_expires_at = 0 WHERE id = ?1 AND status = 'running'");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, id);
  s.Bind(2, now);
  if (Status st = s.Run("cancel"); !st.ok()) return st;
  auto job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (!job->has_value()) return Status::NotFound(fmt::format("job {} not found", id));
  if (Status st = txn.Commit(); !st.ok()) return st;
  return std::move(**job);
}

Result<std::vector<Job>> SqliteJobStore::ClaimExpiredJobs(std::string_view owner, int64_t now_ms,
                                                          std::chrono::milliseconds lease,
                                                          ClaimScope scope, JobKind kind) {
  if (owner.empty()) return Status::InvalidArgument("job claim: empty owner");
  if (lease.count() <= 0) return Status::InvalidArgument("job claim: lease must be positive");
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  const bool expired_only = scope == ClaimScope::kExpired;
  std::vector<Job> claimed;
  {
    Stmt s(db_, fmt::format("SELECT {} FROM warm_jobs WHERE status = 'running' AND kind = ?1{} "
                            "ORDER BY created_at, seq",
                            kColumns,
                            expired_only ? " AND (owner = '' OR lease_expires_at <= ?2)" : ""));
    if (Status st = s.prepare_status(); !st.ok()) return st;
    s.Bind(1, JobKindName(kind));
    if (expired_only) s.Bind(2, now_ms);
    auto rows = ReadJobs(db_, s);
    if (!rows.ok()) return rows.status();
    claimed = std::move(rows).value();
  }
  // The write lock of BEGIN IMMEDIATE is held, so no one changes these rows in between.
  const int64_t lease_end = LeaseEnd(now_ms, lease);
  for (Job& job : claimed) {
    Stmt s(db_,
           "UPDATE warm_jobs SET owner = ?2, lease_expires_at = ?3, updated_at = ?4 WHERE id = ?1");
    if (Status st = s.prepare_status(); !st.ok()) return st;
    s.Bind(1, std::string_view(job.id));
    s.Bind(2, owner);
    s.Bind(3, lease_end);
    s.Bind(4, now_ms);
    if (Status st = s.Run("claim"); !st.ok()) return st;
    job.owner = std::string(owner);
    job.lease_expires_at = lease_end;
    job.updated_at = now_ms;
  }
  if (Status st = txn.Commit(); !st.ok()) return st;
  return claimed;
}

Result<uint64_t> SqliteJobStore::ReleaseOwner(std::string_view owner) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Stmt s(db_,
         "UPDATE warm_jobs SET owner = '', lease_expires_at = 0 "
         "WHERE status = 'running' AND owner = ?1");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, owner);
  if (Status st = s.Run("release"); !st.ok()) return st;
  return static_cast<uint64_t>(sqlite3_changes(db_));
}

Result<uint64_t> SqliteJobStore::DeleteNamespace(std::string_view ns) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Stmt s(db_, "DELETE FROM warm_jobs WHERE namespace = ?1");
  if (Status st = s.prepare_status(); !st.ok()) return st;
  s.Bind(1, ns);
  if (Status st = s.Run("delete namespace"); !st.ok()) return st;
  return static_cast<uint64_t>(sqlite3_changes(db_));
}

Result<uint64_t> SqliteJobStore::Prune(int64_t now_ms, std::chrono::milliseconds keep_finished_for,
                                       uint64_t keep_finished_max_per_namespace) {
  std::lock_guard lock(mu_);
  if (!db_) return Status::Unavailable("sqlite job store: closed");
  Txn txn(db_);
  if (!txn.begin_status().ok()) return txn.begin_status();
  uint64_t removed = 0;
  {
    Stmt s(db_,
           "DELETE FROM warm_jobs WHERE status != 'running' AND completed_at IS NOT NULL AND "
           "completed_at < ?1");
    if (Status st = s.prepare_status(); !st.ok()) return st;
    int64_t keep = keep_finished_for.count();
    s.Bind(1, keep < 0 || now_ms < INT64_MIN + keep ? now_ms : now_ms - keep);
    if (Status st = s.Run("prune by age"); !st.ok()) return st;
    removed += static_cast<uint64_t>(sqlite3_changes(db_));
  }
  {
    Stmt s(db_,
           "DELETE FROM warm_jobs WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER "
           "(PARTITION BY namespace, kind ORDER BY completed_at DESC, seq DESC) AS rank "
           "FROM warm_jobs WHERE status != 'running') WHERE rank > ?1)");
    if (Status st = s.prepare_status(); !st.ok()) return st;
    s.Bind(1, static_cast<int64_t>(std::min<uint64_t>(keep_finished_max_per_namespace,
                                                      static_cast<uint64_t>(INT64_MAX))));
    if (Status st = s.Run("prune by count"); !st.ok()) return st;
    removed += static_cast<uint64_t>(sqlite3_changes(db_));
  }
  if (Status st = txn.Commit(); !st.ok()) return st;
  return removed;
}

}  // namespace layer::jobs
