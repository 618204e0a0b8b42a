#include "watermark/consistency_watcher.h"

#include "common/clock.h"
#include "common/tenant.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

namespace layer::watermark {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

bool AnyUnindexedBytes(const json::value& v) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object()) {
      if (k == "unindexed_bytes" && x.is_number() && x.to_number<double>() > 0) return true;
      if (AnyUnindexedBytes(x)) return true;
    }
  } else if (v.is_array()) {
    for (const auto& x : v.as_array()) {
      if (AnyUnindexedBytes(x)) return true;
    }
  }
  return false;
}

}  // namespace

IndexStatus IndexStatusOf(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return IndexStatus::kUnknown;
  const auto* index = v.as_object().if_contains("index");
  const auto* status =
      index && index->is_object() ? index->as_object().if_contains("status") : nullptr;
  if (status && status->is_string()) {
    if (status->as_string() == "up-to-date") return IndexStatus::kStable;
    if (status->as_string() == "updating") return IndexStatus::kUpdating;
  }
  return AnyUnindexedBytes(v) ? IndexStatus::kUpdating : IndexStatus::kUnknown;
}

ConsistencyWatcher::ConsistencyWatcher(http::Upstream& upstream, WatcherOptions options)
    : upstream_(upstream), options_(std::move(options)) {}

void ConsistencyWatcher::Register(const std::string& ns, bool due_now) {
  std::lock_guard lock(mu_);
  auto [it, added] = states_.try_emplace(ns);
  if (due_now) it->second.next_poll_ms = 0;
  if (added) namespaces_version_.fetch_add(1, std::memory_order_release);
}

void ConsistencyWatcher::Forget(const std::string& ns) {
  std::lock_guard lock(mu_);
  if (states_.erase(ns) > 0) namespaces_version_.fetch_add(1, std::memory_order_release);
}

IndexStatus ConsistencyWatcher::Observe(const std::string& ns, int64_t poll_start_ms,
                                        std::string_view body) {
  IndexStatus st = IndexStatusOf(body);
  std::optional<uint64_t> advanced;
  {
    std::lock_guard lock(mu_);
    auto [it, added] = states_.try_emplace(ns);
    if (added) namespaces_version_.fetch_add(1, std::memory_order_release);
    State& s = it->second;
    s.status = st;
    if (st == IndexStatus::kStable) {
      uint64_t wm = static_cast<uint64_t>(poll_start_ms - options_.safety_margin_ms);
      if (!s.stable_as_of || wm > *s.stable_as_of) {
        s.stable_as_of = wm;
        advanced = wm;
      }
      s.next_poll_ms = poll_start_ms + options_.stable_poll_interval.count();
    } else {
      s.next_poll_ms = poll_start_ms + options_.poll_interval.count();
    }
  }
  if (advanced && on_advance_) on_advance_(ns, *advanced);
  return st;
}

std::optional<uint64_t> ConsistencyWatcher::StableAsOf(std::string_view ns) const {
  std::lock_guard lock(mu_);
  auto it = states_.find(ns);
  return it == states_.end() ? std::nullopt : it->second.stable_as_of;
}

bool ConsistencyWatcher::IsStable(std::string_view ns) const {
  std::lock_guard lock(mu_);
  auto it = states_.find(ns);
  return it != states_.end() && it->second.status == IndexStatus::kStable;
}

std::vector<std::string> ConsistencyWatcher::Namespaces() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [ns, s] : states_) out.push_back(ns);
  return out;
}

Task<void> ConsistencyWatcher::Poll(const std::string& ns) {
  int64_t start = NowMs();
  http::Request req{http::Verb::get,
                    "/v2/namespaces/" + std::string(PartitionNamespace(ns)) + "/metadata", 11};
  req.set(http::Field::accept, "application/json");
  if (options_.credentials) {
    auto authorization = options_.credentials->ForPartition(ns);
    if (!authorization) co_return;  // no caller of this tenant since a restart: wait for one
    if (!authorization->empty()) req.set(http::Field::authorization, *authorization);
  }
  auto res = co_await upstream_.Send(std::move(req), true);
  if (!res.ok()) co_return;  // state unchanged; retried next tick
  if (res->result() == http::Code::not_found) {
    Forget(ns);
    co_return;
  }
  if (res->result_int() / 100 == 2) Observe(ns, start, res->body());
}

Task<void> ConsistencyWatcher::Run() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(options_.poll_interval);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    std::vector<std::string> due;
    int64_t now = NowMs();
    {
      std::lock_guard lock(mu_);
      for (const auto& [ns, s] : states_) {
        if (s.next_poll_ms <= now) due.push_back(ns);
      }
    }
    for (const auto& ns : due) co_await Poll(ns);
  }
}

}  // namespace layer::watermark
