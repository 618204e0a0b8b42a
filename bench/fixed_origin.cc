// A minimal HTTP/1.1 origin for proxy comparisons: one thread, epoll, keep-alive, and the same
// pre-serialised answer to every request (200, application/json, a Turbopuffer-shaped query
// result padded to --body-bytes). It reads each request's head and Content-Length body and
// nothing else, so it costs as little CPU per request as a server can, and whatever sits in front
// of it (nginx, `layer serve`) is what a comparison measures.
//
//   build/bench/fixed_origin --port-file /tmp/x/port [--body-bytes 1024]
//
// Binds 127.0.0.1:0, writes the port to --port-file once listening, and serves until killed.
// Chunked request bodies are not supported (nothing that talks to it sends them).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

// The answer body: {"rows":[{"id":1,"$dist":0.1,"text":"xxx…"}],"billing":…,"performance":…},
// exactly `bytes` long when `bytes` is at least the unpadded size.
std::string ResultBody(size_t bytes) {
  const std::string head = R"({"rows":[{"id":1,"$dist":0.1,"text":")";
  const std::string tail =
      R"("}],"billing":{"billable_logical_bytes_queried":1024,"billable_logical_bytes_returned":)"
      R"(64},"performance":{"approx_namespace_size":1,"cache_hit_ratio":1.0,)"
      R"("cache_temperature":"hot","server_total_ms":1,"query_execution_ms":1}})";
  size_t pad = bytes > head.size() + tail.size() ? bytes - head.size() - tail.size() : 0;
  return head + std::string(pad, 'x') + tail;
}

// Length of the first complete request in `buf` (head + Content-Length body), or 0 if the
// buffer does not hold one yet.
size_t CompleteRequest(std::string_view buf) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  std::string_view head = buf.substr(0, end + 2);
  size_t body = 0;
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    constexpr std::string_view kName = "content-length:";
    if (head.size() - pos > kName.size() &&
        strncasecmp(head.data() + pos, kName.data(), kName.size()) == 0) {
      body = std::strtoull(head.data() + pos + kName.size(), nullptr, 10);
    }
  }
  size_t total = end + 4 + body;
  return buf.size() >= total ? total : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file;
  size_t body_bytes = 1024;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--port-file" && i + 1 < argc) {
      port_file = argv[++i];
    } else if (a == "--body-bytes" && i + 1 < argc) {
      body_bytes = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: fixed_origin --port-file FILE [--body-bytes N]\n");
      return 2;
    }
  }
  const std::string body = ResultBody(body_bytes);
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 1024) != 0) {
    std::perror("fixed_origin: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << ntohs(addr.sin_port) << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  int ep = ::epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, std::string> pending;  // unparsed bytes per connection
  std::string out;
  char chunk[64 << 10];
  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          pending[c];
        }
        continue;
      }
      std::string& buf = pending[fd];
      bool closed = false;
      for (;;) {
        ssize_t r = ::read(fd, chunk, sizeof chunk);
        if (r > 0) {
          buf.append(chunk, static_cast<size_t>(r));
          if (static_cast<size_t>(r) < sizeof chunk) break;
        } else {
          closed = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
          break;
        }
      }
      out.clear();
      size_t used = 0;
      while (size_t req = CompleteRequest(std::string_view(buf).substr(used))) {
        used += req;
        out += answer;
      }
      buf.erase(0, used);
      // Answers are small and the peer reads them: a short write is treated as a dead peer.
      if (!out.empty() && ::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) {
        closed = true;
      }
      if (closed) {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        pending.erase(fd);
      }
    }
  }
}
