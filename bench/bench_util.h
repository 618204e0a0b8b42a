// Shared pieces of the benchmarks in bench/: child processes with a port file, an HTTP/1.1
// keep-alive load generator (open and closed loop), percentile summaries, /metrics scraping and
// /proc CPU readings. Benchmarks print JSON lines on stdout and progress on stderr.
//
// Nothing here is thread-safe unless stated: a LoadGen and its Targets belong to the thread that
// runs them. Failures at start-up are reported through `why` strings or exceptions; the load
// generator counts request failures instead of failing.
#pragma once

#include <sys/types.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace layer::bench {

using Clock = std::chrono::steady_clock;
using tcp = boost::asio::ip::tcp;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Rethrows a coroutine's exception out of io_context::run() instead of dropping it.
void Rethrow(std::exception_ptr e);

// CPU seconds (user + system) of the process whose stat file this is ("/proc/<pid>/stat").
double ProcCpuSeconds(const std::string& stat_path);
// 1-minute load average: other work on a shared machine shows up in the tails.
double LoadAverage();
// The `layer` binary next to the bench's directory (build/bench/x -> build/layer).
std::string DefaultLayerBin();

// splitmix64: a cheap, well-spread mix of `x` (id pickers, seeds).
uint64_t Mix(uint64_t x);
// Appends `n` pseudo-random lowercase letters, the same for the same `seed`.
void AppendLetters(std::string* out, size_t n, uint64_t seed);
// `open` (JSON text ending inside an open string, e.g. `{"body":"`) padded with letters from
// `seed` and closed with `"}` to exactly `bytes` bytes (or just closed when it is too long).
std::string PaddedJson(std::string open, size_t bytes, uint64_t seed);

// Where the processes of a benchmark run. On a small machine a load generator that shares the
// gateway's cores measures the scheduler as much as the gateway (a real client runs elsewhere), so
// a bench may pin itself and the origin to one CPU and the gateway to another.
struct CpuPinning {
  bool pinned = false;
  int bench_cpu = -1;    // this process (every thread it starts later) and the origin child
  int gateway_cpu = -1;  // the gateway child
};

// When `requested` and this process may run on at least two CPUs, pins the calling process to
// the first of them and returns a plan that puts the gateway on the second. Call at start-up,
// before any thread is created (threads inherit the mask). Otherwise (or when the kernel refuses)
// returns an unpinned plan and, if pinning was requested, prints why on stderr.
CpuPinning PinCpus(bool requested);

// ---------------------------------------------------------------------------------------------
// A child process (the gateway, the origin) that reports its listening port in a port file.
// Owns a temp directory (created by the constructor, removed by Stop) that holds the port file,
// the child's combined stdout/stderr log, and whatever data directories the caller puts there.

class ChildProcess {
 public:
  // `name` appears in error messages ("gateway exited during start-up …"). Throws when the temp
  // directory cannot be created (start-up only).
  explicit ChildProcess(std::string name);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  const std::string& dir() const { return dir_; }
  std::string port_file() const { return dir_ + "/port"; }

  // Spawns argv (argv[0] is the binary path) and waits up to 15 s for a port in port_file().
  // With `cpu` >= 0 the child runs on that CPU only (set between fork and exec, so every thread
  // of the child inherits it). On failure returns false and says why (the caller may append
  // LogText()).
  bool Start(const std::vector<std::string>& argv, std::string* why, int cpu = -1);

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  double CpuSeconds() const;

  // SIGTERM (the gateway drains; nothing is in flight), SIGKILL after 5 s; removes dir().
  void Stop();

  // The child's stdout/stderr so far (for start-up failures).
  std::string LogText() const;

 private:
  void RemoveDir();

  std::string name_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_, log_;
};

// Starts `layer origin` and `layer serve` in front of it (warn-level logs, no access log), each
// in its own temp directory, placed on the CPUs `pin` names when it is pinned. On failure prints
// why (with the child's log) and returns false.
bool StartOriginAndGateway(const std::string& layer_bin, int origin_threads, int gateway_threads,
                           ChildProcess& origin, ChildProcess& gateway, const CpuPinning& pin = {});
// Starts `layer serve` alone in front of an origin already listening on `origin_port` (same flags
// as above), on `cpu` when >= 0. On failure prints why (with the child's log) and returns false.
bool StartGateway(const std::string& layer_bin, uint16_t origin_port, int gateway_threads,
                  ChildProcess& gateway, int cpu = -1);

// ---------------------------------------------------------------------------------------------
// Blocking one-shot HTTP on a fresh connection (set-up, seeding, /metrics). Not for load.

struct HttpHeader {
  std::string name, value;
};

// nullopt on a connection or protocol failure; any status otherwise.
std::optional<HttpResponse> HttpCall(uint16_t port, boost::beast::http::verb verb,
                                     const std::string& target, const std::string& body,
                                     const std::vector<HttpHeader>& headers = {});
// GET; nullopt on any failure or a status other than 200.
std::optional<std::string> HttpGet(uint16_t port, const std::string& target);

// Sum of every sample of `name` (any labels) in a Prometheus text exposition. A name may include
// a label set, e.g. `x_count{route="query"}`, to pick one series.
double MetricValue(const std::string& text, std::string_view name);

