#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <random>
#include <tuple>
#include <unordered_map>

#include "common/metrics.h"
#include "http/deadline.h"
#include "http/draining_read.h"
#include "http/errors.h"
#include "http/idle_connections.h"
#include "http/placement.h"
#include "http/response_writer.h"
#include "http/simple_message.h"

namespace layer::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

struct ServerMetrics {
  Gauge& inflight = Metrics().GetGauge("layer_http_inflight_requests",
                                       "Requests being served right now");
  Gauge& connections = Metrics().GetGauge("layer_http_connections",
                                          "Inbound connections open right now");
  Counter& idle_closed = Metrics().GetCounter(
      "layer_http_connections_shed_total",
      "Connections the server closed or refused because --max-connections were open",
      {{"reason", "idle_closed"}});
  Counter& refused = Metrics().GetCounter(
      "layer_http_connections_shed_total",
      "Connections the server closed or refused because --max-connections were open",
      {{"reason", "refused"}});
  Counter& moved = Metrics().GetCounter(
      "layer_http_connections_moved_total",
      "Connections handed from a busy I/O worker to a less busy one between two requests");

  Counter& Requests(std::string_view route, unsigned status) {
    // Series are resolved once per (route, status) per thread; route labels are static strings.
    thread_local std::unordered_map<uint64_t, Counter*> cache;
    uint64_t key = reinterpret_cast<uintptr_t>(route.data()) * 1000 + status;
    auto it = cache.find(key);
    if (it != cache.end()) return *it->second;
    Counter& c = Metrics().GetCounter("layer_http_requests_total", "Requests served",
                                      {{"route", std::string(route)},
                                       {"status", std::to_string(status)}});
    cache.emplace(key, &c);
    return c;
  }
  Histogram& Duration(std::string_view route) {
    thread_local std::unordered_map<const char*, Histogram*> cache;
    auto it = cache.find(route.data());
    if (it != cache.end()) return *it->second;
    Histogram& h = Metrics().GetHistogram("layer_http_request_duration_seconds",
                                          "Time from request head to response written",
                                          {{"route", std::string(route)}});
    cache.emplace(route.data(), &h);
    return h;
  }
};

