#include "cache/redis/redis_cache.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <utility>

#include "common/config.h"
#include "common/log.h"
#include "common/url.h"

namespace layer::cache {
namespace {

// Every script checks KEYS[1] (the namespace epoch) against ARGV[1] first and answers
// {0, current epoch} without touching anything when they differ; otherwise {1, ...}.

// Reads: KEYS[2..] are document (or vector) keys; answers {1, value or nil, ...}.
constexpr std::string_view kGetScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
local out = {1}
if #KEYS > 1 then
  local vals = redis.call('MGET', unpack(KEYS, 2))
  for i = 1, #vals do out[i + 1] = vals[i] end
end
return out
)lua";

// Compare-and-put of records, in order (docs/design.md §3.3, §3.4, §4.2.7; the RocksDB
// backend's PutBatch is the same rule). KEYS[2] is the namespace's tombstone index; record i has
// KEYS[1 + 2i] (document) and KEYS[2 + 2i] (vector). ARGV: epoch, now, tombstone expiry (both 20
// digits), document TTL (ms), then per record its head (kind + 20-digit stamp; kind 'd' a row,
// 'R' a repair row, 't' a tombstone, 'r' a repairable tombstone) and its attributes.
// Answers {1, stored 0|1 per record}. Then deletes up to 64 expired tombstones of the namespace.
constexpr std::string_view kPutScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
local now, expiry, ttl = ARGV[2], ARGV[3], ARGV[4]
local out = {1}
local n = (#KEYS - 2) / 2
for i = 1, n do
  local key, vkey = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local head, attrs = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local kind, stamp = string.sub(head, 1, 1), string.sub(head, 2, 21)
  local old = redis.call('GET', key)
  local ek, es = nil, nil
  if old and #old >= 21 then
    ek, es = string.sub(old, 1, 1), string.sub(old, 2, 21)
    if (ek == 't' or ek == 'r') and string.sub(old, 22, 41) <= now then ek = nil end
  end
  local wins = ek == nil or es <= stamp or (kind == 'R' and ek == 'r')
  if wins then
    if kind == 't' or kind == 'r' then
      local k = 't'
      if kind == 'r' and ek ~= 't' then k = 'r' end
      redis.call('SET', key, k .. stamp .. expiry)
      redis.call('DEL', vkey)
      redis.call('ZADD', KEYS[2], expiry, key)
    else
      redis.call('SET', key, 'd' .. stamp .. attrs, 'PX', ttl)
    end
    out[i + 1] = 1
  else
    if kind == 't' and ek == 'r' then
      redis.call('SET', key, 't' .. es .. expiry)
      redis.call('ZADD', KEYS[2], expiry, key)
    end
    out[i + 1] = 0
  end
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 64)
for _, k in ipairs(dead) do
  local v = redis.call('GET', k)
  if v and (string.sub(v, 1, 1) == 't' or string.sub(v, 1, 1) == 'r') and
     string.sub(v, 22, 41) <= now then
    redis.call('DEL', k)
  end
  redis.call('ZREM', KEYS[2], k)
end
return out
)lua";

// Deletes KEYS[2..] (documents, tombstones, vectors).
constexpr std::string_view kDeleteScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
if #KEYS > 1 then redis.call('DEL', unpack(KEYS, 2)) end
return {1}
)lua";

// Stores the vector KEYS[2] = ARGV[2] with the document TTL ARGV[3] (ms).
constexpr std::string_view kPutVectorScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1}
)lua";

// Bumps the epoch KEYS[1] and drops the namespace records KEYS[2]; answers the new epoch.
constexpr std::string_view kBumpScript = R"lua(
local e = redis.call('INCR', KEYS[1])
redis.call('DEL', KEYS[2])
return e
)lua";

enum Script : size_t { kGet = 0, kPut, kDelete, kPutVector, kBump, kScriptCount };
constexpr std::array<std::string_view, kScriptCount> kScripts = {
    kGetScript, kPutScript, kDeleteScript, kPutVectorScript, kBumpScript};

// Policies that never evict a key without a TTL (tombstones, epochs, namespace records), and
// evict keys with one oldest-used (or soonest-expiring) first.
// (volatile-lfu may evict a row just written before older ones that were read often, and
// volatile-random anything: docs/design.md §3.11.)
constexpr std::array<std::string_view, 3> kSafePolicies = {"volatile-lru", "volatile-ttl",
                                                           "noeviction"};

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

std::string Digits20(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020llu", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t ParseU64(std::string_view s, bool* ok) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  *ok = ec == std::errc() && p == s.data() + s.size();
  return v;
}

std::string NsTag(std::string_view ns) {
  std::string tag = "L" + std::to_string(ns.size()) + "{";
  tag.append(ns);
  tag.push_back('}');
  return tag;
}

std::string EpochKey(std::string_view ns) { return NsTag(ns) + "e"; }
std::string TombIndexKey(std::string_view ns) { return NsTag(ns) + "t"; }
std::string RecordsKey(std::string_view ns) { return NsTag(ns) + "r"; }
std::string RegistryKey(std::string_view record) { return "L:records:" + std::string(record); }

