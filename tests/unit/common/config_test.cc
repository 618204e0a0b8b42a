#include "common/config.h"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <cstdlib>

namespace layer {
namespace {

Result<ServeConfig> Parse(std::vector<std::string> args) {
  CLI::App app;
  ServeConfig cfg;
  AddServeFlags(app, cfg);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(e.what());
  }
  if (Status st = cfg.Validate(); !st.ok()) return st;
  return cfg;
}

TEST(Config, DefaultsAreValid) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "0.0.0.0:8080");
  EXPECT_EQ(c->max_body_bytes, 512ull << 20);
  EXPECT_EQ(c->auth_mode, AuthMode::kDerive);
}

TEST(Config, FlagsOverrideAndGatewayKeysParse) {
  auto c = Parse({"--listen", "127.0.0.1:0", "--auth-mode", "keys", "--gateway-key",
                  "k1:read", "--gateway-key", "k2:read+write,k3", "--upstream",
                  "https://gcp-us-central1.turbopuffer.com"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->gateway_keys.size(), 3u);
  EXPECT_EQ(c->gateway_keys[0].scopes, unsigned(kScopeRead));
  EXPECT_EQ(c->gateway_keys[1].scopes, unsigned(kScopeRead | kScopeWrite));
  EXPECT_EQ(c->gateway_keys[2].scopes, unsigned(kScopeRead | kScopeWrite | kScopeAdmin));
}

TEST(Config, EnvironmentFallbacks) {
  setenv("LAYER_LISTEN", "127.0.0.1:9999", 1);
  setenv("TURBOPUFFER_API_KEY", "tpuf_envkey", 1);
  auto c = Parse({});
  unsetenv("LAYER_LISTEN");
  unsetenv("TURBOPUFFER_API_KEY");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "127.0.0.1:9999");
  EXPECT_EQ(c->upstream_api_key, "tpuf_envkey");
  auto flag = Parse({"--listen", "127.0.0.1:1"});
  EXPECT_EQ(flag->listen, "127.0.0.1:1");
}

TEST(Config, InvalidValuesFailWithAClearMessage) {
  EXPECT_FALSE(Parse({"--listen", "nonsense"}).ok());
  EXPECT_FALSE(Parse({"--listen", "1.2.3.4:70000"}).ok());
  EXPECT_FALSE(Parse({"--upstream", "ftp://x"}).ok());
  EXPECT_FALSE(Parse({"--auth-mode", "bogus"}).ok());
  EXPECT_FALSE(Parse({"--auth-mode", "keys"}).ok());
  EXPECT_FALSE(Parse({"--gateway-key", "k:fly"}).ok());
  EXPECT_FALSE(Parse({"--upstream-timeout-ms", "0"}).ok());
  EXPECT_FALSE(Parse({"--upstream-ca-file", "/nonexistent/ca.pem"}).ok());
  auto st = Parse({"--auth-mode", "keys"}).status();
  EXPECT_NE(st.message().find("--gateway-key"), std::string::npos);
}

TEST(Config, RequestSliceIsZeroOrWithinTheKernelsRange) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->request_slice_us, 100);
  for (const char* ok : {"0", "100", "3000", "100000"}) {
    auto c = Parse({"--request-slice-us", ok});
    ASSERT_TRUE(c.ok()) << ok << ": " << c.status().ToString();
    EXPECT_EQ(c->request_slice_us, std::stoll(ok));
  }
  for (const char* bad : {"-1", "1", "99", "100001"}) {
    auto c = Parse({"--request-slice-us", bad});
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("--request-slice-us"), std::string::npos);
  }
  setenv("LAYER_REQUEST_SLICE_US", "0", 1);
  auto env = Parse({});
  unsetenv("LAYER_REQUEST_SLICE_US");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->request_slice_us, 0);
}

TEST(Config, RedactedHidesSecrets) {
  auto c = Parse({"--upstream-api-key", "tpuf_topsecret", "--auth-mode", "keys",
                  "--gateway-key", "gwsecret:read"});
  ASSERT_TRUE(c.ok());
  std::string r = c->Redacted();
  EXPECT_EQ(r.find("topsecret"), std::string::npos);
  EXPECT_EQ(r.find("gwsecret"), std::string::npos);
  EXPECT_NE(r.find("<redacted>"), std::string::npos);
}

}  // namespace
}  // namespace layer
