// One lazily re-armed timer per connection, for I/O that sets a deadline on every request.
//
// Set() only stores a time point when a timer is already armed no later than it: a connection
// that sets "now + timeout" before every request arms its timer about once per timeout period,
// not once per request (an Asio timer costs a timer-queue insert and a cancellation with a
// posted handler per arming). When the armed timer fires it compares the stored deadline with
// the clock: not yet due, it re-arms for the stored deadline; cleared (Clear()), it stops; due, it
// marks the deadline expired() and calls `on_expire` once (which closes the connection's socket,
// so its pending operation fails and the caller maps the failure to a timeout via expired()).
//
// Thread safety: none. Create, use and destroy it on the thread of the io_context it was made
// with (one IoPool worker owns each connection). Destroying it never calls `on_expire`.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>

namespace layer::http {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline(const boost::asio::any_io_executor& ex, std::function<void()> on_expire)
      : state_(std::make_shared<State>(ex, std::move(on_expire))) {}
  ~Deadline() {
    state_->owner_gone = true;
    state_->timer.cancel();
  }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // The operations from now on must finish by `when`; clears expired().
  void Set(Clock::time_point when) {
    State& s = *state_;
    s.deadline = when;
    s.expired = false;
    if (s.armed && s.timer.expiry() <= when) return;  // it fires in time and re-arms then
    Arm(state_, when);
  }
  // No deadline until the next Set() (an idle pooled connection, a handler running).
  void Clear() { state_->deadline = Clock::time_point::max(); }
  bool expired() const { return state_->expired; }

 private:
  struct State {
    State(const boost::asio::any_io_executor& ex, std::function<void()> f)
        : timer(ex), on_expire(std::move(f)) {}
    boost::asio::steady_timer timer;
    std::function<void()> on_expire;
    Clock::time_point deadline = Clock::time_point::max();
    bool armed = false;
    bool expired = false;
    bool owner_gone = false;
    unsigned generation = 0;  // which arming a completion belongs to
  };

  static void Arm(const std::shared_ptr<State>& state, Clock::time_point when) {
    State& s = *state;
    s.armed = true;
    const unsigned gen = ++s.generation;
    s.timer.expires_at(when);  // cancels an earlier arming, whose completion is then stale
    s.timer.async_wait([state, gen](const boost::system::error_code&) {
      State& st = *state;
      if (st.owner_gone || gen != st.generation) return;
      st.armed = false;
      if (st.deadline == Clock::time_point::max()) return;
      if (Clock::now() < st.deadline) {
        Arm(state, st.deadline);
        return;
      }
      st.expired = true;
      st.on_expire();
    });
  }

  std::shared_ptr<State> state_;
};

}  // namespace layer::http
