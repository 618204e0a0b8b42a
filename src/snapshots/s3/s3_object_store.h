// S3ObjectStore: an ObjectStore in an S3 bucket, or any S3-compatible store (MinIO, R2, GCS
// interop, s3rver), over libcurl with its SigV4 signing (docs/design.md §7.3).
//
// Keys: object `k` is stored as "<prefix>k" (the prefix of s3://BUCKET/PREFIX, "" or ending in
// '/'). Keys are refused with InvalidArgument when empty, absolute, ending in '/', holding an
// empty, "." or ".." segment, a control character or a backslash, or longer than S3's 1024 bytes
// once prefixed. Every portable key (object_store.h) is accepted.
//
// Requests: Put is one PUT (S3 makes it atomic and durable once answered); PutIfAbsent a PUT with
// `If-None-Match: *`, whose 412 means the key was taken (S3 arbitrates racing writers: exactly one
// gets 200). A store that ignores the header (s3rver 3.7.1 does) silently turns PutIfAbsent into
// Put: the backend cannot tell. Get is a GET (404 NoSuchKey → NotFound), Delete a DELETE (S3 answers
// 204 whether or not the key existed), List ListObjectsV2 pages (`list-type=2`, `max-keys`,
// `continuation-token`) until the last, sorted bytewise.
//
// Signing: CURLOPT_AWS_SIGV4 ("aws:amz:REGION:s3") with the credentials; with none, requests go
// unsigned (public or anonymous stores). libcurl 7.88 (Debian 12) has two quirks worked around
// here: it signs the query string verbatim, unsorted, so list URLs carry the canonical query
// already (s3_protocol.h CanonicalQuery); and it neither sends nor signs x-amz-content-sha256,
// which S3 requires, so every request sends the body's SHA-256 in that header (curl then signs
// it as it signs every header the request sets). The session token goes in x-amz-security-token,
// signed the same way. No header is ever removed with curl's "Name:" form, which 7.88 would sign
// but not send.
//
// Retries: a request that fails in transport (connect, timeout, reset) or answers a retryable
// error (5xx, SlowDown, 429, RequestTimeout, the 409s S3 asks to retry) is retried up to
// `max_attempts` in all, waiting BackoffDelay between attempts. A PutIfAbsent retried after an
// attempt whose outcome is unknown (a transport failure or 5xx: the PUT may have been applied)
// that then meets 412 reads the object back: when it holds exactly the bytes written, the call
// reports it written (true), since the earlier attempt, or another writer of the same bytes,
// stored what this caller wanted.
//
// Failure: NotFound only from Get; Unavailable (retryable) when the attempts ran out on
// retryable errors; Timeout (retryable) when the last attempt timed out; IoError (not retryable)
// for answers only an operator can fix (AccessDenied, SignatureDoesNotMatch, NoSuchBucket, a wrong
// region), each with a hint.
//
// Blocking: every call does network I/O (bounded by connect_timeout and request_timeout per
// attempt, and the backoff waits); callers run it off the event loop. Thread-safe: each call
// takes a curl handle from a small pool (connections are reused across calls) and returns it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "snapshots/object_store.h"
#include "snapshots/s3/s3_protocol.h"

namespace layer::snapshots {

struct S3Credentials {
  std::string access_key_id;      // AWS_ACCESS_KEY_ID
  std::string secret_access_key;  // AWS_SECRET_ACCESS_KEY (secret)
  std::string session_token;      // AWS_SESSION_TOKEN (secret; temporary credentials)

  // From the standard environment variables above. Empty when unset.
  static S3Credentials FromEnvironment();
  bool empty() const { return access_key_id.empty() && secret_access_key.empty(); }
};

struct S3Options {
  std::string bucket;
  std::string prefix;            // "" or ending in '/' (see object_store_url.h)
  std::string region = "us-east-1";
  std::string endpoint;          // "" = AWS; else path style against this http(s) URL
  S3Credentials credentials;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};  // one attempt, whole response
  int max_attempts = 5;                              // first try included
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{5000};
  int list_page_size = 1000;                         // max-keys of a list request (1..1000)
  size_t max_idle_handles = 8;                       // curl handles kept for reuse
  // How backoff waits; tests record instead of sleeping. Default: std::this_thread::sleep_for.
  std::function<void(std::chrono::milliseconds)> sleep;
};

class S3ObjectStore final : public ObjectStore {
 public:
  // Checks the options (bucket name, prefix, endpoint URL, credentials given in full, limits);
  // InvalidArgument with the reason otherwise. Does not contact the store.
  static Result<std::unique_ptr<S3ObjectStore>> Open(S3Options options);
  ~S3ObjectStore() override;

  // OK or InvalidArgument with the reason (the key rules above, without the prefix's length).
  static Status ValidateKey(std::string_view key);

  Status Put(std::string_view key, std::string_view bytes) override;
  Result<bool> PutIfAbsent(std::string_view key, std::string_view bytes) override;
  Result<std::string> Get(std::string_view key) override;
  Result<std::vector<std::string>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;

  const S3Options& options() const { return options_; }

 private:
  struct Request;
  struct Response;
  explicit S3ObjectStore(S3Options options);

  Status CheckKey(std::string_view key) const;
  // One request with retries. Returns the final answer (any HTTP status) or the transport
  // failure as a Status; `ambiguous` (may be null) is set when an attempt before the final one
  // may have been applied by the store.
  Result<Response> Send(const Request& req, bool* ambiguous);
  // One attempt; `maybe_applied` is set when it failed after the request may have reached the
  // store.
  Result<Response> SendOnce(const Request& req, bool* maybe_applied);
  void* TakeHandle();
  void ReturnHandle(void* handle);

  const S3Options options_;
  const s3::Addressing addressing_;
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* handles; guarded by mu_
};

}  // namespace layer::snapshots
