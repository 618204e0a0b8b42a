// Origin benchmark: the real `layer origin` binary (a child process with a temp data dir),
// driven over HTTP/1.1 keep-alive from this process.
//
// Phases, in order:
//   write    1 KiB rows (serialised row JSON is exactly --row-bytes), --batch rows per request,
//            into namespace "rows"; also the 128-d vectors ("vectors") and short documents
//            ("text") that the query phases need. Reports rows/s and MB/s (request body bytes,
//            1 MB = 1e6 bytes) per namespace.
//   paging   reads "rows" back in id order, --page-size rows per request, include_attributes
//            true, next page via ["id","Gt",last id] -- how a cache warms from the origin.
//   ann      top-10 ANN over "vectors" with random query vectors (the origin is exact).
//   bm25     top-10 BM25 over "text" with 1-3 word queries drawn from the corpus vocabulary.
//
// Queries are closed loop on one connection (each latency is one request's service time as the
// client sees it); writes and paging are sequential by nature (one namespace, next page depends
// on the last id). Output: one JSON line per phase and a summary line on stdout; progress on
// stderr. A benchmark, not a test: it asserts nothing, but it reports wrong answers as errors.
#include <unistd.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

extern char** environ;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using layer::bench::ChildProcess;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double LoadAvg() {
  std::ifstream f("/proc/loadavg");
  double v = 0;
  f >> v;
  return v;
}

double ProcCpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto pos = s.rfind(')');
  if (pos == std::string::npos) return 0;
  std::istringstream in(s.substr(pos + 2));
  std::string tok;
  double utime = 0, stime = 0;
  for (int field = 3; in >> tok && field <= 15; ++field) {
    if (field == 14) utime = std::strtod(tok.c_str(), nullptr);
    if (field == 15) stime = std::strtod(tok.c_str(), nullptr);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// ---------------------------------------------------------------------------------------------
// A blocking keep-alive HTTP/1.1 client on one connection.

class Client {
 public:
  explicit Client(uint16_t port) : sock_(io_) {
    sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    sock_.set_option(tcp::no_delay(true));
  }

  // POSTs `body`; returns the status (0 on a transport error) and fills `out`.
  int Post(const std::string& target, std::string body, std::string* out) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set(bhttp::field::authorization, "Bearer bench");
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    beast::error_code ec;
    bhttp::write(sock_, req, ec);
    if (ec) return 0;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    bhttp::read(sock_, buffer_, parser, ec);
    if (ec) return 0;
    *out = std::move(parser.get().body());
    return parser.get().result_int();
  }

 private:
  asio::io_context io_;
  tcp::socket sock_;
  beast::flat_buffer buffer_;
};

// ---------------------------------------------------------------------------------------------
// Data.

struct Options {
  std::string layer_bin;
  int threads = 2;
  int rows = 100000;
  int row_bytes = 1024;
  int vectors = 100000;
  int dims = 128;
  int docs = 100000;
  int batch = 1000;
  int page_size = 1000;
  int paging_passes = 3;
  int queries = 200;
  double max_query_seconds = 20;
  uint64_t seed = 42;
};

// One row of `row_bytes` serialised bytes: {"id":I,"n":I,"tag":"tK","body":"xxxx…"}.
std::string MakeRow(int id, int row_bytes, std::mt19937_64& rng) {
  std::string head = fmt::format(R"({{"id":{},"n":{},"tag":"t{}","body":")", id, id, id % 16);
  std::string row = head;
  size_t target = static_cast<size_t>(row_bytes);
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
  while (row.size() + 2 < target) row += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  row += "\"}";
  return row;
}

std::string MakeVector(int dims, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::string s = "[";
  for (int d = 0; d < dims; ++d) {
    if (d) s += ',';
    s += fmt::format("{:.4f}", u(rng));
  }
  s += ']';
  return s;
}

// A synthetic vocabulary of pronounceable words; documents draw words Zipf-like.
struct Corpus {
  std::vector<std::string> words;
  std::vector<double> cdf;

