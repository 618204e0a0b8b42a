// The inbound connections waiting for their next request, per I/O worker, oldest first: the ones
// the connection cap may close (docs/design.md §9.10).
//
// A node lives in its session's coroutine frame and is in its worker's list while the session
// waits for the first byte of its next request. CloseOldest, called by the acceptor for a
// connection over the cap, looks at every worker's list as it is at that moment, so a burst of
// accepts closes connections in the order they began to wait whichever worker serves them. It
// passes over a connection with bytes queued: its request has arrived and its session has not
// run yet to read it (its worker was busy), so it is about to be served, not idle.
//
// CloseOldest does not close the victim's socket, which belongs to its worker's thread: it shuts
// it down (both directions), so the client sees the close at once and the session's pending read
// ends; Remove then tells the session. A session must take its node out (Remove, also before it
// closes the socket itself, as an expiring idle timeout does) before the descriptor is closed:
// CloseOldest must never shut down a descriptor number that was closed and reused.
//
// Thread safety: Add and Remove on the node's worker thread; CloseOldest from any thread.
// Each worker's list has its own lock: a worker's own Add and Remove wait only for CloseOldest.
#pragma once

#include <chrono>
#include <memory>

#include <boost/intrusive/list.hpp>

namespace layer::http {

class IdleConnections {
 public:
  using Clock = std::chrono::steady_clock;

  // normal_link: a frame destroyed unfinished at exit must not assert on a node still linked.
  struct Node : boost::intrusive::list_base_hook<
                    boost::intrusive::link_mode<boost::intrusive::normal_link>> {
    int fd = -1;              // the connection's socket
    Clock::time_point since;  // when it began to wait
    // Guarded by the worker's lock:
    bool linked = false;
    bool closed = false;  // shut down by CloseOldest, which also unlinked it
  };

  explicit IdleConnections(int workers);
  ~IdleConnections();
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;

  // Starts `node`'s wait on `worker` (fd and since set; since no earlier than the list's last).
  void Add(int worker, Node& node);
  // Ends the wait of `node` if it is still waiting (its session's read completed, or its session
  // is about to close the socket): false when CloseOldest shut it down (the session ends; the
  // acceptor already uncounted it), true otherwise. Calling it again answers the same.
  bool Remove(int worker, Node& node);
  // Shuts down the socket of the connection, of all workers, that has waited longest and has no
  // byte queued; unlinks it and marks it closed. False when there is none.
  bool CloseOldest();

 private:
  struct Slot;
  const int workers_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace layer::http
