#include "snapshots/fs/fs_object_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "unit/jobs/temp_dir.h"
#include "unit/snapshots/object_store_contract.h"

namespace layer::snapshots {
namespace {

class FsObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FsObjectStore::Open(dir_.Sub("objects"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  layer::testing::StorageTempDir dir_;
  std::unique_ptr<FsObjectStore> store_;
};

// Where objects land; what any backend's Put/Get/Delete do is in the contract suite.
TEST_F(FsObjectStoreTest, AKeyIsAFileUnderTheRoot) {
  ASSERT_TRUE(store_->Put("snapshots/ns/a.json", "one").ok());
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("objects/snapshots/ns/a.json")));
}

// Racing PutIfAbsent calls (one wins: see the contract suite) leave no temp file behind.
TEST_F(FsObjectStoreTest, ConcurrentPutIfAbsentLeavesNoStagingFiles) {
  RacePutIfAbsent(*store_, "race/key", 8);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Sub("objects/.staging")));
}

TEST_F(FsObjectStoreTest, RejectsKeysThatCouldEscapeTheRoot) {
  for (std::string bad :
       {std::string(""), std::string("/etc/passwd"), std::string("../outside"),
        std::string("a/../../outside"), std::string("a/./b"), std::string("."), std::string(".."),
        std::string("a//b"), std::string("a/"), std::string("a\\..\\b"), std::string("a\0b", 3),
        std::string(".staging/x"), std::string(2000, 'k')}) {
    EXPECT_EQ(FsObjectStore::ValidateKey(bad).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->Put(bad, "x").code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(store_->PutIfAbsent(bad, "x").status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Get(bad).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Delete(bad).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("outside")));
  for (const char* good : {"top", ".hidden-ns/x", "a/..b/c..", "snapshots/ns/x.json", "a.b-c_d"}) {
    EXPECT_TRUE(FsObjectStore::ValidateKey(good).ok()) << good;
    EXPECT_TRUE(store_->Put(good, "ok").ok()) << good;
  }
}

TEST_F(FsObjectStoreTest, ObjectsSurviveReopen) {
  ASSERT_TRUE(store_->Put("p/q", "kept").ok());
  store_.reset();
  auto again = FsObjectStore::Open(dir_.Sub("objects/"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->Get("p/q"), "kept");
  EXPECT_EQ(*(*again)->List("p/"), std::vector<std::string>{"p/q"});
}

TEST(FsObjectStoreOpenTest, FailsWhenRootIsAFile) {
  layer::testing::StorageTempDir dir;
  ASSERT_TRUE(FsObjectStore::Open(dir.Sub("r")).ok());
  auto store = FsObjectStore::Open(dir.Sub("r"));
  ASSERT_TRUE((*store)->Put("file", "x").ok());
  EXPECT_FALSE(FsObjectStore::Open(dir.Sub("r/file")).ok());
  EXPECT_EQ(FsObjectStore::Open("").status().code(), StatusCode::kInvalidArgument);
  // A key whose parent is a file cannot be written.
  EXPECT_FALSE((*store)->Put("file/child", "x").ok());
}

// The contract suite's backend: a root directory of its own.
class FsContractBackend final : public ObjectStoreBackend {
 public:
  static std::unique_ptr<ObjectStoreBackend> Open() {
    auto backend = std::make_unique<FsContractBackend>();
    auto s = FsObjectStore::Open(backend->dir_.Sub("objects"));
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      return nullptr;
    }
    backend->store_ = std::move(s).value();
    return backend;
  }
  ObjectStore& store() override { return *store_; }

 private:
  layer::testing::StorageTempDir dir_;
  std::unique_ptr<FsObjectStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Fs, ObjectStoreContractTest,
                         ::testing::Values(ObjectStoreContractParam{"Fs",
                                                                    &FsContractBackend::Open}));

}  // namespace
}  // namespace layer::snapshots
