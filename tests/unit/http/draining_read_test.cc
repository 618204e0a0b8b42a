#include "http/draining_read.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>

// Counts the reads made on one descriptor (Asio's go through recv, DrainingBuffer's through
// recvmsg), forwarding
// every call to the next definition (libc's, or a sanitizer's interceptor).
namespace {
std::atomic<int> g_counted_fd{-1};
std::atomic<int> g_recv_calls{0};
}  // namespace

extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using Fn = ssize_t (*)(int, void*, size_t, int);
  static Fn next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "recv"));
  if (fd == g_counted_fd.load()) g_recv_calls.fetch_add(1);
  return next(fd, buf, len, flags);
}

extern "C" ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  using Fn = ssize_t (*)(int, struct msghdr*, int);
  static Fn next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "recvmsg"));
  if (fd == g_counted_fd.load()) g_recv_calls.fetch_add(1);
  return next(fd, msg, flags);
}

namespace layer::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected loopback pair: `reader` is read by the tests' io_context, `peer` is written
// synchronously by the test (or a thread).
struct Pair {
  asio::io_context ioc;
  tcp::socket reader{ioc};
  tcp::socket peer{ioc};

  explicit Pair(bool hints = true) {
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(reader);
    reader.set_option(tcp::no_delay(true));
    peer.set_option(tcp::no_delay(true));
    if (hints) {
      EXPECT_TRUE(EnableReadHints(reader));
    }
    g_counted_fd = reader.native_handle();
    g_recv_calls = 0;
  }
  ~Pair() { g_counted_fd = -1; }

  // Runs the io_context until `done`, bounded far above what any of these reads needs.
  void RunUntil(const bool& done) {
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!done && std::chrono::steady_clock::now() < give_up) {
      ioc.restart();
      ioc.run_one_for(1s);
    }
    ASSERT_TRUE(done) << "the read never completed";
  }

  // Starts a read of up to `size` bytes into `out`; `done` is set when it completes.
  template <typename Buffer>
  void StartRead(std::string& out, size_t size, bool& done, boost::system::error_code& ec) {
    out.assign(size, '\0');
    done = false;
    reader.async_read_some(Buffer(asio::buffer(out)), [&](boost::system::error_code e, size_t n) {
      ec = e;
      out.resize(n);
      done = true;
    });
  }
};

// Peer data written before a read starts is read at once.
template <typename Buffer>
std::string ReadNow(Pair& p, size_t size) {
  std::string out;
  bool done = false;
  boost::system::error_code ec;
  p.StartRead<Buffer>(out, size, done, ec);
  p.RunUntil(done);
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

// A read started before the peer writes `data`: it waits, and the readiness event completes it
// (the keep-alive case: the next request, or the upstream's answer, comes after the read began).
template <typename Buffer>
std::string ReadWaiting(Pair& p, size_t size, const std::string& data) {
  std::string out;
  bool done = false;
  boost::system::error_code ec;
  p.StartRead<Buffer>(out, size, done, ec);
  p.ioc.restart();
  p.ioc.poll();
  EXPECT_FALSE(done);
  asio::write(p.peer, asio::buffer(data));
  p.RunUntil(done);
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

TEST(DrainingRead, TheReadAfterAShortOneWaitsWithoutTryingFirst) {
#ifndef LAYER_DRAINING_READ
  GTEST_SKIP() << "DrainingBuffer is a plain buffer on this Boost version or reactor";
#endif
  Pair p;
  EXPECT_EQ(ReadWaiting<DrainingBuffer>(p, 64, "abc"), "abc");  // short: the queue is empty
  const int before = g_recv_calls.load();
  EXPECT_EQ(ReadWaiting<DrainingBuffer>(p, 64, "de"), "de");
  EXPECT_EQ(g_recv_calls.load(), before + 1);  // one read, when the data came
  EXPECT_EQ(ReadWaiting<DrainingBuffer>(p, 64, "fgh"), "fgh");
  EXPECT_EQ(g_recv_calls.load(), before + 2);
}

// The contrast, and what DrainingBuffer exists for: Asio 1.81 tries a read before waiting
// whenever the previous read returned data; so does a DrainingBuffer on a socket without hints.
TEST(DrainingRead, APlainBufferTriesFirst) {
  Pair p;
  EXPECT_EQ(ReadWaiting<asio::mutable_buffer>(p, 64, "abc"), "abc");
  const int before = g_recv_calls.load();
  EXPECT_EQ(ReadWaiting<asio::mutable_buffer>(p, 64, "de"), "de");
  EXPECT_EQ(g_recv_calls.load(), before + 2);  // the attempt that found nothing, then the read
}

TEST(DrainingRead, WithoutHintsEveryReadIsTriedFirst) {
  Pair p(/*hints=*/false);
  EXPECT_EQ(ReadWaiting<DrainingBuffer>(p, 64, "abc"), "abc");
  const int before = g_recv_calls.load();
  EXPECT_EQ(ReadWaiting<DrainingBuffer>(p, 64, "de"), "de");
  EXPECT_EQ(g_recv_calls.load(), before + 2);
}

// A FIN that came with the data is consumed by the short read that takes the data; the next read
// must still see the end of the stream at once, with no further event to wake it.
TEST(DrainingRead, TheEndOfTheStreamReadWithTheDataIsStillSeen) {
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("abc")));
  p.peer.shutdown(tcp::socket::shutdown_send);
  // Wait until the FIN is here: a read that waits for readability sees the data and the FIN.
  std::string out;
  bool done = false;
  boost::system::error_code ec;
  std::string all;
  for (;;) {
    p.StartRead<DrainingBuffer>(out, 64, done, ec);
    p.RunUntil(done);
    if (ec) break;
    all += out;
  }
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_EQ(all, "abc");
}

