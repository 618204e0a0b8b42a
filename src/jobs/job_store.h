// JobStore: durable job records, implemented by sibling backends (sqlite/ embedded, the default;
// postgres/ shared by gateway replicas).
//
// One record shape for every kind of job: a Job (below) is the fields every kind shares -- the
// public state (the WarmJob wire shape of docs/design.md §5.1, plus `cache_errors`) and the private
// state needed to resume the job after a crash: a checkpoint cursor (the last id paged, as JSON
// text) and a lease (owner, expiry) -- plus its `kind` and `params`, a JSON object (text) with
// what only that kind has:
// - warm: {"page_size":N}, N in 1..kMaxWarmPageSize. WarmJob is the typed view warm callers use
//   (the shared fields plus `page_size`).
// - snapshot: an on-demand snapshot: the attribute `field`, the `source` (auto, stored, cache or
//   origin), optional `filters`, the `page_size` and, once done, the `effective_source`, `sha`,
//   `key` and `watermark_ms` of the body (a checkpoint may replace the params). Its runner owns
//   that shape (jobs/snapshot_job_runner.h); the store only requires a JSON object.
//
// Rules every backend enforces atomically (also across processes sharing the store):
// - At most one running job per (namespace, kind). CreateJob() while one runs returns that job
//   with `created == false` instead of creating a second ("a second warm of the same namespace
//   while one runs returns the running job"); jobs of different kinds run side by side.
// - Only the lease owner may checkpoint or finish a running job. A checkpoint extends the lease.
//   When the lease expires (the owner died or stalled), ClaimExpired() hands the job to another
//   owner, which resumes it from the last checkpoint; the old owner's next Checkpoint/Finish then
//   fails with Aborted and it must stop.
// - Terminal states (completed, failed, cancelled) are final. Cancel() of a running job makes it
//   cancelled at once; the runner notices at its next Checkpoint (Aborted) and stops.
//
// Calls: the record calls (CreateJob, GetJob, ListJobs, CancelJob, ClaimExpiredJobs) take and
// return Jobs of any kind; Checkpoint, Finish, ReleaseOwner, DeleteNamespace and Prune do not
// depend on the kind. The warm calls (Create, Get, List, Cancel, ClaimExpired) are the record
// calls restricted to warm jobs and typed as WarmJob: a job of another kind is NotFound to them,
// and they are defined here on the record calls. A backend implements the record calls and the
// kind-blind ones.
//
// Times are epoch milliseconds from the store's clock (injectable for tests), except where a
// method takes `now_ms` explicitly.
//
// Blocking: every call may block on disk or network I/O; callers run it off the event loop.
// Thread-safe.
//
// Failure: a non-OK Status means the store could not answer (IoError/Unavailable) or the request
// was refused (NotFound, Aborted, InvalidArgument, as documented per method). A failed call
// changes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace layer::jobs {

enum class JobStatus : uint8_t { kRunning = 0, kCompleted, kFailed, kCancelled };

// "running", "completed", "failed", "cancelled".
std::string_view JobStatusName(JobStatus status);
// The inverse of JobStatusName; nullopt for any other text.
std::optional<JobStatus> ParseJobStatus(std::string_view text);

enum class JobKind : uint8_t { kWarm = 0, kSnapshot };

// "warm", "snapshot".
std::string_view JobKindName(JobKind kind);
// The inverse of JobKindName; nullopt for any other text.
std::optional<JobKind> ParseJobKind(std::string_view text);

inline constexpr int kDefaultWarmPageSize = 1000;
inline constexpr int kMaxWarmPageSize = 10000;

// The fields every kind of job has.
struct JobCommon {
  std::string id;  // UUID v4, lower-case hyphenated
  std::string ns;  // "namespace" on the wire
  JobStatus status = JobStatus::kRunning;
  double progress = 0.0;  // 0..1; 1.0 only once completed
  uint64_t documents_scanned = 0;
  std::optional<uint64_t> stable_as_of;  // epoch ms; set on completion when known
  int64_t created_at = 0;                // epoch ms
  std::optional<int64_t> completed_at;   // epoch ms; set once the job is terminal
  std::optional<std::string> error;      // set when failed
  std::optional<std::string> waiting;    // set while a running job waits, with the reason
  uint64_t cache_errors = 0;             // cache writes that failed while the job ran