// (before, after) pairs of /metrics scrapes: the phases a measurement sums over.
using MetricScrapes = std::vector<std::pair<std::string, std::string>>;
// How much `series` (as MetricValue names it) grew over `intervals`, summed.
double MetricDelta(const MetricScrapes& intervals, std::string_view series);

// The gateway's own time for `route` between scrapes of its /metrics, from the
// layer_http_request_duration_seconds histogram (head received to response written): how many
// requests, the share that took over 1 ms, and the upper bound in µs of the bucket that holds the
// median and the 99th percentile (coarse: 50, 100, 250, 500 µs, 1, 2.5, 5 ms …).
struct ServerLatency {
  double requests = 0;
  double over_1ms = 0;  // fraction
  double p50_le_us = 0, p99_le_us = 0;
};
ServerLatency ServerLatencyOver(const MetricScrapes& intervals, std::string_view route);

// ---------------------------------------------------------------------------------------------
// The load generator: single-threaded, runs on the caller's thread.

struct Samples {
  std::vector<int64_t> latency_ns;  // successful requests only
  uint64_t ok = 0, errors = 0;
  double seconds = 0;  // wall time of the phases, first due time to last answer

  void Merge(const Samples& o);
  double rps() const;  // successful requests per second
};

struct ClientConn {
  explicit ClientConn(boost::asio::io_context& ctx) : sock(ctx) {}
  tcp::socket sock;
  boost::beast::flat_buffer buffer;
  std::string scratch;  // request bytes built by Target::request, reused
};

// Where requests go and what they are. `request(seq, scratch)` returns the serialised HTTP/1.1
// request number `seq` (counted per target over its whole life, so phases never repeat a seq);
// the view may point into `scratch` or at storage that outlives the phase. `check` says whether
// an answer counts as a success (only successes get a latency sample).
struct Target {
  std::string name;
  tcp::endpoint endpoint;
  std::function<std::string_view(uint64_t seq, std::string& scratch)> request;
  std::function<bool(const HttpResponse&)> check;
  std::vector<std::unique_ptr<ClientConn>> conns;
  uint64_t reconnects = 0;
  uint64_t next_seq = 0;
};

// Builds "METHOD target HTTP/1.1" with Host, optional bearer token and, when `body` is not
// empty, a JSON body with its Content-Length.
std::string SerializeRequest(std::string_view method, std::string_view target,
                             std::string_view token, std::string_view body);

class LoadGen {
 public:
  explicit LoadGen(boost::asio::io_context& ctx) : ctx_(ctx) {}

  // Opens k keep-alive connections to t (blocking; throws on failure).
  void Connect(Target& t, int k);

  // Open loop at `rate` req/s for `seconds`: request i is due at start + i/rate and its latency
  // runs from that due time, so stalls land in the tail (no coordinated omission). A due request
  // waits in a backlog while every connection is busy.
  Samples RunOpen(Target& t, double rate, double seconds);

  // Closed loop: every connection sends back to back for `seconds`.
  Samples RunClosed(Target& t, double seconds);

 private:
  // Due requests not yet sent, and the connections waiting for one. One thread: no locks.
  struct OpenPhase {
    std::deque<Clock::time_point> backlog;
    std::vector<boost::asio::steady_timer*> idle;  // a waiting worker is woken by a cancel
    bool done = false;                             // no more requests will be scheduled
    Samples* out = nullptr;
  };

  boost::asio::awaitable<void> Dispatch(OpenPhase& ph, Clock::time_point start, double rate,
                                        uint64_t count);
  boost::asio::awaitable<void> OpenWorker(OpenPhase& ph, ClientConn& c, Target& t);
  boost::asio::awaitable<void> ClosedWorker(ClientConn& c, Target& t, Clock::time_point end,
                                            Samples& out);
  // One request/response on `c`; latency from `due`. Reconnects after any failure.
  boost::asio::awaitable<void> Exchange(ClientConn& c, Target& t, Clock::time_point due,
                                        Samples& out);

  boost::asio::io_context& ctx_;
};

// ---------------------------------------------------------------------------------------------

// Latency percentiles in microseconds (nearest-rank). Sorts `ns` in place.
struct Summary {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};
Summary Summarize(std::vector<int64_t>& ns);

// Minimal JSON-line builder: Add("k", v) in order, then Line() -> {"k":v,...}. Numbers are
// printed with `precision` decimals (0 for integers); strings are escaped.
class JsonLine {
 public:
  JsonLine& Str(std::string_view key, std::string_view value);
  JsonLine& Num(std::string_view key, double value, int precision = 1);
  JsonLine& Int(std::string_view key, int64_t value);
  JsonLine& Bool(std::string_view key, bool value);
  JsonLine& Null(std::string_view key);
  JsonLine& Raw(std::string_view key, std::string_view json);
  // Adds requests/errors/rps and the latency summary fields (p50_us … mean_us) of `s`.
  JsonLine& Latency(const Samples& s, const Summary& sum);
  // Adds pinned (bool), bench_cpu and gateway_cpu (null when not pinned).
  JsonLine& Pinning(const CpuPinning& pin);
  std::string Line() const { return "{" + body_ + "}"; }
  // Prints Line() and a newline on stdout and flushes.
  void Print() const;

 private:
  void Key(std::string_view key);
  std::string body_;
};

}  // namespace layer::bench