std::string DocKey(std::string_view ns, uint64_t epoch, const DocId& id, bool vector) {
  std::string key = NsTag(ns);
  key.push_back(vector ? 'v' : 'd');
  key.append(std::to_string(epoch));
  key.push_back(':');
  key.push_back(static_cast<char>('0' + static_cast<int>(id.type)));
  key.append(id.bytes);
  return key;
}

// `text` as a literal in a SCAN MATCH pattern.
std::string GlobLiteral(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

Status CheckNs(std::string_view ns) {
  if (ns.empty() || ns.size() > 0xffff) {
    return Status::InvalidArgument("cache namespace must be 1..65535 bytes");
  }
  return Status::Ok();
}

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string_view ReplyText(const redisReply* r) {
  return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

// A server's error reply as a Status: refusals that may pass are Unavailable.
Status FromErrorReply(std::string_view what, std::string_view err) {
  std::string msg = "redis " + std::string(what) + ": " + std::string(err);
  for (std::string_view transient : {"LOADING", "BUSY", "OOM", "MASTERDOWN", "READONLY", "TRYAGAIN",
                                     "CLUSTERDOWN", "MOVED", "ASK"}) {
    if (err.starts_with(transient)) return Status::Unavailable(std::move(msg));
  }
  return Status::IoError(std::move(msg));
}

}  // namespace

// One pooled connection: the hiredis context and the shas of the scripts loaded on it.
class RedisCache::Conn {
 public:
  explicit Conn(redisContext* ctx) : ctx_(ctx) {}
  ~Conn() {
    if (ctx_) redisFree(ctx_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // True once an I/O error, EOF, timeout or protocol error made the context unusable.
  bool broken() const { return ctx_ == nullptr || ctx_->err != 0; }

  Status IoStatus(std::string_view what) const {
    std::string msg = "redis " + std::string(what) + ": ";
    msg += ctx_ ? ctx_->errstr : "no connection";
    return Status::Unavailable(std::move(msg));
  }

  // Sends every command, then reads every reply (one round trip). A reply may be an error
  // reply; a non-OK Status means the connection broke.
  Status Pipeline(std::string_view what, const std::vector<std::vector<std::string>>& cmds,
                  std::vector<Reply>* replies) {
    replies->clear();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& cmd : cmds) {
      argv.clear();
      lens.clear();
      for (const auto& a : cmd) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        return IoStatus(what);
      }
    }
    for (size_t i = 0; i < cmds.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return IoStatus(what);
      replies->emplace_back(static_cast<redisReply*>(raw));
    }
    return Status::Ok();
  }

  Result<Reply> Command(std::string_view what, std::vector<std::string> cmd) {
    std::vector<std::vector<std::string>> cmds;
    cmds.push_back(std::move(cmd));
    std::vector<Reply> replies;
    if (Status s = Pipeline(what, cmds, &replies); !s.ok()) return s;
    return std::move(replies[0]);
  }

  Status LoadScripts() {
    std::vector<std::vector<std::string>> cmds;
    for (std::string_view text : kScripts) {
      cmds.push_back({"SCRIPT", "LOAD", std::string(text)});
    }
    std::vector<Reply> replies;
    if (Status s = Pipeline("script load", cmds, &replies); !s.ok()) return s;
    for (size_t i = 0; i < kScriptCount; ++i) {
      if (replies[i]->type != REDIS_REPLY_STRING) {
        return FromErrorReply("script load", ReplyText(replies[i].get()));
      }
      shas_[i] = std::string(ReplyText(replies[i].get()));
    }
    return Status::Ok();
  }

  // Runs scripts (EVALSHA, pipelined), reloading them once on NOSCRIPT.
  Status Eval(std::string_view what,
              const std::vector<std::pair<Script, std::vector<std::string>>>& calls,
              std::vector<Reply>* replies) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::vector<std::vector<std::string>> cmds;
      cmds.reserve(calls.size());
      for (const auto& [script, args] : calls) {
        std::vector<std::string> cmd;
        cmd.reserve(args.size() + 2);
        cmd.push_back("EVALSHA");
        cmd.push_back(shas_[script]);
        cmd.insert(cmd.end(), args.begin(), args.end());
        cmds.push_back(std::move(cmd));
      }
      if (Status s = Pipeline(what, cmds, replies); !s.ok()) return s;
      bool noscript = false;
      for (const auto& r : *replies) {
        if (r->type == REDIS_REPLY_ERROR && ReplyText(r.get()).starts_with("NOSCRIPT")) {
          noscript = true;
        }
      }
      if (!noscript) return Status::Ok();
      if (Status s = LoadScripts(); !s.ok()) return s;
    }
    return Status::Unavailable("redis " + std::string(what) + ": scripts keep disappearing");
  }

 private:
  redisContext* ctx_;
  std::array<std::string, kScriptCount> shas_;
};