ServerMetrics& Sm() {
  static ServerMetrics m;
  return m;
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

// 24 hex digits (96 bits) from a per-thread splitmix64 sequence seeded from std::random_device:
// ids only need to be unique in practice, not unpredictable.
std::string MintRequestId() {
  thread_local uint64_t state = (static_cast<uint64_t>(std::random_device{}()) << 32) ^
                                std::random_device{}();
  auto next = [] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  static constexpr char kHex[] = "0123456789abcdef";
  char id[24];
  const uint64_t a = next(), b = next();
  for (int i = 0; i < 16; ++i) id[i] = kHex[(a >> (i * 4)) & 15];
  for (int i = 16; i < 24; ++i) id[i] = kHex[(b >> ((i - 16) * 4)) & 15];
  return std::string(id, sizeof(id));
}

using Parser = RequestParser;

// Parses as much of the next request head as `buffer` already holds, consuming it. Returns the
// parser's error (need_more is not one: the head is simply incomplete) and the bytes consumed.
// This is what Beast's async_read_header does first, without its post to the executor.
std::pair<beast::error_code, size_t> ParseBufferedHead(beast::flat_buffer& buffer, Parser& parser) {
  beast::error_code ec;
  size_t used = 0;
  while (buffer.size() > 0 && !parser.is_header_done()) {
    size_t n = parser.put(buffer.data(), ec);
    buffer.consume(n);
    used += n;
    if (ec) break;
  }
  if (ec == bhttp::error::need_more) ec = {};
  return {ec, used};
}

// A request's exchange. Its request comes either whole from ParseSimpleRequest (`simple`, body
// included) or from Beast's `parser`, which reads the body on demand.
class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(tcp::socket& sock, Deadline& deadline, beast::flat_buffer& buffer,
               Request& simple, Parser* parser, std::chrono::milliseconds body_timeout)
      : sock_(sock),
        deadline_(deadline),
        buffer_(buffer),
        simple_(simple),
        parser_(parser),
        body_timeout_(body_timeout) {
    if (!parser_) info.bytes_in = simple_.body().size();
  }

  const Request& request() const override { return parser_ ? parser_->get() : simple_; }
  std::string& body() override { return parser_ ? parser_->get().body() : simple_.body(); }

  bool ReadBufferedBody() override {
    if (!parser_) return true;
    Parser& parser = *parser_;
    if (failed_) return false;
    if (!parser.is_done()) {
      beast::error_code ec;
      while (buffer_.size() > 0 && !parser.is_done()) {
        size_t n = parser.put(buffer_.data(), ec);
        buffer_.consume(n);
        if (ec == bhttp::error::need_more || (!ec && n == 0)) break;
        if (ec) {  // ReadBody() reports it
          failed_ = true;
          too_large_ = ec == bhttp::error::body_limit;
          return false;
        }
      }
      if (!parser.is_done()) return false;
    }
    info.bytes_in = parser.get().body().size();
    return true;
  }

  Task<BodyStatus> ReadBody() override {
    if (!parser_) co_return BodyStatus::kOk;
    Parser& parser = *parser_;
    if (parser.is_done()) {
      info.bytes_in = parser.get().body().size();
      co_return BodyStatus::kOk;
    }
    if (failed_) co_return too_large_ ? BodyStatus::kTooLarge : BodyStatus::kFailed;
    const auto& req = parser.get();
    auto expect = req[Field::expect];
    if (!sent_continue_ && beast::iequals(expect, "100-continue")) {
      sent_continue_ = true;
      bhttp::response<bhttp::empty_body> cont{Code::continue_, 11};
      deadline_.Set(std::chrono::steady_clock::now() + body_timeout_);
      auto [ec, n] = co_await bhttp::async_write(sock_, cont, kTuple);
      deadline_.Clear();
      if (ec) {
        failed_ = true;
        co_return BodyStatus::kFailed;
      }
    }
    deadline_.Set(std::chrono::steady_clock::now() + body_timeout_);
    auto [ec, n] = co_await bhttp::async_read(sock_, buffer_, parser, kTuple);
    deadline_.Clear();
    if (ec) {
      failed_ = true;
      co_return ec == bhttp::error::body_limit ? BodyStatus::kTooLarge : BodyStatus::kFailed;
    }
    info.bytes_in = parser.get().body().size();
    co_return BodyStatus::kOk;
  }

  bool body_complete() const { return !parser_ || (parser_->is_done() && !failed_); }

 private:
  tcp::socket& sock_;
  Deadline& deadline_;
  beast::flat_buffer& buffer_;
  Request& simple_;
  Parser* parser_;  // null for a simple request
  std::chrono::milliseconds body_timeout_;
  bool sent_continue_ = false;
  bool failed_ = false;
  bool too_large_ = false;  // with failed_: the body exceeds the limit
};

bool OutOfDescriptors(const beast::error_code& ec) {
  namespace errc = boost::system::errc;
  return ec == errc::too_many_files_open || ec == errc::too_many_files_open_in_system ||
         ec == errc::no_buffer_space || ec == errc::not_enough_memory;
}

}  // namespace

uint64_t ConnectionCapForFdLimit(uint64_t configured, uint64_t fd_limit) {
  const uint64_t reserve = std::min<uint64_t>(1024, fd_limit / 2);
  const uint64_t room = fd_limit > reserve ? fd_limit - reserve : 0;
  return std::max<uint64_t>(1, std::min(configured, room));
}

uint64_t RaiseFdLimit() {
  constexpr rlim_t kMost = 1 << 20;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  const rlim_t want = rl.rlim_max == RLIM_INFINITY ? kMost : std::min(rl.rlim_max, kMost);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rlimit raised = rl;
    raised.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? kMost : rl.rlim_cur;
}

