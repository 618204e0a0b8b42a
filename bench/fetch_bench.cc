// Document-fetch benchmark: the gateway's cache-served fetch routes against the same process's
// GET /health, and its cache misses against the same read sent straight to the upstream, in one
// run with the real binaries (`layer origin` and `layer serve`, child processes in temp dirs).
//
//   max        closed loop, K connections: single-fetch hits vs /health, ABBA phases -> ratio
//   latency    open loop at --latency-fraction of the measured max hit rate: hits, and /health
//              at the same rate as a control for what the machine does to the tail (ABBA)
//   batch      POST /documents with --batch-ids ids, all hits: closed-loop max, then open loop
//              at the same fraction of it
//   miss       ids seeded straight into the origin (bypassing the cache), each fetched once
//              through the gateway at --miss-rate vs the same upstream query sent to the origin
//              directly, ABBA phases -> added latency
//   write load max and latency again while a background thread upserts through the gateway
//
// --pin-cpus puts this process (the load generator) and the origin on one CPU and the gateway on
// another, so that the two do not take each other's cycles; the summary says whether it applied.
//
// Every fetch answer's x-layer-cache header is checked and counted: a "hit" phase counts only
// answers that say hit as successes, a "miss" phase only those that say miss.
// Output: one JSON line per measurement and a summary line on stdout; progress on stderr.
// A benchmark, not a test: it asserts nothing.
#include <fmt/core.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/verb.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace layer::bench;
using namespace std::chrono_literals;

constexpr std::string_view kToken = "bench";
constexpr std::string_view kHotNs = "bench";
constexpr std::string_view kColdNs = "cold";

// One document's upsert row: about `bytes` of JSON over `attrs` attributes (every third one a
// number, the rest strings), `version` in the values so that rewrites change the stored bytes.
std::string Row(uint64_t id, int attrs, int bytes, uint64_t version) {
  auto build = [&](size_t per) {
    std::string r = fmt::format("{{\"id\":{},\"version\":{}", id, version);
    for (int a = 1; a < attrs; ++a) {
      if (a % 3 == 0) {
        fmt::format_to(std::back_inserter(r), ",\"n{}\":{}", a, Mix(id * 31 + a) % 100000);
      } else {
        std::string v;
        AppendLetters(&v, per, Mix(id * 131 + static_cast<uint64_t>(a) + version));
        fmt::format_to(std::back_inserter(r), ",\"s{}\":\"{}\"", a, v);
      }
    }
    r += '}';
    return r;
  };
  int strings = 0;
  for (int a = 1; a < attrs; ++a) strings += a % 3 != 0;
  size_t bare = build(0).size();
  size_t per = strings > 0 && static_cast<size_t>(bytes) > bare
                   ? (static_cast<size_t>(bytes) - bare) / static_cast<size_t>(strings)
                   : 0;
  return build(per);
}

std::string UpsertBody(uint64_t first, uint64_t count, uint64_t stride, uint64_t mod, int attrs,
                       int bytes, uint64_t version) {
  std::string b = "{\"upsert_rows\":[";
  for (uint64_t i = 0; i < count; ++i) {
    if (i) b += ',';
    b += Row((first + i * stride) % mod, attrs, bytes, version);
  }
  b += "]}";
  return b;
}

bool Upsert(uint16_t port, std::string_view ns, const std::string& body) {
  auto res = HttpCall(port, bhttp::verb::post, "/v2/namespaces/" + std::string(ns), body,
                      {{"Authorization", "Bearer " + std::string(kToken)}});
  return res && res->result_int() == 200;
}

// x-layer-cache values seen by one target.
struct CacheCounts {
  uint64_t hit = 0, miss = 0, miss_on_error = 0, other = 0, bad_status = 0;
  void Count(const HttpResponse& res) {
    if (res.result_int() != 200) {
      ++bad_status;
      return;
    }
    auto v = res["x-layer-cache"];
    if (v == "hit") {
      ++hit;
    } else if (v == "miss") {
      ++miss;
    } else if (v == "miss-on-error") {
      ++miss_on_error;
    } else {
      ++other;
    }
  }
  std::string Json() const {
    return fmt::format(
        "{{\"hit\":{},\"miss\":{},\"miss_on_error\":{},\"no_header\":{},\"non_200\":{}}}", hit,
        miss, miss_on_error, other, bad_status);
  }
  CacheCounts operator-(const CacheCounts& o) const {
    return {hit - o.hit, miss - o.miss, miss_on_error - o.miss_on_error, other - o.other,
            bad_status - o.bad_status};
  }
};

