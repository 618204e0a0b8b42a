#include "common/config.h"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <cstdlib>

namespace layer {
namespace {

// Parses `args` with the flags `add` declares, then validates, as a subcommand does.
template <typename Config>
Result<Config> ParseWith(void (*add)(CLI::App&, Config&), std::vector<std::string> args) {
  CLI::App app;
  Config cfg;
  add(app, cfg);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(e.what());
  }
  if (Status st = cfg.Validate(); !st.ok()) return st;
  return cfg;
}

Result<ServeConfig> Parse(std::vector<std::string> args) {
  return ParseWith(&AddServeFlags, std::move(args));
}

TEST(Config, DefaultsAreValid) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "0.0.0.0:8080");
  EXPECT_EQ(c->max_body_bytes, 512ull << 20);
  EXPECT_EQ(c->auth_mode, AuthMode::kDerive);
}

TEST(Config, KeyValidationTtlIsADuration) {
  EXPECT_EQ(Parse({})->key_validation_ttl_ms, 60000);
  EXPECT_EQ(Parse({"--key-validation-ttl", "250ms"})->key_validation_ttl_ms, 250);
  EXPECT_EQ(Parse({"--key-validation-ttl", "5m"})->key_validation_ttl_ms, 300000);
  EXPECT_EQ(Parse({"--key-validation-ttl", "30"})->key_validation_ttl_ms, 30000);
  setenv("LAYER_KEY_VALIDATION_TTL", "2s", 1);
  auto env = Parse({});
  unsetenv("LAYER_KEY_VALIDATION_TTL");
  EXPECT_EQ(env->key_validation_ttl_ms, 2000);
  for (const char* bad : {"", "s", "-1s", "1.5s", "10 s", "1w", "0"}) {
    auto c = Parse({"--key-validation-ttl", bad});
    EXPECT_FALSE(c.ok()) << bad;
  }
}

TEST(Config, DurationsParse) {
  EXPECT_EQ(*ParseDurationMs("1s"), 1000);
  EXPECT_EQ(*ParseDurationMs("1h"), 3600000);
  EXPECT_EQ(*ParseDurationMs("0ms"), 0);
  EXPECT_FALSE(ParseDurationMs("1000000000000000s").ok());
  EXPECT_FALSE(ParseDurationMs("ms").ok());
  // Found by fuzz_config: twelve digits of days overflowed the milliseconds.
  EXPECT_FALSE(ParseDurationMs("222022222222d").ok());
  EXPECT_EQ(*ParseDurationMs("106751991167d"), 106751991167 * 86'400'000);  // the longest
  EXPECT_FALSE(ParseDurationMs("106751991168d").ok());
  EXPECT_EQ(*ParseDurationMs("999999999999ms"), 999999999999);
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

TEST(Config, MaxConnectionsIsPositiveWithAnEnvironmentTwin) {
  EXPECT_EQ(Parse({})->max_connections, 10000);
  EXPECT_EQ(Parse({"--max-connections", "300"})->max_connections, 300);
  setenv("LAYER_MAX_CONNECTIONS", "42", 1);
  auto env = Parse({});
  unsetenv("LAYER_MAX_CONNECTIONS");
  EXPECT_EQ(env->max_connections, 42);
  auto zero = Parse({"--max-connections", "0"});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("--max-connections"), std::string::npos);
  EXPECT_FALSE(Parse({"--max-connections", "-1"}).ok());
}

TEST(Config, PinThreadsIsAutoPinnedWithOneWorkerPerCoreOnly) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->pin_threads, "auto");
  EXPECT_TRUE(d->PinsThreads());  // --threads 0: one worker per core
  auto counted = Parse({"--threads", "3"});
  ASSERT_TRUE(counted.ok());
  EXPECT_FALSE(counted->PinsThreads());
  auto on = Parse({"--pin-threads", "true", "--threads", "3"});
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->PinsThreads());
  auto off = Parse({"--pin-threads", "false"});
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->PinsThreads());
  setenv("LAYER_PIN_THREADS", "false", 1);
  auto env = Parse({});
  unsetenv("LAYER_PIN_THREADS");
  ASSERT_TRUE(env.ok());
  EXPECT_FALSE(env->PinsThreads());
  auto bad = Parse({"--pin-threads", "sometimes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--pin-threads must be auto, true or false"),
            std::string::npos);
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

