#include "snapshots/object_store_url.h"

#include <gtest/gtest.h>

namespace layer::snapshots {
namespace {

ObjectStoreUrl S3(std::string bucket, std::string prefix) {
  ObjectStoreUrl u;
  u.kind = ObjectStoreUrl::Kind::kS3;
  u.bucket = std::move(bucket);
  u.prefix = std::move(prefix);
  return u;
}

ObjectStoreUrl File(std::string path) {
  ObjectStoreUrl u;
  u.kind = ObjectStoreUrl::Kind::kFile;
  u.path = std::move(path);
  return u;
}

TEST(ObjectStoreUrl, S3Forms) {
  EXPECT_EQ(*ParseObjectStoreUrl("s3://my-bucket"), S3("my-bucket", ""));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://my-bucket/"), S3("my-bucket", ""));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://my-bucket/layer"), S3("my-bucket", "layer/"));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://my-bucket/layer/"), S3("my-bucket", "layer/"));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://my-bucket/a/b.c/D_e-f"), S3("my-bucket", "a/b.c/D_e-f/"));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://b.with.dots/x"), S3("b.with.dots", "x/"));
  EXPECT_EQ(*ParseObjectStoreUrl("s3://abc//"), S3("abc", ""));
}

TEST(ObjectStoreUrl, FileForms) {
  EXPECT_EQ(*ParseObjectStoreUrl("file:///var/lib/layer/objects"),
            File("/var/lib/layer/objects"));
  EXPECT_EQ(*ParseObjectStoreUrl("file:///var/lib/layer/objects/"),
            File("/var/lib/layer/objects"));
  EXPECT_EQ(*ParseObjectStoreUrl("file://localhost/srv/o"), File("/srv/o"));
  EXPECT_EQ(*ParseObjectStoreUrl("file:///with%20space"), File("/with space"));
  EXPECT_EQ(*ParseObjectStoreUrl("file:///"), File("/"));
}

// Each bad URL is refused with a message naming what is wrong.
TEST(ObjectStoreUrl, BadUrlsSayWhy) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (auto [url, says] : std::initializer_list<Case>{
           {"", "not a URL"},
           {"/var/lib/objects", "--object-store-dir takes a plain directory"},
           {"objects", "not a URL"},
           {"http://bucket/prefix", "unsupported scheme 'http'"},
           {"gs://bucket", "unsupported scheme 'gs'"},
           {"s3://", "the bucket is missing"},
           {"s3:///prefix", "the bucket is missing"},
           {"s3://UPPER", "lower-case"},
           {"s3://ab", "3 to 63"},
           {"s3://under_score", "lower-case"},
           {"s3://-dash", "start and end"},
           {"s3://a..b", "'..'"},
           {"s3://bucket/a//b", "empty, '.' or '..' segment"},
           {"s3://bucket/a/../b", "empty, '.' or '..' segment"},
           {"s3://bucket/a b", "spaces and control characters"},
           {"s3://bucket/a%2Fb", "may only hold"},
           {"s3://bucket/p?x=1", "query string or fragment"},
           {"s3://bucket/p#frag", "query string or fragment"},
           {"file://relative/path", "absolute path"},
           {"file://host/abs", "absolute path"},
           {"file:///bad%zz", "malformed percent-escape"},
           {"file:///nul%00byte", "malformed percent-escape"},
       }) {
    auto r = ParseObjectStoreUrl(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_NE(r.status().message().find(says), std::string::npos)
        << url << " -> " << r.status().message();
  }
}

TEST(ObjectStoreUrl, ToStringIsCanonical) {
  EXPECT_EQ(ToString(*ParseObjectStoreUrl("s3://bkt/a/b")), "s3://bkt/a/b/");
  EXPECT_EQ(ToString(*ParseObjectStoreUrl("s3://bkt")), "s3://bkt/");
  EXPECT_EQ(ToString(*ParseObjectStoreUrl("file:///x/y/")), "file:///x/y");
}

}  // namespace
}  // namespace layer::snapshots
