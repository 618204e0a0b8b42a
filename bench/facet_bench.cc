// Facet-page benchmark: the automatic snapshot writer's CPU per page, in process -- counting an
// upstream answer of projected rows into a FacetAggregator (jobs/facet_page.h), as the writer does
// for every page it reads (docs/design.md §7.6). The pages have snapshot_bench.py's shape: rows
// ranked by id with `color` (one of 12 strings), `size` (an integer 0..49) and `tags` (1-3 of 30
// strings), 1,000 rows a page, and the members the origin adds around `rows`.
//
// Deterministic and single-threaded, so `valgrind --tool=callgrind` counts its instructions
// robustly on a noisy machine. Output: one JSON line on stdout (rows/s, ns/row of wall time).
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_util.h"
#include "jobs/facet_page.h"
#include "snapshots/facets.h"

namespace {

std::string Page(uint64_t first_id, size_t rows) {
  std::string out = "{\"rows\":[";
  for (size_t k = 0; k < rows; ++k) {
    const uint64_t id = first_id + k;
    const uint64_t h = layer::bench::Mix(id);
    if (k) out += ',';
    out += fmt::format("{{\"id\":{},\"color\":\"color-{}\",\"size\":{},\"tags\":[", id, h % 12,
                       (h >> 8) % 50);
    const size_t tags = 1 + (h >> 16) % 3;
    for (size_t t = 0; t < tags; ++t) {
      if (t) out += ',';
      out += fmt::format("\"tag-{}\"", (h >> (20 + 5 * t)) % 30);
    }
    out += "]}";
  }
  out +=
      "],\"billing\":{\"billable_logical_bytes_queried\":0,\"billable_logical_bytes_returned\":"
      "0},\"performance\":{\"cache_hit_ratio\":1.0,\"cache_temperature\":\"hot\"}}";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"facet page counting, in process"};
  size_t docs = 100000;
  size_t page_rows = 1000;
  int passes = 5;
  app.add_option("--docs", docs, "rows per pass");
  app.add_option("--page", page_rows, "rows per page");
  app.add_option("--passes", passes, "passes over the pages");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> pages;
  for (size_t first = 1; first <= docs; first += page_rows) {
    pages.push_back(Page(first, std::min(page_rows, docs - first + 1)));
  }
  uint64_t rows = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int p = 0; p < passes; ++p) {
    layer::snapshots::FacetAggregator agg({"color", "size", "tags"});
    for (const std::string& page : pages) {
      std::string body = page;  // the writer counts a body it owns
      auto counted = layer::jobs::CountFacetPage(body, agg, nullptr);
      if (!counted.ok()) {
        fmt::print(stderr, "page refused: {}\n", counted.status().ToString());
        return 1;
      }
    }
    rows += agg.rows();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  layer::bench::JsonLine()
      .Str("bench", "facet_page")
      .Int("rows", static_cast<int64_t>(rows))
      .Num("rows_per_s", static_cast<double>(rows) / s, 0)
      .Num("ns_per_row", s * 1e9 / static_cast<double>(rows), 1)
      .Print();
  return 0;
}
