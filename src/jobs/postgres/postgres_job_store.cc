#include "jobs/postgres/postgres_job_store.h"

#include <libpq-fe.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/config.h"

namespace layer::jobs {

namespace {

// The schema's version in layer_schema_version (component 'jobs'), and the steps from each older
// version: kMigrations[v] takes version v to v + 1 (version 0: no schema).
constexpr int kSchemaVersion = 1;
constexpr const char* kMigrations[kSchemaVersion] = {
    R"sql(
CREATE TABLE layer_jobs (
  seq               bigserial PRIMARY KEY,                 -- creation order
  id                text NOT NULL UNIQUE,
  namespace         text NOT NULL,
  kind              text NOT NULL,
  status            text NOT NULL,
  progress          double precision NOT NULL DEFAULT 0,
  documents_scanned bigint NOT NULL DEFAULT 0,             -- u64 stored as its int64 bit pattern
  stable_as_of      bigint,
  created_at        bigint NOT NULL,
  completed_at      bigint,
  error             text,
  waiting           text,                                  -- why a running job waits, if it does
  cache_errors      bigint NOT NULL DEFAULT 0,
  params            text NOT NULL DEFAULT '{}',            -- JSON object: the kind's own fields
  "cursor"          text,
  owner             text NOT NULL DEFAULT '',
  lease_expires_at  bigint NOT NULL DEFAULT 0,
  updated_at        bigint NOT NULL
);
CREATE UNIQUE INDEX layer_jobs_one_running ON layer_jobs (namespace, kind) WHERE status = 'running';
CREATE INDEX layer_jobs_by_namespace ON layer_jobs (namespace, created_at, seq);
CREATE INDEX layer_jobs_running_lease ON layer_jobs (kind, lease_expires_at) WHERE status = 'running';
)sql",
};

// Any number: the advisory lock key of schema changes ("layerjob" in ASCII).
constexpr const char* kSchemaLockKey = "7809632219747003746";

constexpr const char* kColumns =
    "id, namespace, kind, status, progress, documents_scanned, stable_as_of, created_at, "
    "completed_at, error, cache_errors, params, \"cursor\", owner, lease_expires_at, updated_at, "
    "waiting, seq";

// A NULL parameter or the text of a value.
using Param = std::optional<std::string>;

Param Int(int64_t v) { return std::to_string(v); }
Param U64(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }
Param Text(std::string_view v) { return std::string(v); }
Param OptText(const std::optional<std::string>& v) { return v; }

int64_t LeaseEnd(int64_t now, std::chrono::milliseconds lease) {
  int64_t l = lease.count();
  return now > INT64_MAX - l ? INT64_MAX : now + l;
}

// Whether a SQLSTATE means the connection is unusable or the server is going away.
bool IsConnectionState(std::string_view state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

}  // namespace

// One libpq connection; used by one thread at a time.
class PostgresJobStore::Conn {
 public:
  explicit Conn(PGconn* c) : c_(c), pid_(PQbackendPID(c)) {
    // Server notices (and a termination notice that arrives while idle) go to the debug log,
    // not to stderr.
    PQsetNoticeProcessor(
        c_, [](void*, const char* message) { spdlog::debug("postgres job store: {}", message); },
        nullptr);
  }
  ~Conn() { PQfinish(c_); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  PGconn* get() const { return c_; }
  int pid() const { return pid_; }
  // Set when a call found the connection broken: it is closed instead of pooled.
  bool broken = false;

  // Reads what the server sent while the connection was idle (e.g. the notice that an
  // administrator terminated the backend). False when the connection is unusable.
  bool Healthy() {
    if (PQstatus(c_) != CONNECTION_OK) return false;
    // Twice: the first read may return the server's last message, the second then sees the end
    // of the stream (libpq's socket is non-blocking: neither read waits).
    for (int i = 0; i < 2; ++i) {
      if (PQconsumeInput(c_) == 0) return false;
    }
    if (PQstatus(c_) != CONNECTION_OK) return false;
    if (PQtransactionStatus(c_) != PQTRANS_IDLE) return false;
    return true;
  }

 private:
  PGconn* c_;
  int pid_;
};

namespace {

// A statement's result, cleared on destruction.
class Res {
 public:
  Res() = default;
  explicit Res(PGresult* r) : r_(r) {}
  ~Res() { PQclear(r_); }
  Res(Res&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Res& operator=(Res&& o) noexcept {
    if (this != &o) {
      PQclear(r_);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  PGresult* get() const { return r_; }
  int rows() const { return PQntuples(r_); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string Str(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  int64_t Int(int row, int col) const { return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10); }
  double Double(int row, int col) const { return std::strtod(PQgetvalue(r_, row, col), nullptr); }
  uint64_t Affected() const { return std::strtoull(PQcmdTuples(r_), nullptr, 10); }

 private:
  PGresult* r_ = nullptr;
};

// The Status of a failed statement on `conn` (which it marks broken when the connection is gone).
Status ErrorOf(PostgresJobStore::Conn& conn, const PGresult* r, std::string_view what) {
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn.get());
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  const char* state_c = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string_view state = state_c ? state_c : "";
  std::string text = fmt::format("postgres job store: {}: {}", what, msg);
  if (!r || PQstatus(conn.get()) != CONNECTION_OK || IsConnectionState(state)) {
    conn.broken = true;  // closed instead of pooled
    return Status::Unavailable(text);
  }
  if (state == "57014" || state == "55P03") return Status::Timeout(text);  // statement/lock timeout
  if (state.starts_with("53")) return Status::Unavailable(text);           // out of resources
  if (state == "40001" || state == "40P01") return Status::IoError(text, /*retryable=*/true);
  return Status::IoError(text);
}

// Runs `sql` with text parameters ($1..). OK results: rows or a command's.
Result<Res> Exec(PostgresJobStore::Conn& conn, std::string_view what, const char* sql,
                 const std::vector<Param>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  Res res(PQexecParams(conn.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                       nullptr, nullptr, 0));
  ExecStatusType st = res.get() ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return res;
  return ErrorOf(conn, res.get(), what);
}

// Runs one or more statements without parameters.
Status ExecScript(PostgresJobStore::Conn& conn, std::string_view what, const char* sql) {
  Res res(PQexec(conn.get(), sql));
  ExecStatusType st = res.get() ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return Status::Ok();
  return ErrorOf(conn, res.get(), what);
}

// BEGIN ... COMMIT; rolls back unless committed (a broken connection is closed instead).
class Txn {
 public:
  explicit Txn(PostgresJobStore::Conn& conn) : conn_(conn) {
    begin_ = ExecScript(conn_, "begin", "BEGIN");
  }
  ~Txn() {
    if (begin_.ok() && !done_ && !conn_.broken) (void)ExecScript(conn_, "rollback", "ROLLBACK");
  }
  const Status& begin_status() const { return begin_; }
  Status Commit() {
    Status st = ExecScript(conn_, "commit", "COMMIT");
    done_ = st.ok();
    return st;
  }

 private:
  PostgresJobStore::Conn& conn_;
  Status begin_;
  bool done_ = false;
};

// Reads row `i` of a SELECT (or RETURNING) of kColumns.
Result<Job> ReadJob(const Res& r, int i) {
  Job j;
  j.id = r.Str(i, 0);
  j.ns = r.Str(i, 1);
  auto kind = ParseJobKind(r.Str(i, 2));
  if (!kind) return Status::Corruption("postgres job store: unknown kind for job " + j.id);
  j.kind = *kind;
  auto status = ParseJobStatus(r.Str(i, 3));
  if (!status) return Status::Corruption("postgres job store: bad status for job " + j.id);
  j.status = *status;
  j.progress = r.Double(i, 4);
  j.documents_scanned = static_cast<uint64_t>(r.Int(i, 5));
  if (!r.IsNull(i, 6)) j.stable_as_of = static_cast<uint64_t>(r.Int(i, 6));
  j.created_at = r.Int(i, 7);
  if (!r.IsNull(i, 8)) j.completed_at = r.Int(i, 8);
  if (!r.IsNull(i, 9)) j.error = r.Str(i, 9);
  j.cache_errors = static_cast<uint64_t>(r.Int(i, 10));
  j.params = r.Str(i, 11);
  if (!r.IsNull(i, 12)) j.cursor = r.Str(i, 12);
  j.owner = r.Str(i, 13);
  j.lease_expires_at = r.Int(i, 14);
  j.updated_at = r.Int(i, 15);
  if (!r.IsNull(i, 16)) j.waiting = r.Str(i, 16);
  return j;
}

// Every row of a result of kColumns, ordered by (created_at, seq) when `sort`.
Result<std::vector<Job>> ReadJobs(const Res& r, bool sort = false) {
  std::vector<std::pair<int64_t, Job>> rows;
  rows.reserve(static_cast<size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto job = ReadJob(r, i);
    if (!job.ok()) return job.status();
    rows.emplace_back(r.Int(i, 17), std::move(job).value());
  }
  if (sort) {
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return std::pair(a.second.created_at, a.first) < std::pair(b.second.created_at, b.first);
    });
  }
  std::vector<Job> out;
  out.reserve(rows.size());
  for (auto& [seq, job] : rows) out.push_back(std::move(job));
  return out;
}

}  // namespace

// A pooled connection for the duration of one call.
class PostgresJobStore::Lease {
 public:
  Lease(PostgresJobStore* store, std::unique_ptr<Conn> conn)
      : store_(store), conn_(std::move(conn)) {}
  Lease(Lease&& o) noexcept : store_(o.store_), conn_(std::move(o.conn_)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn_) store_->Return(std::move(conn_));
  }
  Conn& operator*() const { return *conn_; }
  Conn* operator->() const { return conn_.get(); }