namespace {

// Builds the argument list of a script: numkeys, keys, args.
std::vector<std::string> ScriptArgs(std::vector<std::string> keys, std::vector<std::string> args) {
  std::vector<std::string> out;
  out.reserve(1 + keys.size() + args.size());
  out.push_back(std::to_string(keys.size()));
  for (auto& k : keys) out.push_back(std::move(k));
  for (auto& a : args) out.push_back(std::move(a));
  return out;
}

// A script's answer: {1, ...} (the values after the marker) or {0, epoch} (the epoch moved).
struct ScriptAnswer {
  std::optional<uint64_t> moved_to;
  const redisReply* values = nullptr;  // the array; values start at element 1
};

Result<ScriptAnswer> ReadAnswer(std::string_view what, const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) return FromErrorReply(what, ReplyText(r));
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    return Status::Internal("redis " + std::string(what) + ": unexpected script answer");
  }
  ScriptAnswer a;
  if (r->element[0]->integer == 0) {
    bool ok = false;
    uint64_t e = r->elements > 1 ? ParseU64(ReplyText(r->element[1]), &ok) : 0;
    if (!ok) return Status::Internal("redis " + std::string(what) + ": bad epoch");
    a.moved_to = e;
    return a;
  }
  a.values = r;
  return a;
}

}  // namespace

Result<RedisCacheOptions> ParseRedisCacheUrl(std::string_view url) {
  RedisCacheOptions o;
  auto bad = [&](std::string why) {
    return Status::InvalidArgument("--cache " + RedactRedisUrl(url) + ": " + why);
  };
  std::string_view rest;
  bool unix_socket = false;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("redis+unix://")) {
    rest = url.substr(13);
    unix_socket = true;
  } else if (url.starts_with("rediss://")) {
    return bad(
        "TLS (rediss://) needs hiredis 1.0 or later with hiredis_ssl; this build has "
        "hiredis 0.14 (use a TLS proxy such as stunnel, or redis:// on a trusted network)");
  } else if (url.starts_with("redis-cluster://")) {
    return bad("Redis Cluster is not supported yet (docs/design.md §3.11)");
  } else {
    return bad("not a redis:// or redis+unix:// URL");
  }
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // Credentials: [USER]:PASSWORD@ (the last '@': a password may hold one).
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = cred.find(':');
    std::string user, pass;
    if (colon == std::string_view::npos) {
      if (!PercentDecode(cred, &pass)) return bad("bad percent-escape in the password");
    } else if (!PercentDecode(cred.substr(0, colon), &user) ||
               !PercentDecode(cred.substr(colon + 1), &pass)) {
      return bad("bad percent-escape in the credentials");
    }
    o.username = std::move(user);
    o.password = std::move(pass);
  }
  if (unix_socket) {
    if (!rest.starts_with("/")) return bad("the socket path must be absolute");
    o.unix_socket = std::string(rest);
  } else {
    std::string_view hostport = rest;
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      hostport = rest.substr(0, slash);
      std::string_view db = rest.substr(slash + 1);
      if (!db.empty()) {
        bool ok = false;
        uint64_t n = ParseU64(db, &ok);
        if (!ok || n > 1000) return bad("the database must be a number");
        o.db = static_cast<int>(n);
      }
    }
    std::string_view host = hostport;
    if (hostport.starts_with("[")) {  // [v6]:port
      size_t close = hostport.find(']');
      if (close == std::string_view::npos) return bad("unclosed [");
      host = hostport.substr(1, close - 1);
      std::string_view after = hostport.substr(close + 1);
      if (!after.empty()) {
        if (!after.starts_with(":")) return bad("bad port");
        hostport = after;
        bool ok = false;
        uint64_t p = ParseU64(after.substr(1), &ok);
        if (!ok || p == 0 || p > 65535) return bad("bad port");
        o.port = static_cast<int>(p);
      }
    } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      bool ok = false;
      uint64_t p = ParseU64(hostport.substr(colon + 1), &ok);
      if (!ok || p == 0 || p > 65535) return bad("bad port");
      o.port = static_cast<int>(p);
    }
    if (host.empty()) return bad("no host");
    o.host = std::string(host);
  }
  auto duration = [&](std::string_view name, std::chrono::milliseconds* out) -> Status {
    if (auto v = QueryParam(query, name)) {
      auto ms = ParseDurationMs(*v);
      if (!ms.ok()) return bad(std::string(name) + ": " + ms.status().message());
      if (*ms <= 0) return bad(std::string(name) + " must be positive");
      *out = std::chrono::milliseconds(*ms);
    }
    return Status::Ok();
  };
  for (auto [name, out] :
       {std::pair<std::string_view, std::chrono::milliseconds*>{"timeout", &o.op_timeout},
        {"connect_timeout", &o.connect_timeout},
        {"doc_ttl", &o.doc_ttl},
        {"tombstone_ttl", &o.tombstone_ttl}}) {
    if (Status s = duration(name, out); !s.ok()) return s;
  }
  if (auto v = QueryParam(query, "pool")) {
    bool ok = false;
    uint64_t n = ParseU64(*v, &ok);
    if (!ok || n == 0 || n > 256) return bad("pool must be 1..256");
    o.pool_size = n;
  }
  if (auto v = QueryParam(query, "db")) {
    bool ok = false;
    uint64_t n = ParseU64(*v, &ok);
    if (!ok || n > 1000) return bad("db must be a number");
    o.db = static_cast<int>(n);
  }
  if (auto v = QueryParam(query, "check_policy")) {
    if (*v != "0" && *v != "1") return bad("check_policy must be 0 or 1");
    o.check_policy = *v == "1";
  }
  return o;
}

