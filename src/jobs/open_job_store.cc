#include "jobs/open_job_store.h"

#include <filesystem>
#include <utility>

#include "common/config.h"
#include "jobs/postgres/postgres_job_store.h"
#include "jobs/sqlite/sqlite_job_store.h"

namespace layer::jobs {

Result<OpenedJobStore> OpenJobStore(const JobStoreSettings& settings) {
  const std::string& url = settings.url;
  if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    PostgresJobStoreOptions opts;
    opts.conninfo = url;
    opts.lease = settings.lease;
    opts.clock = settings.clock;
    auto store = PostgresJobStore::Open(std::move(opts));
    if (!store.ok()) return store.status();
    return OpenedJobStore{std::move(store).value(), "postgresql " + RedactConnectionString(url),
                          true};
  }
  std::string path;
  if (url.empty()) {
    path = (std::filesystem::path(settings.data_dir) / "jobs.sqlite3").string();
  } else if (url.starts_with("sqlite://")) {
    path = url.substr(9);
    if (path.empty()) return Status::InvalidArgument("--job-store sqlite:// needs a path");
  } else {
    return Status::InvalidArgument("--job-store must be postgresql://... or sqlite:///PATH (got '" +
                                   RedactConnectionString(url) + "')");
  }
  SqliteJobStoreOptions opts;
  opts.path = path;
  opts.lease = settings.lease;
  opts.clock = settings.clock;
  auto store = SqliteJobStore::Open(std::move(opts));
  if (!store.ok()) return store.status();
  return OpenedJobStore{std::move(store).value(), "sqlite " + path, false};
}

}  // namespace layer::jobs
