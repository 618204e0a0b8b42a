// Passthrough benchmark: the same small Turbopuffer query sent directly to a fast in-process
// upstream and through the real gateway binary (a child process) in front of that same upstream,
// in one run, so the difference is what the gateway adds.
//
// Latency mode (default) is open loop: request i is due at start + i/rate and its latency is
// measured from that due time, not from when a connection became free, so a stall shows up in
// the tail instead of silently lowering the offered load (no coordinated omission). Requests are
// spread over K keep-alive connections per target; a due request waits in a backlog while all K
// are busy. Direct and gateway phases alternate (ABBA) so drift on a shared machine hits both.
// Max mode is closed loop: every connection sends back to back; it reports the ceiling.
//
// Output: one JSON line per target and one summary line on stdout; progress on stderr.
// A benchmark, not a test: it asserts nothing.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/io_pool.h"

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
template <typename T>
using Task = asio::awaitable<T>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using namespace std::chrono_literals;

constexpr std::string_view kToken = "bench";
constexpr std::string_view kQueryBody = R"({"rank_by":["vector","ANN",[0.1,0.2,0.3]],"top_k":10})";
// Shaped like a Turbopuffer query answer (rows, billing, performance).
constexpr std::string_view kResultBody =
    R"({"rows":[{"id":1,"$dist":0.1}],)"
    R"("billing":{"billable_logical_bytes_queried":1024,"billable_logical_bytes_returned":64},)"
    R"("performance":{"approx_namespace_size":1,"cache_hit_ratio":1.0,"cache_temperature":"hot",)"
    R"("server_total_ms":1,"query_execution_ms":1,"exhaustive_search_count":0}})";

// Rethrows a coroutine's exception out of io_context::run() instead of dropping it.
void Rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// ---------------------------------------------------------------------------------------------
// The fast upstream: answers POST /v2/namespaces/{ns}/query with a fixed body, HTTP/1.1
// keep-alive, on its own IoPool threads. Counts accepted TCP connections (thread-safe).