  Corpus(size_t n, std::mt19937_64& rng) {
    static const char* kCons = "bcdfghklmnprstvz";
    static const char* kVow = "aeiou";
    std::set<std::string> seen;
    while (words.size() < n) {
      std::string w;
      int syll = 2 + static_cast<int>(rng() % 3);
      for (int s = 0; s < syll; ++s) {
        w += kCons[rng() % 16];
        w += kVow[rng() % 5];
      }
      if (seen.insert(w).second) words.push_back(w);
    }
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), 0.9);
      cdf.push_back(sum);
    }
    for (auto& c : cdf) c /= sum;
  }
  const std::string& Draw(std::mt19937_64& rng) const {
    double x = std::uniform_real_distribution<double>(0, 1)(rng);
    size_t i = static_cast<size_t>(std::lower_bound(cdf.begin(), cdf.end(), x) - cdf.begin());
    return words[std::min(i, words.size() - 1)];
  }
};

struct WriteStats {
  int rows = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  int errors = 0;
};

// Writes `n` rows made by `make(i)` in batches; `extra` is added to every request body.
template <typename MakeRowFn>
WriteStats WriteRows(Client& c, const std::string& ns, int n, int batch, const std::string& extra,
                     MakeRowFn make) {
  WriteStats st;
  std::string out;
  for (int start = 0; start < n; start += batch) {
    std::string body = "{" + extra + "\"upsert_rows\":[";
    int end = std::min(n, start + batch);
    for (int i = start; i < end; ++i) {
      if (i > start) body += ',';
      body += make(i);
    }
    body += "]}";
    auto t0 = Clock::now();
    size_t len = body.size();
    int status = c.Post("/v2/namespaces/" + ns, std::move(body), &out);
    st.seconds += Seconds(t0, Clock::now());
    st.bytes += len;
    if (status != 200) {
      if (st.errors++ == 0) fmt::print(stderr, "write to {} failed: {} {}\n", ns, status, out);
      continue;
    }
    st.rows += end - start;
  }
  return st;
}