// Upserts through the gateway at a steady rate from its own thread, on fresh connections,
// until Stop(). Rows rewrite random ids of the hot namespace (so cached documents change).
class BackgroundWriter {
 public:
  BackgroundWriter(uint16_t port, uint64_t docs, int attrs, int bytes, double rows_per_s, int batch)
      : port_(port),
        docs_(docs),
        attrs_(attrs),
        bytes_(bytes),
        rows_per_s_(rows_per_s),
        batch_(batch) {}
  ~BackgroundWriter() { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Only after Stop().
  Samples& samples() { return samples_; }
  uint64_t rows() const { return rows_; }

 private:
  void Run() {
    auto interval = std::chrono::duration<double>(batch_ / rows_per_s_);
    auto start = Clock::now();
    for (uint64_t i = 0; !stop_; ++i) {
      auto due = start + std::chrono::duration_cast<Clock::duration>(interval * i);
      std::this_thread::sleep_until(due);
      if (stop_) break;
      std::string body = UpsertBody(Mix(i + 77) % docs_, static_cast<uint64_t>(batch_), 7919, docs_,
                                    attrs_, bytes_, i + 2);
      bool ok = Upsert(port_, kHotNs, body);
      if (ok) {
        ++samples_.ok;
        rows_ += static_cast<uint64_t>(batch_);
        samples_.latency_ns.push_back((Clock::now() - due).count());
      } else {
        ++samples_.errors;
      }
    }
    samples_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }

  uint16_t port_;
  uint64_t docs_;
  int attrs_, bytes_;
  double rows_per_s_;
  int batch_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  Samples samples_;
  uint64_t rows_ = 0;
};

struct Options {
  uint64_t docs = 10000;
  int attrs = 10;
  int doc_bytes = 500;
  int seed_batch = 500;
  int connections = 16;
  double max_seconds = 4;
  double phase = 1;
  double warmup = 1;
  double latency_seconds = 4;
  double latency_fraction = 0.5;
  int batch_ids = 100;
  double batch_seconds = 3;
  double miss_rate = 200;
  double miss_seconds = 4;
  double write_rows = 200;
  int write_batch = 20;
  int gateway_threads = 2;
  int origin_threads = 1;
  std::string layer_bin;
  std::string ab_layer_bin;  // A/B mode when set
  bool pin_cpus = false;
  bool skip_write_load = false;
};

// Alternating phases of two sides, `seconds_each` per side in phases of about `phase` seconds,
// in ABBA order (A B | B A | A B ...), so whatever else the machine does lands on both alike.
// `run(side, phase_seconds)` runs one phase.
template <typename Side, typename F>
void AbbaPhases(double phase, Side& a, Side& b, double seconds_each, F run) {
  int phases = std::max(1, static_cast<int>(std::lround(seconds_each / phase)));
  double phase_s = seconds_each / phases;
  for (int p = 0; p < phases; ++p) {
    for (int j = 0; j < 2; ++j) run((p % 2 == 0) == (j == 1) ? b : a, phase_s);
  }
}

struct Run {
  const Options& o;
  LoadGen& gen;
  ChildProcess& gateway;