std::string RedactRedisUrl(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t end = url.find('?', scheme + 3);
  std::string_view head = url.substr(0, end);
  size_t at = head.rfind('@');
  if (at == std::string_view::npos || at < scheme) return std::string(url);
  std::string_view cred = head.substr(scheme + 3, at - scheme - 3);
  size_t colon = cred.find(':');
  std::string out(url.substr(0, scheme + 3));
  if (colon != std::string_view::npos) out.append(cred.substr(0, colon + 1));
  out.append("***");
  out.append(url.substr(at));
  return out;
}

RedisCache::RedisCache(RedisCacheOptions options) : options_(std::move(options)) {}

RedisCache::~RedisCache() = default;

Result<std::unique_ptr<RedisCache>> RedisCache::Open(RedisCacheOptions options) {
  if (options.pool_size == 0) return Status::InvalidArgument("redis pool size must be positive");
  if (options.batch_chunk == 0) return Status::InvalidArgument("batch_chunk must be positive");
  // hiredis 0.14 writes with write(2): a server that closed the connection would raise SIGPIPE,
  // whose default action ends the process. Its default is replaced by "ignore" (EPIPE then
  // reads as a broken connection); a handler someone installed is left alone.
  struct sigaction old_action {};
  if (sigaction(SIGPIPE, nullptr, &old_action) == 0 && old_action.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  std::unique_ptr<RedisCache> cache(new RedisCache(std::move(options)));
  auto conn = cache->Connect();
  if (!conn.ok()) return conn.status();
  {
    std::lock_guard lk(cache->pool_mu_);
    cache->open_ = 1;
  }
  cache->Release(std::move(*conn));
  return cache;
}

Result<std::unique_ptr<RedisCache::Conn>> RedisCache::Connect() {
  const timeval ct = ToTimeval(options_.connect_timeout);
  redisContext* ctx = options_.unix_socket.empty()
                          ? redisConnectWithTimeout(options_.host.c_str(), options_.port, ct)
                          : redisConnectUnixWithTimeout(options_.unix_socket.c_str(), ct);
  const std::string where = options_.unix_socket.empty()
                                ? options_.host + ":" + std::to_string(options_.port)
                                : options_.unix_socket;
  if (ctx == nullptr) return Status::Unavailable("redis connect " + where + ": out of memory");
  auto conn = std::make_unique<Conn>(ctx);
  if (ctx->err) return Status::Unavailable("redis connect " + where + ": " + ctx->errstr);
  redisSetTimeout(ctx, ToTimeval(options_.op_timeout));
  if (options_.unix_socket.empty()) (void)redisEnableKeepAlive(ctx);
  if (!options_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!options_.username.empty()) auth.push_back(options_.username);
    auth.push_back(options_.password);
    auto r = conn->Command("auth", std::move(auth));
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      return Status::Unavailable("redis auth at " + where + ": " +
                                 std::string(ReplyText(r->get())));
    }
  }
  if (options_.db != 0) {
    auto r = conn->Command("select", {"SELECT", std::to_string(options_.db)});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      return Status::InvalidArgument("redis select " + std::to_string(options_.db) + ": " +
                                     std::string(ReplyText(r->get())));
    }
  }
  if (options_.check_policy) {
    auto r = conn->Command("config get", {"CONFIG", "GET", "maxmemory-policy"});
    if (!r.ok()) return r.status();
    const redisReply* rep = r->get();
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
      return Status::InvalidArgument(
          "redis at " + where +
          " does not tell its maxmemory-policy (CONFIG GET: " + std::string(ReplyText(rep)) +
          "); set a volatile-lru, volatile-ttl or noeviction policy and add "
          "check_policy=0 to the --cache URL");
    }
    std::string_view policy = ReplyText(rep->element[1]);
    if (std::find(kSafePolicies.begin(), kSafePolicies.end(), policy) == kSafePolicies.end()) {
      return Status::InvalidArgument(
          "redis at " + where + " has maxmemory-policy " + std::string(policy) +
          ", which may evict tombstones and namespace epochs and so serve stale rows; use "
          "volatile-lru, volatile-ttl or noeviction (docs/design.md §3.11)");
    }
  }
  if (Status s = conn->LoadScripts(); !s.ok()) return s;
  return conn;
}

Result<std::unique_ptr<RedisCache::Conn>> RedisCache::Acquire(bool* reused) {
  std::unique_lock lk(pool_mu_);
  const bool got = pool_cv_.wait_for(lk, options_.op_timeout,
                                     [&] { return !idle_.empty() || open_ < options_.pool_size; });
  if (!got) return Status::Unavailable("redis: no free connection in the pool");
  if (!idle_.empty()) {
    std::unique_ptr<Conn> c = std::move(idle_.back());
    idle_.pop_back();
    *reused = true;
    return c;
  }
  ++open_;
  lk.unlock();
  *reused = false;
  auto c = Connect();
  if (!c.ok()) {
    lk.lock();
    --open_;
    pool_cv_.notify_one();
  }
  return c;
}