struct HttpServer::Impl {
  IoPool& pool;
  ServerOptions opts;
  Handler handler;
  HttpServer* owner;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<IdleConnections> idle;  // the connections the cap may close
  std::unique_ptr<Placement> placement;  // which worker serves each connection
  tcp protocol = tcp::v4();              // the listening socket's

  // Accepts on worker 0's thread; Place hands each connection to the worker Placement picks.
  Task<void> AcceptLoop() {
    auto last_warning = std::chrono::steady_clock::time_point::min();
    uint64_t failures = 0;
    for (;;) {
      auto [ec, sock] = co_await acceptor->async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        ++failures;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_warning >= std::chrono::seconds(1)) {
          spdlog::warn("accept failed: {} ({} failures so far)", ec.message(), failures);
          last_warning = now;
        }
        if (OutOfDescriptors(ec)) {
          // The pending connection stays in the backlog and accept would fail again at once:
          // wait for connections to end instead of spinning.
          asio::steady_timer backoff(acceptor->get_executor(), std::chrono::milliseconds(50));
          co_await backoff.async_wait(kTuple);
        }
        continue;
      }
      sock.set_option(tcp::no_delay(true));
      EnableReadHints(sock);  // reads of the next request wait without a wasted attempt
      Count();
      // Over the cap, the connection that has waited longest for its next request, on whichever
      // worker, is closed for this one; when none waits, this one is refused (Serve).
      bool refuse = false;
      if (owner->connections_.load() > static_cast<int64_t>(opts.max_connections)) {
        if (idle->CloseOldest()) {
          Uncount();  // now, not when its session ends: the next accept must not close one more
          Sm().idle_closed.Inc();
        } else {
          refuse = true;
        }
      }
      const int to = placement->Pick(std::chrono::steady_clock::now());
      if (!Place(sock, 0, to, refuse)) Place(sock, 0, 0, refuse);  // not released: stays here
    }
  }

  // Starts serving `sock`, a counted connection of worker `from`'s context, on worker `to`
  // (placement.h); runs on `from`'s thread. A socket that changes worker is released from
  // `from`'s reactor here and registered with `to`'s on `to`'s thread (Adopt). `refuse`: a
  // new connection over the cap with none idle to close for it, answered 503. Returns false, and
  // leaves `sock` as it was, when the socket cannot be released.
  bool Place(tcp::socket& sock, int from, int to, bool refuse) {
    if (to == from) {
      placement->Joined(to);
      asio::co_spawn(pool.at(to), Session(std::move(sock), to, refuse), asio::detached);
      return true;
    }
    beast::error_code ec;
    const int fd = sock.release(ec);
    if (ec) return false;
    placement->Joined(to);
    asio::co_spawn(pool.at(to), Adopt(fd, to, refuse), asio::detached);
    return true;
  }

  Task<void> Adopt(int fd, int worker, bool refuse) {
    tcp::socket sock(pool.at(worker));
    beast::error_code ec;
    sock.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      placement->Left(worker);
      Uncount();
      co_return;
    }
    co_await Session(std::move(sock), worker, refuse);
  }

  void Uncount() {
    owner->connections_.fetch_sub(1);
    Sm().connections.Add(-1);
  }

  void Count() {
    owner->connections_.fetch_add(1);
    Sm().connections.Add(1);
  }

  // Answers a connection over the cap with 503 and closes it. It is uncounted at once: for the
  // second at most that it lingers it is no longer one of the connections the cap is about.
  Task<void> Refuse(tcp::socket& sock, Deadline& deadline) {
    Uncount();
    Sm().refused.Inc();
    Response res = MakeError(Code::service_unavailable, "too_many_connections",
                             "the gateway holds its limit of " +
                                 std::to_string(opts.max_connections) +
                                 " connections and none of them is idle; retry later");
    res.set(Field::retry_after, "1");
    co_await WriteFinal(sock, deadline, std::move(res), nullptr, nullptr);
    // Reads and drops what the client sent (its request, usually) until it closes, for at most a
    // second: closing a socket with unread bytes resets the connection, and the reset can
    // destroy the answer before the client reads it.
    deadline.Set(std::chrono::steady_clock::now() +
                 std::min<std::chrono::milliseconds>(opts.header_timeout,
                                                     std::chrono::milliseconds(1000)));
    std::array<char, 2048> sink;
    for (size_t total = 0; total < (64 << 10);) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(sink), kTuple);
      if (ec) break;
      total += n;
    }
  }

  // One connection; counted in connections_ from accept until the session ends or the cap closes
  // or refuses it. (A session destroyed unfinished, when the pool is torn down at exit, is not
  // uncounted: the server may be gone by then.)
  // A connection handed to another worker (Place) ends this session without uncounting it: the
  // session that adopts it does. `refuse`: answer 503 and close (Place).
  Task<void> Session(tcp::socket sock, int worker, bool refuse) {
    bool counted = true;
    try {
      counted = co_await Serve(std::move(sock), worker, refuse);
    } catch (...) {  // std::bad_alloc, say: the connection ends and must not stay counted
      placement->Left(worker);
      Uncount();
      throw;
    }
    placement->Left(worker);
    if (counted) Uncount();
  }

  // Writes a gateway-generated error and reports whether the write succeeded.
  Task<void> WriteFinal(tcp::socket& sock, Deadline& deadline, Response res, RequestInfo* info,
                        const Request* req) {
    res.keep_alive(false);
    if (info) res.set("x-request-id", info->request_id);
    res.prepare_payload();
    deadline.Set(std::chrono::steady_clock::now() + opts.body_timeout);
    co_await bhttp::async_write(sock, res, kTuple);
    deadline.Clear();
    if (info && req) Finish(*info, *req, res);
    beast::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_send, ignored);
  }

  // Records the request (metrics, access log); returns the time it ended.
  std::chrono::steady_clock::time_point Finish(const RequestInfo& info, const Request& req,
                                               const Response& res) {
    const auto now = std::chrono::steady_clock::now();
    double total = std::chrono::duration<double>(now - info.start).count();
    unsigned status = res.result_int();
    Sm().Requests(info.route, status).Inc();
    Sm().Duration(info.route).Observe(total);
    if (opts.access_log) {
      auto target = req.target();
      auto path = target.substr(0, target.find('?'));
      spdlog::info("access method={} route={} path={} status={} total_ms={:.3f} "
                   "upstream_ms={:.3f} bytes_in={} bytes_out={} request_id={}",
                   std::string_view(req.method_string()), info.route, std::string_view(path),
                   status, total * 1e3, info.upstream_seconds * 1e3, info.bytes_in,
                   res.body().size(), info.request_id);
    }
    return now;
  }

  // Writes what remains of `bufs` after the first `sent` bytes; the body timeout bounds the whole
  // remainder. Each write offers everything left (asio::async_write would cap it at 64 KiB).
  Task<beast::error_code> WriteRest(tcp::socket& sock, Deadline& deadline,
                                    const std::array<asio::const_buffer, 2>& bufs, size_t sent) {
    beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
    rest.consume(sent);
    deadline.Set(std::chrono::steady_clock::now() + opts.body_timeout);
    beast::error_code ec;
    while (beast::buffer_bytes(rest) > 0) {
      auto [wec, n] = co_await sock.async_write_some(rest, kTuple);
      if (wec) {
        ec = wec;
        break;
      }
      rest.consume(n);
    }
    deadline.Clear();
    co_return ec;
  }

  // Serves one connection; false when the connection cap already uncounted it. Its timeouts
  // (idle, header, body) are one Deadline for the connection's life, set before each wait and
  // cleared while the handler runs: a request costs no timer operation. An expired deadline
  // closes the socket, as Beast's tcp_stream did.
  Task<bool> Serve(tcp::socket sock, int worker, bool refuse) {
    beast::error_code nb_ec;
    sock.non_blocking(true, nb_ec);  // the direct write of a response must never block the thread
    if (nb_ec) co_return true;
    IdleConnections::Node idle_node;
    idle_node.fd = sock.native_handle();
    // An expiring idle timeout takes the connection out of the idle lists before it closes it.
    Deadline deadline(sock.get_executor(), [this, &sock, &idle_node, worker] {
      idle->Remove(worker, idle_node);
      beast::error_code ignored;
      sock.close(ignored);
    });
    auto timed_out = [&deadline](beast::error_code& ec) {
      if (ec && deadline.expired()) ec = beast::error::timeout;
    };
    if (refuse) {
      co_await Refuse(sock, deadline);
      co_return false;
    }
    beast::flat_buffer buffer;
    std::string head;  // the response head, rebuilt for every response of the connection
    // When the previous request ended (Finish): the idle wait that follows is timed from it.
    std::optional<std::chrono::steady_clock::time_point> finished;
    for (;;) {
      if (buffer.size() == 0) {
        // Between two requests a busy worker may hand the connection to a less busy one.
        if (finished && !owner->draining()) {
          const int to = placement->Rebalance(worker, *finished);
          if (to >= 0 && Place(sock, worker, to, false)) {
            Sm().moved.Inc();
            co_return false;  // the session on `to` serves it and keeps it counted
          }
        }
        // Idle keep-alive wait: nothing of the next request has arrived yet. Over the cap, the
        // connection that has waited longest is closed first (AcceptLoop). (Through
        // DrainingBuffer, the read waits for readability first when the previous read left
        // nothing queued.)
        idle_node.since = finished.value_or(std::chrono::steady_clock::now());
        idle->Add(worker, idle_node);
        deadline.Set(idle_node.since + opts.idle_timeout);
        auto [ec, n] =
            co_await sock.async_read_some(DrainingBuffer(buffer.prepare(16 << 10)), kTuple);
        if (!idle->Remove(worker, idle_node)) co_return false;  // closed over the cap: uncounted
        if (ec) co_return true;
        buffer.commit(n);
      }
      // Most requests arrive whole in one read, and ParseSimpleRequest takes them in one pass;
      // whatever it declines, Beast's parser reads (and answers its errors) as before.
      Request simple;
      std::optional<Parser> parser;
      const size_t taken = ParseSimpleRequest(
          std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()),
          opts.max_header_bytes, opts.max_body_bytes, simple);
      if (taken > 0) {
        buffer.consume(taken);
      } else {
        parser.emplace();
        parser->header_limit(opts.max_header_bytes);
        parser->body_limit(opts.max_body_bytes);
        auto [ec, n] = ParseBufferedHead(buffer, *parser);
        if (!ec && !parser->is_header_done()) {
          // The head is not all here yet: Beast reads the rest under the header timeout.
          deadline.Set(std::chrono::steady_clock::now() + opts.header_timeout);
          size_t more = 0;
          std::tie(ec, more) = co_await bhttp::async_read_header(sock, buffer, *parser, kTuple);
          timed_out(ec);
          n += more;
        }
        deadline.Clear();
        // Beast enforces header_limit only while it waits for more bytes; a head that arrived
        // whole in one read is measured here.
        if (!ec && n > opts.max_header_bytes) ec = bhttp::error::header_limit;
        if (ec) {
          if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
              ec == asio::error::connection_reset) {
            co_return true;
          }
          if (ec == beast::error::timeout) {
            co_await WriteFinal(sock, deadline,
                                MakeError(Code::request_timeout, "request_timeout",
                                          "request head not received in time"),
                                nullptr, nullptr);
          } else if (ec == bhttp::error::header_limit) {
            co_await WriteFinal(sock, deadline,
                                MakeError(Code::request_header_fields_too_large,
                                          "header_too_large", "request header fields too large"),
                                nullptr, nullptr);
          } else if (ec == bhttp::error::body_limit) {
            co_await WriteFinal(sock, deadline,
                                MakeError(Code::payload_too_large, "payload_too_large",
                                          "request body exceeds the limit of " +
                                              std::to_string(opts.max_body_bytes) + " bytes"),
                                nullptr, nullptr);
          } else {
            co_await WriteFinal(sock, deadline,
                                MakeError(Code::bad_request, "bad_request",
                                          "malformed HTTP request: " + ec.message()),
                                nullptr, nullptr);
          }
          co_return true;
        }
      }

      ExchangeImpl ex(sock, deadline, buffer, simple, parser ? &*parser : nullptr,
                      opts.body_timeout);
      ex.info.start = std::chrono::steady_clock::now();
      auto rid = FieldValue(ex.request(), "x-request-id");
      ex.info.request_id = ValidRequestId(rid) ? std::string(rid) : MintRequestId();

      owner->inflight_.fetch_add(1);
      Sm().inflight.Add(1);
      Response res = co_await handler(ex);
      owner->inflight_.fetch_sub(1);
      Sm().inflight.Add(-1);

      const Request& req = ex.request();
      if (ex.info.drop_connection) {
        Finish(ex.info, req, res);
        co_return true;
      }
      bool keep = req.keep_alive() && ex.body_complete() && !owner->draining() && res.keep_alive();
      const bool head_request = req.method() == Verb::head;
      if (!SerializePreparedResponseHead(res, keep, ex.info.request_id, head_request, head)) {
        PrepareResponse(res, keep, ex.info.request_id, head_request);
        SerializeResponseHead(res, head);
      }
      // One gather write of head and body. The socket is non-blocking: what the kernel takes at
      // once is written right here, without the post and timer of an asynchronous write; only a
      // remainder (a slow reader, a large body) waits, under the body timeout.
      std::array<asio::const_buffer, 2> bufs{
          asio::buffer(head), head_request ? asio::const_buffer() : asio::buffer(res.body())};
      beast::error_code wec;
      size_t sent = sock.write_some(bufs, wec);
      if (wec == asio::error::would_block || wec == asio::error::try_again) {
        wec = {};
        sent = 0;
      }
      if (!wec && sent < beast::buffer_bytes(bufs)) {
        wec = co_await WriteRest(sock, deadline, bufs, sent);
      }
      finished = Finish(ex.info, req, res);
      if (wec) co_return true;
      if (!keep) {
        beast::error_code ignored;
        sock.shutdown(tcp::socket::shutdown_send, ignored);
        co_return true;
      }
    }
  }
};

