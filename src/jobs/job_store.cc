#include "jobs/job_store.h"

#include <openssl/rand.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include <fmt/format.h>

namespace layer::jobs {

namespace {

std::string JsonString(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
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

std::string WarmJobToJson(const WarmJob& job) {
  std::string out;
  out.reserve(256);
  out += "{\"id\":" + JsonString(job.id);
  out += ",\"namespace\":" + JsonString(job.ns);
  out += ",\"status\":\"" + std::string(JobStatusName(job.status)) + "\"";
  // fmt's shortest round-trip form ("0.25", "1"), not Boost.JSON's "2.5E-1".
  out += fmt::format(",\"progress\":{}", job.progress);
  out += fmt::format(",\"documents_scanned\":{}", job.documents_scanned);
  if (job.stable_as_of) out += fmt::format(",\"stable_as_of\":{}", *job.stable_as_of);
  out += ",\"created_at\":\"" + FormatRfc3339Ms(job.created_at) + "\"";
  if (job.completed_at) out += ",\"completed_at\":\"" + FormatRfc3339Ms(*job.completed_at) + "\"";
  if (job.error) out += ",\"error\":" + JsonString(*job.error);
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

}  // namespace layer::jobs
