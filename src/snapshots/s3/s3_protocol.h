// The pure parts of the S3 backend (docs/design.md §7.3): request URLs, the canonical query, the
// XML it reads back, which answers are retried, how long to wait before a retry, and how an answer
// becomes a Status. Kept apart from the transport (s3_object_store.cc, libcurl) so they can be
// tested without a server. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace layer::snapshots::s3 {

// How requests reach the bucket.
struct Addressing {
  std::string bucket;
  std::string region = "us-east-1";
  // Empty: AWS, virtual-hosted style (https://BUCKET.s3.REGION.amazonaws.com/KEY), except for
  // bucket names holding a '.', which a virtual host's TLS certificate cannot cover: those go
  // path style (https://s3.REGION.amazonaws.com/BUCKET/KEY). Set (an S3-compatible store: MinIO,
  // R2, GCS interop, s3rver): path style, ENDPOINT/BUCKET/KEY; the endpoint may carry a path.
  std::string endpoint;
};

// S3's URI encoding (SigV4): every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex); '/' is
// kept when `keep_slash` (object paths), encoded otherwise (query names and values).
std::string UriEncode(std::string_view in, bool keep_slash);

// The canonical query string SigV4 signs: names and values UriEncoded, pairs sorted by encoded
// name (then value), joined with '&'; an empty value is written "name=". libcurl 7.88 signs the
// query exactly as it appears in the URL (it neither sorts nor re-encodes), so requests carry
// this string verbatim.
std::string CanonicalQuery(std::vector<std::pair<std::string, std::string>> params);

// The URL of an object (`full_key` includes the store's prefix) and of the bucket listing.
std::string ObjectUrl(const Addressing& a, std::string_view full_key);
std::string ListUrl(const Addressing& a, std::string_view full_prefix,
                    const std::optional<std::string>& continuation_token, int max_keys);

// Decodes the five XML entities and numeric character references (UTF-8 out). Unknown or
// malformed references are kept as written.
std::string XmlUnescape(std::string_view in);

// The text of the first <tag>…</tag> in `xml` (unescaped), nullopt when there is none.
std::optional<std::string> XmlElement(std::string_view xml, std::string_view tag);

struct ListPage {
  std::vector<std::string> keys;  // full keys, as the store sent them
  bool truncated = false;
  std::optional<std::string> next_token;
};
// Parses a ListObjectsV2 answer. Corruption when it is not one (no <ListBucketResult>), or when it
// says it is truncated without a continuation token.
Result<ListPage> ParseListPage(std::string_view xml);

// An S3 error answer: the HTTP status and, when the body is S3's <Error> document, its Code and
// Message.
struct HttpError {
  long http_status = 0;
  std::string code;     // "SlowDown", "NoSuchKey", … ("" when the body had none)
  std::string message;
  std::string region;   // x-amz-bucket-region, when a wrong-region answer names it
};
HttpError ParseHttpError(long http_status, std::string_view body);

// Whether an answer is worth another attempt: 5xx (InternalError, SlowDown, ServiceUnavailable,
// …), 429, 400 RequestTimeout, and the 409s S3 asks to retry (ConditionalRequestConflict,
// OperationAborted).
bool IsRetryable(const HttpError& e);

// The Status of a final error answer (not retried, or out of attempts). `what` names the call
// ("GET snapshots/ns/x.json"). NoSuchKey is NotFound; retryable answers are Unavailable
// (retryable); the rest, which only an operator can fix (AccessDenied, SignatureDoesNotMatch,
// NoSuchBucket, a wrong region, …), are IoError and not retryable, with a hint where one helps.
Status ErrorStatus(std::string_view what, const HttpError& e, int attempts);

// The wait before retry number `retry` (1 = the first retry): an exponential cap
// min(max, base * 2^(retry-1)), of which a random part is taken: cap/2 + unit * cap/2 for `unit`
// in [0, 1) (so retries of many clients spread out, and each still waits at least half the cap).
std::chrono::milliseconds BackoffDelay(int retry, std::chrono::milliseconds base,
                                       std::chrono::milliseconds max, double unit);

}  // namespace layer::snapshots::s3