HttpServer::HttpServer(IoPool& pool, ServerOptions options, Handler handler)
    : impl_(new Impl{pool, std::move(options), std::move(handler), this, nullptr, {}}) {
  impl_->idle = std::make_unique<IdleConnections>(pool.size());
  impl_->placement = std::make_unique<Placement>(pool.size());
}

HttpServer::~HttpServer() = default;

Status HttpServer::Listen() {
  beast::error_code ec;
  auto addr = asio::ip::make_address(impl_->opts.host, ec);
  if (ec) return Status::InvalidArgument("invalid listen address '" + impl_->opts.host + "'");
  tcp::endpoint ep(addr, impl_->opts.port);
  auto acc = std::make_unique<tcp::acceptor>(impl_->pool.at(0));
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + impl_->opts.host + ":" +
                               std::to_string(impl_->opts.port) + ": " + ec.message());
  }
  bound_port_ = acc->local_endpoint().port();
  impl_->protocol = ep.protocol();
  impl_->acceptor = std::move(acc);
  return Status::Ok();
}

void HttpServer::Start() {
  asio::co_spawn(impl_->pool.at(0), impl_->AcceptLoop(), asio::detached);
}

void HttpServer::StopAccepting() {
  asio::post(impl_->pool.at(0), [this] {
    if (impl_->acceptor) {
      beast::error_code ignored;
      impl_->acceptor->close(ignored);
    }
  });
}

}  // namespace layer::http