void RedisCache::Release(std::unique_ptr<Conn> conn) {
  std::lock_guard lk(pool_mu_);
  if (conn && !conn->broken()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
  pool_cv_.notify_one();
}

void RedisCache::DropIdleConnectionsForTest() {
  std::lock_guard lk(pool_mu_);
  open_ -= idle_.size();
  idle_.clear();
  pool_cv_.notify_all();
}

Status RedisCache::WithConn(const std::function<Status(Conn&)>& fn) {
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto conn = Acquire(&reused);
    if (!conn.ok()) return conn.status();
    Status s = fn(**conn);
    const bool broken = (*conn)->broken();
    Release(std::move(*conn));
    // A pooled connection may have died while idle (a server restart, an idle timeout): one
    // more try on a new connection.
    if (broken && reused && attempt == 0) continue;
    return s;
  }
}

std::optional<uint64_t> RedisCache::EpochOf(std::string_view ns) {
  std::shared_lock lk(epochs_mu_);
  auto it = epochs_.find(std::string(ns));
  if (it == epochs_.end()) return std::nullopt;
  return it->second;
}

void RedisCache::SawEpoch(std::string_view ns, uint64_t epoch) {
  std::unique_lock lk(epochs_mu_);
  epochs_[std::string(ns)] = epoch;
}

Status RedisCache::WithEpoch(
    std::string_view ns,
    const std::function<Status(Conn&, uint64_t, std::optional<uint64_t>*)>& fn) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  return WithConn([&](Conn& conn) -> Status {
    std::optional<uint64_t> epoch = EpochOf(ns);
    if (!epoch) {
      // Never seen here: read it, so that a moved epoch means a bump after this look.
      auto r = conn.Command("get epoch", {"GET", EpochKey(ns)});
      if (!r.ok()) return r.status();
      if ((*r)->type == REDIS_REPLY_ERROR) return FromErrorReply("get epoch", ReplyText(r->get()));
      bool ok = (*r)->type == REDIS_REPLY_NIL;
      epoch = ok ? 0 : ParseU64(ReplyText(r->get()), &ok);
      if (!ok) return Status::Corruption("redis: bad epoch of " + std::string(ns));
      SawEpoch(ns, *epoch);
    }
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::optional<uint64_t> moved;
      Status s = fn(conn, *EpochOf(ns), &moved);
      if (!s.ok() || !moved) return s;
      SawEpoch(ns, *moved);
    }
    return Status::Unavailable("redis: the epoch of " + std::string(ns) + " keeps moving");
  });
}

int64_t RedisCache::NowMs() const { return ClockOr(options_.clock).WallMs(); }

Result<std::optional<CachedDoc>> RedisCache::Decode(const std::optional<std::string>& value) const {
  if (!value) return std::optional<CachedDoc>();
  const std::string& v = *value;
  if (v.size() < 21) return Status::Corruption("short redis cache record");
  bool ok = false;
  CachedDoc doc;
  doc.upserted_at = ParseU64(std::string_view(v).substr(1, 20), &ok);
  if (!ok) return Status::Corruption("bad stamp in a redis cache record");
  const char kind = v[0];
  if (kind == 'd') {
    doc.attributes_json = v.substr(21);
    return std::optional<CachedDoc>(std::move(doc));
  }
  if (kind != 't' && kind != 'r') return Status::Corruption("bad redis cache record kind");
  if (v.size() != 41) return Status::Corruption("bad redis tombstone record");
  const uint64_t expiry = ParseU64(std::string_view(v).substr(21, 20), &ok);
  if (!ok) return Status::Corruption("bad redis tombstone expiry");
  if (static_cast<uint64_t>(std::max<int64_t>(NowMs(), 0)) >= expiry) {
    return std::optional<CachedDoc>();
  }
  doc.tombstone = true;
  doc.repairable = kind == 'r';
  return std::optional<CachedDoc>(std::move(doc));
}

Result<std::vector<std::optional<std::string>>> RedisCache::GetRaw(std::string_view ns,
                                                                   std::span<const DocId> ids,
                                                                   bool vectors) {
  std::vector<std::optional<std::string>> out;
  if (ids.empty()) {
    if (Status s = CheckNs(ns); !s.ok()) return s;
    return out;
  }
  Status st =
      WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
        out.clear();
        std::vector<std::pair<Script, std::vector<std::string>>> calls;
        const size_t chunk = std::max<size_t>(options_.batch_chunk, 1);
        for (size_t at = 0; at < ids.size(); at += chunk) {
          std::vector<std::string> keys = {EpochKey(ns)};
          for (size_t i = at; i < std::min(ids.size(), at + chunk); ++i) {
            keys.push_back(DocKey(ns, epoch, ids[i], vectors));
          }
          calls.emplace_back(kGet, ScriptArgs(std::move(keys), {std::to_string(epoch)}));
        }
        std::vector<Reply> replies;
        if (Status s = conn.Eval("get", calls, &replies); !s.ok()) return s;
        for (const auto& r : replies) {
          auto a = ReadAnswer("get", r.get());
          if (!a.ok()) return a.status();
          if (a->moved_to) {
            *moved = a->moved_to;
            return Status::Ok();
          }
          for (size_t i = 1; i < a->values->elements; ++i) {
            const redisReply* v = a->values->element[i];
            if (v->type == REDIS_REPLY_STRING) {
              out.emplace_back(std::string(ReplyText(v)));
            } else {
              out.emplace_back();
            }
          }
        }
        if (out.size() != ids.size()) return Status::Internal("redis get: wrong number of values");
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return out;
}

