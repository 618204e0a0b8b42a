#include "http/io_pool.h"

namespace layer::http {
namespace {
thread_local int t_worker_index = -1;
}

IoPool::IoPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
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
      t_worker_index = i;
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

int IoPool::CurrentIndex() { return t_worker_index; }

}  // namespace layer::http
