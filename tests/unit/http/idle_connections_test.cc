#include "http/idle_connections.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

namespace layer::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = IdleConnections::Clock;
using std::chrono::milliseconds;

// Loopback connections: `served[i]` is the gateway's end, in `nodes[i]`; `client[i]` the other.
struct Conns {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  std::vector<std::unique_ptr<tcp::socket>> served, client;
  std::vector<std::unique_ptr<IdleConnections::Node>> nodes;

  IdleConnections::Node& Open(Clock::time_point since) {
    client.push_back(std::make_unique<tcp::socket>(ioc));
    client.back()->connect(acceptor.local_endpoint());
    served.push_back(std::make_unique<tcp::socket>(ioc));
    acceptor.accept(*served.back());
    nodes.push_back(std::make_unique<IdleConnections::Node>());
    nodes.back()->fd = served.back()->native_handle();
    nodes.back()->since = since;
    return *nodes.back();
  }

  // Client i sees the gateway end the connection (EOF) without a byte before it.
  bool ClosedForClient(size_t i) {
    std::array<char, 1> b;
    boost::system::error_code ec;
    const size_t n = asio::read(*client[i], asio::buffer(b), ec);
    return n == 0 && ec == asio::error::eof;
  }

  // Client i sends `bytes`; returns once they are queued at the gateway's end (10 s at most,
  // a no-hang bound).
  bool Send(size_t i, std::string_view bytes) {
    asio::write(*client[i], asio::buffer(bytes));
    pollfd p{served[i]->native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 10'000) == 1 && served[i]->available() > 0;
  }
};

TEST(IdleConnections, NothingWaitingNothingToClose) {
  IdleConnections idle(2);
  EXPECT_FALSE(idle.CloseOldest());
}

TEST(IdleConnections, ClosesTheLongestWaitingOfAllWorkersFirst) {
  Conns c;
  IdleConnections idle(2);
  const auto t0 = Clock::now();
  auto& a = c.Open(t0 + milliseconds(1));
  auto& b = c.Open(t0);  // on worker 1, and waiting longer than a
  auto& d = c.Open(t0 + milliseconds(2));
  idle.Add(0, a);
  idle.Add(1, b);
  idle.Add(0, d);
  ASSERT_TRUE(idle.CloseOldest());
  EXPECT_TRUE(b.closed);
  EXPECT_TRUE(c.ClosedForClient(1));
  EXPECT_FALSE(idle.Remove(1, b));  // its session learns it was closed
  ASSERT_TRUE(idle.CloseOldest());
  EXPECT_TRUE(a.closed);
  EXPECT_TRUE(c.ClosedForClient(0));
  EXPECT_FALSE(d.closed);
  EXPECT_TRUE(idle.Remove(0, d));  // its request came first
  EXPECT_FALSE(idle.CloseOldest());  // nothing waits
  EXPECT_FALSE(idle.Remove(0, a));
}

// A connection whose next request has arrived, but whose session has not run yet to read it, is
// about to be served: the close passes over it to the next one that waits for nothing.
TEST(IdleConnections, PassesOverAConnectionWhoseRequestHasArrived) {
  Conns c;
  IdleConnections idle(2);
  const auto t0 = Clock::now();
  auto& a = c.Open(t0);
  auto& b = c.Open(t0 + milliseconds(1));
  auto& d = c.Open(t0 + milliseconds(2));
  idle.Add(0, a);
  idle.Add(1, b);
  idle.Add(0, d);
  ASSERT_TRUE(c.Send(0, "GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(idle.CloseOldest());
  EXPECT_FALSE(a.closed);
  EXPECT_TRUE(b.closed);
  EXPECT_TRUE(c.ClosedForClient(1));
  ASSERT_TRUE(c.Send(2, "G"));  // the first byte of d's request
  EXPECT_FALSE(idle.CloseOldest());  // both have a request arriving: none is idle
  EXPECT_FALSE(a.closed);
  EXPECT_FALSE(d.closed);
  EXPECT_TRUE(idle.Remove(0, a));
  EXPECT_TRUE(idle.Remove(0, d));
}

// A connection whose idle timeout expired leaves before its socket is closed, and is not
// closed again.
TEST(IdleConnections, AConnectionThatLeftIsNotClosed) {
  Conns c;
  IdleConnections idle(1);
  auto& a = c.Open(Clock::now());
  idle.Add(0, a);
  EXPECT_TRUE(idle.Remove(0, a));  // the timeout, before it closes the socket
  EXPECT_TRUE(idle.Remove(0, a));  // twice is harmless
  EXPECT_FALSE(idle.CloseOldest());
  EXPECT_FALSE(a.closed);
  EXPECT_TRUE(idle.Remove(0, a));  // the session's read ends; it was not closed over the cap
}

// Workers add and remove their connections while another thread closes the oldest: every
// connection is either closed exactly once (and its session told so) or served, never both.
TEST(IdleConnections, WorkersAndTheAcceptorAtOnce) {
  constexpr int kWorkers = 2, kPerWorker = 40, kRounds = 200;
  Conns c;
  for (int i = 0; i < kWorkers * kPerWorker; ++i) c.Open(Clock::now());
  IdleConnections idle(kWorkers);
  std::atomic<int> told_closed{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      std::vector<bool> gone(kPerWorker);  // this worker's sessions that were told they closed
      for (int r = 0; r < kRounds; ++r) {
        for (int k = 0; k < kPerWorker; ++k) {
          if (gone[k]) continue;
          auto& n = *c.nodes[w * kPerWorker + k];
          n.since = Clock::now();
          idle.Add(w, n);
        }
        for (int k = 0; k < kPerWorker; ++k) {
          if (gone[k]) continue;
          if (!idle.Remove(w, *c.nodes[w * kPerWorker + k])) {
            gone[k] = true;
            told_closed.fetch_add(1);
          }
        }
      }
    });
  }
  int closed = 0;
  std::thread acceptor([&] {
    while (!done.load()) {
      if (idle.CloseOldest()) ++closed;
      std::this_thread::yield();
    }
  });
  for (auto& t : workers) t.join();
  done = true;
  acceptor.join();
  EXPECT_EQ(closed, told_closed.load());
  int marked = 0;
  for (auto& n : c.nodes) marked += n->closed ? 1 : 0;
  EXPECT_EQ(marked, closed);
}

}  // namespace
}  // namespace layer::http
