// A pool of single-threaded io_contexts, one thread each ("one thread per core").
//
// Every connection and every coroutine lives on exactly one io_context, so per-connection state
// needs no strand and per-thread state (the upstream pool's shards) needs no lock. Contract: a
// socket, acceptor or timer of a worker's context is operated on only from that worker's thread
// (or before the worker starts and after it ends): the contexts run without the reactor's
// per-socket locks (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO). Posting work to a context, or
// spawning a coroutine on it, is safe from any thread.
// Current() and CurrentIndex() tell a coroutine which pool and worker it runs on (nullptr and -1
// off every pool). A process may run several pools (requests, background work); a worker's
// threads are named `<name>-<index>`.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/thread.h"

namespace layer::http {

class IoPool {
 public:
  // `threads` <= 0: one per core. With `slices` (not null; it must outlive the workers), each
  // worker is enrolled there: request threads have the short scheduler slice while background
  // work runs, so that they wake onto a core ahead of it (common/thread.h). Worker i is named
  // `<name>-<i>` and, with `pin`, runs on the i-th CPU only (PinCurrentThread).
  explicit IoPool(int threads, RequestSlices* slices = nullptr, std::string name = "layer-io",
                  bool pin = false);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  int size() const { return static_cast<int>(contexts_.size()); }
  boost::asio::io_context& at(int i) { return *contexts_[i]; }
  // Round-robin choice for new connections and background tasks.
  boost::asio::io_context& Next();

  // Starts the worker threads; they run until Stop() or until every context runs out of work.
  void Start();
  void Stop();
  void Join();

  static const IoPool* Current();
  static int CurrentIndex();

 private:
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::thread> threads_;
  RequestSlices* slices_;
  std::string name_;
  bool pin_ = false;
  std::atomic<unsigned> next_{0};
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<Guard> guards_;
};

}  // namespace layer::http