class FastUpstream {
 public:
  explicit FastUpstream(int threads) : pool_(threads) {
    ok_ = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(kResultBody.size()) + "\r\n\r\n" + std::string(kResultBody);
    not_found_ =
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\n"
        "not found";
    unauthorized_ =
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}";
  }
  ~FastUpstream() { Stop(); }

  // Binds 127.0.0.1:0 and starts serving; returns the port. Throws on failure (start-up only).
  uint16_t Start() {
    acceptor_ = std::make_unique<tcp::acceptor>(
        pool_.at(0), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::co_spawn(pool_.at(0), AcceptLoop(), asio::detached);
    pool_.Start();
    return acceptor_->local_endpoint().port();
  }
  void Stop() {
    pool_.Stop();
    pool_.Join();
  }
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t requests() const { return requests_.load(); }

 private:
  static bool IsQueryPath(std::string_view t) {
    return t.starts_with("/v2/namespaces/") && t.ends_with("/query");
  }

  Task<void> AcceptLoop() {
    for (;;) {
      asio::io_context& ctx = pool_.Next();
      auto [ec, sock] = co_await acceptor_->async_accept(ctx, kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
        continue;
      }
      accepted_.fetch_add(1);
      sock.set_option(tcp::no_delay(true));
      asio::co_spawn(ctx, Session(std::move(sock)), asio::detached);
    }
  }

  Task<void> Session(tcp::socket sock) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      auto [ec, n] = co_await bhttp::async_read(sock, buffer, parser, kTuple);
      if (ec) co_return;
      requests_.fetch_add(1, std::memory_order_relaxed);
      const auto& req = parser.get();
      const std::string* res = &ok_;
      if (req.method() != bhttp::verb::post || !IsQueryPath(req.target())) {
        res = &not_found_;
      } else if (req[bhttp::field::authorization] != "Bearer " + std::string(kToken)) {
        res = &unauthorized_;
      }
      auto [wec, wn] = co_await asio::async_write(sock, asio::buffer(*res), kTuple);
      if (wec || !req.keep_alive()) {
        beast::error_code ignored;
        sock.shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  layer::http::IoPool pool_;  // declared first: destroyed after the acceptor
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::string ok_, not_found_, unauthorized_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> requests_{0};
};

// ---------------------------------------------------------------------------------------------
// The gateway under test, as a child process.

double ProcCpuSeconds(const std::string& stat_path) {
  std::ifstream f(stat_path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto pos = s.rfind(')');
  if (pos == std::string::npos) return 0;
  std::istringstream in(s.substr(pos + 2));  // field 3 (state) onwards
  std::string tok;
  double utime = 0, stime = 0;
  for (int field = 3; in >> tok && field <= 15; ++field) {
    if (field == 14) utime = std::strtod(tok.c_str(), nullptr);
    if (field == 15) stime = std::strtod(tok.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

class GatewayProcess {
 public:
  ~GatewayProcess() { Stop(); }

  // Spawns `bin serve ...` and waits for its port file. On failure returns false and says why.
  bool Start(const std::string& bin, uint16_t upstream_port, int threads,
             const std::vector<std::string>& extra, std::string* why) {
    char tmpl[] = "/tmp/layer-bench-XXXXXX";
    if (!mkdtemp(tmpl)) {
      *why = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    std::string port_file = dir_ + "/port";
    log_ = dir_ + "/gateway.log";
    std::vector<std::string> args = {bin,
                                     "serve",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     port_file,
                                     "--upstream",
                                     "http://127.0.0.1:" + std::to_string(upstream_port),
                                     "--access-log",
                                     "false",
                                     "--log-level",
                                     "warn",
                                     "--threads",
                                     std::to_string(threads)};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = -1;
      *why = "cannot spawn " + bin + ": " + std::strerror(rc);
      return false;
    }
    auto deadline = Clock::now() + 15s;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *why = "gateway exited during start-up (status " + std::to_string(status) + "); its log:";
        return false;
      }
      std::ifstream f(port_file);
      int p = 0;
      if (f >> p && p > 0) {
        port_ = static_cast<uint16_t>(p);
        return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    *why = "gateway did not write its port file within 15 s; its log:";
    return false;
  }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  double CpuSeconds() const {
    return pid_ > 0 ? ProcCpuSeconds("/proc/" + std::to_string(pid_) + "/stat") : 0;
  }

  // SIGTERM (the gateway drains; nothing is in flight), SIGKILL after 5 s.
  void Stop() {
    if (pid_ <= 0) {
      RemoveDir();
      return;
    }
    kill(pid_, SIGTERM);
    int status = 0;
    auto deadline = Clock::now() + 5s;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    RemoveDir();
  }

  // The gateway's stdout/stderr so far (for start-up failures).
  std::string LogText() const {
    std::ifstream f(log_);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }

 private:
  void RemoveDir() {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_, log_;
};

// Blocking GET on a fresh connection; nullopt on any failure.
std::optional<std::string> HttpGet(uint16_t port, const std::string& target) {
  asio::io_context io;
  tcp::socket s(io);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return std::nullopt;
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.keep_alive(false);
  bhttp::write(s, req, ec);
  if (ec) return std::nullopt;
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res, ec);
  if (ec || res.result_int() != 200) return std::nullopt;
  return std::move(res.body());
}

// Sum of every sample of `name` (any labels) in a Prometheus text exposition.
double MetricValue(const std::string& text, std::string_view name) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(name) || line.size() <= name.size()) continue;
    char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    auto sp = line.rfind(' ');
    sum += std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return sum;
}

// Gateway-side counters: the upstream pool, and the time split of query requests.
struct PoolCounters {
  double opened = 0, reused = 0;
  double served_sum = 0, served_count = 0;      // request head parsed -> response written
  double upstream_sum = 0, upstream_count = 0;  // upstream round trip, inside the above
};

PoolCounters ReadPoolCounters(uint16_t gateway_port) {
  PoolCounters c;
  auto text = HttpGet(gateway_port, "/metrics");
  if (!text) {
    fmt::print(stderr, "warning: GET /metrics on the gateway failed\n");
    return c;
  }
  c.opened = MetricValue(*text, "layer_upstream_connections_opened_total");
  c.reused = MetricValue(*text, "layer_upstream_connections_reused_total");
  c.served_sum = MetricValue(*text, "layer_http_request_duration_seconds_sum{route=\"query\"}");
  c.served_count = MetricValue(*text, "layer_http_request_duration_seconds_count{route=\"query\"}");
  c.upstream_sum = MetricValue(*text, "layer_upstream_request_duration_seconds_sum");
  c.upstream_count = MetricValue(*text, "layer_upstream_request_duration_seconds_count");
  return c;
}

// ---------------------------------------------------------------------------------------------
// The load generator: single-threaded, runs on the caller's thread.

struct Samples {
  std::vector<int64_t> latency_ns;  // successful requests only
  uint64_t ok = 0, errors = 0;
  double seconds = 0;  // wall time of the phases, first due time to last answer

  void Merge(const Samples& o) {
    latency_ns.insert(latency_ns.end(), o.latency_ns.begin(), o.latency_ns.end());
    ok += o.ok;
    errors += o.errors;
    seconds += o.seconds;
  }
};

struct ClientConn {
  explicit ClientConn(asio::io_context& ctx) : sock(ctx) {}
  tcp::socket sock;
  beast::flat_buffer buffer;
};

struct Target {
  std::string name;
  tcp::endpoint endpoint;
  std::vector<std::unique_ptr<ClientConn>> conns;
  uint64_t reconnects = 0;
};

class LoadGen {
 public:
  LoadGen(asio::io_context& ctx, const std::string& ns) : ctx_(ctx) {
    request_ = "POST /v2/namespaces/" + ns +
               "/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
               std::string(kToken) + "\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(kQueryBody.size()) + "\r\n\r\n" + std::string(kQueryBody);
  }

  void Connect(Target& t, int k) {
    for (int i = 0; i < k; ++i) {
      auto c = std::make_unique<ClientConn>(ctx_);
      c->sock.connect(t.endpoint);
      c->sock.set_option(tcp::no_delay(true));
      t.conns.push_back(std::move(c));
    }
  }

  // Open loop at `rate` req/s for `seconds`.
  Samples RunOpen(Target& t, double rate, double seconds) {
    Samples s;
    OpenPhase ph;
    ph.out = &s;
    auto count = static_cast<uint64_t>(rate * seconds + 0.5);
    auto start = Clock::now() + 1ms;
    asio::co_spawn(ctx_, Dispatch(ph, start, rate, count), Rethrow);
    for (auto& c : t.conns) asio::co_spawn(ctx_, OpenWorker(ph, *c, t), Rethrow);
    ctx_.restart();
    ctx_.run();
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return s;
  }

  // Closed loop: every connection sends back to back for `seconds`.
  Samples RunClosed(Target& t, double seconds) {
    Samples s;
    auto start = Clock::now();
    auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (auto& c : t.conns) asio::co_spawn(ctx_, ClosedWorker(*c, t, end, s), Rethrow);
    ctx_.restart();
    ctx_.run();
    s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return s;
  }

 private:
  // Due requests not yet sent, and the connections waiting for one. One thread: no locks.
  struct OpenPhase {
    std::deque<Clock::time_point> backlog;
    std::vector<asio::steady_timer*> idle;  // a waiting worker is woken by cancelling its timer
    bool done = false;                      // no more requests will be scheduled
    Samples* out = nullptr;
  };

  Task<void> Dispatch(OpenPhase& ph, Clock::time_point start, double rate, uint64_t count) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (uint64_t i = 0; i < count; ++i) {
      auto due = start + std::chrono::nanoseconds(static_cast<int64_t>(i * 1e9 / rate));
      timer.expires_at(due);
      co_await timer.async_wait(kTuple);
      ph.backlog.push_back(due);
      if (!ph.idle.empty()) {
        asio::steady_timer* w = ph.idle.back();
        ph.idle.pop_back();
        w->cancel();
      }
    }
    ph.done = true;
    for (auto* w : ph.idle) w->cancel();
    ph.idle.clear();
  }

  Task<void> OpenWorker(OpenPhase& ph, ClientConn& c, Target& t) {
    asio::steady_timer wake(co_await asio::this_coro::executor);
    for (;;) {
      if (!ph.backlog.empty()) {
        Clock::time_point due = ph.backlog.front();
        ph.backlog.pop_front();
        co_await Exchange(c, t, due, *ph.out);
        continue;
      }
      if (ph.done) co_return;
      wake.expires_at(Clock::time_point::max());
      ph.idle.push_back(&wake);
      co_await wake.async_wait(kTuple);
    }
  }

  Task<void> ClosedWorker(ClientConn& c, Target& t, Clock::time_point end, Samples& out) {
    while (Clock::now() < end) co_await Exchange(c, t, Clock::now(), out);
  }

  // One request/response on `c`; latency from `due`. Reconnects after any failure.
  Task<void> Exchange(ClientConn& c, Target& t, Clock::time_point due, Samples& out) {
    bool ok = false, reconnect = true;
    auto [wec, wn] = co_await asio::async_write(c.sock, asio::buffer(request_), kTuple);
    if (!wec) {
      bhttp::response_parser<bhttp::string_body> parser;
      auto [rec, rn] = co_await bhttp::async_read(c.sock, c.buffer, parser, kTuple);
      if (!rec) {
        const auto& res = parser.get();
        ok = res.result_int() == 200 && res.body() == kResultBody;
        reconnect = !res.keep_alive();
      }
    }
    auto now = Clock::now();
    if (ok) {
      ++out.ok;
      out.latency_ns.push_back((now - due).count());
    } else {
      ++out.errors;
    }
    if (reconnect) {
      ++t.reconnects;
      beast::error_code ignored;
      c.sock.close(ignored);
      c.buffer.clear();
      c.sock = tcp::socket(ctx_);
      auto [cec] = co_await c.sock.async_connect(t.endpoint, kTuple);
      if (!cec) c.sock.set_option(tcp::no_delay(true), ignored);
    }
  }

  asio::io_context& ctx_;
  std::string request_;
};

// ---------------------------------------------------------------------------------------------

struct Summary {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

Summary Summarize(std::vector<int64_t>& ns) {
  Summary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto pct = [&](double p) {
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(ns.size())));
    i = std::clamp<size_t>(i, 1, ns.size()) - 1;
    return static_cast<double>(ns[i]) / 1e3;
  };
  s.p50 = pct(0.50);
  s.p90 = pct(0.90);
  s.p99 = pct(0.99);
  s.p999 = pct(0.999);
  s.max = static_cast<double>(ns.back()) / 1e3;
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  s.mean = sum / static_cast<double>(ns.size()) / 1e3;
  return s;
}

// 1-minute load average: other work on a shared machine shows up in the tails.
double LoadAverage() {
  std::ifstream f("/proc/loadavg");
  double v = 0;
  f >> v;
  return v;
}

std::string DefaultLayerBin() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "layer";
  return (self.parent_path().parent_path() / "layer").string();
}

