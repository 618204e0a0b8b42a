// The ObjectStore contract suite: what every backend of snapshots/object_store.h must do. The
// cases (object_store_contract_test.cc) check Put/Get/overwrite/Delete (Delete idempotent, Get
// of a missing key NotFound), PutIfAbsent (never replaces; one winner among racing writers),
// List (lexical order, plain string prefixes) and the keys every backend must accept.
//
// A backend joins the suite from its own test file with one instantiation:
//
//   INSTANTIATE_TEST_SUITE_P(Fs, ObjectStoreContractTest,
//                            ::testing::Values(ObjectStoreContractParam{"Fs", factory}));
//
// where `factory` opens a fresh, empty store. Key rules stricter than the portable ones, where
// objects land and what survives a reopen are tested in the backend's own file.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "snapshots/object_store.h"

namespace layer::snapshots {

// One backend under test: the store and whatever it needs to live (a temporary directory, a
// bucket), released when the case ends.
class ObjectStoreBackend {
 public:
  virtual ~ObjectStoreBackend() = default;
  virtual ObjectStore& store() = 0;
};

struct ObjectStoreContractParam {
  std::string name;  // the backend as printed (see PrintTo)
  // Opens a fresh, empty store for every call; nullptr (after reporting why with ADD_FAILURE,
  // or GTEST_SKIP when an external store it needs is not installed) when it cannot.
  std::function<std::unique_ptr<ObjectStoreBackend>()> factory;
};

// gtest prints a case's parameter when it fails, and CMake's test discovery names each ctest
// case after it (Instance/Suite.Case/<name>); the factory has nothing readable to print.
inline void PrintTo(const ObjectStoreContractParam& param, std::ostream* os) { *os << param.name; }

class ObjectStoreContractTest : public ::testing::TestWithParam<ObjectStoreContractParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().factory();
    if (IsSkipped()) return;  // the factory skipped (an external store that is not there)
    ASSERT_NE(backend_, nullptr) << "backend " << GetParam().name << " did not open";
    store_ = &backend_->store();
  }

  std::unique_ptr<ObjectStoreBackend> backend_;
  ObjectStore* store_ = nullptr;
};

// `writers` threads race PutIfAbsent on `key` (each with its own bytes); returns how many won.
// Shared with backend tests that check what such a race leaves behind in their storage.
inline int RacePutIfAbsent(ObjectStore& store, std::string_view key, int writers) {
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < writers; ++i) {
    threads.emplace_back([&, i] {
      auto r = store.PutIfAbsent(key, "writer-" + std::to_string(i));
      ASSERT_TRUE(r.ok());
      if (*r) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  return wins.load();
}

}  // namespace layer::snapshots