Result<std::optional<CachedDoc>> RedisCache::Get(std::string_view ns, const DocId& id) {
  auto raw = GetRaw(ns, std::span(&id, 1), /*vectors=*/false);
  if (!raw.ok()) return raw.status();
  return Decode((*raw)[0]);
}

TryGetResult RedisCache::TryGet(std::string_view, const DocId&) { return std::nullopt; }

Result<std::vector<std::optional<CachedDoc>>> RedisCache::MultiGet(std::string_view ns,
                                                                   std::span<const DocId> ids) {
  auto raw = GetRaw(ns, ids, /*vectors=*/false);
  if (!raw.ok()) return raw.status();
  std::vector<std::optional<CachedDoc>> out;
  out.reserve(raw->size());
  for (const auto& v : *raw) {
    auto d = Decode(v);
    if (!d.ok()) return d.status();
    out.push_back(std::move(*d));
  }
  return out;
}

Result<bool> RedisCache::PutIfNewer(std::string_view ns, const DocId& id, const CachedDoc& doc) {
  std::pair<DocId, CachedDoc> one(id, doc);
  auto r = PutIfNewerBatch(ns, std::span(&one, 1));
  if (!r.ok()) return r.status();
  return bool((*r)[0]);
}

Status RedisCache::Tombstone(std::string_view ns, const DocId& id, uint64_t stamp,
                             bool repairable) {
  CachedDoc tomb;
  tomb.upserted_at = stamp;
  tomb.tombstone = true;
  tomb.repairable = repairable;
  std::pair<DocId, CachedDoc> one(id, std::move(tomb));
  return PutIfNewerBatch(ns, std::span(&one, 1)).status();
}

Result<std::vector<bool>> RedisCache::PutIfNewerBatch(
    std::string_view ns, std::span<const std::pair<DocId, CachedDoc>> docs) {
  std::vector<bool> stored(docs.size(), false);
  if (docs.empty()) {
    if (Status s = CheckNs(ns); !s.ok()) return s;
    return stored;
  }
  // Once the epoch moved under this call (a bump, here or through another replica), its rows
  // may have been read before the bump: they are dropped, as a put racing a bump in the RocksDB
  // backend lands in the old epoch. Its tombstones are written in the new epoch.
  bool drop_rows = false;
  Status st =
      WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
        std::fill(stored.begin(), stored.end(), false);
        std::vector<size_t> sent;  // indexes into docs, in order
        sent.reserve(docs.size());
        for (size_t i = 0; i < docs.size(); ++i) {
          if (!drop_rows || docs[i].second.tombstone) sent.push_back(i);
        }
        if (sent.empty()) return Status::Ok();
        const int64_t now = std::max<int64_t>(NowMs(), 0);
        const std::string now_s = Digits20(static_cast<uint64_t>(now));
        const std::string expiry_s = Digits20(
            static_cast<uint64_t>(now) + static_cast<uint64_t>(options_.tombstone_ttl.count()));
        const std::string ttl_s = std::to_string(options_.doc_ttl.count());
        const std::string epoch_s = std::to_string(epoch);
        std::vector<std::pair<Script, std::vector<std::string>>> calls;
        const size_t chunk = std::max<size_t>(options_.batch_chunk, 1);
        for (size_t at = 0; at < sent.size(); at += chunk) {
          const size_t end = std::min(sent.size(), at + chunk);
          std::vector<std::string> keys = {EpochKey(ns), TombIndexKey(ns)};
          std::vector<std::string> args = {epoch_s, now_s, expiry_s, ttl_s};
          keys.reserve(2 + 2 * (end - at));
          args.reserve(4 + 2 * (end - at));
          for (size_t j = at; j < end; ++j) {
            const auto& [id, doc] = docs[sent[j]];
            keys.push_back(DocKey(ns, epoch, id, /*vector=*/false));
            keys.push_back(DocKey(ns, epoch, id, /*vector=*/true));
            char kind = doc.tombstone ? (doc.repairable ? 'r' : 't') : (doc.repair ? 'R' : 'd');
            args.push_back(kind + Digits20(doc.upserted_at));
            args.push_back(doc.tombstone ? std::string() : doc.attributes_json);
          }
          calls.emplace_back(kPut, ScriptArgs(std::move(keys), std::move(args)));
        }
        std::vector<Reply> replies;
        if (Status s = conn.Eval("put", calls, &replies); !s.ok()) return s;
        size_t next = 0;
        for (const auto& r : replies) {
          auto a = ReadAnswer("put", r.get());
          if (!a.ok()) return a.status();
          if (a->moved_to) {
            // Chunks already run landed in the old epoch, which nothing reads.
            *moved = a->moved_to;
            drop_rows = true;
            return Status::Ok();
          }
          for (size_t i = 1; i < a->values->elements && next < sent.size(); ++i) {
            stored[sent[next++]] = a->values->element[i]->integer == 1;
          }
        }
        if (next != sent.size()) return Status::Internal("redis put: wrong number of flags");
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return stored;
}

