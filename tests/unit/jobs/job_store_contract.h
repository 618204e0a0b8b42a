// The JobStore contract suite: what every backend of jobs/job_store.h must do. The cases
// (job_store_contract_test.cc) check job creation and its validation, one running job per
// namespace (also under concurrent creates), Get/List and list order, checkpoints and cursors,
// finishing and cancelling, leases (claims of expired, released and all running jobs, concurrent
// claimers, the old owner losing the job), DeleteNamespace and retention (Prune), and the kinds:
// one running job per (namespace, kind), listing and claiming by kind, the warm calls seeing only
// warm jobs, params validation, retention per (namespace, kind).
//
// A backend joins the suite from its own test file with one instantiation:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, JobStoreContractTest,
//                            ::testing::Values(JobStoreContractParam{"Sqlite", factory}));
//
// where `factory` opens a fresh, empty store with the given clock and lease. What needs a second
// handle on the same data (a reopen, another connection or process) is tested in the backend's
// own file, not here.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "common/clock.h"
#include "jobs/job_store.h"

namespace layer::jobs {

// What the suite opens every backend with.
struct JobStoreContractSettings {
  const Clock* clock = nullptr;  // the store's clock, which the cases move
  std::chrono::milliseconds lease;  // the lease Create grants and Checkpoint renews
};

// One backend under test: the store and whatever it needs to live (a temporary directory, a
// database connection), released when the case ends.
// Creates a warm job that must be new (a test failure otherwise) and returns it.
inline WarmJob MustCreateWarmJob(JobStore& store, const std::string& ns, const std::string& owner,
                                 int page_size) {
  auto r = store.Create({ns, page_size, owner});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return WarmJob{};
  EXPECT_TRUE(r->created);
  return r->job;
}

class JobStoreBackend {
 public:
  virtual ~JobStoreBackend() = default;
  virtual JobStore& store() = 0;
};

struct JobStoreContractParam {
  std::string name;  // the backend as printed (see PrintTo)
  // Opens a fresh, empty store for every call; nullptr (after reporting why with ADD_FAILURE)
  // when the backend cannot be opened, or after GTEST_SKIP when what it needs (a server) is not
  // available here.
  std::function<std::unique_ptr<JobStoreBackend>(const JobStoreContractSettings&)> factory;
};

// gtest prints a case's parameter when it fails, and CMake's test discovery names each ctest
// case after it (Instance/Suite.Case/<name>); the factory has nothing readable to print.
inline void PrintTo(const JobStoreContractParam& param, std::ostream* os) { *os << param.name; }

class JobStoreContractTest : public ::testing::TestWithParam<JobStoreContractParam> {
 protected:
  static constexpr int64_t kT0 = 1779789600000;  // 2026-05-26T10:00:00.000Z
  static constexpr std::chrono::milliseconds kLease{30000};

  void SetUp() override {
    backend_ = GetParam().factory({&clock_, kLease});
    if (IsSkipped()) return;  // the backend's server is not available here (the factory said why)
    ASSERT_NE(backend_, nullptr) << "backend " << GetParam().name << " did not open";
    store_ = &backend_->store();
  }

  WarmJob MustCreate(const std::string& ns, const std::string& owner = "gw-a",
                     int page_size = 1000) {
    return MustCreateWarmJob(*store_, ns, owner, page_size);
  }

  ManualClock clock_{kT0};
  std::unique_ptr<JobStoreBackend> backend_;  // after clock_: its store may read the clock to the end
  JobStore* store_ = nullptr;
};

}  // namespace layer::jobs
