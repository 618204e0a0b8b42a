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
#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "http/io_pool.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using layer::bench::Clock;
using layer::bench::tcp;
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

// Gateway-side counters: the upstream pool, and the time split of query requests.
struct PoolCounters {
  double opened = 0, reused = 0;
  double served_sum = 0, served_count = 0;      // request head parsed -> response written
  double upstream_sum = 0, upstream_count = 0;  // upstream round trip, inside the above
};

using layer::bench::ChildProcess;
using layer::bench::HttpGet;
using layer::bench::LoadGen;
using layer::bench::MetricValue;
using layer::bench::ProcCpuSeconds;
using layer::bench::Samples;
using layer::bench::Summary;
using layer::bench::Target;

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
  if (o.layer_bin.empty()) o.layer_bin = layer::bench::DefaultLayerBin();
  std::signal(SIGPIPE, SIG_IGN);
  const bool open_loop = o.mode == "latency";
  const double load_before = layer::bench::LoadAverage();

  FastUpstream upstream(o.upstream_threads);
  uint16_t upstream_port = upstream.Start();
  ChildProcess gateway("gateway");
  std::vector<std::string> args = {
      o.layer_bin,    "serve",
      "--listen",     "127.0.0.1:0",
      "--port-file",  gateway.port_file(),
      "--upstream",   "http://127.0.0.1:" + std::to_string(upstream_port),
      "--access-log", "false",
      "--log-level",  "warn",
      "--threads",    std::to_string(o.gateway_threads)};
  args.insert(args.end(), o.gateway_args.begin(), o.gateway_args.end());
  std::string why;
  if (!gateway.Start(args, &why)) {
    fmt::print(stderr, "error: {}\n{}", why, gateway.LogText());
    return 1;
  }
  fmt::print(stderr, "upstream on :{}, gateway {} on :{} (pid {})\n", upstream_port, o.layer_bin,
             gateway.port(), gateway.pid());

  asio::io_context ctx(1);
  LoadGen gen(ctx);
  auto loopback = asio::ip::make_address("127.0.0.1");
  const std::string request = layer::bench::SerializeRequest(
      "POST", "/v2/namespaces/" + o.ns + "/query", kToken, kQueryBody);
  auto fixed_request = [&request](uint64_t, std::string&) { return std::string_view(request); };
  auto check = [](const layer::bench::HttpResponse& res) {
    return res.result_int() == 200 && res.body() == kResultBody;
  };
  Target direct{"direct", tcp::endpoint(loopback, upstream_port), fixed_request, check, {}, 0, 0};
  Target through{"gateway", tcp::endpoint(loopback, gateway.port()), fixed_request, check, {}, 0,
                 0};
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
    Summary sum = layer::bench::Summarize(s.latency_ns);
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
      load_before, layer::bench::LoadAverage());
  std::fflush(stdout);

  gateway.Stop();
  upstream.Stop();
  return 0;
}