 private:
  PostgresJobStore* store_;
  std::unique_ptr<Conn> conn_;
};

PostgresJobStore::PostgresJobStore(PostgresJobStoreOptions options)
    : options_(std::move(options)) {}

PostgresJobStore::~PostgresJobStore() {
  std::lock_guard lock(mu_);
  idle_.clear();
}

Result<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(PostgresJobStoreOptions options) {
  if (options.conninfo.empty()) {
    return Status::InvalidArgument("postgres job store: empty connection string");
  }
  if (options.lease.count() <= 0) {
    return Status::InvalidArgument("postgres job store: lease must be positive");
  }
  if (options.pool_size == 0) {
    return Status::InvalidArgument("postgres job store: pool size must be positive");
  }
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore(std::move(options)));
  auto conn = store->Acquire();
  if (!conn.ok()) return conn.status();
  if (Status st = store->PrepareSchema(**conn); !st.ok()) return st;
  return store;
}

int64_t PostgresJobStore::NowMs() const { return ClockOr(options_.clock).WallMs(); }

Result<std::unique_ptr<PostgresJobStore::Conn>> PostgresJobStore::Connect() {
  // Defaults first: what the connection string sets overrides them (expand_dbname).
  const std::string connect_timeout = std::to_string(
      std::max<int64_t>(2, (options_.connect_timeout.count() + 999) / 1000));
  const char* keys[] = {"connect_timeout", "application_name", "keepalives", "keepalives_idle",
                        "dbname", nullptr};
  const char* values[] = {connect_timeout.c_str(), "layer-jobs", "1", "30",
                          options_.conninfo.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!c) return Status::Unavailable("postgres job store: out of memory connecting");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(c);
    return Status::Unavailable(fmt::format("postgres job store: cannot connect to {}: {}",
                                           RedactConnectionString(options_.conninfo), msg));
  }
  auto conn = std::make_unique<Conn>(c);
  const int64_t timeout = options_.statement_timeout.count();
  const std::string setup = fmt::format(
      "SET statement_timeout = {0}; SET lock_timeout = {0}; "
      "SET idle_in_transaction_session_timeout = {1}; SET TIME ZONE 'UTC'",
      timeout, std::max<int64_t>(timeout * 3, 60000));
  if (Status st = ExecScript(*conn, "set up the session", setup.c_str()); !st.ok()) return st;
  return conn;
}

