// A small Prometheus registry: counters, gauges and fixed-bucket histograms with labels.
//
// Hot-path contract: Get*() takes a mutex and may allocate, so callers resolve the series they
// need once (or cache the returned reference); Inc()/Set()/Observe() on a series are lock-free
// atomics. Returned references stay valid for the registry's lifetime. Thread-safe throughout.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace layer {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Cumulative count of observations <= bounds[i]; i == bounds.size() is +Inf.
  uint64_t cumulative(size_t i) const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 50 µs .. 60 s.
const std::vector<double>& LatencyBuckets();

class MetricsRegistry {
 public:
  Counter& GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& GetGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help, const Labels& labels = {},
                          const std::vector<double>& bounds = LatencyBuckets());

  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::vector<double> bounds;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // key = rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Kind kind);

  mutable std::mutex mu_;  // guards families_ (not the series values, which are atomics)
  std::map<std::string, Family, std::less<>> families_;
};

// The process-wide registry served at /metrics.
MetricsRegistry& Metrics();
// The registry of `options.metrics`-style fields: the given one, or the process's when null.
inline MetricsRegistry& MetricsOr(MetricsRegistry* registry) {
  return registry ? *registry : Metrics();
}

}  // namespace layer
