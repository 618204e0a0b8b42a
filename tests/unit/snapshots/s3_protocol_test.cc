#include "snapshots/s3/s3_protocol.h"

#include <gtest/gtest.h>

namespace layer::snapshots::s3 {
namespace {

using std::chrono::milliseconds;

TEST(S3Protocol, UriEncodeKeepsOnlyUnreserved) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b/c+d=e&f%g", false), "a%20b%2Fc%2Bd%3De%26f%25g");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriEncode("\xc3\xa9*", false), "%C3%A9%2A");  // upper-case hex, '*' encoded
}

// libcurl 7.88 signs the query verbatim, so the URL must carry SigV4's canonical form: sorted by
// encoded name, every value encoded (no '+' for space, '/' and '=' escaped).
TEST(S3Protocol, CanonicalQueryIsSortedAndEncoded) {
  EXPECT_EQ(CanonicalQuery({{"prefix", "a/b c"},
                            {"list-type", "2"},
                            {"max-keys", "1000"},
                            {"continuation-token", "1/ab+c=="}}),
            "continuation-token=1%2Fab%2Bc%3D%3D&list-type=2&max-keys=1000&prefix=a%2Fb%20c");
  EXPECT_EQ(CanonicalQuery({{"prefix", ""}, {"list-type", "2"}}), "list-type=2&prefix=");
  // Sorting is by the encoded bytes ("a%20" sorts before "a-").
  EXPECT_EQ(CanonicalQuery({{"a-", "1"}, {"a ", "2"}}), "a%20=2&a-=1");
}

TEST(S3Protocol, PathStyleWithAnEndpoint) {
  Addressing a{"layer-test", "us-east-1", "http://127.0.0.1:9000"};
  EXPECT_EQ(ObjectUrl(a, "pre/snapshots/ns/x y.json"),
            "http://127.0.0.1:9000/layer-test/pre/snapshots/ns/x%20y.json");
  EXPECT_EQ(ListUrl(a, "pre/snapshots/", std::nullopt, 1000),
            "http://127.0.0.1:9000/layer-test?list-type=2&max-keys=1000&prefix=pre%2Fsnapshots%2F");
  EXPECT_EQ(ListUrl(a, "", std::string("tok/+="), 2),
            "http://127.0.0.1:9000/layer-test?continuation-token=tok%2F%2B%3D&list-type=2&"
            "max-keys=2&prefix=");
  // An endpoint with a path (and a trailing slash) keeps its path.
  Addressing b{"bkt", "auto", "https://acct.r2.example.com/base/"};
  EXPECT_EQ(ObjectUrl(b, "k"), "https://acct.r2.example.com/base/bkt/k");
}

TEST(S3Protocol, VirtualHostedAgainstAws) {
  Addressing a{"my-bucket", "eu-west-1", ""};
  EXPECT_EQ(ObjectUrl(a, "a/b.json"), "https://my-bucket.s3.eu-west-1.amazonaws.com/a/b.json");
  EXPECT_EQ(ListUrl(a, "a/", std::nullopt, 1000),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2&max-keys=1000&prefix=a%2F");
  // A dotted bucket cannot be a TLS virtual host: path style on the regional endpoint.
  Addressing d{"my.dotted.bucket", "us-east-1", ""};
  EXPECT_EQ(ObjectUrl(d, "k"), "https://s3.us-east-1.amazonaws.com/my.dotted.bucket/k");
}

TEST(S3Protocol, XmlUnescape) {
  EXPECT_EQ(XmlUnescape("a&amp;b&lt;c&gt;d&quot;e&apos;f"), "a&b<c>d\"e'f");
  EXPECT_EQ(XmlUnescape("&#65;&#x42;&#xe9;"), "AB\xc3\xa9");
  EXPECT_EQ(XmlUnescape("&bogus; & &#xZZ; &#99999999;"), "&bogus; & &#xZZ; &#99999999;");
}

TEST(S3Protocol, ParsesListPages) {
  auto p = ParseListPage(
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;1</NextContinuationToken>"
      "<Contents><Key>p/a&amp;b</Key><Size>1</Size></Contents>"
      "<Contents><Key>p/c</Key><Size>2</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->keys, (std::vector<std::string>{"p/a&b", "p/c"}));
  EXPECT_TRUE(p->truncated);
  EXPECT_EQ(p->next_token, "t&1");

  auto last = ParseListPage("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->keys.empty());
  EXPECT_FALSE(last->truncated);

  EXPECT_EQ(ParseListPage("<Error><Code>x</Code></Error>").status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .status()
                .code(),
            StatusCode::kCorruption);  // truncated, but no token: would loop or stop short
  EXPECT_EQ(ParseListPage("<ListBucketResult><Contents><Size>1</Size></Contents>"
                          "</ListBucketResult>").status().code(),
            StatusCode::kCorruption);
}

TEST(S3Protocol, RetryableAnswers) {
  for (auto [status, code] : std::initializer_list<std::pair<long, const char*>>{
           {503, "SlowDown"}, {503, ""}, {500, "InternalError"}, {502, ""}, {504, ""},
           {429, ""}, {400, "RequestTimeout"}, {409, "ConditionalRequestConflict"},
           {409, "OperationAborted"}}) {
    EXPECT_TRUE(IsRetryable(HttpError{status, code, "", ""})) << status << " " << code;
  }
  for (auto [status, code] : std::initializer_list<std::pair<long, const char*>>{
           {403, "AccessDenied"}, {403, "SignatureDoesNotMatch"}, {404, "NoSuchKey"},
           {404, "NoSuchBucket"}, {400, "InvalidRequest"}, {412, "PreconditionFailed"},
           {409, "BucketAlreadyExists"}, {301, "PermanentRedirect"}}) {
    EXPECT_FALSE(IsRetryable(HttpError{status, code, "", ""})) << status << " " << code;
  }
}

TEST(S3Protocol, ErrorMapping) {
  auto st = [](long status, const char* code, const char* region = "") {
    return ErrorStatus("GET k", HttpError{status, code, "msg", region}, 1);
  };
  EXPECT_TRUE(st(404, "NoSuchKey").IsNotFound());
  EXPECT_TRUE(st(404, "").IsNotFound());  // a HEAD-like answer without a body

  Status bucket = st(404, "NoSuchBucket");
  EXPECT_EQ(bucket.code(), StatusCode::kIoError);  // not "no such object"
  EXPECT_FALSE(bucket.retryable());
  EXPECT_NE(bucket.message().find("bucket of --object-store does not exist"), std::string::npos);

  Status slow = ErrorStatus("PUT k", HttpError{503, "SlowDown", "Please reduce", ""}, 5);
  EXPECT_EQ(slow.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(slow.retryable());
  EXPECT_EQ(slow.message(), "s3 object store: PUT k: HTTP 503 SlowDown: Please reduce "
                            "(after 5 attempts)");

  for (const char* code : {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied",
                           "ExpiredToken"}) {
    Status s = st(403, code);
    EXPECT_EQ(s.code(), StatusCode::kIoError) << code;
    EXPECT_FALSE(s.retryable()) << code;
    EXPECT_NE(s.message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << s.message();
  }
  Status moved = st(301, "PermanentRedirect", "eu-central-1");
  EXPECT_FALSE(moved.retryable());
  EXPECT_NE(moved.message().find("set --s3-region eu-central-1"), std::string::npos);
  EXPECT_NE(st(400, "AuthorizationHeaderMalformed").message().find("--s3-region"),
            std::string::npos);
  EXPECT_EQ(st(400, "KeyTooLongError").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st(400, "InvalidRequest").code(), StatusCode::kIoError);
}

TEST(S3Protocol, ParsesErrorDocuments) {
  HttpError e = ParseHttpError(
      403, "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>a &amp; b</Message>"
           "<RequestId>r</RequestId></Error>");
  EXPECT_EQ(e.code, "AccessDenied");
  EXPECT_EQ(e.message, "a & b");
  HttpError plain = ParseHttpError(502, "<html>bad gateway</html>");
  EXPECT_EQ(plain.code, "");
  EXPECT_EQ(plain.http_status, 502);
}

// Exponential caps (100, 200, 400, … up to the max), of which at least half is waited.
TEST(S3Protocol, BackoffIsExponentialWithJitterAndCapped) {
  const milliseconds base(100), max(1000);
  EXPECT_EQ(BackoffDelay(1, base, max, 0.0), milliseconds(50));
  EXPECT_EQ(BackoffDelay(1, base, max, 0.999), milliseconds(99));
  EXPECT_EQ(BackoffDelay(2, base, max, 0.0), milliseconds(100));
  EXPECT_EQ(BackoffDelay(3, base, max, 0.0), milliseconds(200));
  EXPECT_EQ(BackoffDelay(3, base, max, 1.0), milliseconds(400));
  EXPECT_EQ(BackoffDelay(5, base, max, 1.0), milliseconds(1000));   // capped
  EXPECT_EQ(BackoffDelay(60, base, max, 0.0), milliseconds(500));   // no overflow
  EXPECT_EQ(BackoffDelay(0, base, max, 0.0), milliseconds(50));
}

}  // namespace
}  // namespace layer::snapshots::s3
