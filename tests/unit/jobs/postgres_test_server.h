// A real PostgreSQL server for the tests, one per test binary: a cluster created with `initdb` in
// a temporary directory and started with `pg_ctl` on a unix socket in that directory (no TCP
// port to collide on), the first time a test asks for it; stopped when the binary ends (a gtest
// Environment). Each test takes a fresh database of its own (NewDatabase).
//
// The binaries are found under /usr/lib/postgresql/<version>/bin (the highest version), or in
// $LAYER_PG_BIN. PostgreSQL refuses to run as root: as root, the cluster is created and run as
// the `postgres` user (runuser). When the server cannot start, the tests skip with the reason,
// except under CI=true, where they fail: CI installs PostgreSQL (scripts/setup.sh).
#pragma once

#include <libpq-fe.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace layer::jobs {

class PostgresTestServer {
 public:
  // The binary's server, started on first use; nullptr and `*why` when it could not start.
  static PostgresTestServer* Shared(std::string* why) {
    std::lock_guard lock(SharedMu());
    auto& s = SharedSlot();
    if (!s && SharedError().empty()) {
      auto server = std::unique_ptr<PostgresTestServer>(new PostgresTestServer());
      std::string err;
      if (server->Start(&err)) {
        s = std::move(server);
      } else {
        SharedError() = err.empty() ? "unknown error" : err;
      }
    }
    if (!s) *why = SharedError();
    return s.get();
  }
  // Stops the shared server, if it was started (the Environment's TearDown).
  static void StopShared() {
    std::lock_guard lock(SharedMu());
    SharedSlot().reset();
  }

  // GTEST_SKIP (outside CI) or a fatal failure (CI=true) with the reason the server is missing.
  static void SkipOrFail(const std::string& why) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") {
      FAIL() << "PostgreSQL did not start (CI installs it: scripts/setup.sh): " << why;
    } else {
      GTEST_SKIP() << "PostgreSQL not available (install the postgresql package): " << why;
    }
  }

  ~PostgresTestServer() {
    if (started_) Run(Bin("pg_ctl") + " -D " + data_ + " -m immediate -w stop >/dev/null 2>&1");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A connection string (URL) for database `db` on this server.
  std::string Url(const std::string& db) const {
    return "postgresql://postgres@/" + db + "?host=" + dir_ + "&port=" + std::to_string(kPort);
  }

  // Creates a fresh, empty database and returns its name; "" (with a test failure) on error.
  std::string NewDatabase() {
    static std::atomic<int> next{0};
    std::string name = "layer_test_" + std::to_string(getpid()) + "_" + std::to_string(next++);
    std::string err;
    if (!Admin("CREATE DATABASE " + name, &err)) {
      ADD_FAILURE() << "CREATE DATABASE " << name << ": " << err;
      return "";
    }
    return name;
  }

  // Runs `sql` on the `postgres` database as the superuser. False and `*err` on failure.
  bool Admin(const std::string& sql, std::string* err, const std::string& db = "postgres") const {
    PGconn* c = PQconnectdb(Url(db).c_str());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
      PGresult* r = PQexec(c, sql.c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
      if (!ok && err) *err = PQresultErrorMessage(r);
      PQclear(r);
    } else if (err) {
      *err = PQerrorMessage(c);
    }
    PQfinish(c);
    return ok;
  }

  // The first column of the first row of `sql` on `db`, or "" (NULL, no row or an error).
  std::string Query(const std::string& db, const std::string& sql) const {
    PGconn* c = PQconnectdb(Url(db).c_str());
    std::string out;
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c, sql.c_str());
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        out = PQgetvalue(r, 0, 0);
      }
      PQclear(r);
    }
    PQfinish(c);
    return out;
  }

  const std::string& dir() const { return dir_; }

 private:
  static constexpr int kPort = 5432;  // only names the socket file in dir_

  PostgresTestServer() = default;

  static std::mutex& SharedMu() {
    static std::mutex mu;
    return mu;
  }
  static std::unique_ptr<PostgresTestServer>& SharedSlot() {
    static std::unique_ptr<PostgresTestServer> s;
    return s;
  }
  static std::string& SharedError() {
    static std::string e;
    return e;
  }

  static std::string FindBinDir() {
    if (const char* env = std::getenv("LAYER_PG_BIN"); env && *env) return env;
    std::string best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string name = entry.path().filename().string();
      int version = std::atoi(name.c_str());
      if (version > best_version &&
          std::filesystem::exists(entry.path() / "bin" / "initdb", ec)) {
        best_version = version;
        best = (entry.path() / "bin").string();
      }
    }
    return best;
  }

  std::string Bin(const std::string& tool) const { return as_user_ + bin_ + "/" + tool; }
  static int Run(const std::string& cmd) { return std::system(cmd.c_str()); }

  bool Start(std::string* why) {
    bin_ = FindBinDir();
    if (bin_.empty()) {
      *why = "no initdb under /usr/lib/postgresql/*/bin (or $LAYER_PG_BIN)";
      return false;
    }
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/layer_pg_XXXXXX";
    char* p = mkdtemp(tmpl.data());
    if (!p) {
      *why = "mkdtemp failed";
      return false;
    }
    dir_ = p;
    data_ = dir_ + "/data";
    if (geteuid() == 0) {
      // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
      struct passwd* pw = getpwnam("postgres");
      if (!pw) {
        *why = "running as root and there is no postgres user to run the server as";
        return false;
      }
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        *why = "cannot chown " + dir_ + " to postgres";
        return false;
      }
      chmod(dir_.c_str(), 0755);
      as_user_ = "runuser -u postgres -- ";
    }
    const std::string log = dir_ + "/initdb.log";
    if (Run(Bin("initdb") + " -D " + data_ + " -A trust -U postgres --no-sync -E UTF8 --locale=C >" +
            log + " 2>&1") != 0) {
      *why = "initdb failed: " + Slurp(log);
      return false;
    }
    {
      std::ofstream conf(data_ + "/postgresql.conf", std::ios::app);
      conf << "\nlisten_addresses = ''\n"
           << "unix_socket_directories = '" << dir_ << "'\n"
           << "port = " << kPort << "\n"
           << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
           << "max_connections = 300\n";
    }
    const std::string server_log = dir_ + "/server.log";
    if (Run(Bin("pg_ctl") + " -D " + data_ + " -l " + server_log + " -w -t 120 start >/dev/null 2>&1") !=
        0) {
      *why = "pg_ctl start failed: " + Slurp(server_log);
      return false;
    }
    started_ = true;
    return true;
  }

  static std::string Slurp(const std::string& path) {
    std::ifstream f(path);
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

  std::string bin_;
  std::string as_user_;
  std::string dir_;
  std::string data_;
  bool started_ = false;
};

// Stops the shared server when the test binary ends. Register once, from one test file.
class PostgresTestEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PostgresTestServer::StopShared(); }
};

}  // namespace layer::jobs
