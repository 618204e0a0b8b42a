#include "hevlayer/client.h"

#include <curl/curl.h>

#include <boost/json.hpp>

#include <cctype>
#include <cstdlib>

namespace hevlayer {

namespace json = boost::json;

Options OptionsFromEnvironment() {
  Options o;
  const char* url = std::getenv("LAYER_GATEWAY_URL");
  const char* key = std::getenv("LAYER_GATEWAY_API_KEY");
  o.base_url = url && *url ? url : "https://aws-us-east-1.hevlayer.com";
  o.api_key = key ? key : "";
  return o;
}

std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Client::Curl {
  CURL* handle = nullptr;
  Curl() {
    static const bool initialised = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == 0; }();
    (void)initialised;
    handle = curl_easy_init();
  }
  ~Curl() { curl_easy_cleanup(handle); }
};

namespace {

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t AppendHeader(char* data, size_t size, size_t n, void* out) {
  std::string_view line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = std::string(value);
  }
  return size * n;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

Client::Client(Options options) : options_(std::move(options)), curl_(std::make_unique<Curl>()) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/') options_.base_url.pop_back();
  options_.api_key = Trim(options_.api_key);
}

Client::~Client() = default;

Response Client::Call(std::string_view method, std::string_view path,
                      const std::vector<std::pair<std::string, std::string>>& query,
                      std::string_view body) {
  Response r;
  std::string url = options_.base_url + std::string(path);
  for (size_t i = 0; i < query.size(); ++i) {
    url += i == 0 ? '?' : '&';
    url += Escape(query[i].first) + "=" + Escape(query[i].second);
  }
  CURL* h = curl_->handle;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  std::string verb(method);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb.c_str());
  if (verb == "GET") curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "User-Agent: hevlayer-cpp/0.1.0");
  std::string auth;
  if (!options_.api_key.empty()) {
    auth = "Authorization: Bearer " + options_.api_key;
    headers = curl_slist_append(headers, auth.c_str());
  }
  std::string payload(body);
  if (!body.empty() || verb == "POST" || verb == "PUT") {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, AppendHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  const auto t0 = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(h);
  r.perf.latency_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    r.status = 0;
    r.error.message = std::string("the gateway could not be reached: ") + curl_easy_strerror(rc);
    return r;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  r.status = static_cast<int>(status);
  if (auto it = r.headers.find("x-layer-cache"); it != r.headers.end()) {
    r.perf.cache_status = it->second;
  }
  boost::system::error_code ec;
  r.json = json::parse(r.body, ec);
  if (ec) r.json = nullptr;
  if (!r.ok()) {
    r.error.status = r.status;
    if (const json::object* o = r.json.if_object()) {
      if (auto* e = o->if_contains("error"); e && e->is_string()) r.error.kind = e->as_string();
      if (auto* m = o->if_contains("message"); m && m->is_string()) {
        r.error.message = m->as_string();
      } else if (!r.error.kind.empty()) {
        r.error.message = r.error.kind;  // Turbopuffer's {"status":"error","error":"…"}
      }
    }
    if (r.error.message.empty()) r.error.message = r.body.empty() ? "HTTP " + std::to_string(status) : r.body;
  }
  return r;
}

namespace {
std::string Ns(std::string_view ns) { return Escape(ns); }
}  // namespace

Response Client::FetchDocument(std::string_view ns, std::string_view id) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/documents/" + Escape(id));
}

Response Client::FetchDocuments(std::string_view ns, const json::array& ids) {
  return Call("POST", "/v2/namespaces/" + Ns(ns) + "/documents", {},
              json::serialize(json::object{{"ids", ids}}));
}

Response Client::WarmCache(std::string_view ns, std::optional<int> page_size) {
  std::vector<std::pair<std::string, std::string>> q;
  if (page_size) q.emplace_back("page_size", std::to_string(*page_size));
  return Call("POST", "/v2/namespaces/" + Ns(ns) + "/warm", q);
}

Response Client::GetWarmJob(std::string_view ns, std::string_view job_id) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/warm-jobs/" + Escape(job_id));
}

Response Client::ListWarmJobs(std::string_view ns) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/warm-jobs");
}

Response Client::CancelWarmJob(std::string_view ns, std::string_view job_id) {
  return Call("DELETE", "/v2/namespaces/" + Ns(ns) + "/warm-jobs/" + Escape(job_id));
}

Response Client::HintCacheWarm(std::string_view ns, std::optional<bool> turbopuffer,
                               std::optional<bool> documents, std::optional<bool> snapshots,
                               std::optional<int> page_size) {
  std::vector<std::pair<std::string, std::string>> q;
  for (auto [name, v] : {std::pair{"turbopuffer", turbopuffer}, {"documents", documents},
                         {"snapshots", snapshots}}) {
    if (v) q.emplace_back(name, *v ? "true" : "false");
  }
  if (page_size) q.emplace_back("page_size", std::to_string(*page_size));
  return Call("GET", "/v1/namespaces/" + Ns(ns) + "/hint_cache_warm", q);
}

Response Client::GetSnapshotPolicy(std::string_view ns) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/snapshot-policy");
}

Response Client::PutSnapshotPolicy(std::string_view ns, const json::object& policy) {
  return Call("PUT", "/v2/namespaces/" + Ns(ns) + "/snapshot-policy", {}, json::serialize(policy));
}

Response Client::GetHistory(std::string_view ns) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/history");
}

Response Client::GetSnapshot(std::string_view ns, std::string_view sha) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/snapshots/" + Escape(sha));
}

Response Client::CreateSnapshotJob(std::string_view ns, const json::object& request) {
  return Call("POST", "/v2/namespaces/" + Ns(ns) + "/snapshots", {}, json::serialize(request));
}

Response Client::ListSnapshotJobs(std::string_view ns) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/snapshot-jobs");
}

Response Client::GetSnapshotJob(std::string_view ns, std::string_view job_id) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/snapshot-jobs/" + Escape(job_id));
}

Response Client::GetMetadata(std::string_view ns) {
  return Call("GET", "/v2/namespaces/" + Ns(ns) + "/metadata");
}

Response Client::Write(std::string_view ns, const json::object& body) {
  return Call("POST", "/v2/namespaces/" + Ns(ns), {}, json::serialize(body));
}

Response Client::Query(std::string_view ns, const json::object& body) {
  return Call("POST", "/v2/namespaces/" + Ns(ns) + "/query", {}, json::serialize(body));
}

Response Client::Health() { return Call("GET", "/health"); }

}  // namespace hevlayer