  // ABBA alternating phases of two targets; returns both sample sets and CPU per request.
  struct Pair {
    Samples a, b;
    double gw_cpu_a = 0, gw_cpu_b = 0;
  };
  Pair Abba(Target& a, Target& b, double seconds_each, bool open, double rate) {
    Pair out;
    AbbaPhases(o.phase, a, b, seconds_each, [&](Target& t, double phase_s) {
      const bool b_turn = &t == &b;
      double cpu0 = gateway.CpuSeconds();
      Samples s = open ? gen.RunOpen(t, rate, phase_s) : gen.RunClosed(t, phase_s);
      double cpu = gateway.CpuSeconds() - cpu0;
      (b_turn ? out.b : out.a).Merge(s);
      (b_turn ? out.gw_cpu_b : out.gw_cpu_a) += cpu;
    });
    return out;
  }
};

double PerReqUs(double cpu_s, const Samples& s) {
  uint64_t n = s.ok + s.errors;
  return n > 0 ? cpu_s * 1e6 / static_cast<double>(n) : 0.0;
}

JsonLine Line(std::string_view measurement, std::string_view target) {
  JsonLine j;
  j.Str("bench", "fetch").Str("measurement", measurement).Str("target", target);
  return j;
}

// --ab-layer-bin: single-fetch hits of two gateways in front of the same origin — A runs
// --layer-bin, B runs --ab-layer-bin, both on the gateway CPU when pinned — in alternating phases
// (ABBA), so that whatever else the machine does lands on both alike. Measures each one's
// closed-loop max and gateway CPU per hit, then open-loop latency at half of each one's own max
// (the target's definition) and at half of the lower max (same rate for both).
struct AbSide {
  std::string_view name;
  const std::string* bin;
  Target* target;
  ChildProcess* gateway;
  CacheCounts* counts;
  Samples max, own, same;
  double cpu_max = 0, cpu_own = 0, cpu_same = 0, rate_own = 0;
};

void CompareGateways(const Options& o, LoadGen& gen, AbSide& a, AbSide& b, const CpuPinning& pin) {
  // One measurement of both sides: its samples into `out`, the side's gateway CPU into `cpu`.
  auto measure = [&](Samples AbSide::*out, double AbSide::*cpu, double seconds, auto run_phase) {
    AbbaPhases(o.phase, a, b, seconds, [&](AbSide& s, double sec) {
      double cpu0 = s.gateway->CpuSeconds();
      (s.*out).Merge(run_phase(s, sec));
      s.*cpu += s.gateway->CpuSeconds() - cpu0;
    });
  };
  fmt::print(stderr, "[ab] max: single-fetch hits of A and B, closed loop, ABBA phases\n");
  measure(&AbSide::max, &AbSide::cpu_max, o.max_seconds,
          [&](AbSide& s, double sec) { return gen.RunClosed(*s.target, sec); });
  for (AbSide* s : {&a, &b}) s->rate_own = std::max(1.0, s->max.rps() * o.latency_fraction);
  const double same_rate = std::min(a.rate_own, b.rate_own);
  fmt::print(stderr, "[ab] latency: open loop at half of each one's max ({:.0f}/s, {:.0f}/s)\n",
             a.rate_own, b.rate_own);
  measure(&AbSide::own, &AbSide::cpu_own, o.latency_seconds,
          [&](AbSide& s, double sec) { return gen.RunOpen(*s.target, s.rate_own, sec); });
  fmt::print(stderr, "[ab] latency: open loop, both at {:.0f}/s\n", same_rate);
  measure(&AbSide::same, &AbSide::cpu_same, o.latency_seconds,
          [&](AbSide& s, double sec) { return gen.RunOpen(*s.target, same_rate, sec); });
  JsonLine sum = Line("ab_summary", "all");
  sum.Pinning(pin).Int("gateway_threads", o.gateway_threads).Num("same_rate", same_rate, 0);
  for (AbSide* s : {&a, &b}) {
    Summary m = Summarize(s->max.latency_ns), own = Summarize(s->own.latency_ns),
            same = Summarize(s->same.latency_ns);
    Line("ab_max", s->name)
        .Str("layer_bin", *s->bin)
        .Str("mode", "closed")
        .Latency(s->max, m)
        .Num("gateway_cpu_us_per_req", PerReqUs(s->cpu_max, s->max))
        .Print();
    Line("ab_latency", s->name)
        .Str("mode", "open")
        .Num("rate", s->rate_own, 0)
        .Latency(s->own, own)
        .Num("gateway_cpu_us_per_req", PerReqUs(s->cpu_own, s->own))
        .Print();
    Line("ab_latency_same_rate", s->name)
        .Str("mode", "open")
        .Num("rate", same_rate, 0)
        .Latency(s->same, same)
        .Num("gateway_cpu_us_per_req", PerReqUs(s->cpu_same, s->same))
        .Print();
    std::string k(s->name);
    sum.Str(k + "_layer_bin", *s->bin)
        .Num(k + "_hit_rps", s->max.rps(), 0)
        .Num(k + "_cpu_us_per_hit_closed", PerReqUs(s->cpu_max, s->max))
        .Num(k + "_cpu_us_per_hit_open", PerReqUs(s->cpu_own, s->own))
        .Num(k + "_rate", s->rate_own, 0)
        .Num(k + "_p99_us", own.p99)
        .Num(k + "_p99_us_same_rate", same.p99)
        .Int(k + "_errors", static_cast<int64_t>(s->max.errors + s->own.errors + s->same.errors))
        .Raw(k + "_x_layer_cache", s->counts->Json());
  }
  sum.Num("loadavg", LoadAverage(), 2).Print();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Fetch benchmark: cache hits vs /health, batch hits, misses vs direct upstream"};
  // A later option wins, so a caller can override bench/run_fetch.sh's defaults.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--docs", o.docs, "documents seeded (through the gateway)")->capture_default_str();
  app.add_option("--attributes", o.attrs, "attributes per document")->capture_default_str();
  app.add_option("--doc-bytes", o.doc_bytes, "approximate JSON size of a document")
      ->capture_default_str();
  app.add_option("--seed-batch", o.seed_batch, "rows per seeding upsert")->capture_default_str();
  app.add_option("--connections", o.connections, "keep-alive connections per target")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-seconds", o.max_seconds, "closed-loop seconds per target (max)")
      ->capture_default_str();
  app.add_option("--phase", o.phase, "length of one ABBA phase, seconds")->capture_default_str();
  app.add_option("--warmup", o.warmup, "warm-up seconds per target (discarded)")
      ->capture_default_str();
  app.add_option("--latency-seconds", o.latency_seconds,
                 "open-loop seconds per target (hits and /health; batch gets half)")
      ->capture_default_str();
  app.add_option("--latency-fraction", o.latency_fraction, "open-loop rate / measured max rate")
      ->capture_default_str();
  app.add_option("--batch-ids", o.batch_ids, "ids per batch fetch")->capture_default_str();
  app.add_option("--batch-seconds", o.batch_seconds, "closed-loop seconds of batch fetches")
      ->capture_default_str();
  app.add_option("--miss-rate", o.miss_rate, "misses/s (and direct reads/s), open loop")
      ->capture_default_str();
  app.add_option("--miss-seconds", o.miss_seconds, "seconds per target of misses")
      ->capture_default_str();
  app.add_option("--write-rows", o.write_rows, "rows/s of the background writer")
      ->capture_default_str();
  app.add_option("--write-batch", o.write_batch, "rows per background upsert")
      ->capture_default_str();
  app.add_option("--gateway-threads", o.gateway_threads, "layer serve --threads")
      ->capture_default_str();
  app.add_option("--origin-threads", o.origin_threads, "layer origin --threads")
      ->capture_default_str();
  app.add_option("--layer-bin", o.layer_bin, "layer binary (default: ../layer next to this)");
  app.add_flag("--pin-cpus", o.pin_cpus,
               "bench and origin on one CPU, gateway on another (needs >= 2 CPUs)");
  app.add_flag("--skip-write-load", o.skip_write_load, "skip the under-write-load measurements");
  app.add_option("--ab-layer-bin", o.ab_layer_bin,
                 "A/B mode: also start this binary's gateway (same origin, same CPU) and compare "
                 "single-fetch hits of the two in alternating phases; nothing else is measured");
  CLI11_PARSE(app, argc, argv);
  if (o.layer_bin.empty()) o.layer_bin = DefaultLayerBin();
  std::signal(SIGPIPE, SIG_IGN);
  const double load_before = LoadAverage();
  const CpuPinning pin = PinCpus(o.pin_cpus);  // before any thread starts
  // Each cold id is fetched once: enough of them for warm-up and every miss phase.
  const uint64_t cold_docs =
      static_cast<uint64_t>(std::ceil(o.miss_rate * (o.miss_seconds + o.warmup) * 1.1)) + 100;

  ChildProcess origin("origin");
  ChildProcess gateway("gateway");
  if (!StartOriginAndGateway(o.layer_bin, o.origin_threads, o.gateway_threads, origin, gateway,
                             pin)) {
    return 1;
  }
  ChildProcess gateway_b("gateway-b");  // A/B mode only
  const bool ab = !o.ab_layer_bin.empty();
  if (ab) {
    if (!StartGateway(o.ab_layer_bin, origin.port(), o.gateway_threads, gateway_b,
                      pin.pinned ? pin.gateway_cpu : -1)) {
      return 1;
    }
    fmt::print(stderr, "A/B: gateway B ({}) on :{} (pid {})\n", o.ab_layer_bin, gateway_b.port(),
               gateway_b.pid());
  }

  // Seed: hot documents through the gateway (mirrored into its cache), cold ones at the origin.
  auto seed0 = Clock::now();
  for (uint64_t first = 0; first < o.docs; first += static_cast<uint64_t>(o.seed_batch)) {
    uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(o.seed_batch), o.docs - first);
    if (!Upsert(gateway.port(), kHotNs,
                UpsertBody(first, n, 1, UINT64_MAX, o.attrs, o.doc_bytes, 1))) {
      fmt::print(stderr, "error: seeding {} through the gateway failed\n{}", kHotNs,
                 gateway.LogText());
      return 1;
    }
    if (ab && !Upsert(gateway_b.port(), kHotNs,
                      UpsertBody(first, n, 1, UINT64_MAX, o.attrs, o.doc_bytes, 1))) {
      fmt::print(stderr, "error: seeding {} through gateway B failed\n{}", kHotNs,
                 gateway_b.LogText());
      return 1;
    }
  }
  for (uint64_t first = 0; first < cold_docs; first += static_cast<uint64_t>(o.seed_batch)) {
    uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(o.seed_batch), cold_docs - first);
    if (!Upsert(origin.port(), kColdNs,
                UpsertBody(first, n, 1, UINT64_MAX, o.attrs, o.doc_bytes, 1))) {
      fmt::print(stderr, "error: seeding {} at the origin failed\n{}", kColdNs, origin.LogText());
      return 1;
    }
  }
  size_t doc_json_bytes = Row(1, o.attrs, o.doc_bytes, 1).size();
  fmt::print(stderr,
             "seeded {} docs through the gateway and {} at the origin ({} B each) in {:.1f} s\n",
             o.docs, cold_docs, doc_json_bytes,
             std::chrono::duration<double>(Clock::now() - seed0).count());

  asio::io_context ctx(1);
  LoadGen gen(ctx);
  auto loopback = asio::ip::make_address("127.0.0.1");
  tcp::endpoint gw_ep(loopback, gateway.port()), origin_ep(loopback, origin.port());
  const std::string hot_prefix = "GET /v2/namespaces/" + std::string(kHotNs) + "/documents/";
  const std::string cold_prefix = "GET /v2/namespaces/" + std::string(kColdNs) + "/documents/";
  const std::string get_suffix =
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + std::string(kToken) + "\r\n\r\n";
  const uint64_t docs = o.docs;

  CacheCounts hit_counts, batch_counts, miss_counts;
  Target hit{"single_hit",
             gw_ep,
             [&](uint64_t seq, std::string& s) {
               s.clear();
               s += hot_prefix;
               fmt::format_to(std::back_inserter(s), "{}", Mix(seq) % docs);
               s += get_suffix;
               return std::string_view(s);
             },
             [&](const HttpResponse& r) {
               hit_counts.Count(r);
               return r.result_int() == 200 && r["x-layer-cache"] == "hit";
             },
             {},
             0,
             0};
  const std::string health_req = SerializeRequest("GET", "/health", "", "");
  Target health{"health",
                gw_ep,
                [&](uint64_t, std::string&) { return std::string_view(health_req); },
                [](const HttpResponse& r) { return r.result_int() == 200; },
                {},
                0,
                0};
  const std::string batch_target = "/v2/namespaces/" + std::string(kHotNs) + "/documents";
  Target batch{"batch_hit",
               gw_ep,
               [&](uint64_t seq, std::string& s) {
                 std::string body = "{\"ids\":[";
                 uint64_t base = Mix(seq) % docs;
                 for (int k = 0; k < o.batch_ids; ++k) {
                   if (k) body += ',';
                   fmt::format_to(std::back_inserter(body), "{}",
                                  (base + static_cast<uint64_t>(k) * 97) % docs);
                 }
                 body += "]}";
                 s = SerializeRequest("POST", batch_target, kToken, body);
                 return std::string_view(s);
               },
               [&](const HttpResponse& r) {
                 batch_counts.Count(r);
                 return r.result_int() == 200 && r["x-layer-cache"] == "hit" &&
                        r.body().ends_with("\"missing\":[]}");
               },
               {},
               0,
               0};
  Target miss{"miss",
              gw_ep,
              [&](uint64_t seq, std::string& s) {
                s.clear();
                s += cold_prefix;
                fmt::format_to(std::back_inserter(s), "{}", seq);  // each cold id once
                s += get_suffix;
                return std::string_view(s);
              },
              [&](const HttpResponse& r) {
                miss_counts.Count(r);
                return r.result_int() == 200 && r["x-layer-cache"] == "miss";
              },
              {},
              0,
              0};
  const std::string direct_target = "/v2/namespaces/" + std::string(kColdNs) + "/query";
  Target direct{"direct_upstream",
                origin_ep,
                [&](uint64_t seq, std::string& s) {
                  std::string body = fmt::format(
                      R"({{"rank_by":["id","asc"],"top_k":1,"filters":["id","Eq",{}],)"
                      R"("include_attributes":true,"consistency":{{"level":"strong"}}}})",
                      seq % cold_docs);
                  s = SerializeRequest("POST", direct_target, kToken, body);
                  return std::string_view(s);
                },
                [](const HttpResponse& r) {
                  return r.result_int() == 200 && r.body().starts_with("{\"rows\":[{\"id\":");
                },
                {},
                0,
                0};
  if (ab) {
    CacheCounts hit_b_counts;
    Target hit_b{"single_hit_b",
                 tcp::endpoint(loopback, gateway_b.port()),
                 hit.request,
                 [&](const HttpResponse& r) {
                   hit_b_counts.Count(r);
                   return r.result_int() == 200 && r["x-layer-cache"] == "hit";
                 },
                 {},
                 0,
                 0};
    gen.Connect(hit, o.connections);
    gen.Connect(hit_b, o.connections);
    if (o.warmup > 0) {
      gen.RunClosed(hit, o.warmup);
      gen.RunClosed(hit_b, o.warmup);
    }
    hit_counts = {};
    hit_b_counts = {};
    AbSide a{"a", &o.layer_bin, &hit, &gateway, &hit_counts};
    AbSide b{"b", &o.ab_layer_bin, &hit_b, &gateway_b, &hit_b_counts};
    CompareGateways(o, gen, a, b, pin);
    gateway_b.Stop();
    gateway.Stop();
    origin.Stop();
    return 0;
  }
  for (Target* t : {&hit, &health, &batch, &miss, &direct}) gen.Connect(*t, o.connections);

  Run run{o, gen, gateway};
  auto summarize = [](Samples& s) { return Summarize(s.latency_ns); };

  // Warm-up (discarded): loads the id type, opens upstream connections, warms caches.
  fmt::print(stderr, "warm-up {:.1f} s per target\n", o.warmup);
  if (o.warmup > 0) {
    gen.RunClosed(hit, o.warmup);
    gen.RunClosed(health, o.warmup);
    gen.RunClosed(batch, o.warmup / 2);
    gen.RunOpen(miss, o.miss_rate, o.warmup);
    gen.RunOpen(direct, o.miss_rate, o.warmup);
  }

  // (a)/(b), and (e) when `label` says so.
  struct HitResult {
    double hit_rps = 0, health_rps = 0, ratio = 0, rate = 0;
    Summary lat, health_lat;  // open loop at `rate`
  };
  auto hits_vs_health = [&](std::string_view label) {
    HitResult r;
    fmt::print(stderr, "[{}] max: single-fetch hits vs /health, closed loop, {} conns\n", label,
               o.connections);
    CacheCounts c0 = hit_counts;
    uint64_t hit_rc0 = hit.reconnects, health_rc0 = health.reconnects;
    double self0 = ProcCpuSeconds("/proc/self/stat");
    auto pr = run.Abba(hit, health, o.max_seconds, false, 0);
    double self_cpu = ProcCpuSeconds("/proc/self/stat") - self0;
    Summary sh = summarize(pr.a), sv = summarize(pr.b);
    r.hit_rps = pr.a.rps();
    r.health_rps = pr.b.rps();
    r.ratio = r.health_rps > 0 ? r.hit_rps / r.health_rps : 0;
    Line(label == "idle" ? "max" : "max_under_writes", "single_hit")
        .Str("mode", "closed")
        .Int("connections", o.connections)
        .Latency(pr.a, sh)
        .Num("gateway_cpu_us_per_req", PerReqUs(pr.gw_cpu_a, pr.a))
        .Int("reconnects", static_cast<int64_t>(hit.reconnects - hit_rc0))
        .Raw("x_layer_cache", (hit_counts - c0).Json())
        .Print();
    Line(label == "idle" ? "max" : "max_under_writes", "health")
        .Str("mode", "closed")
        .Int("connections", o.connections)
        .Latency(pr.b, sv)
        .Num("gateway_cpu_us_per_req", PerReqUs(pr.gw_cpu_b, pr.b))
        .Int("reconnects", static_cast<int64_t>(health.reconnects - health_rc0))
        .Num("bench_cpu_us_per_req_both",
             self_cpu * 1e6 / std::max<double>(1, static_cast<double>(pr.a.ok + pr.b.ok)))
        .Print();
    r.rate = std::max(1.0, r.hit_rps * o.latency_fraction);
    fmt::print(stderr,
               "[{}] latency: single-fetch hits and /health (control), open loop at {:.0f}/s, "
               "ABBA phases\n",
               label, r.rate);
    c0 = hit_counts;
    hit_rc0 = hit.reconnects;
    double bench0 = ProcCpuSeconds("/proc/self/stat");
    auto fallbacks = [&] {
      auto m = HttpGet(gateway.port(), "/metrics");
      return m ? MetricValue(*m, "layer_cache_try_get_fallbacks_total") : 0.0;
    };
    double fb0 = fallbacks();
    auto lp = run.Abba(hit, health, o.latency_seconds, true, r.rate);
    double bench_cpu = ProcCpuSeconds("/proc/self/stat") - bench0;
    double fb = fallbacks() - fb0;
    r.lat = summarize(lp.a);
    r.health_lat = summarize(lp.b);
    std::string_view m = label == "idle" ? "latency" : "latency_under_writes";
    Line(m, "single_hit")
        .Str("mode", "open")
        .Num("rate", r.rate, 0)
        .Int("connections", o.connections)
        .Latency(lp.a, r.lat)
        .Num("gateway_cpu_us_per_req", PerReqUs(lp.gw_cpu_a, lp.a))
        .Num("bench_cpu_us_per_req_both",
             bench_cpu * 1e6 / std::max<double>(1, static_cast<double>(lp.a.ok + lp.b.ok)))
        .Int("reconnects", static_cast<int64_t>(hit.reconnects - hit_rc0))
        .Int("try_get_fallbacks", static_cast<int64_t>(fb))
        .Raw("x_layer_cache", (hit_counts - c0).Json())
        .Print();
    Line(m, "health")
        .Str("mode", "open")
        .Num("rate", r.rate, 0)
        .Int("connections", o.connections)
        .Latency(lp.b, r.health_lat)
        .Num("gateway_cpu_us_per_req", PerReqUs(lp.gw_cpu_b, lp.b))
        .Print();
    return r;
  };

  HitResult idle = hits_vs_health("idle");

  // (c) batch of ids, all hits.
  fmt::print(stderr, "batch: {} ids per request, closed loop then open loop\n", o.batch_ids);
  CacheCounts b0 = batch_counts;
  double cpu0 = gateway.CpuSeconds();
  Samples bmax = gen.RunClosed(batch, o.batch_seconds);
  double bcpu = gateway.CpuSeconds() - cpu0;
  Summary bmax_sum = summarize(bmax);
  Line("batch_max", "batch_hit")
      .Str("mode", "closed")
      .Int("ids_per_request", o.batch_ids)
      .Int("connections", o.connections)
      .Latency(bmax, bmax_sum)
      .Num("docs_per_s", bmax.rps() * o.batch_ids, 0)
      .Num("gateway_cpu_us_per_req", PerReqUs(bcpu, bmax))
      .Raw("x_layer_cache", (batch_counts - b0).Json())
      .Print();
  double batch_rate = std::max(1.0, bmax.rps() * o.latency_fraction);
  b0 = batch_counts;
  Samples blat = gen.RunOpen(batch, batch_rate, o.latency_seconds / 2);
  Summary blat_sum = summarize(blat);
  Line("batch_latency", "batch_hit")
      .Str("mode", "open")
      .Num("rate", batch_rate, 0)
      .Int("ids_per_request", o.batch_ids)
      .Int("connections", o.connections)
      .Latency(blat, blat_sum)
      .Raw("x_layer_cache", (batch_counts - b0).Json())
      .Print();

  // (d) misses vs the same read sent straight to the origin.
  fmt::print(stderr, "miss: {:.0f}/s per target, ABBA phases\n", o.miss_rate);
  auto metrics0 = HttpGet(gateway.port(), "/metrics");
  CacheCounts m0 = miss_counts;
  auto mp = run.Abba(miss, direct, o.miss_seconds, true, o.miss_rate);
  auto metrics1 = HttpGet(gateway.port(), "/metrics");
  double up_mean_us = 0;
  if (metrics0 && metrics1) {
    double sum = MetricValue(*metrics1, "layer_upstream_request_duration_seconds_sum") -
                 MetricValue(*metrics0, "layer_upstream_request_duration_seconds_sum");
    double n = MetricValue(*metrics1, "layer_upstream_request_duration_seconds_count") -
               MetricValue(*metrics0, "layer_upstream_request_duration_seconds_count");
    up_mean_us = n > 0 ? sum * 1e6 / n : 0;
  }
  Summary ms = summarize(mp.a), ds = summarize(mp.b);
  Line("miss", "miss")
      .Str("mode", "open")
      .Num("rate", o.miss_rate, 0)
      .Int("connections", o.connections)
      .Latency(mp.a, ms)
      .Num("gateway_cpu_us_per_req", PerReqUs(mp.gw_cpu_a, mp.a))
      .Num("gateway_upstream_mean_us", up_mean_us)
      .Raw("x_layer_cache", (miss_counts - m0).Json())
      .Print();
  Line("miss", "direct_upstream")
      .Str("mode", "open")
      .Num("rate", o.miss_rate, 0)
      .Int("connections", o.connections)
      .Latency(mp.b, ds)
      .Print();
  // The misses backfilled: the same ids fetched again should now be hits.
  uint64_t refetch_hits = 0, refetched = 0;
  for (uint64_t id = 0; id < std::min<uint64_t>(miss.next_seq, 200); ++id, ++refetched) {
    auto r = HttpCall(gateway.port(), bhttp::verb::get,
                      "/v2/namespaces/" + std::string(kColdNs) + "/documents/" + std::to_string(id),
                      "", {{"Authorization", "Bearer " + std::string(kToken)}});
    if (r && r->result_int() == 200 && (*r)["x-layer-cache"] == "hit") ++refetch_hits;
  }
  Line("miss_backfill_check", "miss")
      .Int("refetched", static_cast<int64_t>(refetched))
      .Int("now_hits", static_cast<int64_t>(refetch_hits))
      .Print();

  // (e) hits and /health again under a steady write load.
  HitResult loaded;
  Samples writes;
  uint64_t rows_written = 0;
  if (!o.skip_write_load) {
    BackgroundWriter writer(gateway.port(), o.docs, o.attrs, o.doc_bytes, o.write_rows,
                            o.write_batch);
    writer.Start();
    std::this_thread::sleep_for(500ms);
    loaded = hits_vs_health("under_writes");
    writer.Stop();
    writes = writer.samples();
    rows_written = writer.rows();
    Summary ws = summarize(writes);
    Line("background_writes", "upsert")
        .Num("rows_per_s_target", o.write_rows, 0)
        .Int("rows_per_request", o.write_batch)
        .Int("rows_written", static_cast<int64_t>(rows_written))
        .Num("rows_per_s", static_cast<double>(rows_written) / std::max(writes.seconds, 1e-9), 0)
        .Latency(writes, ws)
        .Print();
  }

  // Summary and verdicts.
  constexpr double kRatioTarget = 0.6, kP99TargetUs = 1000, kMissAddedTargetUs = 1000;
  double added_p50 = ms.p50 - ds.p50, added_p99 = ms.p99 - ds.p99, added_mean = ms.mean - ds.mean;
  JsonLine sum = Line("summary", "all");
  sum.Int("docs", static_cast<int64_t>(o.docs))
      .Int("doc_json_bytes", static_cast<int64_t>(doc_json_bytes))
      .Int("gateway_threads", o.gateway_threads)
      .Pinning(pin)
      .Num("hit_rps", idle.hit_rps, 0)
      .Num("health_rps", idle.health_rps, 0)
      .Num("hit_health_ratio", idle.ratio, 3)
      .Bool("ratio_target_met", idle.ratio >= kRatioTarget)
      .Num("hit_latency_rate", idle.rate, 0)
      .Num("hit_p50_us", idle.lat.p50)
      .Num("hit_p99_us", idle.lat.p99)
      .Num("hit_p999_us", idle.lat.p999)
      .Num("health_p99_us_same_rate", idle.health_lat.p99)
      .Bool("hit_p99_target_met", idle.lat.p99 <= kP99TargetUs)
      .Num("batch_rps", bmax.rps(), 0)
      .Num("batch_p99_us_at_half", blat_sum.p99)
      .Num("miss_added_p50_us", added_p50)
      .Num("miss_added_p99_us", added_p99)
      .Num("miss_added_mean_us", added_mean)
      .Bool("miss_added_p50_target_met", added_p50 <= kMissAddedTargetUs)
      .Bool("miss_added_p99_target_met", added_p99 <= kMissAddedTargetUs);
  if (!o.skip_write_load) {
    sum.Num("writes_hit_rps", loaded.hit_rps, 0)
        .Num("writes_health_rps", loaded.health_rps, 0)
        .Num("writes_hit_health_ratio", loaded.ratio, 3)
        .Bool("writes_ratio_target_met", loaded.ratio >= kRatioTarget)
        .Num("writes_hit_latency_rate", loaded.rate, 0)
        .Num("writes_hit_p99_us", loaded.lat.p99)
        .Num("writes_health_p99_us_same_rate", loaded.health_lat.p99)
        .Bool("writes_hit_p99_target_met", loaded.lat.p99 <= kP99TargetUs);
  }
  sum.Num("loadavg_before", load_before, 2).Num("loadavg_after", LoadAverage(), 2).Print();

  gateway.Stop();
  origin.Stop();
  return 0;
}
