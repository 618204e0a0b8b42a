// DrainingBuffer: a read buffer that saves the wasted read attempt before each wait.
//
// Asio's epoll reactor (Boost 1.81) tries every read on a socket at once, before it waits for the
// socket to become readable, unless its previous read found the socket exhausted; and it counts a
// stream socket as exhausted only at the end of the stream. On a keep-alive connection that
// attempt almost always fails: the gateway has just answered (or just sent the upstream its
// request) and the peer has not written yet. It costs a `recvfrom` that returns EAGAIN on every
// request and every upstream exchange (docs/design.md §9.11).
//
// A read into a DrainingBuffer asks the kernel, with the read itself, how many bytes are left
// in the receive queue (TCP_INQ, enabled per socket by EnableReadHints). When none are left and
// the peer has not ended the stream, the read tells the reactor the socket is exhausted, and the
// socket's next read waits for readability without the attempt. Asio's own bookkeeping keeps this
// safe: data that arrives after the read raises a new edge-triggered readiness event, and the
// reactor, handling it, performs the waiting read and clears the mark. A peer's FIN that arrived
// before the read (consumed by it, or still queued) makes the kernel report bytes left, so the
// next read is tried at once and sees the end of the stream, as without DrainingBuffer.
//
// Falls back to Asio's behaviour wherever the hint is missing: a socket without EnableReadHints,
// another Boost version or reactor (DrainingBuffer is then an ordinary single buffer). For plain
// TCP sockets only (a TLS stream reads through its own buffers):
//   EnableReadHints(sock);                                    // once per connection
//   co_await sock.async_read_some(DrainingBuffer(b), token);  // every read
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/version.hpp>

#include <cerrno>
#include <cstring>

namespace layer::http {

class DrainingBuffer : public boost::asio::mutable_buffer {
 public:
  explicit DrainingBuffer(boost::asio::mutable_buffer b) : boost::asio::mutable_buffer(b) {}
};

// Asks the kernel to report, with every read of `sock`, the bytes still queued after it. Returns
// false where it cannot (not TCP, an old kernel); reads then behave as Asio's own.
template <typename Socket>
bool EnableReadHints(Socket& sock) {
  const int on = 1;
  return ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
}

}  // namespace layer::http

#if BOOST_VERSION == 108100 && defined(__linux__) && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#include <boost/asio/detail/reactive_socket_recv_op.hpp>

#define LAYER_DRAINING_READ 1

namespace boost::asio::detail {

// The reactor operation of a read into a DrainingBuffer: Asio's own (reactive_socket_recv_op.hpp
// and socket_ops::non_blocking_recv1) but read with recvmsg, and done_and_exhausted when the
// kernel reports nothing left to read.
template <>
class reactive_socket_recv_op_base<layer::http::DrainingBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state,
                               const layer::http::DrainingBuffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffer),
        flags_(flags) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    iovec iov{o->buffer_.data(), o->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(o->socket_, &msg, o->flags_);
      if (n < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return not_done;
        o->ec_ = boost::system::error_code(err, boost::asio::error::get_system_category());
        o->bytes_transferred_ = 0;
        return done_and_exhausted;  // as Asio's: nothing was read
      }
      if (n == 0 && stream) {
        o->ec_ = boost::asio::error::eof;
        return done_and_exhausted;
      }
      o->bytes_transferred_ = static_cast<std::size_t>(n);
      if (!stream) return done;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ &&
            c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int left = 0;
          std::memcpy(&left, CMSG_DATA(c), sizeof left);
          return left == 0 ? done_and_exhausted : done;
        }
      }
      return done;  // no hint: try the next read at once
    }
  }

 private:
  socket_type socket_;
  socket_ops::state_type state_;
  layer::http::DrainingBuffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail

#endif  // Boost 1.81's epoll reactor