Status RedisCache::Invalidate(std::string_view ns, std::span<const DocId> ids) {
  if (ids.empty()) return CheckNs(ns);
  return WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
    std::vector<std::pair<Script, std::vector<std::string>>> calls;
    const size_t chunk = std::max<size_t>(options_.batch_chunk, 1);
    for (size_t at = 0; at < ids.size(); at += chunk) {
      std::vector<std::string> keys = {EpochKey(ns)};
      for (size_t i = at; i < std::min(ids.size(), at + chunk); ++i) {
        keys.push_back(DocKey(ns, epoch, ids[i], false));
        keys.push_back(DocKey(ns, epoch, ids[i], true));
      }
      calls.emplace_back(kDelete, ScriptArgs(std::move(keys), {std::to_string(epoch)}));
    }
    std::vector<Reply> replies;
    if (Status s = conn.Eval("invalidate", calls, &replies); !s.ok()) return s;
    for (const auto& r : replies) {
      auto a = ReadAnswer("invalidate", r.get());
      if (!a.ok()) return a.status();
      if (a->moved_to) {
        *moved = a->moved_to;  // all chunks again, in the new epoch
        return Status::Ok();
      }
    }
    return Status::Ok();
  });
}

Status RedisCache::PutVector(std::string_view ns, const DocId& id, std::string_view f32le) {
  return WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
    std::vector<std::pair<Script, std::vector<std::string>>> calls;
    calls.emplace_back(kPutVector, ScriptArgs({EpochKey(ns), DocKey(ns, epoch, id, true)},
                                              {std::to_string(epoch), std::string(f32le),
                                               std::to_string(options_.doc_ttl.count())}));
    std::vector<Reply> replies;
    if (Status s = conn.Eval("put vector", calls, &replies); !s.ok()) return s;
    auto a = ReadAnswer("put vector", replies[0].get());
    if (!a.ok()) return a.status();
    *moved = a->moved_to;
    return Status::Ok();
  });
}

Result<std::optional<std::string>> RedisCache::GetVector(std::string_view ns, const DocId& id) {
  auto raw = GetRaw(ns, std::span(&id, 1), /*vectors=*/true);
  if (!raw.ok()) return raw.status();
  return std::move((*raw)[0]);
}

Status RedisCache::BumpEpoch(std::string_view ns) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  return WithConn([&](Conn& conn) -> Status {
    std::vector<std::pair<Script, std::vector<std::string>>> calls;
    calls.emplace_back(kBump, ScriptArgs({EpochKey(ns), RecordsKey(ns)}, {}));
    std::vector<Reply> replies;
    if (Status s = conn.Eval("bump epoch", calls, &replies); !s.ok()) return s;
    const redisReply* r = replies[0].get();
    if (r->type == REDIS_REPLY_ERROR) return FromErrorReply("bump epoch", ReplyText(r));
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
      return Status::Internal("redis bump epoch: unexpected answer");
    }
    SawEpoch(ns, static_cast<uint64_t>(r->integer));
    return Status::Ok();
  });
}

Result<std::optional<std::string>> RedisCache::GetNamespaceRecord(std::string_view ns,
                                                                  std::string_view key) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  std::optional<std::string> out;
  Status st = WithConn([&](Conn& conn) -> Status {
    auto r = conn.Command("get namespace record", {"HGET", RecordsKey(ns), std::string(key)});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) {
      return FromErrorReply("get namespace record", ReplyText(r->get()));
    }
    if ((*r)->type == REDIS_REPLY_STRING) out = std::string(ReplyText(r->get()));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Status RedisCache::PutNamespaceRecord(std::string_view ns, std::string_view key,
                                      std::string_view value) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  return WithConn([&](Conn& conn) -> Status {
    // The registry first: a listed namespace whose record is missing is skipped by the lister,
    // a record missing from the registry would never be listed.
    std::vector<std::vector<std::string>> cmds = {
        {"SADD", RegistryKey(key), std::string(ns)},
        {"HSET", RecordsKey(ns), std::string(key), std::string(value)}};
    std::vector<Reply> replies;
    if (Status s = conn.Pipeline("put namespace record", cmds, &replies); !s.ok()) return s;
    for (const auto& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        return FromErrorReply("put namespace record", ReplyText(r.get()));
      }
    }
    return Status::Ok();
  });
}

