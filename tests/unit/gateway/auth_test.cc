#include "gateway/auth.h"

#include <gtest/gtest.h>

namespace layer::gateway {
namespace {

std::string Body(const AuthResult& r) { return r.denied ? r.denied->body() : std::string(); }

TEST(Authenticator, DeriveWithUpstreamKeyAcceptsOnlyThatKey) {
  ServeConfig cfg;
  cfg.upstream_api_key = "tpuf_secret";
  Authenticator a(cfg);
  auto ok = a.Check("Bearer tpuf_secret", kScopeWrite);
  EXPECT_FALSE(ok.denied);
  EXPECT_EQ(ok.upstream_authorization, "Bearer tpuf_secret");
  auto bad = a.Check("Bearer other", kScopeRead);
  ASSERT_TRUE(bad.denied);
  EXPECT_EQ(bad.denied->result_int(), 403);
  EXPECT_EQ(Body(bad), R"({"error":"invalid API key"})");
  auto missing = a.Check("", kScopeRead);
  ASSERT_TRUE(missing.denied);
  EXPECT_EQ(missing.denied->result_int(), 401);
  EXPECT_EQ(Body(missing), R"({"error":"missing or malformed Authorization: Bearer header"})");
}

TEST(Authenticator, DeriveWithoutUpstreamKeyForwardsTheCallerToken) {
  ServeConfig cfg;
  Authenticator a(cfg);
  auto r = a.Check("Bearer caller-token", kScopeWrite);
  EXPECT_FALSE(r.denied);
  EXPECT_EQ(r.upstream_authorization, "Bearer caller-token");
  EXPECT_EQ(a.Check("Token x", kScopeRead).denied->result_int(), 401);
}

TEST(Authenticator, KeysModeEnforcesScopes) {
  ServeConfig cfg;
  cfg.auth_mode = AuthMode::kKeys;
  cfg.upstream_api_key = "up";
  cfg.gateway_keys = {{"r1", kScopeRead}, {"w1", kScopeWrite}, {"a1", kScopeAdmin}};
  Authenticator a(cfg);
  EXPECT_FALSE(a.Check("Bearer r1", kScopeRead).denied);
  auto r = a.Check("Bearer r1", kScopeWrite);
  ASSERT_TRUE(r.denied);
  EXPECT_EQ(r.denied->result_int(), 403);
  EXPECT_EQ(Body(r), R"({"error":"insufficient API key scope","required_scope":"write"})");
  EXPECT_FALSE(a.Check("Bearer w1", kScopeWrite).denied);
  EXPECT_EQ(Body(a.Check("Bearer w1", kScopeRead)),
            R"({"error":"insufficient API key scope","required_scope":"read"})");
  auto admin = a.Check("Bearer a1", kScopeWrite);
  EXPECT_FALSE(admin.denied);
  EXPECT_EQ(admin.upstream_authorization, "Bearer up");
  EXPECT_EQ(Body(a.Check("Bearer nope", kScopeRead)), R"({"error":"invalid API key"})");
}

TEST(Authenticator, KeysModeNeverForwardsGatewayKeys) {
  ServeConfig cfg;
  cfg.auth_mode = AuthMode::kKeys;
  cfg.gateway_keys = {{"gwsecret", kScopeAdmin}};
  Authenticator a(cfg);
  auto r = a.Check("Bearer gwsecret", kScopeRead);
  EXPECT_FALSE(r.denied);
  EXPECT_TRUE(r.upstream_authorization.empty());
}

TEST(Authenticator, OpenModeNeedsNoHeader) {
  ServeConfig cfg;
  cfg.auth_mode = AuthMode::kOpen;
  Authenticator a(cfg);
  auto r = a.Check("", kScopeWrite);
  EXPECT_FALSE(r.denied);
  EXPECT_TRUE(r.upstream_authorization.empty());
  EXPECT_EQ(a.Check("Bearer t", kScopeWrite).upstream_authorization, "Bearer t");
}

}  // namespace
}  // namespace layer::gateway