void PrintWrite(const std::string& ns, const WriteStats& st, int batch, const std::string& shape) {
  fmt::print(
      "{{\"bench\":\"origin\",\"phase\":\"write\",\"namespace\":\"{}\",\"rows\":{},\"shape\":\"{}"
      "\","
      "\"batch\":{},\"request_bytes\":{},\"seconds\":{:.3f},\"rows_per_s\":{:.0f},"
      "\"mb_per_s\":{:.2f},\"errors\":{}}}\n",
      ns, st.rows, shape, batch, st.bytes, st.seconds, st.rows / st.seconds,
      static_cast<double>(st.bytes) / 1e6 / st.seconds, st.errors);
  std::fflush(stdout);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// Runs up to `queries` queries from `make(i)` (or until max_seconds); prints one JSON line.
template <typename MakeQueryFn>
void RunQueries(Client& c, const std::string& phase, const std::string& ns, const Options& o,
                const std::string& extra_fields, MakeQueryFn make) {
  std::vector<double> ms;
  int errors = 0, empty = 0;
  std::string out;
  // Two warm-up queries (discarded).
  for (int i = 0; i < 2; ++i) c.Post("/v2/namespaces/" + ns + "/query", make(-1 - i), &out);
  auto start = Clock::now();
  for (int i = 0; i < o.queries; ++i) {
    if (i >= 10 && Seconds(start, Clock::now()) > o.max_query_seconds) break;
    std::string body = make(i);
    auto t0 = Clock::now();
    int status = c.Post("/v2/namespaces/" + ns + "/query", std::move(body), &out);
    double t = Seconds(t0, Clock::now()) * 1e3;
    if (status != 200) {
      if (errors++ == 0) fmt::print(stderr, "{} query failed: {} {}\n", phase, status, out);
      continue;
    }
    auto v = json::parse(out);
    if (v.at("rows").as_array().empty()) ++empty;
    ms.push_back(t);
  }
  double total = Seconds(start, Clock::now());
  double mean = 0;
  for (double x : ms) mean += x;
  mean = ms.empty() ? 0 : mean / static_cast<double>(ms.size());
  fmt::print(
      "{{\"bench\":\"origin\",\"phase\":\"{}\",\"namespace\":\"{}\",{}\"top_k\":10,"
      "\"queries\":{},\"p50_ms\":{:.2f},\"p99_ms\":{:.2f},\"mean_ms\":{:.2f},\"max_ms\":{:.2f},"
      "\"qps\":{:.1f},\"empty_results\":{},\"errors\":{}}}\n",
      phase, ns, extra_fields, ms.size(), Percentile(ms, 0.50), Percentile(ms, 0.99), mean,
      ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()),
      static_cast<double>(ms.size()) / total, empty, errors);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"origin benchmark: writes, paging, ANN and BM25 against `layer origin` over HTTP"};
  app.add_option("--layer-bin", o.layer_bin, "layer binary (default: ../layer next to this one)");
  app.add_option("--threads", o.threads, "origin --threads")->capture_default_str();
  app.add_option("--rows", o.rows, "1 KiB rows written and paged")->capture_default_str();
  app.add_option("--row-bytes", o.row_bytes, "serialised bytes per row")->capture_default_str();
  app.add_option("--vectors", o.vectors, "vectors for ANN")->capture_default_str();
  app.add_option("--dims", o.dims, "vector dimensions")->capture_default_str();
  app.add_option("--docs", o.docs, "short documents for BM25")->capture_default_str();
  app.add_option("--batch", o.batch, "rows per write request")->capture_default_str();
  app.add_option("--page-size", o.page_size, "rows per page when paging")->capture_default_str();
  app.add_option("--paging-passes", o.paging_passes, "full paging passes (median reported)")
      ->capture_default_str();
  app.add_option("--queries", o.queries, "queries per query phase")->capture_default_str();
  app.add_option("--max-query-seconds", o.max_query_seconds, "cap per query phase (>= 10 queries)")
      ->capture_default_str();
  app.add_option("--seed", o.seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.layer_bin.empty()) {
    o.layer_bin = (std::filesystem::path(argv[0]).parent_path().parent_path() / "layer").string();
  }

  double load_before = LoadAvg();
  ChildProcess origin("origin");
  std::string why;
  if (!origin.Start({o.layer_bin, "origin", "--listen", "127.0.0.1:0", "--port-file",
                     origin.port_file(), "--data-dir", origin.dir() + "/data", "--threads",
                     std::to_string(o.threads), "--access-log", "false", "--log-level", "warn"},
                    &why)) {
    fmt::print(stderr, "{}\n{}", why, origin.LogText());
    return 1;
  }
  fmt::print(stderr, "origin pid {} on port {}\n", origin.pid(), origin.port());
  Client client(origin.port());
  std::mt19937_64 rng(o.seed);
  double cpu_start = ProcCpuSeconds(origin.pid());

  // ---- Writes.
  fmt::print(stderr, "writing {} rows of {} bytes\n", o.rows, o.row_bytes);
  auto w = WriteRows(client, "rows", o.rows, o.batch, "",
                     [&](int i) { return MakeRow(i + 1, o.row_bytes, rng); });
  PrintWrite("rows", w, o.batch, fmt::format("{} B rows", o.row_bytes));

  fmt::print(stderr, "writing {} vectors of {} dims\n", o.vectors, o.dims);
  w = WriteRows(client, "vectors", o.vectors, o.batch, R"("distance_metric":"cosine_distance",)",
                [&](int i) {
                  return fmt::format(R"({{"id":{},"vector":{}}})", i + 1, MakeVector(o.dims, rng));
                });
  PrintWrite("vectors", w, o.batch, fmt::format("{}-d f32 vectors", o.dims));

  fmt::print(stderr, "writing {} short documents\n", o.docs);
  Corpus corpus(5000, rng);
  w = WriteRows(client, "text", o.docs, o.batch,
                R"("schema":{"text":{"type":"string","full_text_search":true}},)", [&](int i) {
                  int n = 6 + static_cast<int>(rng() % 10);
                  std::string t;
                  for (int k = 0; k < n; ++k) {
                    if (k) t += ' ';
                    t += corpus.Draw(rng);
                  }
                  return fmt::format(R"({{"id":{},"text":"{}"}})", i + 1, t);
                });
  PrintWrite("text", w, o.batch, "6-15 word documents");

  // ---- Paging by id: --paging-passes full passes; the median pass is reported. `served` counts
  // only the page round trips (what the origin delivers to a client that parses page N while
  // page N+1 is in flight, as the warm runner does); `end_to_end` adds this client's own parse
  // and order check of every page.
  fmt::print(stderr, "paging {} rows x {} passes\n", o.rows, o.paging_passes);
  {
    struct Pass {
      uint64_t rows = 0, bytes = 0;
      int pages = 0;
      double seconds = 0, round_trip_seconds = 0;
      bool complete_and_ordered = false;
    };
    std::vector<Pass> passes;
    std::vector<double> page_ms;
    int errors = 0;
    std::string out;
    for (int pass = 0; pass < std::max(1, o.paging_passes) && errors == 0; ++pass) {
      Pass p;
      bool in_order = true;
      uint64_t last = 0;
      bool first = true;
      auto start = Clock::now();
      for (;;) {
        std::string body =
            first ? fmt::format(
                        R"({{"rank_by":["id","asc"],"top_k":{},"include_attributes":true}})",
                        o.page_size)
                  : fmt::format(R"({{"rank_by":["id","asc"],"top_k":{},"include_attributes":true,)"
                                R"("filters":["id","Gt",{}]}})",
                                o.page_size, last);
        auto t0 = Clock::now();
        int status = client.Post("/v2/namespaces/rows/query", std::move(body), &out);
        double rt = Seconds(t0, Clock::now());
        p.round_trip_seconds += rt;
        page_ms.push_back(rt * 1e3);
        if (status != 200) {
          fmt::print(stderr, "page query failed: {} {}\n", status, out);
          ++errors;
          break;
        }
        p.bytes += out.size();
        ++p.pages;
        auto v = json::parse(out);
        const auto& arr = v.at("rows").as_array();
        for (const auto& r : arr) {
          uint64_t id = r.at("id").to_number<uint64_t>();
          if (!first && id <= last) in_order = false;
          last = id;
          first = false;
        }
        p.rows += arr.size();
        if (arr.size() < static_cast<size_t>(o.page_size)) break;
      }
      p.seconds = Seconds(start, Clock::now());
      p.complete_and_ordered = in_order && p.rows == static_cast<uint64_t>(o.rows);
      passes.push_back(p);
    }
    std::sort(passes.begin(), passes.end(),
              [](const Pass& a, const Pass& b) { return a.seconds < b.seconds; });
    Pass m = passes[passes.size() / 2];
    bool all_ok = std::all_of(passes.begin(), passes.end(),
                              [](const Pass& p) { return p.complete_and_ordered; });
    auto rate = [](uint64_t n, double secs) { return secs > 0 ? static_cast<double>(n) / secs : 0; };
    fmt::print(
        "{{\"bench\":\"origin\",\"phase\":\"paging\",\"namespace\":\"rows\",\"rows\":{},"
        "\"row_bytes\":{},\"page_size\":{},\"pages\":{},\"passes\":{},\"response_bytes\":{},"
        "\"served_rows_per_s\":{:.0f},\"served_mb_per_s\":{:.2f},"
        "\"end_to_end_rows_per_s\":{:.0f},\"seconds\":{:.3f},"
        "\"page_p50_ms\":{:.2f},\"page_p99_ms\":{:.2f},\"complete_and_ordered\":{},"
        "\"errors\":{}}}\n",
        m.rows, o.row_bytes, o.page_size, m.pages, passes.size(), m.bytes,
        rate(m.rows, m.round_trip_seconds), rate(m.bytes, m.round_trip_seconds) / 1e6,
        rate(m.rows, m.seconds), m.seconds, Percentile(page_ms, 0.5), Percentile(page_ms, 0.99),
        all_ok ? "true" : "false", errors);
    std::fflush(stdout);
  }

  // ---- ANN.
  fmt::print(stderr, "ANN queries\n");
  RunQueries(
      client, "ann", "vectors", o,
      fmt::format("\"rows\":{},\"dims\":{},\"metric\":\"cosine_distance\",", o.vectors, o.dims),
      [&](int) {
        return fmt::format(R"({{"rank_by":["vector","ANN",{}],"top_k":10}})",
                           MakeVector(o.dims, rng));
      });

  // ---- BM25.
  fmt::print(stderr, "BM25 queries\n");
  RunQueries(client, "bm25", "text", o, fmt::format("\"rows\":{},", o.docs), [&](int) {
    int n = 1 + static_cast<int>(rng() % 3);
    std::string q;
    for (int k = 0; k < n; ++k) {
      if (k) q += ' ';
      q += corpus.Draw(rng);
    }
    return fmt::format(R"({{"rank_by":["text","BM25","{}"],"top_k":10}})", q);
  });

  double cpu = ProcCpuSeconds(origin.pid()) - cpu_start;
  fmt::print(
      "{{\"bench\":\"origin\",\"phase\":\"summary\",\"origin_threads\":{},\"origin_cpu_s\":{:.2f},"
      "\"loadavg_before\":{:.2f},\"loadavg_after\":{:.2f}}}\n",
      o.threads, cpu, load_before, LoadAvg());
  origin.Stop();
  return 0;
}
