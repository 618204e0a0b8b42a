#include "snapshots/fs/fs_object_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "unit/jobs/temp_dir.h"

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

TEST_F(FsObjectStoreTest, PutGetOverwriteDelete) {
  ASSERT_TRUE(store_->Put("snapshots/ns/a.json", "one").ok());
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("objects/snapshots/ns/a.json")));
  EXPECT_EQ(*store_->Get("snapshots/ns/a.json"), "one");
  ASSERT_TRUE(store_->Put("snapshots/ns/a.json", std::string("two\0bytes", 9)).ok());
  EXPECT_EQ(*store_->Get("snapshots/ns/a.json"), std::string("two\0bytes", 9));
  ASSERT_TRUE(store_->Put("empty", "").ok());
  EXPECT_EQ(*store_->Get("empty"), "");
  ASSERT_TRUE(store_->Delete("snapshots/ns/a.json").ok());
  EXPECT_TRUE(store_->Get("snapshots/ns/a.json").status().IsNotFound());
  EXPECT_TRUE(store_->Delete("snapshots/ns/a.json").ok());  // idempotent
  EXPECT_TRUE(store_->Delete("never/was").ok());
}

TEST_F(FsObjectStoreTest, GetMissingIsNotFound) {
  EXPECT_TRUE(store_->Get("nope").status().IsNotFound());
  EXPECT_TRUE(store_->Get("no/such/dir/key").status().IsNotFound());
  ASSERT_TRUE(store_->Put("dir/key", "x").ok());
  EXPECT_TRUE(store_->Get("dir").status().IsNotFound());  // a directory is not an object
  EXPECT_TRUE(store_->Get("dir/key/deeper").status().IsNotFound());
}

TEST_F(FsObjectStoreTest, PutIfAbsentNeverReplaces) {
  auto first = store_->PutIfAbsent("k/v", "first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  auto second = store_->PutIfAbsent("k/v", "second");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(*store_->Get("k/v"), "first");
}

TEST_F(FsObjectStoreTest, ConcurrentPutIfAbsentHasOneWinner) {
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = store_->PutIfAbsent("race/key", "writer-" + std::to_string(i));
      ASSERT_TRUE(r.ok());
      if (*r) ++wins;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  auto keys = store_->List("");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{"race/key"});  // no temp files left visible
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Sub("objects/.staging")));
}

TEST_F(FsObjectStoreTest, ListIsLexicalAndByStringPrefix) {
  for (const char* k :
       {"snapshots/ns/0000000001000-bbbbbbb.json", "snapshots/ns/0000000000999-aaaaaaa.json",
        "snapshots/ns2/x.json", "snapshots/ns/sub/deep.json", "snapshot-policies/ns.json", "a"}) {
    ASSERT_TRUE(store_->Put(k, "x").ok()) << k;
  }
  auto ns = store_->List("snapshots/ns/");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(*ns, (std::vector<std::string>{"snapshots/ns/0000000000999-aaaaaaa.json",
                                           "snapshots/ns/0000000001000-bbbbbbb.json",
                                           "snapshots/ns/sub/deep.json"}));
  // A plain string prefix, as in S3: "snapshots/ns" also matches "snapshots/ns2/...".
  auto loose = store_->List("snapshots/ns");
  ASSERT_TRUE(loose.ok());
  EXPECT_EQ(loose->size(), 4u);
  auto partial = store_->List("snapshots/ns/0000000001");
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial, std::vector<std::string>{"snapshots/ns/0000000001000-bbbbbbb.json"});
  auto all = store_->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);
  EXPECT_TRUE(std::is_sorted(all->begin(), all->end()));
  EXPECT_EQ(all->front(), "a");
  auto none = store_->List("missing/");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // Odd prefixes are just filters; they never list outside the root.
  auto odd = store_->List("../");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->empty());
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

}  // namespace
}  // namespace layer::snapshots