Result<PostgresJobStore::Lease> PostgresJobStore::Acquire() {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<Conn> conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->Healthy()) {
        in_use_.push_back(conn.get());
        return Lease(this, std::move(conn));
      }
      --open_;  // closed by the server (restart, pg_terminate_backend, idle timeout): drop it
    }
    if (open_ < options_.pool_size) break;
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.pool_size) {
      return Status::Unavailable(
          fmt::format("postgres job store: no free connection within {} ms (pool of {})",
                      options_.acquire_timeout.count(), options_.pool_size));
    }
  }
  ++open_;  // reserve the slot while connecting without the lock
  lock.unlock();
  auto conn = Connect();
  lock.lock();
  if (!conn.ok()) {
    --open_;
    freed_.notify_one();
    return conn.status();
  }
  ++opened_total_;
  in_use_.push_back(conn->get());
  return Lease(this, std::move(conn).value());
}

void PostgresJobStore::Return(std::unique_ptr<Conn> conn) {
  std::lock_guard lock(mu_);
  in_use_.erase(std::remove(in_use_.begin(), in_use_.end(), conn.get()), in_use_.end());
  if (conn->broken || PQstatus(conn->get()) != CONNECTION_OK ||
      PQtransactionStatus(conn->get()) != PQTRANS_IDLE) {
    --open_;  // closed here: PQfinish only sends a goodbye on a live socket, without waiting
    conn.reset();
  } else {
    idle_.push_back(std::move(conn));
  }
  freed_.notify_one();
}

