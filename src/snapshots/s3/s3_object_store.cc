#include "snapshots/s3/s3_object_store.h"

#include <curl/curl.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "snapshots/object_store_url.h"

namespace layer::snapshots {

namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3's limit on a key, prefix included


double RandomUnit() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// Keeps x-amz-bucket-region (a wrong-region answer names the bucket's region in it).
size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "x-amz-bucket-region:";
  if (line.size() > kName.size()) {
    std::string head(line.substr(0, kName.size()));
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head == kName) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) {
        v.remove_suffix(1);
      }
      *static_cast<std::string*>(user) = std::string(v);
    }
  }
  return size * n;
}

// A transport failure as a Status; `applied_maybe` tells whether the request may have reached the
// store (anything past connecting).
Status TransportStatus(std::string_view what, CURLcode rc, const char* errbuf,
                       bool* applied_maybe) {
  std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  std::string msg = fmt::format("s3 object store: {}: {}", what, detail);
  *applied_maybe = true;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      *applied_maybe = false;
      return Status::Unavailable(std::move(msg));
    case CURLE_OPERATION_TIMEDOUT:
      return Status::Timeout(std::move(msg));
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Status::Unavailable(std::move(msg));
    default:
      *applied_maybe = false;  // refused before sending (bad URL, TLS verification, …)
      return Status::IoError(std::move(msg), false);
  }
}

Status AnnotateAttempts(const Status& st, int attempts) {
  if (attempts <= 1) return st;
  std::string msg = fmt::format("{} (after {} attempts)", st.message(), attempts);
  switch (st.code()) {
    case StatusCode::kTimeout: return Status::Timeout(std::move(msg));
    case StatusCode::kUnavailable: return Status::Unavailable(std::move(msg));
    default: return Status::IoError(std::move(msg), st.retryable());
  }
}

// NotFound is documented for Get only; any other call that meets a 404 failed.
Status NotNotFound(Status st) {
  if (!st.IsNotFound()) return st;
  return Status::IoError(st.message(), false);
}

}  // namespace

struct S3ObjectStore::Request {
  const char* method = "GET";
  std::string url;
  std::string what;             // "GET snapshots/ns/x.json", for messages
  std::string_view body;
  bool if_none_match = false;   // If-None-Match: *
};

struct S3ObjectStore::Response {
  long status = 0;
  std::string body;
  std::string bucket_region;
  int attempts = 1;

  s3::HttpError Error() const {
    s3::HttpError e = s3::ParseHttpError(status, body);
    if (e.region.empty()) e.region = bucket_region;
    return e;
  }
};

S3Credentials S3Credentials::FromEnvironment() {
  S3Credentials c;
  c.access_key_id = Env("AWS_ACCESS_KEY_ID");
  c.secret_access_key = Env("AWS_SECRET_ACCESS_KEY");
  c.session_token = Env("AWS_SESSION_TOKEN");
  return c;
}

Status S3ObjectStore::ValidateKey(std::string_view key) { return CheckObjectKey(key); }

