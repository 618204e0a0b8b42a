#include "http/io_pool.h"

#include <string>
#include <utility>

#include "common/log.h"
#include "common/thread.h"

namespace layer::http {
namespace {
thread_local const IoPool* t_pool = nullptr;
thread_local int t_worker_index = -1;
}  // namespace

IoPool::IoPool(int threads, RequestSlices* slices, std::string name, bool pin)
    : slices_(slices), name_(std::move(name)), pin_(pin) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    // One thread runs each context, and only that thread operates on the context's sockets
    // (io_pool.h): the reactor's per-socket locking is off. Posting from any thread stays safe.
    contexts_.push_back(
        std::make_unique<boost::asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

IoPool::~IoPool() {
  Stop();
  Join();
}

boost::asio::io_context& IoPool::Next() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoPool::Start() {
  for (int i = 0; i < size(); ++i) {
    threads_.emplace_back([this, i] {
      t_pool = this;
      t_worker_index = i;
      NameCurrentThread(name_ + "-" + std::to_string(i));
      RequestSlices::Enrollment enrolled;
      if (slices_) enrolled = slices_->EnrollCurrentThread();
      if (pin_ && PinCurrentThread(i) < 0) {
        spdlog::warn("worker {}: the kernel refused to pin it to a CPU", i);
      }
      contexts_[i]->run();
    });
  }
}

void IoPool::Stop() {
  guards_.clear();
  for (auto& c : contexts_) c->stop();
}

void IoPool::Join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

const IoPool* IoPool::Current() { return t_pool; }

int IoPool::CurrentIndex() { return t_worker_index; }

}  // namespace layer::http