std::vector<int> PostgresJobStore::BackendPids() {
  std::lock_guard lock(mu_);
  std::vector<int> pids;
  for (const auto& c : idle_) pids.push_back(c->pid());
  for (const Conn* c : in_use_) pids.push_back(c->pid());
  return pids;
}

uint64_t PostgresJobStore::connections_opened() {
  std::lock_guard lock(mu_);
  return opened_total_;
}

Status PostgresJobStore::PrepareSchema(Conn& conn) {
  Txn txn(conn);
  if (!txn.begin_status().ok()) return txn.begin_status();
  // Held until the transaction ends: replicas starting together migrate one after the other, and
  // all but the first find the schema current.
  const std::string lock = fmt::format("SELECT pg_advisory_xact_lock({})", kSchemaLockKey);
  if (Status st = ExecScript(conn, "lock the schema", lock.c_str()); !st.ok()) return st;
  if (Status st = ExecScript(conn, "create the version table",
                             "CREATE TABLE IF NOT EXISTS layer_schema_version ("
                             "component text PRIMARY KEY, version integer NOT NULL)");
      !st.ok()) {
    return st;
  }
  auto r = Exec(conn, "read the schema version",
                "SELECT version FROM layer_schema_version WHERE component = 'jobs'");
  if (!r.ok()) return r.status();
  int64_t version = r->rows() ? r->Int(0, 0) : 0;
  if (version == kSchemaVersion) return txn.Commit();
  if (version > kSchemaVersion || version < 0) {
    return Status::IoError(
        fmt::format("postgres job store: the database has job schema version {}, newer than "
                    "this build's {}",
                    version, kSchemaVersion));
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    if (Status st = ExecScript(conn, fmt::format("migrate the schema from version {}", v),
                               kMigrations[v]);
        !st.ok()) {
      return st;
    }
  }
  auto set = Exec(conn, "record the schema version",
                  "INSERT INTO layer_schema_version (component, version) VALUES ('jobs', $1) "
                  "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                  {Int(kSchemaVersion)});
  if (!set.ok()) return set.status();
  return txn.Commit();
}

Result<CreateJobOutcome> PostgresJobStore::CreateJob(const CreateJobRequest& request) {
  const std::string_view kind = JobKindName(request.kind);
  if (request.ns.empty())
    return Status::InvalidArgument(fmt::format("{} job: empty namespace", kind));
  if (request.owner.empty())
    return Status::InvalidArgument(fmt::format("{} job: empty owner", kind));
  if (Status st = ValidateJobParams(request.kind, request.params); !st.ok()) return st;
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  // The insert and the look-up of the running job are separate statements: the running job may
  // end in between, and then the insert is tried again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int64_t now = NowMs();
    const std::string id = NewJobId();
    const std::string insert = fmt::format(
        "INSERT INTO layer_jobs (id, namespace, kind, status, created_at, params, owner, "
        "lease_expires_at, updated_at) VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $4) "
        "ON CONFLICT (namespace, kind) WHERE status = 'running' DO NOTHING RETURNING {}",
        kColumns);
    auto r = Exec(**conn, "insert", insert.c_str(),
                  {Text(id), Text(request.ns), Text(kind), Int(now), Text(request.params),
                   Text(request.owner), Int(LeaseEnd(now, options_.lease))});
    if (!r.ok()) return r.status();
    if (r->rows() == 1) {
      auto job = ReadJob(*r, 0);
      if (!job.ok()) return job.status();
      return CreateJobOutcome{std::move(job).value(), true};
    }
    const std::string select = fmt::format(
        "SELECT {} FROM layer_jobs WHERE namespace = $1 AND kind = $2 AND status = 'running'",
        kColumns);
    auto running = Exec(**conn, "select the running job", select.c_str(),
                        {Text(request.ns), Text(kind)});
    if (!running.ok()) return running.status();
    if (running->rows() == 1) {
      auto job = ReadJob(*running, 0);
      if (!job.ok()) return job.status();
      return CreateJobOutcome{std::move(job).value(), false};
    }
  }
  return Status::Unavailable(
      fmt::format("{} job of '{}': the running job kept changing; try again", kind, request.ns));
}