Result<std::unique_ptr<S3ObjectStore>> S3ObjectStore::Open(S3Options o) {
  if (Status st = ValidateBucketName(o.bucket); !st.ok()) {
    return Status::InvalidArgument("s3 object store: " + st.message());
  }
  if (!o.prefix.empty()) {
    if (o.prefix.back() != '/' || !ValidateKey(o.prefix.substr(0, o.prefix.size() - 1)).ok()) {
      return Status::InvalidArgument("s3 object store: bad prefix '" + o.prefix + "'");
    }
  }
  if (o.region.empty() || o.region.size() > 64 ||
      !std::all_of(o.region.begin(), o.region.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      })) {
    return Status::InvalidArgument("s3 object store: --s3-region '" + o.region +
                                   "' is not a region name (such as us-east-1)");
  }
  if (!o.endpoint.empty()) {
    std::string_view e = o.endpoint;
    size_t scheme = e.starts_with("http://") ? 7 : e.starts_with("https://") ? 8 : 0;
    if (scheme == 0 || e.size() == scheme || e[scheme] == '/' ||
        e.find_first_of("?# ") != std::string_view::npos) {
      return Status::InvalidArgument("s3 object store: --s3-endpoint must be an http:// or "
                                     "https:// URL without query (got '" + o.endpoint + "')");
    }
  }
  const S3Credentials& c = o.credentials;
  if (c.access_key_id.empty() != c.secret_access_key.empty()) {
    return Status::InvalidArgument(
        "s3 object store: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
  }
  if (c.access_key_id.empty() && !c.session_token.empty()) {
    return Status::InvalidArgument(
        "s3 object store: AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  }
  // curl's user:password form: a ':' in the key id would split it.
  if (c.access_key_id.find(':') != std::string::npos) {
    return Status::InvalidArgument("s3 object store: AWS_ACCESS_KEY_ID may not contain ':'");
  }
  if (o.max_attempts < 1 || o.max_attempts > 20) {
    return Status::InvalidArgument("s3 object store: max_attempts must be 1..20");
  }
  if (o.list_page_size < 1 || o.list_page_size > 1000) {
    return Status::InvalidArgument("s3 object store: list_page_size must be 1..1000");
  }
  if (o.connect_timeout.count() <= 0 || o.request_timeout.count() <= 0) {
    return Status::InvalidArgument("s3 object store: timeouts must be positive");
  }
  static std::once_flag curl_init;
  CURLcode init_rc = CURLE_OK;
  std::call_once(curl_init, [&] { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init_rc != CURLE_OK) {
    return Status::Internal(std::string("curl_global_init: ") + curl_easy_strerror(init_rc));
  }
  if (!o.sleep) o.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  return std::unique_ptr<S3ObjectStore>(new S3ObjectStore(std::move(o)));
}

S3ObjectStore::S3ObjectStore(S3Options options)
    : options_(std::move(options)),
      addressing_{options_.bucket, options_.region, options_.endpoint} {}

S3ObjectStore::~S3ObjectStore() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* S3ObjectStore::TakeHandle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3ObjectStore::ReturnHandle(void* h) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < options_.max_idle_handles) {
      idle_.push_back(h);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(h));
}

Status S3ObjectStore::CheckKey(std::string_view key) const {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  if (options_.prefix.size() + key.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("object key is too long once prefixed");
  }
  return Status::Ok();
}

Result<S3ObjectStore::Response> S3ObjectStore::SendOnce(const Request& req, bool* maybe_applied) {
  *maybe_applied = false;
  CURL* h = static_cast<CURL*>(TakeHandle());
  if (h == nullptr) return Status::Internal("s3 object store: curl_easy_init failed");
  curl_easy_reset(h);  // keeps the handle's connections and DNS cache
  Response resp;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 500L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp.bucket_region);

  const S3Credentials& c = options_.credentials;
  std::string sigv4 = "aws:amz:" + options_.region + ":s3";
  if (!c.access_key_id.empty()) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, c.access_key_id.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, c.secret_access_key.c_str());
  }
  // Every header set here is signed by curl (it signs the request's own headers). Never add a
  // "Name:" (removal) header: curl 7.88 would sign it without sending it.
  struct curl_slist* headers = nullptr;
  std::string sha_header = "x-amz-content-sha256: " + Sha256Hex(req.body);
  headers = curl_slist_append(headers, sha_header.c_str());
  std::string token_header;
  if (!c.session_token.empty()) {
    token_header = "x-amz-security-token: " + c.session_token;
    headers = curl_slist_append(headers, token_header.c_str());
  }
  std::string_view method = req.method;
  if (method == "PUT") {
    // Snapshot bodies and policies are JSON: say so, for whoever browses the bucket.
    headers = curl_slist_append(headers, req.url.ends_with(".json")
                                             ? "Content-Type: application/json"
                                             : "Content-Type: application/octet-stream");
    if (req.if_none_match) headers = curl_slist_append(headers, "If-None-Match: *");
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data() ? req.body.data() : "");
  } else if (method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_easy_reset(h);  // drops the pointers into this frame (errbuf, resp) before the handle
                       // goes back to the pool
  curl_slist_free_all(headers);
  ReturnHandle(h);
  if (rc != CURLE_OK) return TransportStatus(req.what, rc, errbuf, maybe_applied);
  return resp;
}

Result<S3ObjectStore::Response> S3ObjectStore::Send(const Request& req, bool* ambiguous) {
  for (int attempt = 1;; ++attempt) {
    bool maybe_applied = false;
    auto r = SendOnce(req, &maybe_applied);
    bool retry = false;
    if (!r.ok()) {
      retry = r.status().retryable();
    } else if (s3::IsRetryable(r->Error())) {
      retry = true;
      // 503 (SlowDown, ServiceUnavailable) and 429 are refusals; other 5xx may hide a write.
      maybe_applied = r->status >= 500 && r->status != 503;
    }
    if (!retry || attempt >= options_.max_attempts) {
      if (!r.ok()) return AnnotateAttempts(r.status(), attempt);
      r->attempts = attempt;
      return r;
    }
    if (ambiguous && maybe_applied) *ambiguous = true;
    options_.sleep(s3::BackoffDelay(attempt, options_.backoff_base, options_.backoff_max,
                                    RandomUnit()));
  }
}