  // Resumption state, never on the wire.
  std::optional<std::string> cursor;  // JSON text of the last id paged (e.g. 42, "a", "uuid")
  std::string owner;                  // lease holder; "" = none
  int64_t lease_expires_at = 0;       // epoch ms
  int64_t updated_at = 0;             // epoch ms of the last change

  bool finished() const { return status != JobStatus::kRunning; }
};

// The record the store holds, of any kind.
struct Job : JobCommon {
  JobKind kind = JobKind::kWarm;
  std::string params = "{}";  // JSON object text: the kind's own fields (see the top)
};

// A warm job: the typed view of a Job of kind warm.
struct WarmJob : JobCommon {
  int page_size = kDefaultWarmPageSize;  // params.page_size

  // The record: kind warm, params {"page_size":N}.
  Job ToJob() const;
  // The view of `job`: InvalidArgument when it is not a warm job, Corruption when its params are
  // not warm params (see WarmPageSizeFromParams).
  static Result<WarmJob> FromJob(Job job);
};

// Warm params: {"page_size":N}.
std::string WarmJobParams(int page_size);
// The page size that warm params hold: kDefaultWarmPageSize when they have none. InvalidArgument
// unless `params` is a JSON object whose page_size, if any, is an integer in 1..kMaxWarmPageSize.
Result<int> WarmPageSizeFromParams(std::string_view params);
// Whether `params` may be stored for a job of `kind`: a JSON object, and for warm jobs valid warm
// params. InvalidArgument otherwise. Backends check it in CreateJob.
Status ValidateJobParams(JobKind kind, std::string_view params);

// RFC 3339 UTC with milliseconds: 1779789600000 -> "2026-05-26T10:00:00.000Z".
std::string FormatRfc3339Ms(int64_t epoch_ms);

// The WarmJob wire shape: {"id","namespace","status","progress","documents_scanned",
// "stable_as_of"?,"created_at","completed_at"?,"error"?,"cache_errors","page_size"} (optional
// members omitted when absent; times as RFC 3339). Compact JSON object text.
std::string WarmJobToJson(const WarmJob& job);
// {"warm_jobs":[...]} in the given order.
std::string WarmJobListToJson(std::span<const WarmJob> jobs);

// A fresh random (version 4) UUID, lower-case hyphenated.
std::string NewJobId();

struct CreateJobRequest {
  std::string ns;
  JobKind kind = JobKind::kWarm;
  std::string params = "{}";  // see ValidateJobParams
  std::string owner;          // the creator takes the lease; must not be empty
};

struct CreateJobOutcome {
  Job job;
  // false: a job of the namespace and kind was already running and `job` is that job (nothing
  // created).
  bool created = false;
};

struct CreateWarmJobRequest {
  std::string ns;
  int page_size = kDefaultWarmPageSize;  // 1..kMaxWarmPageSize
  std::string owner;                     // the creator takes the lease; must not be empty
};

struct CreateWarmJobOutcome {
  WarmJob job;
  // false: a warm job of the namespace was already running and `job` is that job.
  bool created = false;
};

// Progress a runner records after each page (any kind).
struct JobCheckpoint {
  std::optional<std::string> cursor;  // JSON text of the last id paged; nullopt = keep the old one
  uint64_t documents_scanned = 0;
  double progress = 0.0;  // clamped to [0, 1)
  uint64_t cache_errors = 0;
  // Why the running job is not making progress now (e.g. it waits for a caller's credential);
  // nullopt clears it.
  std::optional<std::string> waiting;
  // The job's params (a JSON object) replaced, e.g. with what a finished step found out; nullopt
  // keeps them.
  std::optional<std::string> params;
};
using WarmJobCheckpoint = JobCheckpoint;

// What every backend's Checkpoint checks first: InvalidArgument when the cursor is not valid JSON
// or the params are not a JSON object.
Status ValidateCheckpoint(const JobCheckpoint& checkpoint);
// The progress a checkpoint stores: clamped to [0, 1) (1.0 is reserved for a completed job).
double CheckpointProgress(const JobCheckpoint& checkpoint);

enum class ClaimScope : uint8_t {
  // Running jobs whose lease expired at `now_ms` or that have no owner.
  kExpired,
  // Every running job, whoever holds it. Only for a store used by one process (the embedded
  // default), at start-up: any running job found then belongs to a dead process.
  kAllRunning,
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // ---- Records of every kind.