TEST(Config, ObjectStoreFlagsAndTheirEnvironmentTwins) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->object_store, "");  // the fs backend in <data-dir>/objects
  EXPECT_NE(d->Redacted().find("object_store=<data_dir>/objects"), std::string::npos);
  auto c = Parse({"--object-store", "s3://bkt/layer", "--s3-endpoint", "http://127.0.0.1:9000",
                  "--s3-region", "eu-west-1"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->object_store, "s3://bkt/layer");
  EXPECT_EQ(c->s3_endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(c->s3_region, "eu-west-1");
  EXPECT_NE(c->Redacted().find("object_store=s3://bkt/layer s3_endpoint=http://127.0.0.1:9000 "
                               "s3_region=eu-west-1"),
            std::string::npos)
      << c->Redacted();
  setenv("LAYER_OBJECT_STORE", "file:///srv/objects", 1);
  setenv("LAYER_S3_REGION", "auto", 1);
  setenv("LAYER_S3_ENDPOINT", "https://r2.example.com", 1);
  auto env = Parse({});
  unsetenv("LAYER_OBJECT_STORE");
  unsetenv("LAYER_S3_REGION");
  unsetenv("LAYER_S3_ENDPOINT");
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->object_store, "file:///srv/objects");
  EXPECT_EQ(env->s3_region, "auto");
  EXPECT_EQ(env->s3_endpoint, "https://r2.example.com");
  auto dir = Parse({"--object-store-dir", "/srv/o"});
  ASSERT_TRUE(dir.ok());
  EXPECT_NE(dir->Redacted().find("object_store=file:///srv/o"), std::string::npos);
}

TEST(Config, BadObjectStoreFlagsSayWhy) {
  auto says = [](std::vector<std::string> args, const char* what) {
    auto c = Parse(args);
    ASSERT_FALSE(c.ok()) << what;
    EXPECT_NE(c.status().message().find(what), std::string::npos) << c.status().message();
  };
  says({"--object-store", "/plain/path"}, "s3://BUCKET/PREFIX or file:///PATH");
  says({"--object-store", "gs://bucket"}, "s3://BUCKET/PREFIX or file:///PATH");
  says({"--object-store", "s3://b/p", "--object-store-dir", "/x"}, "give one");
  says({"--object-store", "s3://b/p", "--s3-endpoint", "localhost:9000"}, "--s3-endpoint");
  says({"--object-store", "s3://b/p", "--s3-endpoint", "http://h:9000/?x=1"}, "--s3-endpoint");
}

TEST(Config, CacheUrlFlagItsEnvironmentTwinAndItsPassword) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cache, "");  // the embedded RocksDB in <data-dir>/cache
  EXPECT_NE(d->Redacted().find("cache_dir=<data_dir>/cache"), std::string::npos);
  auto c = Parse({"--cache", "redis://:hunter2@cache.internal:6380/2"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cache, "redis://:hunter2@cache.internal:6380/2");
  EXPECT_EQ(c->Redacted().find("hunter2"), std::string::npos) << c->Redacted();
  EXPECT_NE(c->Redacted().find("redis://:<redacted>@cache.internal:6380/2"), std::string::npos)
      << c->Redacted();
  auto cl = Parse({"--cache", "redis-cluster://:hunter2@10.0.0.1:7000,10.0.0.2:7000"});
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  EXPECT_EQ(cl->Redacted().find("hunter2"), std::string::npos) << cl->Redacted();
  EXPECT_NE(cl->Redacted().find("redis-cluster://:<redacted>@10.0.0.1:7000,10.0.0.2:7000"),
            std::string::npos)
      << cl->Redacted();
  setenv("LAYER_CACHE", "rocksdb:///srv/cache", 1);
  auto env = Parse({});
  unsetenv("LAYER_CACHE");
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->cache, "rocksdb:///srv/cache");
  for (std::vector<std::string> bad :
       {std::vector<std::string>{"--cache", "memcached://h:1"},
        std::vector<std::string>{"--cache", "rocksdb://relative"},
        std::vector<std::string>{"--cache", "rocksdb:///x", "--cache-dir", "/y"}}) {
    EXPECT_FALSE(Parse(bad).ok()) << bad[1];
  }
}

