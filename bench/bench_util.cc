#include "bench_util.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/metrics.h"

extern char** environ;

namespace layer::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
template <typename T>
using Task = asio::awaitable<T>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using namespace std::chrono_literals;

void Rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

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

double LoadAverage() {
  std::ifstream f("/proc/loadavg");
  double v = 0;
  f >> v;
  return v;
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void AppendLetters(std::string* out, size_t n, uint64_t seed) {
  out->reserve(out->size() + n);
  for (size_t i = 0; i < n; ++i) {
    out->push_back(static_cast<char>('a' + seed % 26));
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
  }
}

std::string PaddedJson(std::string open, size_t bytes, uint64_t seed) {
  constexpr size_t kTail = 2;  // "}
  AppendLetters(&open, bytes > open.size() + kTail ? bytes - open.size() - kTail : 0, seed);
  open += "\"}";
  return open;
}

std::string DefaultLayerBin() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "layer";
  return (self.parent_path().parent_path() / "layer").string();
}

CpuPinning PinCpus(bool requested) {
  CpuPinning plan;
  if (!requested) return plan;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    fmt::print(stderr, "warning: --pin-cpus: sched_getaffinity failed ({}); not pinned\n",
               std::strerror(errno));
    return plan;
  }
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  if (cpus.size() < 2) {
    fmt::print(stderr, "warning: --pin-cpus needs at least 2 CPUs, {} available; not pinned\n",
               CPU_COUNT(&allowed));
    return plan;
  }
  cpu_set_t mine;
  CPU_ZERO(&mine);
  CPU_SET(cpus[0], &mine);
  if (sched_setaffinity(0, sizeof(mine), &mine) != 0) {
    fmt::print(stderr, "warning: --pin-cpus: sched_setaffinity failed ({}); not pinned\n",
               std::strerror(errno));
    return plan;
  }
  plan.pinned = true;
  plan.bench_cpu = cpus[0];
  plan.gateway_cpu = cpus[1];
  fmt::print(stderr, "pinned: bench and origin on CPU {}, gateway on CPU {}\n", plan.bench_cpu,
             plan.gateway_cpu);
  return plan;
}

// ---------------------------------------------------------------------------------------------

ChildProcess::ChildProcess(std::string name) : name_(std::move(name)) {
  char tmpl[] = "/tmp/layer-bench-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  log_ = dir_ + "/" + name_ + ".log";
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Start(const std::vector<std::string>& args, std::string* why, int cpu) {
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls (open, dup2, sched_setaffinity, execve, write, _exit).
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string& bin = args.at(0);
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (cpu >= 0) CPU_SET(cpu, &mask);
  int report[2];  // the child writes errno here if it fails before exec; CLOEXEC closes it on exec
  if (pipe2(report, O_CLOEXEC) != 0) {
    *why = std::string("pipe2 failed: ") + std::strerror(errno);
    return false;
  }
  pid_ = fork();
  if (pid_ < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    pid_ = -1;
    *why = "cannot fork for " + bin + ": " + std::strerror(err);
    return false;
  }
  if (pid_ == 0) {
    int err = 0;
    int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(1, 2) < 0) err = errno;
    if (!err && cpu >= 0 && sched_setaffinity(0, sizeof(mask), &mask) != 0) err = errno;
    if (!err) {
      execve(bin.c_str(), argv.data(), environ);
      err = errno;
    }
    ssize_t ignored = write(report[1], &err, sizeof(err));
    (void)ignored;
    _exit(127);
  }
  close(report[1]);
  int child_err = 0;
  ssize_t got;
  do {
    got = read(report[0], &child_err, sizeof(child_err));
  } while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == static_cast<ssize_t>(sizeof(child_err))) {
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    *why = "cannot start " + bin + ": " + std::strerror(child_err);
    return false;
  }
  auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *why = name_ + " exited during start-up (status " + std::to_string(status) + "); its log:";
      return false;
    }
    std::ifstream f(port_file());
    int p = 0;
    if (f >> p && p > 0) {
      port_ = static_cast<uint16_t>(p);
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  *why = name_ + " did not write its port file within 15 s; its log:";
  return false;
}

double ChildProcess::CpuSeconds() const {
  return pid_ > 0 ? ProcCpuSeconds("/proc/" + std::to_string(pid_) + "/stat") : 0;
}

