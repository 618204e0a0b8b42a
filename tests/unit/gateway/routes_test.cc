#include "gateway/routes.h"

#include <gtest/gtest.h>

namespace layer::gateway {
namespace {

using http::Verb;

TEST(Routes, MatchesTurbopufferRoutesAndBuildsUpstreamPaths) {
  struct Case {
    Verb method;
    const char* path;
    tpuf::RouteId id;
    const char* upstream;
    unsigned scope;
  } cases[] = {
      {Verb::post, "/v2/namespaces/ns1", tpuf::RouteId::kWrite, "/v2/namespaces/ns1", kScopeWrite},
      {Verb::delete_, "/v2/namespaces/ns1", tpuf::RouteId::kDeleteNamespace, "/v2/namespaces/ns1",
       kScopeWrite},
      {Verb::post, "/v2/namespaces/ns1/query", tpuf::RouteId::kQuery, "/v2/namespaces/ns1/query",
       kScopeRead},
      {Verb::post, "/v1/namespaces/ns1/query", tpuf::RouteId::kQueryV1, "/v2/namespaces/ns1/query",
       kScopeRead},
      {Verb::post, "/v2/namespaces/ns1/explain_query", tpuf::RouteId::kExplainQuery,
       "/v2/namespaces/ns1/explain_query", kScopeRead},
      {Verb::get, "/v2/namespaces/ns1/metadata", tpuf::RouteId::kMetadataV2,
       "/v2/namespaces/ns1/metadata", kScopeRead},
      {Verb::get, "/v1/namespaces/ns1/metadata", tpuf::RouteId::kMetadataV1,
       "/v1/namespaces/ns1/metadata", kScopeRead},
      {Verb::patch, "/v1/namespaces/ns1/metadata", tpuf::RouteId::kPatchMetadata,
       "/v1/namespaces/ns1/metadata", kScopeWrite},
      {Verb::get, "/v1/namespaces/ns1/schema", tpuf::RouteId::kGetSchema, "/v1/namespaces/ns1/schema",
       kScopeRead},
      {Verb::post, "/v1/namespaces/ns1/schema", tpuf::RouteId::kUpdateSchema,
       "/v1/namespaces/ns1/schema", kScopeWrite},
      {Verb::get, "/v1/namespaces/ns1/hint_cache_warm", tpuf::RouteId::kHintCacheWarm,
       "/v1/namespaces/ns1/hint_cache_warm", kScopeRead},
      {Verb::post, "/v1/namespaces/ns1/_debug/recall", tpuf::RouteId::kRecall,
       "/v1/namespaces/ns1/_debug/recall", kScopeRead},
      {Verb::get, "/v1/namespaces", tpuf::RouteId::kListNamespaces, "/v1/namespaces", kScopeRead},
      {Verb::get, "/v1/namespaces/ns1", tpuf::RouteId::kLegacyNamespace, "/v1/namespaces/ns1",
       kScopeRead},
      {Verb::head, "/v1/namespaces/ns1", tpuf::RouteId::kLegacyNamespace, "/v1/namespaces/ns1",
       kScopeRead},
      {Verb::delete_, "/v1/namespaces/ns1", tpuf::RouteId::kLegacyNamespace, "/v1/namespaces/ns1",
       kScopeWrite},
      {Verb::get, "/v1/namespaces/ns1/operations/op-1", tpuf::RouteId::kOperation,
       "/v1/namespaces/ns1/operations/op-1", kScopeRead},
  };
  for (const auto& c : cases) {
    auto m = MatchRoute(c.method, c.path);
    ASSERT_TRUE(m.has_value()) << c.path;
    EXPECT_EQ(m->id, RouteId::kTurbopuffer) << c.path;
    EXPECT_EQ(m->tpuf, c.id) << c.path;
    EXPECT_EQ(m->upstream_path, c.upstream) << c.path;
    EXPECT_EQ(m->required_scope, c.scope) << c.path;
    EXPECT_EQ(m->ns_error, NamespaceNameError::kNone) << c.path;
  }
}

TEST(Routes, OperationsRoutesAreInfrastructureFree) {
  auto h = MatchRoute(Verb::get, "/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, RouteId::kHealth);
  EXPECT_EQ(h->required_scope, 0u);
  EXPECT_FALSE(MatchRoute(Verb::post, "/health"));
}

TEST(Routes, SnapshotJobRoutes) {
  struct Case {
    Verb method;
    const char* path;
    RouteId id;
    unsigned scope;
    const char* param;
  };
  for (const Case& c : {
           Case{Verb::post, "/v2/namespaces/ns1/snapshots", RouteId::kSnapshotCreate, kScopeWrite,
                ""},
           Case{Verb::get, "/v2/namespaces/ns1/snapshot-jobs", RouteId::kSnapshotJobs, kScopeRead,
                ""},
           Case{Verb::get, "/v2/namespaces/ns1/snapshot-jobs/j%2D1", RouteId::kSnapshotJob,
                kScopeRead, "j-1"},
           Case{Verb::delete_, "/v2/namespaces/ns1/snapshot-jobs/j1", RouteId::kSnapshotJob,
                kScopeWrite, "j1"},
           Case{Verb::get, "/v2/namespaces/ns1/snapshots/abcdef0", RouteId::kSnapshotBody,
                kScopeRead, "abcdef0"},
       }) {
    auto m = MatchRoute(c.method, c.path);
    ASSERT_TRUE(m) << c.path;
    EXPECT_EQ(m->id, c.id) << c.path;
    EXPECT_EQ(m->required_scope, c.scope) << c.path;
    EXPECT_EQ(m->ns, "ns1") << c.path;
    EXPECT_EQ(m->param, c.param) << c.path;
    EXPECT_FALSE(m->turbopuffer_route) << c.path;
    EXPECT_TRUE(m->upstream_path.empty()) << c.path;
  }
  EXPECT_FALSE(MatchRoute(Verb::get, "/v2/namespaces/ns1/snapshots"));
  EXPECT_FALSE(MatchRoute(Verb::post, "/v2/namespaces/ns1/snapshot-jobs"));
  EXPECT_FALSE(MatchRoute(Verb::put, "/v2/namespaces/ns1/snapshot-jobs/j1"));
  EXPECT_FALSE(MatchRoute(Verb::delete_, "/v2/namespaces/ns1/snapshots/abcdef0"));
}

TEST(Routes, UnknownPathsDoNotMatch) {
  for (const char* p : {"/", "", "x", "/v3/namespaces/a/query", "/v2/namespaces/a/query/",
                        "/v2/namespaces/a/b/query", "/v2/namespaces/a/../b/query",
                        "/v2/namespaces//query/x", "/v2/namespaces/a/%71uery",
                        "/v1/namespaces/a/operations/..", "/v2/namespaces/a/nope"}) {
    EXPECT_FALSE(MatchRoute(Verb::post, p)) << p;
  }
  EXPECT_FALSE(MatchRoute(Verb::get, "/v2/namespaces/a/query"));
  EXPECT_FALSE(MatchRoute(Verb::put, "/v2/namespaces/a"));
}

TEST(Routes, BadNamespacesAreFlaggedAndNeverGetAnUpstreamPath) {
  for (const char* p : {"/v2/namespaces/a%2Fb/query", "/v2/namespaces/../query",
                        "/v2/namespaces/./query", "/v2/namespaces/a%20b/query",
                        "/v2/namespaces/%2e%2e/query", "/v2/namespaces/a%zz/query",
                        "/v2/namespaces//query"}) {
    auto m = MatchRoute(Verb::post, p);
    ASSERT_TRUE(m) << p;
    EXPECT_EQ(m->ns_error, NamespaceNameError::kInvalidChars) << p;
    EXPECT_TRUE(m->upstream_path.empty()) << p;
  }
  auto m = MatchRoute(Verb::post, ("/v2/namespaces/" + std::string(129, 'a') + "/query").c_str());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->ns_error, NamespaceNameError::kTooLong);
}

TEST(Routes, PercentEncodedValidNamespaceIsDecoded) {
  auto m = MatchRoute(Verb::post, "/v2/namespaces/a%2Db/query");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->ns, "a-b");
  EXPECT_EQ(m->upstream_path, "/v2/namespaces/a-b/query");
}

TEST(PercentDecode, HandlesEscapes) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b%2f", &out));
  EXPECT_EQ(out, "a b/");
  EXPECT_FALSE(PercentDecode("a%2", &out));
  EXPECT_FALSE(PercentDecode("%", &out));
  EXPECT_FALSE(PercentDecode("%g0", &out));
}

}  // namespace
}  // namespace layer::gateway
