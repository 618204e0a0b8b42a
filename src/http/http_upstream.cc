// HTTP/1.1 upstream client with a per-worker keep-alive pool. See upstream.h for the contract.
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>

#include <array>
#include <optional>
#include <cassert>
#include <cstring>
#include <vector>

#include "common/metrics.h"
#include "http/deadline.h"
#include "http/draining_read.h"
#include "http/response_writer.h"
#include "http/simple_message.h"
#include "http/upstream.h"

namespace layer::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

namespace {

// Read buffer capacity of a connection: a typical answer arrives in one read.
constexpr size_t kReadBufferBytes = 16 << 10;

struct Connection {
  std::unique_ptr<beast::tcp_stream> tcp;                // plain upstream
  std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;  // https upstream
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
  // Plain upstream only: the response timeout (one lazily re-armed timer for the connection's
  // life instead of one per operation).
  std::unique_ptr<Deadline> deadline;

  beast::tcp_stream& lowest() { return tls ? tls->next_layer() : *tcp; }

  // A pooled connection is usable if the peer has neither closed it nor sent unsolicited bytes.
  bool LooksAlive() {
    if (buffer.size() != 0) return false;
    char c;
    ssize_t n = ::recv(lowest().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

using Parser = ResponseParser;

// The longest answer head ParseSimpleResponse takes (Beast's parser takes up to 1 MiB).
constexpr size_t kSimpleHeadBytes = 64 << 10;

// Bodies from this size on are read by RoundTripOn's direct path.
constexpr uint64_t kDirectBodyBytes = 64 << 10;
constexpr size_t kBodyLowWater = 256 << 10;
// Capacity left past a directly read body, so a parser that reads in wide blocks past the end
// (simdjson needs 64 bytes) can use the string as it is instead of copying it.
constexpr size_t kBodySlack = 64;

// How long after its last answer an idle connection is reused by an idempotent request's first
// attempt without the MSG_PEEK probe. An upstream that closes idle keep-alive connections does so
// after seconds; one that closed this one anyway costs the request its retry on a new connection.
constexpr std::chrono::milliseconds kTrustIdleFor{1000};

struct Shard {
  std::vector<std::unique_ptr<Connection>> idle;  // newest at the back; touched by one thread
};

class HttpUpstream final : public Upstream {
 public:
  HttpUpstream(IoPool& pool, UpstreamOptions opts) : pool_(pool), opts_(std::move(opts)) {}

  Status Init() {
    auto u = boost::urls::parse_absolute_uri(opts_.base_url);
    if (!u) return Status::InvalidArgument("invalid upstream URL '" + opts_.base_url + "'");
    tls_ = u->scheme() == "https";
    host_ = u->host();
    if (host_.size() >= 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    port_ = u->has_port() ? std::string(u->port()) : (tls_ ? "443" : "80");
    bool default_port = !u->has_port() || (tls_ && port_ == "443") || (!tls_ && port_ == "80");
    host_header_ = std::string(u->encoded_host_and_port());
    origin_ = std::string(u->scheme()) + "://" + host_header_;
    if (default_port) host_header_ = std::string(u->encoded_host());
    base_path_ = std::string(u->encoded_path());
    while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
    base_ = origin_ + base_path_;
    shards_.resize(pool_.size());
    per_shard_idle_ = opts_.max_idle <= 0 ? 0 : std::max(1, opts_.max_idle / pool_.size());
    if (tls_) {
      ssl_ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
      beast::error_code ec;
      ssl_ctx_->set_default_verify_paths(ec);
      if (!opts_.ca_file.empty()) {
        ssl_ctx_->load_verify_file(opts_.ca_file, ec);
        if (ec) return Status::InvalidArgument("cannot load CA file: " + ec.message());
      }
      ssl_ctx_->set_verify_mode(ssl::verify_peer);
    }
    return Status::Ok();
  }

  const std::string& base() const override { return base_; }

  Task<Result<Response>> Send(Request req, bool idempotent) override {
    int idx = IoPool::CurrentIndex();
    assert(IoPool::Current() == &pool_ && idx >= 0 && idx < static_cast<int>(shards_.size()));
    Shard& shard = shards_[idx];
    if (!base_path_.empty()) req.target(base_path_ + std::string(req.target()));
    req.version(11);
    std::optional<uint64_t> length;
    if (!req.body().empty() || req.method() == Verb::post || req.method() == Verb::put ||
        req.method() == Verb::patch) {
      length = req.body().size();
    }
    // The plain path's head (RoundTripPlain). Host and Content-Length go straight into it when
    // `req` has none of the fields they would replace; otherwise they are set on `req` first.
    std::string wire_head;
    if (tls_ || !SerializeRequestHeadWith(req, host_header_, length, wire_head)) {
      req.set(Field::host, host_header_);
      req.keep_alive(true);
      if (length) req.content_length(*length);
      if (!tls_) SerializeRequestHead(req, wire_head);
    }
    const bool head = req.method() == Verb::head;
    auto started = Clock::now();

    for (int attempt = 0;; ++attempt) {
      // A first attempt of a request safe to repeat skips the liveness probe of a connection
      // that was busy a moment ago: a stale one costs a retry, not an error.
      // The attempt's start: a pooled connection is used at once, so it also starts the
      // response deadline (a new one is timed from when it is connected).
      const Clock::time_point now = attempt == 0 ? started : Clock::now();
      std::unique_ptr<Connection> conn = TakeIdle(shard, idempotent && attempt == 0, now);
      const bool reused = conn != nullptr;
      if (reused) {
        metrics_.reused.Inc();
      } else {
        auto c = co_await Connect();
        if (!c.ok()) co_return c.status();
        conn = std::move(*c);
        metrics_.opened.Inc();
      }
      Parser parser;
      parser.body_limit(opts_.max_response_bytes);
      parser.header_limit(1 << 20);
      if (head) parser.skip(true);
      // A plain connection's deadline bounds the whole round trip (TLS: the stream's timer).
      if (conn->deadline) {
        conn->deadline->Set((reused ? now : Clock::now()) + opts_.response_timeout);
      }
      beast::error_code ec = co_await RoundTrip(*conn, req, wire_head, parser);
      if (conn->deadline) {
        conn->deadline->Clear();
        if (ec && conn->deadline->expired()) ec = beast::error::timeout;
      }
      if (!ec) {
        Response res = parser.release();
        const Clock::time_point done = Clock::now();
        metrics_.duration.Observe(std::chrono::duration<double>(done - started).count());
        if (res.keep_alive() && shard.idle.size() < per_shard_idle_) {
          if (conn->tls) conn->lowest().expires_never();
          conn->idle_since = done;
          shard.idle.push_back(std::move(conn));
        }
        co_return res;
      }
      // A reused connection that failed before any response byte was most likely closed by the
      // upstream while idle; only a request that is safe to repeat gets a second attempt.
      if (reused && idempotent && attempt == 0 && !parser.got_some() &&
          ec != beast::error::timeout) {
        continue;
      }
      metrics_.failures.Inc();
      if (ec == beast::error::timeout) {
        co_return Status::Timeout("upstream did not answer within " +
                                  std::to_string(opts_.response_timeout.count()) + " ms");
      }
      // Sent, or perhaps sent: the upstream may have acted on it (see upstream.h).
      co_return Status::IoError("upstream request failed: " + ec.message());
    }
  }

 private:
  struct UpstreamMetrics {
    Counter& opened = Metrics().GetCounter("layer_upstream_connections_opened_total",
                                           "Upstream connections opened");
    Counter& reused = Metrics().GetCounter("layer_upstream_connections_reused_total",
                                           "Upstream requests sent on a pooled connection");
    Counter& failures = Metrics().GetCounter("layer_upstream_transport_failures_total",
                                             "Upstream requests that failed in transport");
    Histogram& duration = Metrics().GetHistogram("layer_upstream_request_duration_seconds",
                                                 "Upstream round-trip time");
  };

  // The newest idle connection that is within its TTL and looks alive (Connection::LooksAlive, a
  // recv(MSG_PEEK) system call). With `trust_recent`, a connection idle for less than
  // kTrustIdleFor is taken without the probe when it has nothing buffered. `now`: the time.
  std::unique_ptr<Connection> TakeIdle(Shard& shard, bool trust_recent, Clock::time_point now) {
    while (!shard.idle.empty()) {
      std::unique_ptr<Connection> c = std::move(shard.idle.back());
      shard.idle.pop_back();
      const auto idle_for = now - c->idle_since;
      if (idle_for >= opts_.idle_ttl) continue;
      if (trust_recent && idle_for < kTrustIdleFor && c->buffer.size() == 0) return c;
      if (c->LooksAlive()) return c;
    }
    return nullptr;
  }

  Task<Result<std::unique_ptr<Connection>>> Connect() {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(host_, port_, kTuple);
    if (rec) co_return Status::Unavailable("cannot resolve upstream host " + host_ + ": " +
                                           rec.message());
    auto conn = std::make_unique<Connection>();
    if (tls_) {
      conn->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(ex, *ssl_ctx_);
    } else {
      conn->tcp = std::make_unique<beast::tcp_stream>(ex);
    }
    auto& low = conn->lowest();
    low.expires_after(opts_.connect_timeout);
    auto [cec, ep] = co_await low.async_connect(endpoints, kTuple);
    if (cec) {
      co_return Status::Unavailable("cannot connect to upstream " + origin_ + ": " +
                                    (cec == beast::error::timeout ? std::string("timed out")
                                                                  : cec.message()));
    }
    low.socket().set_option(tcp::no_delay(true));
    conn->buffer.reserve(kReadBufferBytes);
    if (!tls_) {
      // The plain path writes and reads the socket directly (RoundTripPlain), and waits for
      // each answer without a wasted read attempt (DrainingBuffer).
      EnableReadHints(low.socket());
      beast::error_code nb_ec;
      low.socket().non_blocking(true, nb_ec);
      if (nb_ec) co_return Status::Unavailable("cannot set up the upstream socket: " +
                                               nb_ec.message());
      tcp::socket* sock = &low.socket();
      conn->deadline = std::make_unique<Deadline>(ex, [sock] {
        beast::error_code ignored;
        sock->close(ignored);
      });
    }
    if (tls_) {
      if (!SSL_set_tlsext_host_name(conn->tls->native_handle(), host_.c_str())) {
        co_return Status::Unavailable("cannot set TLS SNI");
      }
      conn->tls->set_verify_callback(ssl::host_name_verification(host_));
      auto [hec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kTuple);
      if (hec) co_return Status::Unavailable("TLS handshake with upstream failed: " +
                                             hec.message());
    }
    low.expires_never();
    co_return conn;
  }

  // Not a coroutine: returns the (lazy) task of the connection's kind, which Send awaits at once.
  // `wire_head` is the plain path's serialised head of `req`.
  Task<beast::error_code> RoundTrip(Connection& c, const Request& req,
                                    const std::string& wire_head, Parser& parser) {
    if (c.tls) {
      c.lowest().expires_after(opts_.response_timeout);
      return RoundTripOn(*c.tls, c, req, parser);
    }
    return RoundTripPlain(c, req, wire_head, parser);
  }

  // The plain-TCP round trip without Beast's stream algorithms: the request goes out as one
  // gather write of a hand-serialised head and the body, straight from this coroutine while the
  // kernel takes it; the answer is read into the connection's buffer and parsed in place as it
  // arrives. A large body of announced length takes
  // RoundTripOn's direct path. The socket is non-blocking; Send's Deadline bounds it all.
  Task<beast::error_code> RoundTripPlain(Connection& c, const Request& req,
                                         const std::string& wire_head, Parser& parser) {
    tcp::socket& sock = c.tcp->socket();
    const std::array<asio::const_buffer, 2> bufs{asio::buffer(wire_head),
                                                 asio::buffer(req.body())};
    const size_t total = wire_head.size() + req.body().size();
    beast::error_code ec;
    for (size_t sent = 0; sent < total;) {
      beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(bufs);
      rest.consume(sent);
      size_t n = sock.write_some(rest, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        auto [wec] = co_await sock.async_wait(tcp::socket::wait_write, kTuple);
        if (wec) co_return wec;
        continue;
      }
      if (ec) co_return ec;
      sent += n;
    }
    const bool head_request = req.method() == Verb::head;
    for (;;) {
      // A plain answer that arrived whole is parsed in one pass (ParseSimpleResponse) and handed
      // over in the parser's message, which Send releases; anything else, or an answer that is
      // not all here at the first read, Beast parses.
      if (!parser.got_some() && !head_request && c.buffer.size() > 0) {
        Response simple;
        const size_t taken = ParseSimpleResponse(
            std::string_view(static_cast<const char*>(c.buffer.data().data()), c.buffer.size()),
            kSimpleHeadBytes, opts_.max_response_bytes, simple);
        if (taken > 0) {
          c.buffer.consume(taken);
          parser.get() = std::move(simple);
          co_return beast::error_code{};
        }
      }
      // Parse what is buffered.
      while (c.buffer.size() > 0 && !parser.is_done()) {
        size_t n = parser.put(c.buffer.data(), ec);
        c.buffer.consume(n);
        if (ec == bhttp::error::need_more) {
          ec = {};
          break;
        }
        if (ec) co_return ec;
        if (parser.is_header_done() && !parser.is_done()) {
          auto length = parser.content_length();  // boost::optional
          if (length && !parser.chunked() && *length >= kDirectBodyBytes &&
              parser.get().body().empty()) {
            co_return co_await ReadLargeBody(sock, c, parser, *length);
          }
        }
        if (n == 0) break;
      }
      if (parser.is_done()) co_return beast::error_code{};
      // Through DrainingBuffer, a read that follows one which left nothing queued (the usual end
      // of the previous answer) waits for the answer without first trying a read.
      const size_t room = std::max(kReadBufferBytes, c.buffer.capacity() - c.buffer.size());
      auto [rec, n] =
          co_await sock.async_read_some(DrainingBuffer(c.buffer.prepare(room)), kTuple);
      if (rec == asio::error::eof) {
        if (!parser.got_some()) co_return rec;
        parser.put_eof(ec);  // a body delimited by the end of the connection ends here
        if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        co_return ec;
      }
      if (rec) co_return rec;
      c.buffer.commit(n);
    }
  }

  // Writes the request and reads the answer. A large body of announced length skips the
  // parser's copy: it is read straight into its final string, and over plain TCP the socket's
  // receive low-water mark is raised meanwhile, so the thread wakes once per kBodyLowWater bytes
  // instead of once per segment that arrived.
  template <typename Stream>
  Task<beast::error_code> RoundTripOn(Stream& s, Connection& c, const Request& req,
                                      Parser& parser) {
    auto [wec, wn] = co_await bhttp::async_write(s, req, kTuple);
    if (wec) co_return wec;
    auto [hec, hn] = co_await bhttp::async_read_header(s, c.buffer, parser, kTuple);
    if (hec || parser.is_done()) co_return hec;
    auto length = parser.content_length();  // boost::optional
    if (!length || parser.chunked() || *length < kDirectBodyBytes) {
      auto [rec, rn] = co_await bhttp::async_read(s, c.buffer, parser, kTuple);
      co_return rec;
    }
    co_return co_await ReadLargeBody(s, c, parser, *length);
  }

  // Reads a body of announced `length` straight into its final string (see RoundTripOn).
  template <typename Stream>
  Task<beast::error_code> ReadLargeBody(Stream& s, Connection& c, Parser& parser,
                                        uint64_t length) {
    std::string& body = parser.get().body();
    body.reserve(static_cast<size_t>(length) + kBodySlack);
    body.resize(static_cast<size_t>(length));
    size_t got = std::min(body.size(), c.buffer.size());
    std::memcpy(body.data(), c.buffer.data().data(), got);
    c.buffer.consume(got);
    int fd = c.lowest().socket().native_handle();
    int lowat = 1;
    auto set_lowat = [&](int want) {
      if (want == lowat || c.tls) return;
      if (::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) lowat = want;
    };
    beast::error_code ec;
    while (got < body.size()) {
      // Never above what is still to come, or the last read would wait for bytes never sent.
      set_lowat(static_cast<int>(std::min<size_t>(body.size() - got, kBodyLowWater)));
      auto [rec, n] = co_await s.async_read_some(
          asio::buffer(body.data() + got, body.size() - got), kTuple);
      got += n;
      if (rec) {
        ec = rec == asio::error::eof ? beast::error_code(bhttp::error::partial_message) : rec;
        break;
      }
    }
    set_lowat(1);
    co_return ec;
  }

  IoPool& pool_;
  UpstreamOptions opts_;
  bool tls_ = false;
  std::string host_, port_, host_header_, origin_, base_path_, base_;
  std::unique_ptr<ssl::context> ssl_ctx_;
  std::vector<Shard> shards_;  // one per IoPool worker, each touched only by its worker
  size_t per_shard_idle_ = 0;
  UpstreamMetrics metrics_;
};

}  // namespace

Result<std::unique_ptr<Upstream>> MakeHttpUpstream(IoPool& pool, UpstreamOptions options) {
  auto up = std::make_unique<HttpUpstream>(pool, std::move(options));
  if (Status st = up->Init(); !st.ok()) return st;
  return std::unique_ptr<Upstream>(std::move(up));
}

}  // namespace layer::http
