// Warm benchmark: how fast a warm job fills the cache compared with paging the same origin
// directly, and what a running warm does to cache-hit fetch latency, in one run with the real
// binaries (`layer origin` and `layer serve`, child processes in temp dirs).
//
//   seed       --docs documents of exactly --doc-bytes serialised JSON bytes into namespace "big"
//              straight at the origin (bypassing the cache), plus the same into each of
//              --loaded-namespaces fresh namespaces "load0".., and --hot-docs into "hot" through
//              the gateway (writes mirror into the cache, so fetches of "hot" are hits)
//   raw        pages "big" straight from the origin, one connection, the query the warm runner
//              sends: {"rank_by":["id","asc"],"top_k":P+1,"include_attributes":true,
//              "consistency":{"level":"strong"},"filters":["id","Gt",last]}, P rows per page,
//              until a short page -> docs/s. Run before and after the warm (A B A); mean of both.
//   warm       POST /v2/namespaces/big/warm?page_size=P through the gateway, GET the job every
//              --poll-ms until completed -> documents_scanned / elapsed. ratio = warm / raw.
//   hits       open loop at --hit-rate: GET /v2/namespaces/hot/documents/{id}, only answers with
//              x-layer-cache: hit count as successes. idle (half before, half after) vs while
//              warms of the fresh "load*" namespaces run one after another -> p50/p99 change.
//
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
#include <cstdlib>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "common/thread.h"

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace layer::bench;
using namespace std::chrono_literals;

constexpr std::string_view kToken = "bench";

// {"id":I,"n":I,"tag":"tK","body":"…"} padded to exactly `bytes` serialised bytes (if it fits).
std::string Row(uint64_t id, int bytes) {
  return PaddedJson(fmt::format(R"({{"id":{},"n":{},"tag":"t{}","body":")", id, id, id % 16),
                    static_cast<size_t>(bytes), Mix(id));
}

std::vector<HttpHeader> Auth() { return {{"Authorization", "Bearer " + std::string(kToken)}}; }

bool Seed(uint16_t port, const std::string& ns, uint64_t docs, int bytes, int batch) {
  for (uint64_t first = 1; first <= docs; first += static_cast<uint64_t>(batch)) {
    uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(batch), docs - first + 1);
    std::string b = "{\"upsert_rows\":[";
    for (uint64_t i = 0; i < n; ++i) {
      if (i) b += ',';
      b += Row(first + i, bytes);
    }
    b += "]}";
    auto res = HttpCall(port, bhttp::verb::post, "/v2/namespaces/" + ns, b, Auth());
    if (!res || res->result_int() != 200) return false;
  }
  return true;
}