TEST(DrainingRead, AReadThatFillsItsBufferLeavesTheNextOneTriedAtOnce) {
  Pair p;
  asio::write(p.peer, asio::buffer(std::string(100, 'x')));
  EXPECT_EQ(ReadNow<DrainingBuffer>(p, 64), std::string(64, 'x'));  // full: more may be there
  // The rest is already here, with no new readiness event to announce it: it must be read.
  EXPECT_EQ(ReadNow<DrainingBuffer>(p, 64), std::string(36, 'x'));
}

TEST(DrainingRead, TheEndOfTheStreamEndsAWaitingRead) {
  Pair p;
  asio::write(p.peer, asio::buffer(std::string("abc")));
  EXPECT_EQ(ReadNow<DrainingBuffer>(p, 64), "abc");
  std::string out;
  bool done = false;
  boost::system::error_code ec;
  p.StartRead<DrainingBuffer>(out, 64, done, ec);
  p.peer.shutdown(tcp::socket::shutdown_send);
  p.RunUntil(done);
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_TRUE(out.empty());
}

// Data arriving at any moment relative to the reads (between a short read and the next, while a
// read is queued, several writes at once) is all read, in order.
TEST(DrainingRead, LosesNoByteWhateverTheTiming) {
  Pair p;
  constexpr size_t kTotal = 4 << 20;
  std::string sent(kTotal, '\0');
  std::mt19937 rng(7);
  for (auto& ch : sent) ch = static_cast<char>('a' + rng() % 26);

  std::thread writer([&] {
    std::mt19937 wrng(11);
    size_t off = 0;
    while (off < kTotal) {
      const size_t n = std::min<size_t>(kTotal - off, 1 + wrng() % 6000);
      boost::system::error_code ec;
      asio::write(p.peer, asio::buffer(sent.data() + off, n), ec);
      ASSERT_FALSE(ec) << ec.message();
      off += n;
      if (wrng() % 4 == 0) std::this_thread::yield();
    }
    p.peer.shutdown(tcp::socket::shutdown_send);
  });

  std::string got;
  got.reserve(kTotal);
  std::mt19937 rrng(13);
  for (;;) {
    std::string out;
    bool done = false;
    boost::system::error_code ec;
    p.StartRead<DrainingBuffer>(out, 1 + rrng() % 9000, done, ec);
    p.RunUntil(done);
    if (ec == asio::error::eof) break;
    ASSERT_FALSE(ec) << ec.message();
    got += out;
  }
  writer.join();
  ASSERT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
}

}  // namespace
}  // namespace layer::http