void ChildProcess::Stop() {
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

std::string ChildProcess::LogText() const {
  std::ifstream f(log_);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void ChildProcess::RemoveDir() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  dir_.clear();
}

// ---------------------------------------------------------------------------------------------

std::optional<HttpResponse> HttpCall(uint16_t port, bhttp::verb verb, const std::string& target,
                                     const std::string& body,
                                     const std::vector<HttpHeader>& headers) {
  asio::io_context io;
  tcp::socket s(io);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return std::nullopt;
  bhttp::request<bhttp::string_body> req{verb, target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  for (const auto& h : headers) req.set(h.name, h.value);
  req.keep_alive(false);
  if (!body.empty() || verb == bhttp::verb::post) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  bhttp::write(s, req, ec);
  if (ec) return std::nullopt;
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 30);
  bhttp::read(s, buf, parser, ec);
  if (ec) return std::nullopt;
  return parser.release();
}

std::optional<std::string> HttpGet(uint16_t port, const std::string& target) {
  auto res = HttpCall(port, bhttp::verb::get, target, "");
  if (!res || res->result_int() != 200) return std::nullopt;
  return std::move(res->body());
}

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

double MetricDelta(const MetricScrapes& intervals, std::string_view series) {
  double d = 0;
  for (const auto& [before, after] : intervals) {
    d += MetricValue(after, series) - MetricValue(before, series);
  }
  return d;
}

ServerLatency ServerLatencyOver(const MetricScrapes& intervals, std::string_view route) {
  const std::string name = "layer_http_request_duration_seconds";
  auto delta = [&](const std::string& series) { return MetricDelta(intervals, series); };
  ServerLatency out;
  out.requests = delta(fmt::format("{}_count{{route=\"{}\"}}", name, route));
  if (out.requests <= 0) return out;
  for (double le : layer::LatencyBuckets()) {
    const double at_most =
        delta(fmt::format("{}_bucket{{route=\"{}\",le=\"{}\"}}", name, route, le));
    if (le == 0.001) out.over_1ms = 1 - at_most / out.requests;
    if (out.p50_le_us == 0 && at_most >= 0.5 * out.requests) out.p50_le_us = le * 1e6;
    if (out.p99_le_us == 0 && at_most >= 0.99 * out.requests) out.p99_le_us = le * 1e6;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

void Samples::Merge(const Samples& o) {
  latency_ns.insert(latency_ns.end(), o.latency_ns.begin(), o.latency_ns.end());
  ok += o.ok;
  errors += o.errors;
  seconds += o.seconds;
}

double Samples::rps() const { return static_cast<double>(ok) / std::max(seconds, 1e-9); }

std::string SerializeRequest(std::string_view method, std::string_view target,
                             std::string_view token, std::string_view body) {
  std::string r;
  r.reserve(160 + body.size());
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!token.empty()) r.append("Authorization: Bearer ").append(token).append("\r\n");
  if (!body.empty()) {
    r.append("Content-Type: application/json\r\nContent-Length: ")
        .append(std::to_string(body.size()))
        .append("\r\n");
  }
  r.append("\r\n").append(body);
  return r;
}

void LoadGen::Connect(Target& t, int k) {
  for (int i = 0; i < k; ++i) {
    auto c = std::make_unique<ClientConn>(ctx_);
    c->sock.connect(t.endpoint);
    c->sock.set_option(tcp::no_delay(true));
    t.conns.push_back(std::move(c));
  }
}

Samples LoadGen::RunOpen(Target& t, double rate, double seconds) {
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

Samples LoadGen::RunClosed(Target& t, double seconds) {
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

Task<void> LoadGen::Dispatch(OpenPhase& ph, Clock::time_point start, double rate, uint64_t count) {
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

Task<void> LoadGen::OpenWorker(OpenPhase& ph, ClientConn& c, Target& t) {
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

Task<void> LoadGen::ClosedWorker(ClientConn& c, Target& t, Clock::time_point end, Samples& out) {
  while (Clock::now() < end) co_await Exchange(c, t, Clock::now(), out);
}

Task<void> LoadGen::Exchange(ClientConn& c, Target& t, Clock::time_point due, Samples& out) {
  bool ok = false, reconnect = true;
  std::string_view request = t.request(t.next_seq++, c.scratch);
  auto [wec, wn] = co_await asio::async_write(c.sock, asio::buffer(request), kTuple);
  if (!wec) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    auto [rec, rn] = co_await bhttp::async_read(c.sock, c.buffer, parser, kTuple);
    if (!rec) {
      const auto& res = parser.get();
      ok = t.check(res);
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

// ---------------------------------------------------------------------------------------------

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

void JsonLine::Key(std::string_view key) {
  if (!body_.empty()) body_ += ',';
  body_ += '"';
  body_ += key;
  body_ += "\":";
}

JsonLine& JsonLine::Str(std::string_view key, std::string_view value) {
  Key(key);
  body_ += '"';
  for (char ch : value) {
    if (ch == '"' || ch == '\\') {
      body_ += '\\';
      body_ += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      body_ += fmt::format("\\u{:04x}", static_cast<int>(ch));
    } else {
      body_ += ch;
    }
  }
  body_ += '"';
  return *this;
}

JsonLine& JsonLine::Num(std::string_view key, double value, int precision) {
  Key(key);
  body_ += std::isfinite(value) ? fmt::format("{:.{}f}", value, precision) : "null";
  return *this;
}

JsonLine& JsonLine::Int(std::string_view key, int64_t value) {
  Key(key);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Bool(std::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::Null(std::string_view key) {
  Key(key);
  body_ += "null";
  return *this;
}

JsonLine& JsonLine::Raw(std::string_view key, std::string_view json) {
  Key(key);
  body_ += json;
  return *this;
}

JsonLine& JsonLine::Latency(const Samples& s, const Summary& sum) {
  Num("seconds", s.seconds, 2);
  Int("requests", static_cast<int64_t>(s.ok + s.errors));
  Int("errors", static_cast<int64_t>(s.errors));
  Num("rps", s.rps(), 0);
  Num("p50_us", sum.p50);
  Num("p90_us", sum.p90);
  Num("p99_us", sum.p99);
  Num("p999_us", sum.p999);
  Num("max_us", sum.max);
  Num("mean_us", sum.mean);
  return *this;
}

JsonLine& JsonLine::Pinning(const CpuPinning& pin) {
  Bool("pinned", pin.pinned);
  if (pin.pinned) {
    Int("bench_cpu", pin.bench_cpu);
    Int("gateway_cpu", pin.gateway_cpu);
  } else {
    Null("bench_cpu");
    Null("gateway_cpu");
  }
  return *this;
}

void JsonLine::Print() const {
  std::string line = Line();
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

bool StartOriginAndGateway(const std::string& layer_bin, int origin_threads, int gateway_threads,
                           ChildProcess& origin, ChildProcess& gateway, const CpuPinning& pin) {
  std::string why;
  if (!origin.Start({layer_bin, "origin", "--listen", "127.0.0.1:0", "--port-file",
                     origin.port_file(), "--data-dir", origin.dir() + "/data", "--threads",
                     std::to_string(origin_threads), "--log-level", "warn"},
                    &why, pin.pinned ? pin.bench_cpu : -1)) {
    fmt::print(stderr, "error: {}\n{}", why, origin.LogText());
    return false;
  }
  if (!StartGateway(layer_bin, origin.port(), gateway_threads, gateway,
                    pin.pinned ? pin.gateway_cpu : -1)) {
    return false;
  }
  fmt::print(stderr, "origin on :{} (pid {}), gateway on :{} (pid {})\n", origin.port(),
             origin.pid(), gateway.port(), gateway.pid());
  return true;
}

bool StartGateway(const std::string& layer_bin, uint16_t origin_port, int gateway_threads,
                  ChildProcess& gateway, int cpu) {
  std::string why;
  if (!gateway.Start(
          {layer_bin, "serve", "--listen", "127.0.0.1:0", "--port-file", gateway.port_file(),
           "--upstream", "http://127.0.0.1:" + std::to_string(origin_port), "--data-dir",
           gateway.dir() + "/data", "--access-log", "false", "--log-level", "warn", "--threads",
           std::to_string(gateway_threads)},
          &why, cpu)) {
    fmt::print(stderr, "error: {}\n{}", why, gateway.LogText());
    return false;
  }
  return true;
}

}  // namespace layer::bench
