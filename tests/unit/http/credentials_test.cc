// http::Credentials and TenantTag (docs/design.md §9.7): tags are stable hashes that never reveal
// the key; background work gets the fixed upstream key, or the remembered key of its tenant.
#include "http/credentials.h"

#include <gtest/gtest.h>

#include <string>

namespace layer::http {
namespace {

TEST(TenantTagTest, IsAStableHashOfTheKey) {
  const std::string tag = TenantTag("secret-key");
  EXPECT_EQ(tag.size(), 16u);
  EXPECT_EQ(tag.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(TenantTag("secret-key"), tag);
  EXPECT_NE(TenantTag("secret-kez"), tag);
  EXPECT_EQ(tag.find("secret"), std::string::npos);
  // SHA-256("abc") begins ba7816bf8f01cfea.
  EXPECT_EQ(TenantTag("abc"), "ba7816bf8f01cfea");
}

TEST(CredentialsTest, RemembersEachTenantsKeyForItsPartitions) {
  Credentials creds;
  EXPECT_FALSE(creds.ForPartition("products@t1"));
  creds.Remember("t1", "Bearer k1");
  creds.Remember("t2", "Bearer k2");
  EXPECT_EQ(creds.ForPartition("products@t1"), "Bearer k1");
  EXPECT_EQ(creds.ForPartition("other@t2"), "Bearer k2");
  EXPECT_EQ(creds.ForPartition("products"), "");  // the one tenant: none, as its requests
  creds.Remember("", "Bearer k0");
  EXPECT_EQ(creds.ForPartition("products"), "Bearer k0");
  creds.Remember("t1", "");  // nothing to remember
  EXPECT_EQ(creds.ForTag("t1"), "Bearer k1");
}

TEST(CredentialsTest, AFixedUpstreamKeyServesEveryTenant) {
  Credentials creds("Bearer upstream");
  creds.Remember("t1", "Bearer k1");
  EXPECT_TRUE(creds.fixed());
  EXPECT_EQ(creds.ForPartition("products@t1"), "Bearer upstream");
  EXPECT_EQ(creds.ForPartition("products"), "Bearer upstream");
}

TEST(CredentialsTest, HoldsAtMostItsCapacityAndForgetsTheLeastRecent) {
  Credentials creds("", 2);
  creds.Remember("a", "Bearer a");
  creds.Remember("b", "Bearer b");
  creds.Remember("c", "Bearer c");
  EXPECT_FALSE(creds.ForTag("a"));
  EXPECT_EQ(creds.ForTag("b"), "Bearer b");
  EXPECT_EQ(creds.ForTag("c"), "Bearer c");
}

}  // namespace
}  // namespace layer::http