Status S3ObjectStore::Put(std::string_view key, std::string_view bytes) {
  if (Status st = CheckKey(key); !st.ok()) return st;
  std::string full = options_.prefix + std::string(key);
  Request req{"PUT", s3::ObjectUrl(addressing_, full), fmt::format("PUT {}", full), bytes};
  auto r = Send(req, nullptr);
  if (!r.ok()) return r.status();
  if (r->status == 200) return Status::Ok();
  return NotNotFound(s3::ErrorStatus(req.what, r->Error(), r->attempts));
}

Result<bool> S3ObjectStore::PutIfAbsent(std::string_view key, std::string_view bytes) {
  if (Status st = CheckKey(key); !st.ok()) return st;
  std::string full = options_.prefix + std::string(key);
  Request req{"PUT", s3::ObjectUrl(addressing_, full), fmt::format("PUT {} (if absent)", full),
              bytes, /*if_none_match=*/true};
  bool ambiguous = false;
  auto r = Send(req, &ambiguous);
  if (!r.ok()) return r.status();
  if (r->status == 200) return true;
  if (r->status == 412) {
    if (!ambiguous) return false;
    // An earlier attempt may have written the object: if it holds our bytes, it is ours.
    auto existing = Get(key);
    if (!existing.ok()) return existing.status().IsNotFound() ? false : Result<bool>(existing.status());
    return *existing == bytes;
  }
  return NotNotFound(s3::ErrorStatus(req.what, r->Error(), r->attempts));
}

Result<std::string> S3ObjectStore::Get(std::string_view key) {
  if (Status st = CheckKey(key); !st.ok()) return st;
  std::string full = options_.prefix + std::string(key);
  Request req{"GET", s3::ObjectUrl(addressing_, full), fmt::format("GET {}", full), {}};
  auto r = Send(req, nullptr);
  if (!r.ok()) return r.status();
  if (r->status == 200) return std::move(r->body);
  return s3::ErrorStatus(req.what, r->Error(), r->attempts);
}

Status S3ObjectStore::Delete(std::string_view key) {
  if (Status st = CheckKey(key); !st.ok()) return st;
  std::string full = options_.prefix + std::string(key);
  Request req{"DELETE", s3::ObjectUrl(addressing_, full), fmt::format("DELETE {}", full), {}};
  auto r = Send(req, nullptr);
  if (!r.ok()) return r.status();
  if (r->status == 204 || r->status == 200) return Status::Ok();
  s3::HttpError e = r->Error();
  if (e.http_status == 404 && e.code != "NoSuchBucket") return Status::Ok();  // already gone
  return NotNotFound(s3::ErrorStatus(req.what, e, r->attempts));
}

Result<std::vector<std::string>> S3ObjectStore::List(std::string_view prefix) {
  const std::string full_prefix = options_.prefix + std::string(prefix);
  std::vector<std::string> out;
  std::optional<std::string> token;
  for (int page = 0;; ++page) {
    Request req{"GET", s3::ListUrl(addressing_, full_prefix, token, options_.list_page_size),
                fmt::format("LIST {} (page {})", full_prefix, page + 1), {}};
    auto r = Send(req, nullptr);
    if (!r.ok()) return r.status();
    if (r->status != 200) return NotNotFound(s3::ErrorStatus(req.what, r->Error(), r->attempts));
    auto parsed = s3::ParseListPage(r->body);
    if (!parsed.ok()) {
      return Status::IoError(fmt::format("s3 object store: {}: {}", req.what,
                                         parsed.status().message()), false);
    }
    for (auto& k : parsed->keys) {
      // The store filters by prefix; a key outside it would be a broken store: skip it.
      if (k.size() > options_.prefix.size() && k.starts_with(full_prefix)) {
        out.push_back(k.substr(options_.prefix.size()));
      }
    }
    if (!parsed->truncated) break;
    if (token && *parsed->next_token == *token) {
      return Status::IoError(fmt::format("s3 object store: {}: the continuation token did not "
                                         "advance", req.what), false);
    }
    token = std::move(parsed->next_token);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace layer::snapshots
