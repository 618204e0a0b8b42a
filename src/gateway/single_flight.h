// SingleFlight: coalesces concurrent calls with the same key into one execution whose result
// every caller receives (used so that concurrent fetch misses of one document cost one upstream
// read).
//
// Thread-safe; callers may run on different IoPool workers. Each waiter resumes on its own
// executor. The leader runs `fn` on its own coroutine; a leader that is destroyed mid-flight
// (cancelled) still completes the flight with Status::Aborted so no waiter hangs.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace layer::gateway {

template <typename T>
class SingleFlight {
 public:
  // Runs `fn` unless a call with `key` is already in flight, in which case it waits for that
  // call's result. `fn` is a callable returning http::Task<Result<T>>.
  template <typename Fn>
  http::Task<Result<T>> Do(const std::string& key, Fn fn) {
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

    struct Completer {  // completes the flight even if the leader coroutine is destroyed
      SingleFlight* self;
      std::string key;
      std::shared_ptr<Flight> flight;
      bool done = false;
      void Complete(Result<T> r) {
        done = true;
        self->Finish(key, flight, std::move(r));
      }
      ~Completer() {
        if (!done) self->Finish(key, flight, Status::Aborted("coalesced call abandoned"));
      }
    } completer{this, key, flight};
    Result<T> r = co_await fn();
    completer.Complete(r);
    co_return r;
  }

 private:
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

  http::Task<Result<T>> Wait(std::shared_ptr<Flight> flight) {
    co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
        [flight](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler);
          auto resume = [ex, h = std::make_shared<decltype(handler)>(std::move(handler))]() {
            boost::asio::post(ex, [h]() mutable { (*h)(); });
          };
          std::unique_lock lock(flight->mu);
          if (flight->done) {
            lock.unlock();
            resume();
          } else {
            flight->waiters.push_back(std::move(resume));
          }
        },
        boost::asio::use_awaitable);
    std::lock_guard lock(flight->mu);
    co_return *flight->result;
  }

  std::mutex mu_;  // guards flights_
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace layer::gateway