// The string or number after "key": in a flat JSON object (enough for the WarmJob shape).
std::string JsonField(const std::string& body, std::string_view key) {
  std::string pat = "\"" + std::string(key) + "\":";
  auto p = body.find(pat);
  if (p == std::string::npos) return {};
  p += pat.size();
  if (p < body.size() && body[p] == '"') {
    auto e = body.find('"', p + 1);
    return e == std::string::npos ? std::string{} : body.substr(p + 1, e - p - 1);
  }
  auto e = body.find_first_of(",}", p);
  return body.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

struct RawResult {
  uint64_t rows = 0, pages = 0;
  double seconds = 0;
  bool complete = false;
  double rate() const { return seconds > 0 ? static_cast<double>(rows) / seconds : 0; }
};

// Pages `ns` straight from the origin on one keep-alive connection (the LoadGen's plumbing is for
// independent requests; here each page depends on the last id, so a plain blocking loop).
RawResult RawPage(uint16_t origin_port, const std::string& ns, int page_size, uint64_t expect) {
  RawResult r;
  const std::string target = "/v2/namespaces/" + ns + "/query";
  uint64_t last = 0;
  bool first = true, in_order = true;
  auto t0 = Clock::now();
  for (;;) {
    std::string body =
        fmt::format(R"({{"rank_by":["id","asc"],"top_k":{},"include_attributes":true,)"
                    R"("consistency":{{"level":"strong"}})",
                    page_size + 1);
    if (!first) body += fmt::format(R"(,"filters":["id","Gt",{}])", last);
    body += '}';
    auto res = HttpCall(origin_port, bhttp::verb::post, target, body, Auth());
    if (!res || res->result_int() != 200) break;
    // Count rows and find the page_size-th id without a full parse: every row starts {"id":.
    const std::string& b = res->body();
    uint64_t n = 0, id_at_take = 0;
    for (size_t p = b.find("{\"id\":"); p != std::string::npos; p = b.find("{\"id\":", p + 6)) {
      ++n;
      if (n <= static_cast<uint64_t>(page_size)) {
        uint64_t id = std::strtoull(b.c_str() + p + 6, nullptr, 10);
        if (!first && n == 1 && id <= last) in_order = false;
        id_at_take = id;
      }
    }
    uint64_t take = std::min<uint64_t>(n, static_cast<uint64_t>(page_size));
    r.rows += take;
    ++r.pages;
    first = false;
    if (take > 0) last = id_at_take;
    if (n <= static_cast<uint64_t>(page_size)) break;
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.complete = in_order && r.rows == expect;
  return r;
}

struct WarmResult {
  std::string id, status, error;
  uint64_t scanned = 0, cache_errors = 0, polls = 0;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(scanned) / seconds : 0; }
};

// Starts a warm of `ns` through the gateway and polls it until it leaves "running".
WarmResult Warm(uint16_t gw_port, const std::string& ns, int page_size, int poll_ms,
                double timeout_s) {
  WarmResult w;
  auto t0 = Clock::now();
  auto res = HttpCall(gw_port, bhttp::verb::post,
                      fmt::format("/v2/namespaces/{}/warm?page_size={}", ns, page_size), "",
                      Auth());
  if (!res || res->result_int() != 202) {
    w.status = "start_failed";
    w.error = res ? fmt::format("{} {}", res->result_int(), res->body()) : "no answer";
    return w;
  }
  w.id = JsonField(res->body(), "id");
  std::string body = res->body();
  for (;;) {
    w.status = JsonField(body, "status");
    if (w.status != "running") break;
    if (std::chrono::duration<double>(Clock::now() - t0).count() > timeout_s) {
      w.status = "timeout";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
    auto g = HttpCall(gw_port, bhttp::verb::get,
                      fmt::format("/v2/namespaces/{}/warm-jobs/{}", ns, w.id), "", Auth());
    ++w.polls;
    if (!g || g->result_int() != 200) continue;
    body = g->body();
  }
  w.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  w.scanned = std::strtoull(JsonField(body, "documents_scanned").c_str(), nullptr, 10);
  w.cache_errors = std::strtoull(JsonField(body, "cache_errors").c_str(), nullptr, 10);
  w.error = JsonField(body, "error");
  return w;
}

struct Options {
  uint64_t docs = 100000;
  int doc_bytes = 1024;
  int seed_batch = 2000;
  int page_size = 1000;
  int poll_ms = 10;
  uint64_t hot_docs = 5000;
  double hit_rate = 1000;
  int connections = 8;
  double idle_seconds = 6;
  double chunk = 0.25;
  int loaded_namespaces = 2;
  double warmup = 1;
  int gateway_threads = 2;
  int origin_threads = 2;
  std::string layer_bin;
  bool pin_cpus = false;
  bool prime = true;
  int64_t client_slice_us = 0;
};

JsonLine Line(std::string_view measurement) {
  JsonLine j;
  j.Str("bench", "warm").Str("measurement", measurement);
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Warm benchmark: warm docs/s vs raw origin paging, hit p99 idle vs during a warm"};
  app.add_option("--docs", o.docs, "documents per big namespace")->capture_default_str();
  app.add_option("--doc-bytes", o.doc_bytes, "serialised JSON bytes per document")
      ->capture_default_str();
  app.add_option("--seed-batch", o.seed_batch, "rows per seeding upsert")->capture_default_str();
  app.add_option("--page-size", o.page_size, "warm page_size and raw page size")
      ->check(CLI::Range(1, 9999))
      ->capture_default_str();
  app.add_option("--poll-ms", o.poll_ms, "warm job poll interval")->capture_default_str();
  app.add_option("--hot-docs", o.hot_docs, "documents seeded through the gateway (hit targets)")
      ->capture_default_str();
  app.add_option("--hit-rate", o.hit_rate, "open-loop fetch hits/s")->capture_default_str();
  app.add_option("--connections", o.connections, "keep-alive connections for the hits")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--idle-seconds", o.idle_seconds, "idle hit seconds (half before, half after)")
      ->capture_default_str();
  app.add_option("--chunk", o.chunk, "open-loop chunk length while a warm runs, seconds")
      ->capture_default_str();
  app.add_option("--loaded-namespaces", o.loaded_namespaces,
                 "fresh namespaces warmed one after another under the hit load")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "hit warm-up seconds (discarded)")->capture_default_str();
  app.add_option("--gateway-threads", o.gateway_threads, "layer serve --threads")
      ->capture_default_str();
  app.add_option("--origin-threads", o.origin_threads, "layer origin --threads")
      ->capture_default_str();
  app.add_option("--layer-bin", o.layer_bin, "layer binary (default: ../layer next to this)");
  app.add_flag("--prime,!--no-prime", o.prime,
               "read every hot document once before the hit phases (their records in memory)")
      ->capture_default_str();
  app.add_flag("--pin-cpus", o.pin_cpus,
               "bench and origin on one CPU, gateway on another (needs >= 2 CPUs)");
  app.add_option("--client-slice-us", o.client_slice_us,
                 "scheduler slice of the hit load generator's thread, as a client on another "
                 "machine would not wait behind the gateway's warm (0 = kernel default)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.layer_bin.empty()) o.layer_bin = DefaultLayerBin();
  std::signal(SIGPIPE, SIG_IGN);
  const double load_before = LoadAverage();
  const CpuPinning pin = PinCpus(o.pin_cpus);  // before any thread starts
  auto since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };

  ChildProcess origin("origin");
  ChildProcess gateway("gateway");
  if (!StartOriginAndGateway(o.layer_bin, o.origin_threads, o.gateway_threads, origin, gateway,
                             pin)) {
    return 1;
  }

  // ---- Seed.
  auto seed0 = Clock::now();
  std::vector<std::string> loaded_ns;
  for (int i = 0; i < o.loaded_namespaces; ++i) loaded_ns.push_back(fmt::format("load{}", i));
  for (const std::string& ns : [&] {
         std::vector<std::string> v{"big"};
         v.insert(v.end(), loaded_ns.begin(), loaded_ns.end());
         return v;
       }()) {
    if (!Seed(origin.port(), ns, o.docs, o.doc_bytes, o.seed_batch)) {
      fmt::print(stderr, "error: seeding {} at the origin failed\n{}", ns, origin.LogText());
      return 1;
    }
  }
  double origin_seed_s = since(seed0);
  auto hot0 = Clock::now();
  if (!Seed(gateway.port(), "hot", o.hot_docs, o.doc_bytes, 500)) {
    fmt::print(stderr, "error: seeding hot through the gateway failed\n{}", gateway.LogText());
    return 1;
  }
  Line("seed")
      .Int("docs_per_namespace", static_cast<int64_t>(o.docs))
      .Int("origin_namespaces", 1 + o.loaded_namespaces)
      .Int("doc_json_bytes", static_cast<int64_t>(Row(1, o.doc_bytes).size()))
      .Num("origin_seconds", origin_seed_s, 2)
      .Num("origin_docs_per_s", static_cast<double>(o.docs) * (1 + o.loaded_namespaces) /
                                    std::max(origin_seed_s, 1e-9),
           0)
      .Int("hot_docs_via_gateway", static_cast<int64_t>(o.hot_docs))
      .Num("hot_seconds", since(hot0), 2)
      .Print();
  fmt::print(stderr, "seeded in {:.1f} s\n", since(seed0));

  // ---- Raw paging vs warm (A B A).
  fmt::print(stderr, "raw paging of big (before)\n");
  RawResult raw1 = RawPage(origin.port(), "big", o.page_size, o.docs);
  auto raw_line = [&](std::string_view order, const RawResult& r) {
    Line("raw_paging")
        .Str("order", order)
        .Int("page_size", o.page_size)
        .Int("rows", static_cast<int64_t>(r.rows))
        .Int("pages", static_cast<int64_t>(r.pages))
        .Num("seconds", r.seconds, 3)
        .Num("docs_per_s", r.rate(), 0)
        .Bool("complete_in_order", r.complete)
        .Print();
  };
  raw_line("before", raw1);
  fmt::print(stderr, "warm of big through the gateway\n");
  double gw_cpu0 = gateway.CpuSeconds(), or_cpu0 = origin.CpuSeconds();
  // The runner's own account of where the job's time went (stages overlap), from /metrics.
  const std::vector<std::string> stages = {"total", "upstream_wait", "parse", "cache_write",
                                           "checkpoint"};
  auto stage_seconds = [&] {
    std::vector<double> v(stages.size(), 0.0);
    if (auto m = HttpGet(gateway.port(), "/metrics")) {
      for (size_t i = 0; i < stages.size(); ++i) {
        v[i] = MetricValue(*m, "layer_warm_stage_microseconds_total{stage=\"" + stages[i] +
                                   "\"}") / 1e6;
      }
    }
    return v;
  };
  const std::vector<double> stage0 = stage_seconds();
  WarmResult warm = Warm(gateway.port(), "big", o.page_size, o.poll_ms, 300);
  double gw_cpu = gateway.CpuSeconds() - gw_cpu0, or_cpu = origin.CpuSeconds() - or_cpu0;
  const std::vector<double> stage1 = stage_seconds();
  std::string stage_json = "{";
  for (size_t i = 0; i < stages.size(); ++i) {
    stage_json += fmt::format("{}\"{}\":{:.3f}", i ? "," : "", stages[i], stage1[i] - stage0[i]);
  }
  stage_json += "}";
  Line("warm")
      .Str("namespace", "big")
      .Str("status", warm.status)
      .Int("page_size", o.page_size)
      .Int("documents_scanned", static_cast<int64_t>(warm.scanned))
      .Int("cache_errors", static_cast<int64_t>(warm.cache_errors))
      .Num("seconds", warm.seconds, 3)
      .Num("docs_per_s", warm.rate(), 0)
      .Int("polls", static_cast<int64_t>(warm.polls))
      .Num("gateway_cpu_s", gw_cpu, 2)
      .Num("origin_cpu_s", or_cpu, 2)
      .Raw("runner_stage_seconds", stage_json)
      .Str("error", warm.error)
      .Print();
  if (warm.status != "completed") {
    fmt::print(stderr, "error: warm ended {}: {}\n{}", warm.status, warm.error, gateway.LogText());
    return 1;
  }
  fmt::print(stderr, "raw paging of big (after)\n");
  RawResult raw2 = RawPage(origin.port(), "big", o.page_size, o.docs);
  raw_line("after", raw2);
  double raw_rate = (raw1.rate() + raw2.rate()) / 2;
  double ratio = raw_rate > 0 ? warm.rate() / raw_rate : 0;

  // A warmed document is a hit now.
  uint64_t warmed_hits = 0, warmed_checked = 0;
  for (uint64_t k = 0; k < 20; ++k, ++warmed_checked) {
    uint64_t id = 1 + Mix(k + 5) % o.docs;
    auto r = HttpCall(gateway.port(), bhttp::verb::get,
                      "/v2/namespaces/big/documents/" + std::to_string(id), "", Auth());
    if (r && r->result_int() == 200 && (*r)["x-layer-cache"] == "hit") ++warmed_hits;
  }
  Line("warm_check")
      .Str("namespace", "big")
      .Int("fetched", static_cast<int64_t>(warmed_checked))
      .Int("hits", static_cast<int64_t>(warmed_hits))
      .Print();

  // ---- Fetch hits: idle vs during warms.
  // The children were started above: a slice set now is this thread's (the load generator's)
  // alone, not inherited by the gateway or the origin.
  if (!layer::SetCurrentThreadSlice(std::chrono::microseconds(o.client_slice_us))) {
    fmt::print(stderr, "the kernel refused a {} us slice for the load generator\n",
               o.client_slice_us);
  }
  asio::io_context ctx(1);
  LoadGen gen(ctx);
  tcp::endpoint gw_ep(asio::ip::make_address("127.0.0.1"), gateway.port());
  const std::string prefix = "GET /v2/namespaces/hot/documents/";
  const std::string suffix =
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + std::string(kToken) + "\r\n\r\n";
  uint64_t hit = 0, not_hit = 0;
  Target hits{"single_hit",
              gw_ep,
              [&](uint64_t seq, std::string& s) {
                s.clear();
                s += prefix;
                fmt::format_to(std::back_inserter(s), "{}", 1 + Mix(seq) % o.hot_docs);
                s += suffix;
                return std::string_view(s);
              },
              [&](const HttpResponse& r) {
                bool ok = r.result_int() == 200 && r["x-layer-cache"] == "hit";
                ++(ok ? hit : not_hit);
                return ok;
              },
              {},
              0,
              0};
  // Every hot document is read once first (batch fetches), so each phase measures hits of records
  // in memory: a record's first read after its memtable was flushed misses RocksDB's block cache
  // and is read on the cache's pool, a cold-read cost of its own that a warm has no part in.
  // try_get_fallbacks in each hit line shows what is left of it.
  if (o.prime) {
    for (uint64_t first = 1; first <= o.hot_docs; first += 500) {
      std::string ids;
      for (uint64_t id = first; id < first + 500 && id <= o.hot_docs; ++id) {
        ids += (ids.empty() ? "" : ",") + std::to_string(id);
      }
      auto r = HttpCall(gateway.port(), bhttp::verb::post, "/v2/namespaces/hot/documents",
                        R"({"ids":[)" + ids + "]}", Auth());
      if (!r || r->result_int() != 200) {
        fmt::print(stderr, "error: reading the hot documents failed\n{}", gateway.LogText());
        return 1;
      }
    }
  }
  gen.Connect(hits, o.connections);
  if (o.warmup > 0) gen.RunOpen(hits, o.hit_rate, o.warmup);

  // The gateway's /metrics around each phase: its own time for the hits (route "fetch"), apart
  // from the time they spend in this process and on the way.
  auto scrape = [&] { return HttpGet(gateway.port(), "/metrics").value_or(""); };
  auto hit_line = [&](std::string_view measurement, Samples& s, uint64_t hits, uint64_t not_hits,
                      double gw_cpu_s, const MetricScrapes& scrapes) {
    Summary sum = Summarize(s.latency_ns);
    ServerLatency server = ServerLatencyOver(scrapes, "fetch");
    // Hits whose record was not in memory: read on the cache's pool.
    const double fallbacks = MetricDelta(scrapes, "layer_cache_try_get_fallbacks_total");
    Line(measurement)
        .Str("target", "single_hit")
        .Str("mode", "open")
        .Num("rate", o.hit_rate, 0)
        .Int("connections", o.connections)
        .Latency(s, sum)
        .Int("x_layer_cache_hit", static_cast<int64_t>(hits))
        .Int("x_layer_cache_not_hit", static_cast<int64_t>(not_hits))
        .Num("gateway_cpu_us_per_req",
             s.ok + s.errors > 0 ? gw_cpu_s * 1e6 / static_cast<double>(s.ok + s.errors) : 0)
        .Num("server_p50_le_us", server.p50_le_us, 0)
        .Num("server_p99_le_us", server.p99_le_us, 0)
        .Num("server_over_1ms", server.over_1ms, 4)
        .Num("try_get_fallbacks", fallbacks, 0)
        .Print();
    return sum;
  };

  fmt::print(stderr, "hits idle {:.1f} s at {:.0f}/s\n", o.idle_seconds / 2, o.hit_rate);
  uint64_t h0 = hit, nh0 = not_hit;
  double c0 = gateway.CpuSeconds();
  MetricScrapes idle_scrapes(1);
  idle_scrapes[0].first = scrape();
  Samples idle = gen.RunOpen(hits, o.hit_rate, o.idle_seconds / 2);
  idle_scrapes[0].second = scrape();
  double idle_cpu = gateway.CpuSeconds() - c0;
  uint64_t idle_hit = hit - h0, idle_not_hit = not_hit - nh0;

  // Warms run on their own thread (blocking polls); the load generator runs open-loop chunks
  // on this thread until the last warm finishes. The last chunk may overrun the warm by < chunk.
  fmt::print(stderr, "hits during warms of {} fresh namespace(s)\n", loaded_ns.size());
  std::atomic<bool> warms_done{false};
  std::vector<WarmResult> loaded_warms;
  uint64_t lh0 = hit, lnh0 = not_hit;
  c0 = gateway.CpuSeconds();
  MetricScrapes loaded_scrapes(1);
  loaded_scrapes[0].first = scrape();
  std::thread warmer([&] {
    for (const std::string& ns : loaded_ns) {
      loaded_warms.push_back(Warm(gateway.port(), ns, o.page_size, o.poll_ms, 300));
    }
    warms_done = true;
  });
  Samples loaded;
  auto l0 = Clock::now();
  while (!warms_done) loaded.Merge(gen.RunOpen(hits, o.hit_rate, o.chunk));
  double loaded_wall = since(l0);
  warmer.join();
  loaded_scrapes[0].second = scrape();
  double loaded_cpu = gateway.CpuSeconds() - c0;
  uint64_t loaded_scanned = 0;
  double loaded_warm_s = 0;
  bool loaded_ok = true;
  for (size_t i = 0; i < loaded_warms.size(); ++i) {
    const WarmResult& w = loaded_warms[i];
    loaded_scanned += w.scanned;
    loaded_warm_s += w.seconds;
    loaded_ok = loaded_ok && w.status == "completed";
    Line("warm_under_hits")
        .Str("namespace", loaded_ns[i])
        .Str("status", w.status)
        .Int("documents_scanned", static_cast<int64_t>(w.scanned))
        .Num("seconds", w.seconds, 3)
        .Num("docs_per_s", w.rate(), 0)
        .Str("error", w.error)
        .Print();
  }
  Summary loaded_sum =
      hit_line("hits_during_warm", loaded, hit - lh0, not_hit - lnh0, loaded_cpu, loaded_scrapes);

  fmt::print(stderr, "hits idle {:.1f} s at {:.0f}/s (after)\n", o.idle_seconds / 2, o.hit_rate);
  h0 = hit;
  nh0 = not_hit;
  c0 = gateway.CpuSeconds();
  idle_scrapes.emplace_back(scrape(), "");
  idle.Merge(gen.RunOpen(hits, o.hit_rate, o.idle_seconds / 2));
  idle_scrapes.back().second = scrape();
  idle_cpu += gateway.CpuSeconds() - c0;
  idle_hit += hit - h0;
  idle_not_hit += not_hit - nh0;
  Summary idle_sum = hit_line("hits_idle", idle, idle_hit, idle_not_hit, idle_cpu, idle_scrapes);

  // ---- Summary.
  constexpr double kRatioTarget = 0.8, kP99MoveTarget = 0.20;
  double p99_change = idle_sum.p99 > 0 ? (loaded_sum.p99 - idle_sum.p99) / idle_sum.p99 : 0;
  double p50_change = idle_sum.p50 > 0 ? (loaded_sum.p50 - idle_sum.p50) / idle_sum.p50 : 0;
  Line("summary")
      .Int("docs", static_cast<int64_t>(o.docs))
      .Int("doc_json_bytes", static_cast<int64_t>(Row(1, o.doc_bytes).size()))
      .Int("page_size", o.page_size)
      .Int("gateway_threads", o.gateway_threads)
      .Int("origin_threads", o.origin_threads)
      .Pinning(pin)
      .Int("client_slice_us", o.client_slice_us)
      .Num("raw_docs_per_s", raw_rate, 0)
      .Num("warm_docs_per_s", warm.rate(), 0)
      .Num("warm_raw_ratio", ratio, 3)
      .Bool("ratio_target_met", ratio >= kRatioTarget)
      .Num("hit_rate", o.hit_rate, 0)
      .Num("idle_hit_p50_us", idle_sum.p50)
      .Num("idle_hit_p99_us", idle_sum.p99)
      .Num("warm_hit_p50_us", loaded_sum.p50)
      .Num("warm_hit_p99_us", loaded_sum.p99)
      .Num("hit_p50_change", p50_change, 3)
      .Num("hit_p99_change", p99_change, 3)
      .Bool("p99_target_met", std::abs(p99_change) <= kP99MoveTarget)
      .Num("loaded_seconds", loaded_wall, 2)
      .Num("loaded_warm_docs_per_s",
           loaded_warm_s > 0 ? static_cast<double>(loaded_scanned) / loaded_warm_s : 0, 0)
      .Bool("loaded_warms_completed", loaded_ok)
      .Num("loadavg_before", load_before, 2)
      .Num("loadavg_after", LoadAverage(), 2)
      .Print();

  gateway.Stop();
  origin.Stop();
  return 0;
}