Result<std::vector<std::pair<std::string, std::string>>> RedisCache::ListNamespaceRecords(
    std::string_view key) {
  std::vector<std::pair<std::string, std::string>> out;
  Status st = WithConn([&](Conn& conn) -> Status {
    out.clear();
    auto members = conn.Command("list namespace records", {"SMEMBERS", RegistryKey(key)});
    if (!members.ok()) return members.status();
    const redisReply* m = members->get();
    if (m->type == REDIS_REPLY_ERROR) return FromErrorReply("list namespace records", ReplyText(m));
    if (m->type != REDIS_REPLY_ARRAY) return Status::Internal("redis smembers: not an array");
    std::vector<std::string> names;
    std::vector<std::vector<std::string>> cmds;
    for (size_t i = 0; i < m->elements; ++i) {
      names.emplace_back(ReplyText(m->element[i]));
      cmds.push_back({"HGET", RecordsKey(names.back()), std::string(key)});
    }
    if (cmds.empty()) return Status::Ok();
    std::vector<Reply> replies;
    if (Status s = conn.Pipeline("list namespace records", cmds, &replies); !s.ok()) return s;
    for (size_t i = 0; i < replies.size(); ++i) {
      const redisReply* r = replies[i].get();
      if (r->type == REDIS_REPLY_ERROR) {
        return FromErrorReply("list namespace records", ReplyText(r));
      }
      if (r->type == REDIS_REPLY_STRING) out.emplace_back(names[i], std::string(ReplyText(r)));
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Result<ScanPage> RedisCache::ScanNamespace(std::string_view ns, const std::optional<DocId>& after,
                                           size_t limit) {
  if (limit == 0) return Status::InvalidArgument("a scan page must examine at least one record");
  // SCAN walks the server's whole keyspace (MATCH filters what it walked), in hash order: the
  // page is the `limit` smallest document keys of the epoch after `after`, kept while walking.
  std::vector<DocId> ids;
  bool more = false;
  auto keep_smallest = [&] {
    std::sort(ids.begin(), ids.end(), ScanOrderLess);
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());  // SCAN may repeat a key
    if (ids.size() > limit) {
      ids.resize(limit);
      more = true;
    }
  };
  Status st = WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>*) -> Status {
    ids.clear();
    more = false;
    const std::string head = NsTag(ns) + "d" + std::to_string(epoch) + ":";
    const std::string pattern = GlobLiteral(head) + "*";
    std::string cursor = "0";
    do {
      auto r = conn.Command("scan", {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!r.ok()) return r.status();
      const redisReply* reply = r->get();
      if (reply->type == REDIS_REPLY_ERROR) return FromErrorReply("scan", ReplyText(reply));
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
          reply->element[1]->type != REDIS_REPLY_ARRAY) {
        return Status::Corruption("redis scan: unexpected reply");
      }
      cursor = std::string(ReplyText(reply->element[0]));
      const redisReply* keys = reply->element[1];
      for (size_t i = 0; i < keys->elements; ++i) {
        std::string_view k = ReplyText(keys->element[i]);
        if (k.size() <= head.size() || !k.starts_with(head)) continue;
        const int type = k[head.size()] - '0';
        if (type < 1 || type > 3) continue;
        DocId id;
        id.type = static_cast<IdType>(type);
        id.bytes.assign(k.substr(head.size() + 1));
        if (after && !ScanOrderLess(*after, id)) continue;
        ids.push_back(std::move(id));
      }
      if (ids.size() > 2 * limit + 1024) keep_smallest();  // bounded memory
    } while (cursor != "0");
    keep_smallest();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  auto raw = GetRaw(ns, ids, /*vectors=*/false);
  if (!raw.ok()) return raw.status();
  ScanPage page;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto doc = Decode((*raw)[i]);
    if (!doc.ok()) return doc.status();
    if (*doc && !(*doc)->tombstone) page.rows.emplace_back(ids[i], std::move(**doc));
  }
  if (more) page.resume_after = ids.back();
  return page;
}

Status RedisCache::Ping() {
  return WithConn([&](Conn& conn) -> Status {
    auto r = conn.Command("ping", {"PING"});
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) return FromErrorReply("ping", ReplyText(r->get()));
    return Status::Ok();
  });
}

CacheStats RedisCache::Stats() {
  CacheStats stats;
  stats.backend = "redis";
  (void)WithConn([&](Conn& conn) -> Status {
    std::vector<std::vector<std::string>> cmds = {{"DBSIZE"}, {"INFO", "memory"}};
    std::vector<Reply> replies;
    if (Status s = conn.Pipeline("stats", cmds, &replies); !s.ok()) return s;
    if (replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer > 0) {
      stats.approx_keys = static_cast<uint64_t>(replies[0]->integer);
    }
    std::string_view info = ReplyText(replies[1].get());
    constexpr std::string_view kUsed = "used_memory:";
    if (size_t at = info.find(kUsed); at != std::string_view::npos) {
      std::string_view rest = info.substr(at + kUsed.size());
      rest = rest.substr(0, rest.find_first_of("\r\n"));
      bool ok = false;
      uint64_t v = ParseU64(rest, &ok);
      if (ok) stats.approx_bytes = v;
    }
    return Status::Ok();
  });
  return stats;
}

}  // namespace layer::cache