Result<Job> PostgresJobStore::GetJob(std::string_view id) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  const std::string sql = fmt::format("SELECT {} FROM layer_jobs WHERE id = $1", kColumns);
  auto r = Exec(**conn, "get", sql.c_str(), {Text(id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status::NotFound(fmt::format("job {} not found", id));
  return ReadJob(*r, 0);
}

Result<std::vector<Job>> PostgresJobStore::ListJobs(std::string_view ns,
                                                    std::optional<JobKind> kind) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  const std::string sql = fmt::format(
      "SELECT {} FROM layer_jobs WHERE namespace = $1 AND ($2::text IS NULL OR kind = $2) "
      "ORDER BY created_at, seq",
      kColumns);
  auto r = Exec(**conn, "list", sql.c_str(),
                {Text(ns), kind ? Text(JobKindName(*kind)) : std::nullopt});
  if (!r.ok()) return r.status();
  return ReadJobs(*r);
}

Status PostgresJobStore::WhyNotOwned(Conn& conn, std::string_view id, std::string_view owner) {
  auto r = Exec(conn, "check the owner", "SELECT status, owner FROM layer_jobs WHERE id = $1",
                {Text(id)});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status::NotFound(fmt::format("job {} not found", id));
  const std::string status = r->Str(0, 0);
  if (status != JobStatusName(JobStatus::kRunning)) {
    return Status::Aborted(fmt::format("job {} is {}", id, status));
  }
  const std::string holder = r->Str(0, 1);
  if (holder != owner) return Status::Aborted(fmt::format("job {}: lease lost to '{}'", id, holder));
  // It changed back between the update and this look-up: still not written.
  return Status::Aborted(fmt::format("job {} changed while it was written; try again", id));
}

Status PostgresJobStore::Checkpoint(std::string_view id, std::string_view owner,
                                    const JobCheckpoint& checkpoint) {
  if (Status st = ValidateCheckpoint(checkpoint); !st.ok()) return st;
  const double progress = CheckpointProgress(checkpoint);
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  const int64_t now = NowMs();
  auto r = Exec(**conn, "checkpoint",
                "UPDATE layer_jobs SET \"cursor\" = COALESCE($3, \"cursor\"), "
                "documents_scanned = $4, progress = $5, cache_errors = $6, "
                "lease_expires_at = $7, updated_at = $8, waiting = $9, "
                "params = COALESCE($10, params) "
                "WHERE id = $1 AND owner = $2 AND status = 'running'",
                {Text(id), Text(owner), OptText(checkpoint.cursor),
                 U64(checkpoint.documents_scanned), fmt::format("{}", progress),
                 U64(checkpoint.cache_errors), Int(LeaseEnd(now, options_.lease)), Int(now),
                 OptText(checkpoint.waiting), OptText(checkpoint.params)});
  if (!r.ok()) return r.status();
  if (r->Affected() == 1) return Status::Ok();
  return WhyNotOwned(**conn, id, owner);
}

Status PostgresJobStore::Finish(std::string_view id, std::string_view owner, JobStatus status,
                                std::optional<std::string> error,
                                std::optional<uint64_t> stable_as_of) {
  if (status != JobStatus::kCompleted && status != JobStatus::kFailed) {
    return Status::InvalidArgument("job finish: status must be completed or failed");
  }
  if (status == JobStatus::kFailed && !error) error = "failed";
  if (status == JobStatus::kCompleted) error.reset();
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  const int64_t now = NowMs();
  auto r = Exec(**conn, "finish",
                "UPDATE layer_jobs SET status = $3, error = $4, stable_as_of = $5, "
                "completed_at = $6, updated_at = $6, waiting = NULL, "
                "progress = CASE WHEN $3 = 'completed' THEN 1.0 ELSE progress END, "
                "lease_expires_at = 0 WHERE id = $1 AND owner = $2 AND status = 'running'",
                {Text(id), Text(owner), Text(JobStatusName(status)), OptText(error),
                 stable_as_of ? U64(*stable_as_of) : std::nullopt, Int(now)});
  if (!r.ok()) return r.status();
  if (r->Affected() == 1) return Status::Ok();
  return WhyNotOwned(**conn, id, owner);
}

Result<Job> PostgresJobStore::CancelJob(std::string_view id) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  // One statement: the cancelled row when it was running, else the row as it is.
  const std::string sql = fmt::format(
      "WITH c AS (UPDATE layer_jobs SET status = 'cancelled', completed_at = $2, "
      "updated_at = $2, lease_expires_at = 0 WHERE id = $1 AND status = 'running' "
      "RETURNING {0}) "
      "SELECT {0} FROM c UNION ALL "
      "SELECT {0} FROM layer_jobs WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM c)",
      kColumns);
  auto r = Exec(**conn, "cancel", sql.c_str(), {Text(id), Int(NowMs())});
  if (!r.ok()) return r.status();
  if (r->rows() == 0) return Status::NotFound(fmt::format("job {} not found", id));
  return ReadJob(*r, 0);
}

