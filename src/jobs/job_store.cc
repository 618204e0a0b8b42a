#include "jobs/job_store.h"

#include "common/tenant.h"

#include <openssl/rand.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>
#include <utility>

#include <fmt/format.h>

namespace layer::jobs {

namespace {

std::string JsonString(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

Result<std::vector<WarmJob>> WarmViews(Result<std::vector<Job>> jobs) {
  if (!jobs.ok()) return jobs.status();
  std::vector<WarmJob> out;
  out.reserve(jobs->size());
  for (Job& job : *jobs) {
    auto view = WarmJob::FromJob(std::move(job));
    if (!view.ok()) return view.status();
    out.push_back(std::move(view).value());
  }
  return out;
}

}  // namespace

std::string_view JobStatusName(JobStatus status) {
  switch (status) {
    case JobStatus::kRunning:
      return "running";
    case JobStatus::kCompleted:
      return "completed";
    case JobStatus::kFailed:
      return "failed";
    case JobStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobStatus> ParseJobStatus(std::string_view text) {
  for (JobStatus s :
       {JobStatus::kRunning, JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    if (JobStatusName(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view JobKindName(JobKind kind) {
  switch (kind) {
    case JobKind::kWarm:
      return "warm";
    case JobKind::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

std::optional<JobKind> ParseJobKind(std::string_view text) {
  for (JobKind k : {JobKind::kWarm, JobKind::kSnapshot}) {
    if (JobKindName(k) == text) return k;
  }
  return std::nullopt;
}

std::string WarmJobParams(int page_size) { return fmt::format("{{\"page_size\":{}}}", page_size); }

Result<int> WarmPageSizeFromParams(std::string_view params) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(params, ec);
  if (ec || !v.is_object()) return Status::InvalidArgument("warm job params must be a JSON object");
  const boost::json::value* n = v.as_object().if_contains("page_size");
  if (!n) return kDefaultWarmPageSize;
  const bool in_range =
      (n->is_int64() && n->get_int64() >= 1 && n->get_int64() <= kMaxWarmPageSize) ||
      (n->is_uint64() && n->get_uint64() >= 1 &&
       n->get_uint64() <= static_cast<uint64_t>(kMaxWarmPageSize));
  if (!in_range) {
    return Status::InvalidArgument(
        fmt::format("warm job: page_size must be an integer in 1..{}", kMaxWarmPageSize));
  }
  return static_cast<int>(n->is_int64() ? n->get_int64() : static_cast<int64_t>(n->get_uint64()));
}

Status ValidateJobParams(JobKind kind, std::string_view params) {
  if (kind == JobKind::kWarm) return WarmPageSizeFromParams(params).status();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(params, ec);
  if (ec || !v.is_object()) {
    return Status::InvalidArgument(
        fmt::format("{} job params must be a JSON object", JobKindName(kind)));
  }
  return Status::Ok();
}

Job WarmJob::ToJob() const {
  Job job;
  static_cast<JobCommon&>(job) = *this;
  job.kind = JobKind::kWarm;
  job.params = WarmJobParams(page_size);
  return job;
}

Result<WarmJob> WarmJob::FromJob(Job job) {
  if (job.kind != JobKind::kWarm) {
    return Status::InvalidArgument(
        fmt::format("job {} is a {} job, not a warm job", job.id, JobKindName(job.kind)));
  }
  auto page_size = WarmPageSizeFromParams(job.params);
  if (!page_size.ok()) {
    return Status::Corruption(fmt::format("job {}: {}", job.id, page_size.status().message()));
  }
  WarmJob view;
  static_cast<JobCommon&>(view) = std::move(job);
  view.page_size = *page_size;
  return view;
}

std::string FormatRfc3339Ms(int64_t epoch_ms) {
  int64_t secs = epoch_ms / 1000;
  int64_t ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

Status ValidateCheckpoint(const JobCheckpoint& checkpoint) {
  boost::system::error_code ec;
  if (checkpoint.cursor) {
    (void)boost::json::parse(*checkpoint.cursor, ec);
    if (ec) return Status::InvalidArgument("job checkpoint: cursor is not valid JSON");
  }
  if (checkpoint.params) {
    boost::json::value v = boost::json::parse(*checkpoint.params, ec);
    if (ec || !v.is_object()) {
      return Status::InvalidArgument("job checkpoint: params are not a JSON object");
    }
  }
  return Status::Ok();
}

double CheckpointProgress(const JobCheckpoint& checkpoint) {
  const double progress = checkpoint.progress;
  if (!std::isfinite(progress) || progress < 0) return 0;
  return std::min(progress, 0.999);
}

std::string WarmJobToJson(const WarmJob& job) {
  std::string out;
  out.reserve(256);
  out += "{\"id\":" + JsonString(job.id);
  // The store keys jobs by partition (common/tenant.h); callers see the namespace.
  out += ",\"namespace\":" + JsonString(PartitionNamespace(job.ns));
  out += ",\"status\":\"" + std::string(JobStatusName(job.status)) + "\"";
  // fmt's shortest round-trip form ("0.25", "1"), not Boost.JSON's "2.5E-1".
  out += fmt::format(",\"progress\":{}", job.progress);
  out += fmt::format(",\"documents_scanned\":{}", job.documents_scanned);
  if (job.stable_as_of) out += fmt::format(",\"stable_as_of\":{}", *job.stable_as_of);
  out += ",\"created_at\":\"" + FormatRfc3339Ms(job.created_at) + "\"";
  if (job.completed_at) out += ",\"completed_at\":\"" + FormatRfc3339Ms(*job.completed_at) + "\"";
  if (job.error) out += ",\"error\":" + JsonString(*job.error);
  if (job.waiting && !job.finished()) out += ",\"waiting\":" + JsonString(*job.waiting);
  out += fmt::format(",\"cache_errors\":{},\"page_size\":{}}}", job.cache_errors, job.page_size);
  return out;
}

std::string WarmJobListToJson(std::span<const WarmJob> jobs) {
  std::string out = "{\"warm_jobs\":[";
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i) out += ',';
    out += WarmJobToJson(jobs[i]);
  }
  out += "]}";
  return out;
}

std::string NewJobId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    // OpenSSL's generator failed (should not happen once seeded); fall back to the OS.
    std::random_device rd;
    for (auto& c : b) c = static_cast<unsigned char>(rd());
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

Result<CreateWarmJobOutcome> JobStore::Create(const CreateWarmJobRequest& request) {
  if (request.page_size < 1 || request.page_size > kMaxWarmPageSize) {
    return Status::InvalidArgument(
        fmt::format("warm job: page_size must be 1..{}", kMaxWarmPageSize));
  }
  auto created =
      CreateJob({request.ns, JobKind::kWarm, WarmJobParams(request.page_size), request.owner});
  if (!created.ok()) return created.status();
  auto view = WarmJob::FromJob(std::move(created->job));
  if (!view.ok()) return view.status();
  return CreateWarmJobOutcome{std::move(view).value(), created->created};
}

Result<WarmJob> JobStore::Get(std::string_view id) {
  auto job = GetJob(id);
  if (!job.ok()) return job.status();
  if (job->kind != JobKind::kWarm) {
    return Status::NotFound(fmt::format("warm job {} not found", id));
  }
  return WarmJob::FromJob(std::move(job).value());
}

Result<std::vector<WarmJob>> JobStore::List(std::string_view ns) {
  return WarmViews(ListJobs(ns, JobKind::kWarm));
}

Result<WarmJob> JobStore::Cancel(std::string_view id) {
  // A job never changes kind: the check cannot go stale before CancelJob.
  if (auto job = Get(id); !job.ok()) return job.status();
  auto cancelled = CancelJob(id);
  if (!cancelled.ok()) return cancelled.status();
  return WarmJob::FromJob(std::move(cancelled).value());
}

Result<std::vector<WarmJob>> JobStore::ClaimExpired(std::string_view owner, int64_t now_ms,
                                                    std::chrono::milliseconds lease,
                                                    ClaimScope scope) {
  return WarmViews(ClaimExpiredJobs(owner, now_ms, lease, scope, JobKind::kWarm));
}

}  // namespace layer::jobs
