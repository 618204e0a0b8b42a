// The cases of the ObjectStore contract suite (see object_store_contract.h). Each runs once per
// backend instantiated from a backend's test file.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "unit/snapshots/object_store_contract.h"

namespace layer::snapshots {
namespace {

TEST_P(ObjectStoreContractTest, PutGetOverwriteDelete) {
  ASSERT_TRUE(store_->Put("snapshots/ns/a.json", "one").ok());
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

TEST_P(ObjectStoreContractTest, GetMissingIsNotFound) {
  EXPECT_TRUE(store_->Get("nope").status().IsNotFound());
  EXPECT_TRUE(store_->Get("no/such/dir/key").status().IsNotFound());
  ASSERT_TRUE(store_->Put("dir/key", "x").ok());
  EXPECT_TRUE(store_->Get("dir").status().IsNotFound());  // a directory is not an object
  EXPECT_TRUE(store_->Get("dir/key/deeper").status().IsNotFound());
}

TEST_P(ObjectStoreContractTest, PutIfAbsentNeverReplaces) {
  auto first = store_->PutIfAbsent("k/v", "first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first);
  auto second = store_->PutIfAbsent("k/v", "second");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(*store_->Get("k/v"), "first");
}

TEST_P(ObjectStoreContractTest, ConcurrentPutIfAbsentHasOneWinner) {
  EXPECT_EQ(RacePutIfAbsent(*store_, "race/key", 8), 1);
  auto keys = store_->List("");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, std::vector<std::string>{"race/key"});  // no temp files left visible
}

TEST_P(ObjectStoreContractTest, ListIsLexicalAndByStringPrefix) {
  for (const char* k :
       {"snapshots/ns/0000000001000-bbbbbbb.json", "snapshots/ns/0000000000999-aaaaaaa.json",
        "snapshots/ns2/x.json", "snapshots/ns/sub/deep.json", "snapshot-policies/ns.json", "a"}) {
    ASSERT_TRUE(store_->Put(k, "x").ok()) << k;
  }
  auto ns = store_->List("snapshots/ns/");
  ASSERT_TRUE(ns.ok()) << ns.status().ToString();
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

// Every backend accepts keys of non-empty [A-Za-z0-9_.-] segments other than "." and "..",
// including segments that start with a dot or contain "..".
TEST_P(ObjectStoreContractTest, AcceptsEveryPortableKey) {
  for (const char* key :
       {"top", ".hidden-ns/x", "a/..b/c..", "snapshots/ns/x.json", "a.b-c_d", "AZ/az/09/_.-"}) {
    ASSERT_TRUE(store_->Put(key, key).ok()) << key;
    auto got = store_->Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    EXPECT_EQ(*got, key);
    auto listed = store_->List(key);
    ASSERT_TRUE(listed.ok()) << key;
    EXPECT_EQ(*listed, std::vector<std::string>{key});
  }
}

// A Put is atomic: a reader racing a writer sees the old bytes or the new ones, never a mix or
// a truncated object.
TEST_P(ObjectStoreContractTest, ReadersNeverSeeAPartialPut) {
  const std::string big(64 << 10, 'a'), small(16 << 10, 'b');
  ASSERT_TRUE(store_->Put("obj", big).ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 40; ++i) EXPECT_TRUE(store_->Put("obj", i % 2 ? big : small).ok());
    done = true;
  });
  int reads = 0, torn = 0;
  while (!done.load()) {
    auto got = store_->Get("obj");
    if (!got.ok()) {
      ADD_FAILURE() << got.status().ToString();
      break;  // the writer still has to be joined
    }
    ++reads;
    if (*got != big && *got != small) ++torn;
  }
  writer.join();
  EXPECT_EQ(torn, 0) << "of " << reads << " reads";
}

}  // namespace
}  // namespace layer::snapshots