Result<std::vector<Job>> PostgresJobStore::ClaimExpiredJobs(std::string_view owner,
                                                            int64_t now_ms,
                                                            std::chrono::milliseconds lease,
                                                            ClaimScope scope, JobKind kind) {
  if (owner.empty()) return Status::InvalidArgument("job claim: empty owner");
  if (lease.count() <= 0) return Status::InvalidArgument("job claim: lease must be positive");
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  // FOR UPDATE SKIP LOCKED: a row another claimer is handing over is skipped, not waited for; and
  // a row locked after a concurrent claim committed is re-checked against the WHERE, so it is not
  // taken twice.
  const std::string sql = fmt::format(
      "WITH c AS (SELECT seq FROM layer_jobs WHERE status = 'running' AND kind = $1{} "
      "ORDER BY created_at, seq FOR UPDATE SKIP LOCKED) "
      "UPDATE layer_jobs j SET owner = $3, lease_expires_at = $4, updated_at = $2 "
      "FROM c WHERE j.seq = c.seq RETURNING {}",
      scope == ClaimScope::kExpired ? " AND (owner = '' OR lease_expires_at <= $2)" : "",
      "j.id, j.namespace, j.kind, j.status, j.progress, j.documents_scanned, j.stable_as_of, "
      "j.created_at, j.completed_at, j.error, j.cache_errors, j.params, j.\"cursor\", j.owner, "
      "j.lease_expires_at, j.updated_at, j.waiting, j.seq");
  auto r = Exec(**conn, "claim", sql.c_str(),
                {Text(JobKindName(kind)), Int(now_ms), Text(owner), Int(LeaseEnd(now_ms, lease))});
  if (!r.ok()) return r.status();
  return ReadJobs(*r, /*sort=*/true);
}

Result<uint64_t> PostgresJobStore::ReleaseOwner(std::string_view owner) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  auto r = Exec(**conn, "release",
                "UPDATE layer_jobs SET owner = '', lease_expires_at = 0 "
                "WHERE status = 'running' AND owner = $1",
                {Text(owner)});
  if (!r.ok()) return r.status();
  return r->Affected();
}

Result<uint64_t> PostgresJobStore::DeleteNamespace(std::string_view ns) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  auto r = Exec(**conn, "delete namespace", "DELETE FROM layer_jobs WHERE namespace = $1",
                {Text(ns)});
  if (!r.ok()) return r.status();
  return r->Affected();
}

Result<uint64_t> PostgresJobStore::Prune(int64_t now_ms,
                                         std::chrono::milliseconds keep_finished_for,
                                         uint64_t keep_finished_max_per_namespace) {
  auto conn = Acquire();
  if (!conn.ok()) return conn.status();
  Txn txn(**conn);
  if (!txn.begin_status().ok()) return txn.begin_status();
  const int64_t keep = keep_finished_for.count();
  auto by_age = Exec(**conn, "prune by age",
                     "DELETE FROM layer_jobs WHERE status <> 'running' AND "
                     "completed_at IS NOT NULL AND completed_at < $1",
                     {Int(keep < 0 || now_ms < INT64_MIN + keep ? now_ms : now_ms - keep)});
  if (!by_age.ok()) return by_age.status();
  auto by_count = Exec(
      **conn, "prune by count",
      "DELETE FROM layer_jobs WHERE seq IN (SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER "
      "(PARTITION BY namespace, kind ORDER BY completed_at DESC NULLS LAST, seq DESC) AS rank "
      "FROM layer_jobs WHERE status <> 'running') ranked WHERE rank > $1)",
      {Int(static_cast<int64_t>(
          std::min<uint64_t>(keep_finished_max_per_namespace, static_cast<uint64_t>(INT64_MAX))))});
  if (!by_count.ok()) return by_count.status();
  if (Status st = txn.Commit(); !st.ok()) return st;
  return by_age->Affected() + by_count->Affected();
}

}  // namespace layer::jobs
