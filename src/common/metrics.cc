#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>

namespace layer {
namespace {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Renders `a="x",b="y"` (no braces); empty for no labels.
std::string RenderLabels(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    out += EscapeLabelValue(v);
    out += '"';
  }
  return out;
}

std::string FormatValue(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 9e15 && v > -9e15) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return fmt::format("{}", v);
}

std::string Series(std::string_view name, const std::string& labels, std::string_view extra = {}) {
  std::string out(name);
  if (labels.empty() && extra.empty()) return out;
  out += '{';
  out += labels;
  if (!extra.empty()) {
    if (!labels.empty()) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

}  // namespace

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  const auto& b = *bounds_;
  size_t i = std::lower_bound(b.begin(), b.end(), v) - b.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

uint64_t Histogram::cumulative(size_t i) const {
  uint64_t total = 0;
  for (size_t j = 0; j <= i; ++j) total += buckets_[j].load(std::memory_order_relaxed);
  return total;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                               0.5,     1,      2.5,     5,      10,    30,
                                               60};
  return kBuckets;
}

MetricsRegistry::Family& MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}, {}, {}, {}})
             .first;
  }
  assert(it->second.kind == kind && "metric registered twice with different kinds");
  return it->second;
}

Counter& MetricsRegistry::GetCounter(std::string_view name, std::string_view help,
                                     const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& fam = FamilyFor(name, help, Kind::kCounter);
  auto& slot = fam.counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, std::string_view help,
                                 const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& fam = FamilyFor(name, help, Kind::kGauge);
  auto& slot = fam.gauges[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name, std::string_view help,
                                         const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard lock(mu_);
  auto& fam = FamilyFor(name, help, Kind::kHistogram);
  if (fam.bounds.empty()) fam.bounds = bounds;
  auto& slot = fam.histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(&fam.bounds);
  return *slot;
}

std::string MetricsRegistry::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(16 << 10);
  for (const auto& [name, fam] : families_) {
    const char* type = fam.kind == Kind::kCounter ? "counter"
                       : fam.kind == Kind::kGauge ? "gauge"
                                                  : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, fam.help, name, type);
    for (const auto& [labels, c] : fam.counters) {
      out += fmt::format("{} {}\n", Series(name, labels), c->value());
    }
    for (const auto& [labels, g] : fam.gauges) {
      out += fmt::format("{} {}\n", Series(name, labels), FormatValue(g->value()));
    }
    for (const auto& [labels, h] : fam.histograms) {
      const auto& b = h->bounds();
      for (size_t i = 0; i <= b.size(); ++i) {
        std::string le =
            i == b.size() ? std::string("le=\"+Inf\"") : fmt::format("le=\"{}\"", b[i]);
        out += fmt::format("{} {}\n", Series(name + "_bucket", labels, le), h->cumulative(i));
      }
      out += fmt::format("{} {}\n", Series(name + "_sum", labels), h->sum());
      out += fmt::format("{} {}\n", Series(name + "_count", labels), h->count());
    }
  }
  return out;
}

MetricsRegistry& Metrics() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

}  // namespace layer
