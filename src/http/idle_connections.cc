#include "http/idle_connections.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace layer::http {

namespace {

// A worker takes its own list's lock twice a request and almost never finds it held (only while
// the acceptor closes a connection over the cap, a few system calls): a flag costs a fraction of
// a std::mutex there.
class SpinLock {
 public:
  void lock() {
    while (held_.exchange(true, std::memory_order_acquire)) {
      while (held_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }
  void unlock() { held_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> held_{false};
};

}  // namespace

struct alignas(64) IdleConnections::Slot {
  SpinLock mu;
  boost::intrusive::list<Node> list;
};

IdleConnections::IdleConnections(int workers)
    : workers_(workers), slots_(std::make_unique<Slot[]>(workers)) {}

IdleConnections::~IdleConnections() = default;

void IdleConnections::Add(int worker, Node& node) {
  Slot& s = slots_[worker];
  std::lock_guard lock(s.mu);
  node.closed = false;
  node.linked = true;
  s.list.push_back(node);
}

bool IdleConnections::Remove(int worker, Node& node) {
  Slot& s = slots_[worker];
  std::lock_guard lock(s.mu);
  if (node.closed) return false;
  if (node.linked) {
    s.list.erase(s.list.iterator_to(node));
    node.linked = false;
  }
  return true;
}

namespace {

// Bytes queued on `fd`: the first of its next request. An error counts as none (it is closable).
bool HasQueued(int fd) {
  int queued = 0;
  return ::ioctl(fd, FIONREAD, &queued) == 0 && queued > 0;
}

}  // namespace

bool IdleConnections::CloseOldest() {
  // Every list is held while the oldest is chosen and shut down: the choice is the true oldest,
  // and the next call sees it gone. Only this function holds more than one lock, in index order.
  Node* victim = nullptr;
  int victim_worker = -1;
  for (int w = 0; w < workers_; ++w) {
    slots_[w].mu.lock();
    for (Node& n : slots_[w].list) {
      if (victim && n.since >= victim->since) break;  // the rest of this list waited less
      if (HasQueued(n.fd)) continue;
      victim = &n;
      victim_worker = w;
      break;
    }
  }
  if (victim) {
    auto& list = slots_[victim_worker].list;
    list.erase(list.iterator_to(*victim));
    victim->linked = false;
    victim->closed = true;
    ::shutdown(victim->fd, SHUT_RDWR);
  }
  for (int w = 0; w < workers_; ++w) slots_[w].mu.unlock();
  return victim != nullptr;
}

}  // namespace layer::http
