// hevlayer::Client: the C++ client of Layer, a caching gateway in front of Turbopuffer (and the
// base of the `layer` command line's client commands).
//
//   hevlayer::Client client;                       // $LAYER_GATEWAY_URL, $LAYER_GATEWAY_API_KEY
//   auto job = client.WarmCache("products", 1000);
//   if (!job.ok()) std::cerr << job.error.message;
//   auto again = client.GetWarmJob("products", job.json.at("id").as_string());
//
// Every call returns a Response: the HTTP status (0 when the gateway could not be reached), the
// body and its JSON, the call's Perf (latency, x-layer-cache), and for a failure an Error with the
// gateway's envelope (`error` kind and `message`). Synchronous (libcurl); one Client may be used
// from one thread at a time (make one per thread).
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hevlayer {

struct Options {
  std::string base_url;  // default $LAYER_GATEWAY_URL, else https://aws-us-east-1.hevlayer.com
  std::string api_key;   // default $LAYER_GATEWAY_API_KEY
  std::chrono::milliseconds timeout{30000};
};
// The defaults above, read from the environment.
Options OptionsFromEnvironment();

struct Perf {
  double latency_ms = 0;
  std::optional<std::string> cache_status;  // x-layer-cache
};

struct Error {
  int status = 0;       // the HTTP status; 0 when no answer came (transport failure)
  std::string kind;     // the envelope's "error" ("not_found", "validation_error", ...)
  std::string message;  // the envelope's "message", else the body or the transport error
};

struct Response {
  int status = 0;
  std::string body;
  boost::json::value json;  // the body parsed (null when it is not JSON)
  std::map<std::string, std::string> headers;  // lower-case names
  Perf perf;
  Error error;  // set when !ok()
  bool ok() const { return status >= 200 && status < 300; }
  bool transport_failure() const { return status == 0; }
};

class Client {
 public:
  explicit Client(Options options = OptionsFromEnvironment());
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any route: `query` is a list of name/value pairs (encoded here), `body` JSON text or empty.
  Response Call(std::string_view method, std::string_view path,
                const std::vector<std::pair<std::string, std::string>>& query = {},
                std::string_view body = {});

  Response FetchDocument(std::string_view ns, std::string_view id);
  Response FetchDocuments(std::string_view ns, const boost::json::array& ids);
  Response WarmCache(std::string_view ns, std::optional<int> page_size = std::nullopt);
  Response GetWarmJob(std::string_view ns, std::string_view job_id);
  Response ListWarmJobs(std::string_view ns);
  Response CancelWarmJob(std::string_view ns, std::string_view job_id);
  // Unset options are not sent; a false one is sent as false. None set: the raw passthrough.
  Response HintCacheWarm(std::string_view ns, std::optional<bool> turbopuffer = std::nullopt,
                         std::optional<bool> documents = std::nullopt,
                         std::optional<bool> snapshots = std::nullopt,
                         std::optional<int> page_size = std::nullopt);
  Response GetSnapshotPolicy(std::string_view ns);
  Response PutSnapshotPolicy(std::string_view ns, const boost::json::object& policy);
  Response GetHistory(std::string_view ns);
  Response GetSnapshot(std::string_view ns, std::string_view sha);
  // On-demand snapshot jobs: `request` is {"field", "source"?, "filters"?, "page_size"?}.
  Response CreateSnapshotJob(std::string_view ns, const boost::json::object& request);
  Response ListSnapshotJobs(std::string_view ns);
  Response GetSnapshotJob(std::string_view ns, std::string_view job_id);
  Response GetMetadata(std::string_view ns);
  Response Write(std::string_view ns, const boost::json::object& body);
  Response Query(std::string_view ns, const boost::json::object& body);
  Response Health();

  const Options& options() const { return options_; }

 private:
  struct Curl;
  Options options_;
  std::unique_ptr<Curl> curl_;
};

// Percent-encodes a path segment or query value.
std::string Escape(std::string_view s);

}  // namespace hevlayer
