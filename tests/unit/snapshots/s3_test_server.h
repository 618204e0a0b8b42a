// A real s3rver behind the verifying front (tests/s3/s3_front.py: SigV4 of every request
// recomputed with botocore, If-None-Match: * on PUT, per-key serialisation, scripted faults),
// started from a test as a child process on free ports with a temporary directory, and a tiny
// HTTP client for the front's control routes.
//
// Start() reports why it could not start. When node, s3rver (tests/node_modules, `npm ci`) or
// botocore is missing, the tests skip with that reason, except under CI=true, where they fail:
// CI installs all three (scripts/setup.sh).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "unit/jobs/temp_dir.h"

#ifndef LAYER_TESTS_DIR
#error "LAYER_TESTS_DIR must name the tests/ directory"
#endif

extern char** environ;

namespace layer::snapshots {

inline constexpr const char* kS3TestBucket = "layer-test";
inline constexpr const char* kS3TestKeyId = "AKIDLAYERTEST";
inline constexpr const char* kS3TestSecret = "layer/test+secret";

struct S3TestServerOptions {
  bool bare = false;  // --bare: If-None-Match goes to s3rver untouched
};

class S3TestServer {
 public:
  using Options = S3TestServerOptions;

  // nullptr and `*why` when the front could not start (a missing tool, or a real failure).
  static std::unique_ptr<S3TestServer> Start(const Options& options, std::string* why) {
    auto s = std::unique_ptr<S3TestServer>(new S3TestServer());
    if (!s->Spawn(options, why)) return nullptr;
    return s;
  }

  // Start(), or GTEST_SKIP (outside CI) / a fatal failure (CI=true) with the reason and nullptr.
  // Call from a test or its SetUp, then return when it gives nullptr.
  static std::unique_ptr<S3TestServer> StartOrSkip(const Options& options = {}) {
    std::string why;
    auto s = Start(options, &why);
    if (!s) SkipOrFail(why);
    return s;
  }

  // GTEST_SKIP (outside CI) or FAIL (CI=true) with the reason the front did not start.
  static void SkipOrFail(const std::string& why) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") {
      FAIL() << "s3rver front did not start (CI must have node, s3rver and botocore): "
                    << why;
    } else {
      GTEST_SKIP() << "s3rver front not available: " << why;
    }
  }

  ~S3TestServer() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);  // the front exits when its stdin closes
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
    if (pid_ > 0) {
      int status = 0;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        ::usleep(10000);
      }
    }
  }

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // A control request to the front (unsigned): the answer's status and body.
  std::pair<int, std::string> Control(const std::string& method, const std::string& path,
                                      const std::string& body = "") const {
    return RawHttp(port_, method, path, body);
  }
  // Counters from GET /_front/stats, as JSON text.
  std::string Stats() const { return Control("GET", "/_front/stats").second; }
  void ResetStats() const { Control("POST", "/_front/reset"); }
  // `faults_json`: a JSON list of {"method"?, "path_contains"?, "status", "code", "count",
  // "drop"?} (see s3_front.py).
  void AddFaults(const std::string& faults_json) const {
    Control("POST", "/_front/faults", faults_json);
  }

  // A minimal HTTP/1.1 exchange on a fresh connection (Connection: close).
  static std::pair<int, std::string> RawHttp(int port, const std::string& method,
                                             const std::string& path, const std::string& body) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return {0, "connect failed"};
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                      "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (size_t off = 0; off < req.size();) {
      ssize_t n = ::write(fd, req.data() + off, req.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    int status = 0;
    if (resp.size() > 12) status = std::atoi(resp.substr(9, 3).c_str());
    size_t sep = resp.find("\r\n\r\n");
    return {status, sep == std::string::npos ? "" : resp.substr(sep + 4)};
  }

 private:
  S3TestServer() = default;

  bool Spawn(const Options& options, std::string* why) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      *why = "pipe failed";
      return false;
    }
    std::string script = std::string(LAYER_TESTS_DIR) + "/s3/s3_front.py";
    std::string dir = dir_.Sub("s3rver");
    std::string creds = std::string(kS3TestKeyId) + ":" + kS3TestSecret;
    std::vector<std::string> args = {"/usr/bin/python3", script, "--dir", dir, "--bucket",
                                     kS3TestBucket, "--credentials", creds};
    if (options.bare) args.push_back("--bare");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    int rc = ::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      *why = "cannot run /usr/bin/python3";
      return false;
    }
    // One JSON line: {"port": N, ...} or {"error": "..."}. Generous bound: a loaded machine.
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{stdout_fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        *why = "the front did not report its port in time";
        return false;
      }
      char buf[512];
      ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) {
        *why = "the front exited before reporting its port: " + line;
        return false;
      }
      line.append(buf, static_cast<size_t>(n));
    }
    size_t key = line.find("\"port\": ");
    if (key == std::string::npos) {
      *why = line.substr(0, line.find('\n'));
      return false;
    }
    port_ = std::atoi(line.c_str() + key + 8);
    return port_ > 0;
  }

  layer::testing::StorageTempDir dir_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

}  // namespace layer::snapshots
