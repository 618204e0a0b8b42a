#include "common/metrics.h"

#include <gtest/gtest.h>

namespace layer {
namespace {

TEST(Metrics, RendersPrometheusText) {
  MetricsRegistry reg;
  reg.GetCounter("t_requests_total", "Requests", {{"route", "q"}, {"status", "200"}}).Inc(3);
  reg.GetGauge("t_inflight", "In flight").Set(2);
  auto& h = reg.GetHistogram("t_latency_seconds", "Latency", {}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  std::string out = reg.Render();
  EXPECT_NE(out.find("# TYPE t_requests_total counter"), std::string::npos);
  EXPECT_NE(out.find("t_requests_total{route=\"q\",status=\"200\"} 3"), std::string::npos);
  EXPECT_NE(out.find("t_inflight 2"), std::string::npos);
  EXPECT_NE(out.find("t_latency_seconds_bucket{le=\"0.1\"} 1"), std::string::npos);
  EXPECT_NE(out.find("t_latency_seconds_bucket{le=\"1\"} 2"), std::string::npos);
  EXPECT_NE(out.find("t_latency_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(out.find("t_latency_seconds_count 3"), std::string::npos);
}

TEST(Metrics, SameLabelsSameSeries) {
  MetricsRegistry reg;
  auto& a = reg.GetCounter("c_total", "c", {{"k", "v"}});
  auto& b = reg.GetCounter("c_total", "c", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
}

}  // namespace
}  // namespace layer