struct Options {
  std::string mode = "latency";
  double rate = 2000;
  int connections = 16;
  double duration = 10;
  double warmup = 2;
  double phase = 1;
  int gateway_threads = 2;
  int upstream_threads = 1;
  std::string layer_bin;
  std::string ns = "bench";
  std::vector<std::string> gateway_args;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Passthrough benchmark: direct vs through the Layer gateway"};
  app.add_option("--mode", o.mode, "latency (open loop at --rate) | max (closed loop)")
      ->check(CLI::IsMember({"latency", "max"}))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "requests/s per target in latency mode")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--connections", o.connections, "keep-alive connections per target")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--duration", o.duration, "measured seconds per target")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "warm-up seconds per target (discarded)")
      ->capture_default_str();
  app.add_option("--phase", o.phase, "length of one alternating direct/gateway phase, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--gateway-threads", o.gateway_threads, "layer serve --threads")
      ->capture_default_str();
  app.add_option("--upstream-threads", o.upstream_threads, "threads of the in-process upstream")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--layer-bin", o.layer_bin, "gateway binary (default: ../layer next to this)");
  app.add_option("--namespace", o.ns, "namespace in the query path")->capture_default_str();
  app.add_option(
         "--gateway-arg", o.gateway_args,
         "extra argument for layer serve, e.g. --gateway-arg=--upstream-max-idle=8; repeatable")
      ->allow_extra_args(false);
  CLI11_PARSE(app, argc, argv);
  if (o.layer_bin.empty()) o.layer_bin = DefaultLayerBin();
  std::signal(SIGPIPE, SIG_IGN);
  const bool open_loop = o.mode == "latency";
  const double load_before = LoadAverage();

  FastUpstream upstream(o.upstream_threads);
  uint16_t upstream_port = upstream.Start();
  GatewayProcess gateway;
  std::string why;
  if (!gateway.Start(o.layer_bin, upstream_port, o.gateway_threads, o.gateway_args, &why)) {
    fmt::print(stderr, "error: {}\n{}", why, gateway.LogText());
    return 1;
  }
  fmt::print(stderr, "upstream on :{}, gateway {} on :{} (pid {})\n", upstream_port, o.layer_bin,
             gateway.port(), gateway.pid());

  asio::io_context ctx(1);
  LoadGen gen(ctx, o.ns);
  auto loopback = asio::ip::make_address("127.0.0.1");
  Target direct{"direct", tcp::endpoint(loopback, upstream_port), {}, 0};
  Target through{"gateway", tcp::endpoint(loopback, gateway.port()), {}, 0};
  gen.Connect(direct, o.connections);
  gen.Connect(through, o.connections);
  // Let the upstream accept the direct connections, so later accepts are the gateway's.
  for (auto until = Clock::now() + 2s;
       upstream.accepted() < static_cast<uint64_t>(o.connections) && Clock::now() < until;) {
    std::this_thread::sleep_for(1ms);
  }

  auto run = [&](Target& t, double seconds) {
    return open_loop ? gen.RunOpen(t, o.rate, seconds) : gen.RunClosed(t, seconds);
  };

  // Warm-up: direct first, then the gateway; pool counters are read around the gateway's part.
  fmt::print(stderr, "warm-up {:.1f} s per target\n", o.warmup);
  if (o.warmup > 0) run(direct, o.warmup);
  uint64_t accepted0 = upstream.accepted();
  PoolCounters m0 = ReadPoolCounters(gateway.port());
  if (o.warmup > 0) run(through, o.warmup);
  PoolCounters m1 = ReadPoolCounters(gateway.port());
  uint64_t accepted1 = upstream.accepted();
  uint64_t direct_reconnects0 = direct.reconnects, gateway_reconnects0 = through.reconnects;

  int phases = std::max(1, static_cast<int>(std::lround(o.duration / o.phase)));
  double phase_s = o.duration / phases;
  Samples direct_s, gateway_s;
  double gateway_cpu = 0, bench_cpu_direct = 0, bench_cpu_gateway = 0;  // seconds of CPU
  fmt::print(stderr, "measuring: {} x {:.2f} s phases per target, ABBA order\n", phases, phase_s);
  for (int p = 0; p < phases; ++p) {
    for (int j = 0; j < 2; ++j) {
      bool gw_turn = (p % 2 == 0) == (j == 1);  // D G | G D | D G ...
      if (gw_turn) {
        double cpu0 = gateway.CpuSeconds(), self0 = ProcCpuSeconds("/proc/self/stat");
        gateway_s.Merge(run(through, phase_s));
        gateway_cpu += gateway.CpuSeconds() - cpu0;
        bench_cpu_gateway += ProcCpuSeconds("/proc/self/stat") - self0;
      } else {
        double self0 = ProcCpuSeconds("/proc/self/stat");
        direct_s.Merge(run(direct, phase_s));
        bench_cpu_direct += ProcCpuSeconds("/proc/self/stat") - self0;
      }
    }
  }
  PoolCounters m2 = ReadPoolCounters(gateway.port());
  uint64_t accepted2 = upstream.accepted();

  auto print_target = [&](const Target& t, Samples& s, uint64_t reconnects) {
    Summary sum = Summarize(s.latency_ns);
    fmt::print(
        "{{\"bench\":\"passthrough\",\"mode\":\"{}\",\"target\":\"{}\",\"rate\":{},"
        "\"connections\":{},\"seconds\":{:.2f},\"requests\":{},\"errors\":{},\"reconnects\":{},"
        "\"rps\":{:.0f},\"p50_us\":{:.1f},\"p90_us\":{:.1f},\"p99_us\":{:.1f},"
        "\"p999_us\":{:.1f},\"max_us\":{:.1f},\"mean_us\":{:.1f}}}\n",
        o.mode, t.name, open_loop ? fmt::format("{:.0f}", o.rate) : std::string("null"),
        o.connections, s.seconds, s.ok + s.errors, s.errors, reconnects,
        static_cast<double>(s.ok) / std::max(s.seconds, 1e-9), sum.p50, sum.p90, sum.p99, sum.p999,
        sum.max, sum.mean);
    return sum;
  };
  Summary d = print_target(direct, direct_s, direct.reconnects - direct_reconnects0);
  Summary g = print_target(through, gateway_s, through.reconnects - gateway_reconnects0);

  auto ratio = [](double reused, double opened) {
    return reused + opened > 0 ? reused / (reused + opened) : 0.0;
  };
  double opened_all = m2.opened - m0.opened, reused_all = m2.reused - m0.reused;
  double opened_meas = m2.opened - m1.opened, reused_meas = m2.reused - m1.reused;
  uint64_t gw_requests = gateway_s.ok + gateway_s.errors;
  auto mean_us = [](double sum_s, double count) { return count > 0 ? sum_s * 1e6 / count : 0.0; };
  // CPU from /proc/<pid>/stat (clock-tick resolution; fine over seconds of load).
  auto per_req = [](double cpu_s, uint64_t n) {
    return n > 0 ? cpu_s * 1e6 / static_cast<double>(n) : 0.0;
  };
  fmt::print(
      "{{\"bench\":\"passthrough\",\"mode\":\"{}\",\"gateway_threads\":{},"
      "\"upstream_threads\":{},\"added_p50_us\":{:.1f},\"added_p90_us\":{:.1f},"
      "\"added_p99_us\":{:.1f},\"added_p999_us\":{:.1f},\"added_mean_us\":{:.1f},"
      "\"rps_ratio\":{:.3f},\"reuse_ratio\":{:.5f},\"reuse_ratio_after_warmup\":{:.5f},"
      "\"upstream_conns_opened\":{:.0f},\"upstream_conns_reused\":{:.0f},"
      "\"upstream_accepted_from_gateway\":{},\"upstream_accepted_after_warmup\":{},"
      "\"gateway_cpu_us_per_req\":{:.1f},\"bench_cpu_us_per_req_direct\":{:.1f},"
      "\"bench_cpu_us_per_req_gateway\":{:.1f},\"gateway_served_mean_us\":{:.1f},"
      "\"gateway_upstream_mean_us\":{:.1f},\"loadavg_before\":{:.2f},\"loadavg_after\":{:.2f}}}\n",
      o.mode, o.gateway_threads, o.upstream_threads, g.p50 - d.p50, g.p90 - d.p90, g.p99 - d.p99,
      g.p999 - d.p999, g.mean - d.mean,
      direct_s.ok > 0 ? (static_cast<double>(gateway_s.ok) / gateway_s.seconds) /
                            (static_cast<double>(direct_s.ok) / direct_s.seconds)
                      : 0.0,
      ratio(reused_all, opened_all), ratio(reused_meas, opened_meas), opened_all, reused_all,
      accepted2 - accepted0, accepted2 - accepted1, per_req(gateway_cpu, gw_requests),
      per_req(bench_cpu_direct, direct_s.ok + direct_s.errors),
      per_req(bench_cpu_gateway, gw_requests),
      mean_us(m2.served_sum - m1.served_sum, m2.served_count - m1.served_count),
      mean_us(m2.upstream_sum - m1.upstream_sum, m2.upstream_count - m1.upstream_count),
      load_before, LoadAverage());
  std::fflush(stdout);

  gateway.Stop();
  upstream.Stop();
  return 0;
}