  // Creates a running job (progress 0, lease owner = request.owner until now + the store's lease
  // duration), unless a job of the same namespace and kind is running: then returns that one,
  // created = false. InvalidArgument for an empty namespace or owner or params that
  // ValidateJobParams refuses.
  virtual Result<CreateJobOutcome> CreateJob(const CreateJobRequest& request) = 0;

  // NotFound when no job has this id.
  virtual Result<Job> GetJob(std::string_view id) = 0;

  // The jobs of the namespace, of `kind` or (nullopt) of every kind, oldest first (by created_at,
  // then creation order).
  virtual Result<std::vector<Job>> ListJobs(std::string_view ns, std::optional<JobKind> kind) = 0;

  // running -> cancelled (completed_at = now). Idempotent: a job already terminal is left as is.
  // Returns the job as stored after the call. NotFound when no job has this id.
  virtual Result<Job> CancelJob(std::string_view id) = 0;

  // Atomically hands the running jobs of `kind` selected by `scope` to `owner`, with a lease until
  // now_ms + lease, and returns them (oldest first) for the caller to resume from their cursors.
  // Two concurrent claimers never both get the same job.
  virtual Result<std::vector<Job>> ClaimExpiredJobs(std::string_view owner, int64_t now_ms,
                                                    std::chrono::milliseconds lease,
                                                    ClaimScope scope, JobKind kind) = 0;

  // ---- Any kind, by id or owner or namespace.

  // Records progress and extends the lease to now + the store's lease duration. NotFound when no
  // job has this id; Aborted when the job is no longer running (e.g. cancelled) or `owner` no
  // longer holds the lease: the caller must stop working on it. InvalidArgument when `cursor` is
  // not valid JSON or `params` not a JSON object. A backend may make checkpoints less durable than its other calls (a warm
  // writes one per page): a checkpoint that is lost only sends the job back a few pages.
  virtual Status Checkpoint(std::string_view id, std::string_view owner,
                            const JobCheckpoint& checkpoint) = 0;

  // Ends a running job with `status` (kCompleted or kFailed; InvalidArgument otherwise) and sets
  // completed_at = now. Completion sets progress = 1.0. `error` is stored for failures; a
  // failure without one gets "failed". Errors as for Checkpoint.
  virtual Status Finish(std::string_view id, std::string_view owner, JobStatus status,
                        std::optional<std::string> error, std::optional<uint64_t> stable_as_of) = 0;

  // Gives up `owner`'s leases on its running jobs (clean shutdown), so they can be claimed at
  // once. Returns how many jobs were released.
  virtual Result<uint64_t> ReleaseOwner(std::string_view owner) = 0;

  // Removes every job of the namespace, of every kind, running or not (a running job's owner
  // then gets NotFound at its next checkpoint). Returns how many were removed.
  virtual Result<uint64_t> DeleteNamespace(std::string_view ns) = 0;

  // Retention for finished jobs (running jobs are never pruned): removes those that finished
  // before now_ms - keep_finished_for, and per namespace and kind all but the
  // keep_finished_max_per_namespace most recently finished. Returns how many were removed.
  virtual Result<uint64_t> Prune(int64_t now_ms, std::chrono::milliseconds keep_finished_for,
                                 uint64_t keep_finished_max_per_namespace) = 0;

  // ---- Warm jobs, typed: the record calls above for kind warm, defined once here for every
  // backend.

  // CreateJob of a warm job with params {"page_size": request.page_size}. InvalidArgument for a
  // page size outside 1..kMaxWarmPageSize, and as for CreateJob.
  Result<CreateWarmJobOutcome> Create(const CreateWarmJobRequest& request);

  // NotFound when no warm job has this id.
  Result<WarmJob> Get(std::string_view id);

  // The warm jobs of the namespace, oldest first.
  Result<std::vector<WarmJob>> List(std::string_view ns);

  // CancelJob of a warm job; NotFound (and nothing cancelled) when no warm job has this id.
  Result<WarmJob> Cancel(std::string_view id);

  // ClaimExpiredJobs of warm jobs.
  Result<std::vector<WarmJob>> ClaimExpired(std::string_view owner, int64_t now_ms,
                                            std::chrono::milliseconds lease,
                                            ClaimScope scope = ClaimScope::kExpired);
};

}  // namespace layer::jobs
