// OpenJobStore: the JobStore a `--job-store` setting names (docs/design.md §5).
//
// - "" (the default): the embedded SQLite file <data_dir>/jobs.sqlite3;
// - sqlite:///PATH: an embedded SQLite file at PATH;
// - postgresql://... or postgres://...: a PostgreSQL database that gateway replicas share (the
//   whole setting is the libpq connection string).
//
// Blocking: opens files or connects, and prepares the schema. Not for the event loop.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/clock.h"
#include "jobs/job_store.h"

namespace layer::jobs {

struct JobStoreSettings {
  std::string url;       // the --job-store setting; see the top
  std::string data_dir;  // where the default file lives
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  const Clock* clock = nullptr;  // null = Clock::System()
};

struct OpenedJobStore {
  std::unique_ptr<JobStore> store;
  // For the log: the backend and where, without secrets.
  std::string description;
  // Whether other processes may run jobs from this store at the same time (PostgreSQL): then a
  // starting gateway claims only jobs whose lease expired, never every running one.
  bool shared = false;
};

// InvalidArgument for a setting of another scheme or an empty sqlite:// path; otherwise the
// backend's Open() errors.
Result<OpenedJobStore> OpenJobStore(const JobStoreSettings& settings);

}  // namespace layer::jobs