TEST(Config, JobStoreFlagItsEnvironmentTwinAndItsRedaction) {
  auto d = Parse({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->job_store, "");  // the embedded SQLite file
  EXPECT_NE(d->Redacted().find("job_store=<data_dir>/jobs.sqlite3"), std::string::npos);
  auto pg = Parse({"--job-store", "postgresql://layer:pw-secret@db.internal:5432/jobs"});
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  EXPECT_EQ(pg->job_store, "postgresql://layer:pw-secret@db.internal:5432/jobs");
  EXPECT_NE(pg->Redacted().find("job_store=postgresql://layer:<redacted>@db.internal:5432/jobs"),
            std::string::npos)
      << pg->Redacted();
  EXPECT_EQ(pg->Redacted().find("pw-secret"), std::string::npos);
  setenv("LAYER_JOB_STORE", "sqlite:///srv/jobs.sqlite3", 1);
  auto env = Parse({});
  unsetenv("LAYER_JOB_STORE");
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->job_store, "sqlite:///srv/jobs.sqlite3");
  auto bad = Parse({"--job-store", "mysql://u:hidden@h/db"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--job-store"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("hidden"), std::string::npos) << bad.status().message();
}

TEST(Config, RedactConnectionStringHidesEveryPassword) {
  EXPECT_EQ(RedactConnectionString("postgresql://u:p%40ss@h:5432/db?sslmode=require"),
            "postgresql://u:<redacted>@h:5432/db?sslmode=require");
  EXPECT_EQ(RedactConnectionString("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(RedactConnectionString("postgresql://h1,h2/db"), "postgresql://h1,h2/db");
  EXPECT_EQ(RedactConnectionString("postgresql://u@h/db?password=pw&sslmode=disable"),
            "postgresql://u@h/db?password=<redacted>&sslmode=disable");
  EXPECT_EQ(RedactConnectionString("postgresql://u:a@b@h/db"), "postgresql://u:<redacted>@h/db");
  EXPECT_EQ(RedactConnectionString("host=h user=u password=pw dbname=d"),
            "host=h user=u password=<redacted> dbname=d");
  EXPECT_EQ(RedactConnectionString("host=h password = 'p w\\' x' dbname=d"),
            "host=h password=<redacted> dbname=d");
  EXPECT_EQ(RedactConnectionString("sqlite:///srv/jobs.sqlite3"), "sqlite:///srv/jobs.sqlite3");
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

Result<OriginConfig> ParseOrigin(std::vector<std::string> args) {
  return ParseWith(&AddOriginFlags, std::move(args));
}

TEST(OriginConfig, ApiKeysAreRepeatableWithACommaSeparatedEnvTwin) {
  auto open = ParseOrigin({});
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_TRUE(open->api_keys.empty());
  auto c = ParseOrigin({"--api-key", "tpuf_a", "--api-key", "tpuf_b,tpuf_c"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->api_keys, (std::vector<std::string>{"tpuf_a", "tpuf_b", "tpuf_c"}));
  // Empty items of a list are skipped, as in LAYER_GATEWAY_KEYS.
  auto gaps = ParseOrigin({"--api-key", "tpuf_a,,tpuf_b,"});
  ASSERT_TRUE(gaps.ok()) << gaps.status().ToString();
  EXPECT_EQ(gaps->api_keys, (std::vector<std::string>{"tpuf_a", "tpuf_b"}));
  setenv("LAYER_ORIGIN_API_KEYS", "tpuf_x,tpuf_y", 1);
  auto env = ParseOrigin({});
  auto flag = ParseOrigin({"--api-key", "tpuf_flag"});
  setenv("LAYER_ORIGIN_API_KEYS", "", 1);
  auto empty_env = ParseOrigin({});
  unsetenv("LAYER_ORIGIN_API_KEYS");
  ASSERT_TRUE(empty_env.ok()) << empty_env.status().ToString();
  EXPECT_TRUE(empty_env->api_keys.empty());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env->api_keys, (std::vector<std::string>{"tpuf_x", "tpuf_y"}));
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->api_keys, (std::vector<std::string>{"tpuf_flag"}));
}

TEST(OriginConfig, InvalidApiKeysAreRefused) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--api-key", "has space"},
                                       {"--api-key", ""},
                                       {"--api-key", "tab\tkey"}}) {
    auto c = ParseOrigin(bad);
    ASSERT_FALSE(c.ok()) << bad[1];
    EXPECT_NE(c.status().message().find("--api-key"), std::string::npos) << bad[1];
  }
  EXPECT_TRUE(ValidateApiKey("tpuf_0123456789abcdefABCDEF-_.").ok());
  EXPECT_FALSE(ValidateApiKey(std::string("a\x7f")).ok());
}

TEST(OriginConfig, RedactedShowsOnlyTheNumberOfKeys) {
  auto c = ParseOrigin({"--api-key", "tpuf_supersecret1", "--api-key", "tpuf_supersecret2"});
  ASSERT_TRUE(c.ok());
  std::string r = c->Redacted();
  EXPECT_EQ(r.find("supersecret"), std::string::npos);
  EXPECT_NE(r.find("api_keys=<redacted> x2"), std::string::npos) << r;
  auto open = ParseOrigin({});
  EXPECT_NE(open->Redacted().find("api_keys=<none"), std::string::npos);
}

}  // namespace
}  // namespace layer
