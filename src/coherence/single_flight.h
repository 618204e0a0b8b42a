// SingleFlight: coalesces concurrent calls with the same key into one execution whose result
// every caller receives (used so that concurrent fetch misses of one document cost one upstream
// read).
//
// Thread-safe; callers may run on different IoPool workers. Each waiter resumes on its own
// executor. The leader runs `fn` on its own coroutine; a leader that is destroyed mid-flight
// (cancelled) still completes the flight with Status::Aborted so no waiter hangs.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/task.h"

namespace layer::coherence {

template <typename T>
class SingleFlight {
 public:
  // Runs `fn` unless a call with `key` is already in flight, in which case it waits for that
  // call's result. `fn` is a callable returning Task<Result<T>>.
  template <typename Fn>
  Task<Result<T>> Do(const std::string& key, Fn fn) {
    std::shared_ptr<Flight> flight;
    bool leader = false;
    {
      std::lock_guard lock(mu_);
      auto it = flights_.find(key);
      if (it == flights_.end()) {
        flight = std::make_shared<Flight>();
        flights_.emplace(key, flight);
        leader = true;
      } else {
        flight = it->second;
      }
    }
    if (!leader) co_return co_await Wait(flight);

    Completer completer(this, key, flight);
    Result<T> r = co_await fn();
    completer.Complete(r);
    co_return r;
  }

  // The same for many keys at once: joins the calls already in flight for some of `keys` and
  // runs `fn` once for all the others, which it leads. `fn` is a callable taking the indexes (into
  // `keys`) it leads and returning Task<std::vector<Result<T>>>, one result per led index, in
  // order. Returns one result per key, in order. `keys` must be distinct.
  template <typename Fn>
  Task<std::vector<Result<T>>> DoMany(const std::vector<std::string>& keys, Fn fn) {
    std::vector<size_t> led;
    std::vector<std::shared_ptr<Flight>> flights(keys.size());
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < keys.size(); ++i) {
        auto it = flights_.find(keys[i]);
        if (it != flights_.end()) {
          flights[i] = it->second;
          continue;
        }
        flights[i] = std::make_shared<Flight>();
        flights_.emplace(keys[i], flights[i]);
        led.push_back(i);
      }
    }
    std::vector<std::optional<Result<T>>> out(keys.size());
    if (!led.empty()) {
      std::vector<std::unique_ptr<Completer>> completers;
      for (size_t i : led) completers.push_back(std::make_unique<Completer>(this, keys[i], flights[i]));
      std::vector<Result<T>> results = co_await fn(led);
      for (size_t j = 0; j < led.size(); ++j) {
        Result<T> r = j < results.size() ? std::move(results[j])
                                         : Result<T>(Status::Internal("a led key got no result"));
        completers[j]->Complete(r);
        out[led[j]].emplace(std::move(r));
      }
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!out[i]) out[i].emplace(co_await Wait(flights[i]));
    }
    std::vector<Result<T>> done;
    done.reserve(keys.size());
    for (auto& r : out) done.push_back(std::move(*r));
    co_return done;
  }

 private:
  struct Flight;

  // Completes the flight even if the leader coroutine is destroyed mid-way. A named class with a
  // constructor (not a brace-initialised local aggregate, which GCC 12 may destroy twice in a
  // coroutine frame).
  class Completer {
   public:
    Completer(SingleFlight* self, std::string key, std::shared_ptr<Flight> flight)
        : self_(self), key_(std::move(key)), flight_(std::move(flight)) {}
    Completer(const Completer&) = delete;
    Completer& operator=(const Completer&) = delete;
    ~Completer() {
      if (!done_) self_->Finish(key_, flight_, Status::Aborted("coalesced call abandoned"));
    }
    void Complete(Result<T> r) {
      done_ = true;
      self_->Finish(key_, flight_, std::move(r));
    }

   private:
    SingleFlight* self_;
    std::string key_;
    std::shared_ptr<Flight> flight_;
    bool done_ = false;
  };

  struct Flight {
    std::mutex mu;  // guards everything below
    bool done = false;
    std::optional<Result<T>> result;
    std::vector<std::function<void()>> waiters;
  };

  void Finish(const std::string& key, const std::shared_ptr<Flight>& flight, Result<T> r) {
    {
      std::lock_guard lock(mu_);
      auto it = flights_.find(key);
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
    }
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(flight->mu);
      flight->done = true;
      flight->result.emplace(std::move(r));
      waiters.swap(flight->waiters);
    }
    for (auto& w : waiters) w();
  }

  // Waits for the flight on the caller's own executor: a timer that only the caller's thread
  // touches, cancelled through a post to that executor when the flight lands.
  Task<Result<T>> Wait(std::shared_ptr<Flight> flight) {
    auto ex = co_await boost::asio::this_coro::executor;
    auto timer = std::make_shared<boost::asio::steady_timer>(ex);
    timer->expires_at(boost::asio::steady_timer::time_point::max());
    bool done;
    {
      std::lock_guard lock(flight->mu);
      done = flight->done;
      if (!done) {
        flight->waiters.push_back(
            [ex, timer] { boost::asio::post(ex, [timer] { timer->cancel(); }); });
      }
    }
    if (!done) {
      auto [ec] = co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      (void)ec;  // cancelled = the flight landed
    }
    std::lock_guard lock(flight->mu);
    co_return *flight->result;
  }

  std::mutex mu_;  // guards flights_
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace layer::coherence
