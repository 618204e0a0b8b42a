#include "cache/redis/redis_cache.h"

#include <arpa/inet.h>
// hiredis 0.14's sds.h has no C++ guard of its own, and hiredis.h includes it outside its own:
// included first, in C linkage.
extern "C" {
#include <hiredis/sds.h>
}
#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <thread>
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
// backend's PutBatch is the same rule). KEYS[2] is the namespace's tombstone index, KEYS[3] its
// whole-namespace write intent; record i has KEYS[1 + 3i] (document), KEYS[2 + 3i] (vector) and
// KEYS[3 + 3i] (its id's write intent). ARGV: epoch, now, tombstone expiry (both 20 digits),
// document TTL (ms), then per record its head (kind + 20-digit stamp; kind 'd' a row, 'R' a
// repair row, followed by its repair bound in 20 digits, 't' a tombstone, 'r' a repairable
// tombstone), its attributes and its generation check ('' none; 'r' + the generation a read
// began at: dropped when a write of the id is in flight or began since; 'w' + a write's own
// generation: dropped when a whole-namespace write began after it; write_intents.h).
// Answers {1, stored 0|1 per record}. Then deletes up to 64 expired tombstones of the namespace.
constexpr std::string_view kPutScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
local now, expiry, ttl = ARGV[2], ARGV[3], ARGV[4]
local wn, wg = nil, nil
local function written_since(gm, ikey)
  if gm == '' then return false end
  if not wn then
    local h = redis.call('HMGET', KEYS[3], 'n', 'g')
    wn, wg = tonumber(h[1] or '0'), tonumber(h[2] or '0')
  end
  local g = tonumber(string.sub(gm, 2))
  if string.sub(gm, 1, 1) == 'w' then return wg > g end
  if wn > 0 or wg > g then return true end
  local h = redis.call('HMGET', ikey, 'n', 'g')
  return tonumber(h[1] or '0') > 0 or tonumber(h[2] or '0') > g
end
local out = {1}
local n = (#KEYS - 3) / 3
for i = 1, n do
  local key, vkey, ikey = KEYS[1 + 3 * i], KEYS[2 + 3 * i], KEYS[3 + 3 * i]
  local head, attrs, gm = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
  local kind, stamp = string.sub(head, 1, 1), string.sub(head, 2, 21)
  local old = redis.call('GET', key)
  local ek, es = nil, nil
  if old and #old >= 21 then
    ek, es = string.sub(old, 1, 1), string.sub(old, 2, 21)
    if (ek == 't' or ek == 'r') and string.sub(old, 22, 41) <= now then ek = nil end
  end
  local wins = ek == nil or es <= stamp or
               (kind == 'R' and ek == 'r' and es <= string.sub(head, 22, 41))
  if wins and written_since(gm, ikey) then
    out[i + 1] = 0
  elseif wins then
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

// Write intents (write_intents.h, docs/design.md §4.9). An intent is a hash: n (writes in
// flight), g (generation of the last one begun), x (server ms by which they must have ended),
// s (their highest stamp, 20 digits) and c (the generation at which a lookup closed it after x
// had passed: ends of writes begun by then are ignored). No TTL while n > 0; the retention
// (ARGV) once n is 0, so that g outlives every read that may still put what it saw.

// Begins a write. KEYS: the write generation, the last stamp, the whole-namespace intent, then
// the intent of each id (none for a whole-namespace write). ARGV: '1' for a whole-namespace
// write, the proposed stamp (20 digits), the deadline (ms from now). Answers {generation, stamp,
// overlapped 0|1 per intent registered}.
constexpr std::string_view kBeginScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = redis.call('INCR', KEYS[1])
local last = redis.call('GET', KEYS[2]) or '00000000000000000000'
local stamp = ARGV[2]
if stamp <= last then stamp = string.format('%020d', tonumber(last) + 1) end
redis.call('SET', KEYS[2], stamp)
local dl = now + tonumber(ARGV[3])
local function reg(k)
  local h = redis.call('HMGET', k, 'n', 'x', 's')
  local n = tonumber(h[1] or '0')
  local x, s = tonumber(h[2] or '0'), h[3] or stamp
  if n <= 0 then n, x, s = 0, dl, stamp end
  if dl > x then x = dl end
  if stamp > s then s = stamp end
  redis.call('HSET', k, 'n', n + 1, 'g', gen, 'x', x, 's', s)
  redis.call('PERSIST', k)
  return n > 0
end
local out = {gen, stamp}
if ARGV[1] == '1' then
  out[3] = reg(KEYS[3]) and 1 or 0
else
  local whole = tonumber(redis.call('HGET', KEYS[3], 'n') or '0') > 0
  for i = 4, #KEYS do
    out[i - 1] = (reg(KEYS[i]) or whole) and 1 or 0
  end
end
return out
)lua";

// Ends a write begun with generation ARGV[1]: KEYS are the intents it registered. ARGV[2]: the
// retention (ms).
constexpr std::string_view kEndScript = R"lua(
local gen = tonumber(ARGV[1])
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'n', 'c')
  local n = tonumber(h[1] or '0')
  if n > 0 and gen > tonumber(h[2] or '0') then
    redis.call('HSET', KEYS[i], 'n', n - 1)
    if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
  end
end
return 1
)lua";

// Reads records with their write state. KEYS: the epoch, the write generation, the
// whole-namespace intent, the tombstone index, the namespace records, then per id its document
// key and its intent. ARGV: epoch, tombstone TTL (ms), retention (ms). Answers {1, then per id:
// the record (or nil), 1 if a write that may change it is in flight, the generation of the last
// write of it (or of the namespace) begun}. An intent past its deadline with writes counted is
// closed: an id's by a tombstone with its highest stamp, the whole namespace's by an epoch bump
// (answered {0, new epoch}, like a bump through another replica).
constexpr std::string_view kLookupScript = R"lua(
local e = redis.call('GET', KEYS[1]) or '0'
if e ~= ARGV[1] then return {0, e} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function state(k)
  local h = redis.call('HMGET', k, 'n', 'g', 'x', 's')
  local n, g = tonumber(h[1] or '0'), tonumber(h[2] or '0')
  if n <= 0 then return 0, g, h[4] end
  if tonumber(h[3] or '0') > now then return 1, g, h[4] end
  return 2, g, h[4]
end
local function close(k)
  local gen = redis.call('GET', KEYS[2]) or '0'
  redis.call('HSET', k, 'n', 0, 'c', gen)
  redis.call('PEXPIRE', k, ARGV[3])
end
local ws, wg = state(KEYS[3])
if ws == 2 then
  close(KEYS[3])
  local ne = redis.call('INCR', KEYS[1])
  redis.call('DEL', KEYS[5])
  return {0, tostring(ne)}
end
local out = {1}
local n = (#KEYS - 5) / 2
for i = 1, n do
  local key, ikey = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  local st, g, s = state(ikey)
  if st == 2 then
    local old = redis.call('GET', key)
    local nowd = string.format('%020d', now)
    local live = old and #old >= 21 and not ((string.sub(old, 1, 1) == 't' or
        string.sub(old, 1, 1) == 'r') and string.sub(old, 22, 41) <= nowd)
    if not live or string.sub(old, 2, 21) <= s then
      local expiry = string.format('%020d', now + tonumber(ARGV[2]))
      redis.call('SET', key, 't' .. s .. expiry)
      redis.call('ZADD', KEYS[4], expiry, key)
    end
    close(ikey)
    st = 0
  end
  out[#out + 1] = redis.call('GET', key) or false
  out[#out + 1] = (st == 1 or ws == 1) and 1 or 0
  out[#out + 1] = math.max(g, wg)
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

enum Script : size_t {
  kGet = 0,
  kPut,
  kDelete,
  kPutVector,
  kBump,
  kBegin,
  kEnd,
  kLookup,
  kScriptCount
};
constexpr std::array<std::string_view, kScriptCount> kScripts = {
    kGetScript,  kPutScript,   kDeleteScript, kPutVectorScript,
    kBumpScript, kBeginScript, kEndScript,    kLookupScript};

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
std::string GenerationKey(std::string_view ns) { return NsTag(ns) + "g"; }
std::string LastStampKey(std::string_view ns) { return NsTag(ns) + "s"; }
std::string NsIntentKey(std::string_view ns) { return NsTag(ns) + "W"; }
std::string IntentKey(std::string_view ns, const DocId& id) {
  std::string key = NsTag(ns);
  key.append("w:");
  key.push_back(static_cast<char>('0' + static_cast<int>(id.type)));
  key.append(id.bytes);
  return key;
}
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

// Where a cluster node sent a call: MOVED (the slot has another master), ASK (the key is being
// migrated: ask the target, once), TRYAGAIN (a multi-key call in the middle of a migration).
struct RedisCache::Redirect {
  enum Kind { kMoved, kAsk, kTryAgain } kind = kTryAgain;
  uint16_t slot = 0;
  std::string host;  // MOVED and ASK: the node to ask
  int port = 0;
  std::string text;  // the error reply, for messages
};

namespace {

// Reads "MOVED 3999 127.0.0.1:6381" / "ASK ..." / "TRYAGAIN ...". An empty host (a node that
// does not know its address) is the host of the node that answered, `from_host`.
std::optional<RedisCache::Redirect> ParseRedirect(std::string_view err,
                                                  const std::string& from_host) {
  using R = RedisCache::Redirect;
  R r;
  r.text = std::string(err);
  if (err.starts_with("TRYAGAIN") ||
      err.find("Script attempted to access a non local key") != std::string_view::npos) {
    // The latter: a key a script found in an index had already left in a migration.
    r.kind = R::kTryAgain;
    return r;
  }
  std::string_view rest;
  if (err.starts_with("MOVED ")) {
    r.kind = R::kMoved;
    rest = err.substr(6);
  } else if (err.starts_with("ASK ")) {
    r.kind = R::kAsk;
    rest = err.substr(4);
  } else {
    return std::nullopt;
  }
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  bool ok = false;
  const uint64_t slot = ParseU64(rest.substr(0, space), &ok);
  if (!ok || slot >= 16384) return std::nullopt;
  std::string_view addr = rest.substr(space + 1);
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const uint64_t port = ParseU64(addr.substr(colon + 1), &ok);
  if (!ok || port == 0 || port > 65535) return std::nullopt;
  r.slot = static_cast<uint16_t>(slot);
  r.host = std::string(addr.substr(0, colon));
  if (r.host.starts_with("[") && r.host.ends_with("]")) {
    r.host = r.host.substr(1, r.host.size() - 2);
  }
  if (r.host.empty() || r.host == "?") r.host = from_host;
  r.port = static_cast<int>(port);
  return r;
}

}  // namespace

// One pooled connection: the hiredis context and the shas of the scripts loaded on it.
class RedisCache::Conn {
 public:
  Conn(redisContext* ctx, std::string host) : ctx_(ctx), host_(std::move(host)) {}
  ~Conn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) redisFree(ctx_);
  }

  // Makes the connection TLS (a handshake on hiredis's socket, bounded by its timeouts): from
  // then on hiredis only formats commands and parses replies, and OpenSSL moves the bytes.
  Status StartTls(SSL_CTX* tls, const RedisCacheOptions& o, const std::string& where) {
    ssl_ = SSL_new(tls);
    if (!ssl_ || SSL_set_fd(ssl_, ctx_->fd) != 1) return TlsError("tls setup at " + where);
    const std::string& name = o.tls_server_name.empty() ? host_ : o.tls_server_name;
    in6_addr addr6;
    in_addr addr4;
    const bool ip = inet_pton(AF_INET, name.c_str(), &addr4) == 1 ||
                    inet_pton(AF_INET6, name.c_str(), &addr6) == 1;
    if (!ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
    if (o.tls_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
      if (set != 1) return TlsError("tls name " + name);
      SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
    }
    if (SSL_connect(ssl_) != 1) {
      const long verify = SSL_get_verify_result(ssl_);
      std::string why = verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "";
      return TlsError("tls handshake with " + where + (why.empty() ? "" : ": " + why));
    }
    return Status::Ok();
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

  // While set, every command is sent after ASKING (an ASK redirection's target).
  void set_asking(bool asking) { asking_ = asking; }

  // The cluster redirection the last Pipeline met (MOVED over ASK over TRYAGAIN), taken.
  std::optional<Redirect> TakeRedirect() { return std::exchange(redirect_, std::nullopt); }

  // Sends every command, then reads every reply (one round trip). A reply may be an error
  // reply; a non-OK Status means the connection broke, or a reply was a cluster redirection
  // (TakeRedirect tells which; the replies are all there).
  Status Pipeline(std::string_view what, const std::vector<std::vector<std::string>>& cmds,
                  std::vector<Reply>* replies) {
    replies->clear();
    redirect_.reset();
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    static constexpr std::string_view kAsking = "ASKING";
    for (const auto& cmd : cmds) {
      if (asking_) {
        const char* a = kAsking.data();
        const size_t n = kAsking.size();
        if (redisAppendCommandArgv(ctx_, 1, &a, &n) != REDIS_OK) return IoStatus(what);
      }
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
    if (ssl_ && !TlsFlush()) return IoStatus(what);
    for (size_t i = 0; i < cmds.size() * (asking_ ? 2 : 1); ++i) {
      void* raw = nullptr;
      if ((ssl_ ? TlsGetReply(&raw) : redisGetReply(ctx_, &raw)) != REDIS_OK || raw == nullptr) {
        return IoStatus(what);
      }
      Reply reply(static_cast<redisReply*>(raw));
      if (asking_ && i % 2 == 0) continue;  // ASKING's +OK
      replies->push_back(std::move(reply));
    }
    for (const auto& r : *replies) {
      if (r->type != REDIS_REPLY_ERROR) continue;
      auto redirect = ParseRedirect(ReplyText(r.get()), host_);
      if (redirect && (!redirect_ || redirect->kind < redirect_->kind)) redirect_ = redirect;
    }
    if (redirect_) {
      return Status::Unavailable("redis " + std::string(what) + ": " + redirect_->text);
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

  // Runs scripts (EVALSHA, pipelined), reloading them once on NOSCRIPT (this node lost them: a
  // restart, a flush, a failover to a replica that never loaded them).
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

  // Runs one script (Eval) and returns its reply; an error reply is returned as its Status.
  Result<Reply> EvalOne(std::string_view what, Script script, std::vector<std::string> args) {
    std::vector<std::pair<Script, std::vector<std::string>>> calls;
    calls.emplace_back(script, std::move(args));
    std::vector<Reply> replies;
    if (Status s = Eval(what, calls, &replies); !s.ok()) return s;
    if (replies[0]->type == REDIS_REPLY_ERROR) {
      return FromErrorReply(what, ReplyText(replies[0].get()));
    }
    return std::move(replies[0]);
  }

 private:
  // The context's error state, as hiredis sets it, so that broken() and IoStatus() tell.
  void SetError(int err, const std::string& what) {
    ctx_->err = err;
    std::snprintf(ctx_->errstr, sizeof(ctx_->errstr), "%s", what.c_str());
  }
  Status TlsError(const std::string& what) {
    std::string msg = what;
    if (unsigned long e = ERR_get_error(); e != 0) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      msg += std::string(": ") + buf;
    }
    ERR_clear_error();
    SetError(REDIS_ERR_IO, msg);
    return Status::Unavailable("redis " + msg);
  }
  // Writes what hiredis formatted (its output buffer) through TLS.
  bool TlsFlush() {
    const size_t len = sdslen(ctx_->obuf);
    for (size_t off = 0; off < len;) {
      const int n = SSL_write(ssl_, ctx_->obuf + off, static_cast<int>(len - off));
      if (n <= 0) {
        ERR_clear_error();
        SetError(REDIS_ERR_IO, "tls write failed or timed out");
        return false;
      }
      off += static_cast<size_t>(n);
    }
    sdsfree(ctx_->obuf);
    ctx_->obuf = sdsempty();
    return true;
  }
  // The next reply, reading through TLS into hiredis's parser as needed.
  int TlsGetReply(void** reply) {
    char buf[16 * 1024];
    while (true) {
      if (redisReaderGetReply(ctx_->reader, reply) != REDIS_OK) {
        SetError(REDIS_ERR_PROTOCOL, "protocol error");
        return REDIS_ERR;
      }
      if (*reply) return REDIS_OK;
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) {
        ERR_clear_error();
        SetError(n == 0 ? REDIS_ERR_EOF : REDIS_ERR_IO, "tls read failed, timed out or closed");
        return REDIS_ERR;
      }
      if (redisReaderFeed(ctx_->reader, buf, static_cast<size_t>(n)) != REDIS_OK) {
        SetError(REDIS_ERR_PROTOCOL, "protocol error");
        return REDIS_ERR;
      }
    }
  }

  redisContext* ctx_;
  SSL* ssl_ = nullptr;      // TLS connections only
  const std::string host_;  // of the node, for a redirection that names no host
  bool asking_ = false;
  std::optional<Redirect> redirect_;
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

namespace {

// HOST[:PORT] or [V6]:PORT; *port keeps its value when none is given.
Status ParseHostPort(std::string_view hostport, std::string* host_out, int* port) {
  std::string_view host = hostport;
  std::string_view port_text;
  bool has_port = false;
  if (hostport.starts_with("[")) {  // [v6]:port
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return Status::InvalidArgument("unclosed [");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(":")) return Status::InvalidArgument("bad port");
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port_text = hostport.substr(colon + 1);
    has_port = true;
  }
  if (has_port) {
    bool ok = false;
    uint64_t p = ParseU64(port_text, &ok);
    if (!ok || p == 0 || p > 65535) return Status::InvalidArgument("bad port");
    *port = static_cast<int>(p);
  }
  if (host.empty()) return Status::InvalidArgument("no host");
  *host_out = std::string(host);
  return Status::Ok();
}

}  // namespace

Result<RedisCacheOptions> ParseRedisCacheUrl(std::string_view url) {
  RedisCacheOptions o;
  auto bad = [&](std::string why) {
    return Status::InvalidArgument("--cache " + RedactRedisUrl(url) + ": " + why);
  };
  std::string_view rest;
  bool unix_socket = false, cluster = false;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("redis+unix://")) {
    rest = url.substr(13);
    unix_socket = true;
  } else if (url.starts_with("rediss://")) {
    rest = url.substr(9);
    o.tls = true;
  } else if (url.starts_with("redis-cluster://")) {
    rest = url.substr(16);
    cluster = true;
  } else {
    return bad("not a redis://, rediss://, redis+unix:// or redis-cluster:// URL");
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
    if (cluster) {
      if (o.db != 0) return bad("a Redis Cluster has only database 0");
      for (size_t at = 0; at <= hostport.size();) {
        size_t comma = hostport.find(',', at);
        if (comma == std::string_view::npos) comma = hostport.size();
        std::pair<std::string, int> seed;
        seed.second = 6379;
        if (Status s = ParseHostPort(hostport.substr(at, comma - at), &seed.first, &seed.second);
            !s.ok()) {
          return bad(s.message());
        }
        o.cluster_seeds.push_back(std::move(seed));
        at = comma + 1;
      }
      o.host = o.cluster_seeds[0].first;
      o.port = o.cluster_seeds[0].second;
    } else if (Status s = ParseHostPort(hostport, &o.host, &o.port); !s.ok()) {
      return bad(s.message());
    }
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
  if (auto v = QueryParam(query, "tls")) {
    if (*v != "0" && *v != "1") return bad("tls must be 0 or 1");
    if (*v == "0" && o.tls) return bad("rediss:// is TLS: tls=0 contradicts it");
    o.tls = *v == "1";
  }
  if (auto v = QueryParam(query, "verify")) {
    if (*v != "0" && *v != "1") return bad("verify must be 0 or 1");
    o.tls_verify = *v == "1";
  }
  for (auto [name, out] : {std::pair<std::string_view, std::string*>{"ca", &o.tls_ca_file},
                           {"cert", &o.tls_cert_file},
                           {"key", &o.tls_key_file},
                           {"sni", &o.tls_server_name}}) {
    if (auto v = QueryParam(query, name)) {
      if (v->empty()) return bad(std::string(name) + " must not be empty");
      *out = std::move(*v);
    }
  }
  const bool tls_options = !o.tls_ca_file.empty() || !o.tls_cert_file.empty() ||
                           !o.tls_key_file.empty() || !o.tls_server_name.empty() ||
                           QueryParam(query, "verify");
  if (tls_options && !o.tls) return bad("TLS options need rediss:// (or tls=1)");
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return bad("a client certificate needs both cert= and key=");
  }
  if (o.tls && unix_socket) return bad("TLS needs a TCP connection, not a unix socket");
  if (cluster && o.db != 0) return bad("a Redis Cluster has only database 0");
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

namespace {

// The TLS client context of a cache's connections: TLS 1.2 or later, the server verified against
// the CA file (or the system's CAs), a client certificate when one is given.
Result<std::shared_ptr<SSL_CTX>> MakeTlsContext(const RedisCacheOptions& o) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  auto fail = [](const std::string& what) {
    std::string msg = "redis tls: " + what;
    if (unsigned long e = ERR_get_error(); e != 0) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      msg += std::string(": ") + buf;
    }
    ERR_clear_error();
    return Status::InvalidArgument(msg);
  };
  if (!ctx) return fail("no TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (o.tls_verify) {
    const int loaded = o.tls_ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx.get())
                           : SSL_CTX_load_verify_locations(ctx.get(), o.tls_ca_file.c_str(), nullptr);
    if (loaded != 1) return fail("cannot load the CA file '" + o.tls_ca_file + "'");
  }
  if (!o.tls_cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), o.tls_cert_file.c_str()) != 1) {
      return fail("cannot load the client certificate '" + o.tls_cert_file + "'");
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), o.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("cannot load the client key '" + o.tls_key_file + "'");
    }
  }
  // A write to a connection the server closed is an error, not a SIGPIPE (Open ignores it).
  return ctx;
}

}  // namespace

// One server and its pool of connections.
class RedisCache::Node {
 public:
  Node(const RedisCacheOptions& options, SSL_CTX* tls, std::string host, int port,
       std::string unix_socket)
      : options_(options),
        tls_(tls),
        host_(std::move(host)),
        port_(port),
        unix_socket_(std::move(unix_socket)),
        name_(unix_socket_.empty() ? host_ + ":" + std::to_string(port_) : unix_socket_) {}

  const std::string& name() const { return name_; }
  const std::string& host() const { return host_; }

  // Runs `fn` on a pooled connection (asking: every command after ASKING); repeats it once on a
  // new connection when it failed on a broken connection that came from the pool.
  // `*redirect`: the cluster redirection the call met; `*conn_failed`: no connection could be
  // opened, or it broke.
  Status Run(bool asking, const std::function<Status(Conn&)>& fn, std::optional<Redirect>* redirect,
             bool* conn_failed) {
    for (int attempt = 0;; ++attempt) {
      bool reused = false, connect_failed = false;
      auto conn = Acquire(&reused, &connect_failed);
      if (!conn.ok()) {
        if (conn_failed) *conn_failed = connect_failed;
        return conn.status();
      }
      (*conn)->set_asking(asking);
      Status s = fn(**conn);
      (*conn)->set_asking(false);
      std::optional<Redirect> r = (*conn)->TakeRedirect();
      const bool broken = (*conn)->broken();
      Release(std::move(*conn));
      // A pooled connection may have died while idle (a server restart, an idle timeout): one
      // more try on a new connection.
      if (broken && reused && attempt == 0) continue;
      if (redirect) *redirect = std::move(r);
      if (conn_failed) *conn_failed = broken;
      return s;
    }
  }

  // Opens one connection (checking the policy and loading the scripts) into the pool.
  Status Warm() {
    auto nothing = [](Conn&) { return Status::Ok(); };
    return Run(false, nothing, nullptr, nullptr);
  }

  void DropIdle() {
    std::lock_guard lk(mu_);
    open_ -= idle_.size();
    idle_.clear();
    cv_.notify_all();
  }

 private:
  Result<std::unique_ptr<Conn>> Acquire(bool* reused, bool* connect_failed) {
    std::unique_lock lk(mu_);
    const bool got = cv_.wait_for(lk, options_.op_timeout,
                                  [&] { return !idle_.empty() || open_ < options_.pool_size; });
    if (!got) return Status::Unavailable("redis " + name_ + ": no free connection in the pool");
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
      *connect_failed = c.status().code() == StatusCode::kUnavailable;
      lk.lock();
      --open_;
      cv_.notify_one();
    }
    return c;
  }

  void Release(std::unique_ptr<Conn> conn) {
    std::lock_guard lk(mu_);
    if (conn && !conn->broken()) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    cv_.notify_one();
  }

  Result<std::unique_ptr<Conn>> Connect() {
    const timeval ct = ToTimeval(options_.connect_timeout);
    redisContext* ctx = unix_socket_.empty()
                            ? redisConnectWithTimeout(host_.c_str(), port_, ct)
                            : redisConnectUnixWithTimeout(unix_socket_.c_str(), ct);
    const std::string& where = name_;
    if (ctx == nullptr) return Status::Unavailable("redis connect " + where + ": out of memory");
    auto conn = std::make_unique<Conn>(ctx, host_);
    if (ctx->err) return Status::Unavailable("redis connect " + where + ": " + ctx->errstr);
    redisSetTimeout(ctx, ToTimeval(options_.op_timeout));
    if (unix_socket_.empty()) (void)redisEnableKeepAlive(ctx);
    if (tls_) {
      if (Status s = conn->StartTls(tls_, options_, where); !s.ok()) return s;
    }
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

  const RedisCacheOptions& options_;
  SSL_CTX* const tls_;  // null: plain connections
  const std::string host_;
  const int port_;
  const std::string unix_socket_;
  const std::string name_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;  // guarded by mu_
  size_t open_ = 0;                          // idle + in use; guarded by mu_
};

namespace {

constexpr size_t kSlots = 16384;
// Redirections one call follows before giving up (a map that keeps changing under it).
constexpr int kMaxRedirects = 16;

}  // namespace

uint16_t RedisKeySlot(std::string_view key) {
  if (size_t open = key.find('{'); open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  uint16_t crc = 0;  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0
  for (unsigned char c : key) {
    crc ^= static_cast<uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return static_cast<uint16_t>(crc & (kSlots - 1));
}

uint16_t RedisCache::NamespaceSlot(std::string_view ns) { return RedisKeySlot(EpochKey(ns)); }

RedisCache::RedisCache(RedisCacheOptions options)
    : options_(std::move(options)), cluster_(!options_.cluster_seeds.empty()) {
  if (options_.tls) {
    auto made = MakeTlsContext(options_);
    if (made.ok()) {
      tls_ = std::move(*made);
    } else {
      tls_status_ = made.status();
    }
  }
  if (cluster_) {
    slots_.resize(kSlots);
    for (const auto& [host, port] : options_.cluster_seeds) (void)NodeAt(host, port);
  } else {
    single_ = std::make_shared<Node>(options_, tls_.get(), options_.host, options_.port,
                                     options_.unix_socket);
  }
}

RedisCache::~RedisCache() = default;

Result<std::unique_ptr<RedisCache>> RedisCache::Open(RedisCacheOptions options) {
  if (options.pool_size == 0) return Status::InvalidArgument("redis pool size must be positive");
  if (options.batch_chunk == 0) return Status::InvalidArgument("batch_chunk must be positive");
  if (!options.cluster_seeds.empty() && (options.db != 0 || !options.unix_socket.empty())) {
    return Status::InvalidArgument("a Redis Cluster has only database 0 and no unix socket");
  }
  // hiredis 0.14 writes with write(2): a server that closed the connection would raise SIGPIPE,
  // whose default action ends the process. Its default is replaced by "ignore" (EPIPE then
  // reads as a broken connection); a handler someone installed is left alone.
  struct sigaction old_action {};
  if (sigaction(SIGPIPE, nullptr, &old_action) == 0 && old_action.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  std::unique_ptr<RedisCache> cache(new RedisCache(std::move(options)));
  if (!cache->tls_status_.ok()) return cache->tls_status_;
  if (cache->cluster_) {
    if (Status s = cache->RefreshSlots(cache->map_gen_.load(), nullptr, nullptr); !s.ok()) return s;
  }
  // One connection to every master: each checks that server's eviction policy.
  for (const auto& node : cache->Masters()) {
    if (Status s = node->Warm(); !s.ok()) return s;
  }
  return cache;
}

std::shared_ptr<RedisCache::Node> RedisCache::NodeAt(const std::string& host, int port) {
  std::string key = host + ":" + std::to_string(port);
  std::lock_guard lk(nodes_mu_);
  auto& node = nodes_[key];
  if (!node) node = std::make_shared<Node>(options_, tls_.get(), host, port, std::string());
  return node;
}

void RedisCache::SetSlotOwner(uint16_t slot, std::shared_ptr<Node> node) {
  std::unique_lock lk(map_mu_);
  slots_[slot] = std::move(node);
}

std::vector<std::shared_ptr<RedisCache::Node>> RedisCache::Masters() {
  if (!cluster_) return {single_};
  std::vector<std::shared_ptr<Node>> out;
  std::shared_lock lk(map_mu_);
  for (const auto& n : slots_) {
    if (n && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

Status RedisCache::RefreshSlots(uint64_t seen_gen, const std::shared_ptr<Node>& first,
                                const std::shared_ptr<Node>& last_resort) {
  std::lock_guard refresh(refresh_mu_);
  if (map_gen_.load() != seen_gen) return Status::Ok();  // read since the caller looked
  std::vector<std::shared_ptr<Node>> ask;
  auto add = [&](std::shared_ptr<Node> n) {
    if (n && n != last_resort && std::find(ask.begin(), ask.end(), n) == ask.end()) {
      ask.push_back(std::move(n));
    }
  };
  add(first);
  for (auto& n : Masters()) add(std::move(n));
  for (const auto& [host, port] : options_.cluster_seeds) add(NodeAt(host, port));
  if (last_resort) ask.push_back(last_resort);
  Status last = Status::Unavailable("redis cluster: no node to read the slot map from");
  for (const auto& node : ask) {
    std::vector<std::shared_ptr<Node>> slots(kSlots);
    Status s = node->Run(
        false,
        [&](Conn& conn) -> Status {
          auto r = conn.Command("cluster slots", {"CLUSTER", "SLOTS"});
          if (!r.ok()) return r.status();
          const redisReply* rep = r->get();
          if (rep->type == REDIS_REPLY_ERROR) {
            std::string_view err = ReplyText(rep);
            if (err.find("cluster support disabled") != std::string_view::npos) {
              return Status::InvalidArgument("redis at " + node->name() +
                                             " is not in cluster mode: use a redis:// URL");
            }
            return FromErrorReply("cluster slots", err);
          }
          if (rep->type != REDIS_REPLY_ARRAY) {
            return Status::Internal("cluster slots: not an array");
          }
          // [[start, end, [host, port, id, ...], replicas...], ...]
          for (size_t i = 0; i < rep->elements; ++i) {
            const redisReply* range = rep->element[i];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
                range->element[0]->type != REDIS_REPLY_INTEGER ||
                range->element[1]->type != REDIS_REPLY_INTEGER ||
                range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2 ||
                range->element[2]->element[1]->type != REDIS_REPLY_INTEGER) {
              return Status::Internal("cluster slots: unexpected entry");
            }
            const long long from = range->element[0]->integer, to = range->element[1]->integer;
            std::string host(ReplyText(range->element[2]->element[0]));
            if (host.empty() || host == "?") host = node->host();
            const long long port = range->element[2]->element[1]->integer;
            if (from < 0 || to >= static_cast<long long>(kSlots) || from > to || port <= 0 ||
                port > 65535) {
              return Status::Internal("cluster slots: bad range");
            }
            auto owner = NodeAt(host, static_cast<int>(port));
            for (long long slot = from; slot <= to; ++slot) slots[slot] = owner;
          }
          return Status::Ok();
        },
        nullptr, nullptr);
    if (s.ok()) {
      {
        std::unique_lock lk(map_mu_);
        slots_ = std::move(slots);
      }
      map_gen_.fetch_add(1);
      std::lock_guard lk(counters_mu_);
      ++counters_.refreshes;
      return Status::Ok();
    }
    if (s.code() == StatusCode::kInvalidArgument) return s;  // a policy, or not a cluster
    last = s;
  }
  return last;
}

Result<std::shared_ptr<RedisCache::Node>> RedisCache::NodeFor(uint16_t slot) {
  if (!cluster_) return single_;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint64_t gen = map_gen_.load();
    {
      std::shared_lock lk(map_mu_);
      if (slots_[slot]) return slots_[slot];
    }
    if (attempt == 0) {
      if (Status s = RefreshSlots(gen, nullptr, nullptr); !s.ok()) return s;
    }
  }
  return Status::Unavailable("redis cluster: no master serves slot " + std::to_string(slot));
}

Status RedisCache::OnSlot(uint16_t slot, const std::function<Status(Conn&)>& fn) {
  const auto deadline = std::chrono::steady_clock::now() + options_.op_timeout;
  uint64_t gen = map_gen_.load();
  auto node = NodeFor(slot);
  if (!node.ok()) return node.status();
  std::shared_ptr<Node> target = std::move(*node);
  bool asking = false, moved_after_failure = false;
  int tryagain = 0;
  for (int hop = 0;; ++hop) {
    std::optional<Redirect> redirect;
    bool conn_failed = false;
    Status s = target->Run(asking, fn, &redirect, &conn_failed);
    asking = false;
    if (!cluster_) return s;  // a redirection from a lone server is an error like any other
    if (!redirect) {
      if (!conn_failed || moved_after_failure) return s;
      // The master may have failed over to a replica: read the map, and try once more if the
      // slot has another master now.
      if (!RefreshSlots(gen, nullptr, target).ok()) return s;
      gen = map_gen_.load();
      auto next = NodeFor(slot);
      if (!next.ok() || *next == target) return s;
      target = std::move(*next);
      moved_after_failure = true;
      continue;
    }
    if (hop >= kMaxRedirects) {
      return Status::Unavailable("redis cluster: too many redirections (last: " + redirect->text +
                                 ")");
    }
    switch (redirect->kind) {
      case Redirect::kMoved: {
        auto to = NodeAt(redirect->host, redirect->port);
        SetSlotOwner(redirect->slot, to);
        (void)RefreshSlots(gen, to, nullptr);
        SetSlotOwner(redirect->slot, to);  // what the slot's master said wins over a late map
        gen = map_gen_.load();
        target = std::move(to);
        std::lock_guard lk(counters_mu_);
        ++counters_.moved;
        break;
      }
      case Redirect::kAsk: {
        target = NodeAt(redirect->host, redirect->port);
        asking = true;
        std::lock_guard lk(counters_mu_);
        ++counters_.ask;
        break;
      }
      case Redirect::kTryAgain: {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return s;
        {
          std::lock_guard lk(counters_mu_);
          ++counters_.tryagain;
        }
        // A migration in progress: wait a little (1, 2, 4 ... 64 ms) and start from the map.
        auto pause = std::chrono::milliseconds(1 << std::min(tryagain++, 6));
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
        --hop;  // waits are bounded by the deadline, not by the redirection count
        auto again = NodeFor(slot);
        if (!again.ok()) return again.status();
        target = std::move(*again);
        break;
      }
    }
  }
}

RedisClusterCounters RedisCache::ClusterCounters() const {
  std::lock_guard lk(counters_mu_);
  return counters_;
}

void RedisCache::DropIdleConnectionsForTest() {
  if (single_) single_->DropIdle();
  std::lock_guard lk(nodes_mu_);
  for (auto& [name, node] : nodes_) node->DropIdle();
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
  return OnSlot(NamespaceSlot(ns), [&](Conn& conn) -> Status {
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

Status RedisCache::EvalIdChunks(
    std::string_view what, std::string_view ns, std::span<const DocId> ids, size_t script,
    const std::function<void(uint64_t epoch, std::vector<std::string>* keys)>& head,
    const std::function<void(uint64_t epoch, const DocId& id, std::vector<std::string>* keys)>& keys,
    const std::vector<std::string>& args, const std::function<void()>& start,
    const std::function<Status(const redisReply& values)>& read) {
  if (ids.empty()) return CheckNs(ns);
  return WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
    if (start) start();
    std::vector<std::pair<Script, std::vector<std::string>>> calls;
    std::vector<std::string> argv = {std::to_string(epoch)};
    argv.insert(argv.end(), args.begin(), args.end());
    const size_t chunk = std::max<size_t>(options_.batch_chunk, 1);
    for (size_t at = 0; at < ids.size(); at += chunk) {
      std::vector<std::string> k;
      head(epoch, &k);
      for (size_t i = at; i < std::min(ids.size(), at + chunk); ++i) keys(epoch, ids[i], &k);
      calls.emplace_back(static_cast<Script>(script), ScriptArgs(std::move(k), argv));
    }
    std::vector<Reply> replies;
    if (Status s = conn.Eval(what, calls, &replies); !s.ok()) return s;
    for (const auto& r : replies) {
      auto a = ReadAnswer(what, r.get());
      if (!a.ok()) return a.status();
      if (a->moved_to) {
        *moved = a->moved_to;  // all chunks again, in the new epoch
        return Status::Ok();
      }
      if (read) {
        if (Status s = read(*a->values); !s.ok()) return s;
      }
    }
    return Status::Ok();
  });
}

Result<std::vector<std::optional<std::string>>> RedisCache::GetRaw(std::string_view ns,
                                                                   std::span<const DocId> ids,
                                                                   bool vectors) {
  std::vector<std::optional<std::string>> out;
  Status st = EvalIdChunks(
      "get", ns, ids, kGet,
      [&](uint64_t, std::vector<std::string>* k) { k->push_back(EpochKey(ns)); },
      [&](uint64_t epoch, const DocId& id, std::vector<std::string>* k) {
        k->push_back(DocKey(ns, epoch, id, vectors));
      },
      {}, [&] { out.clear(); },
      [&](const redisReply& values) -> Status {
        for (size_t i = 1; i < values.elements; ++i) {
          const redisReply* v = values.element[i];
          if (v->type == REDIS_REPLY_STRING) {
            out.emplace_back(std::string(ReplyText(v)));
          } else {
            out.emplace_back();
          }
        }
        return Status::Ok();
      });
  if (!st.ok()) return st;
  if (out.size() != ids.size()) return Status::Internal("redis get: wrong number of values");
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
          std::vector<std::string> keys = {EpochKey(ns), TombIndexKey(ns), NsIntentKey(ns)};
          std::vector<std::string> args = {epoch_s, now_s, expiry_s, ttl_s};
          keys.reserve(3 + 3 * (end - at));
          args.reserve(4 + 3 * (end - at));
          for (size_t j = at; j < end; ++j) {
            const auto& [id, doc] = docs[sent[j]];
            keys.push_back(DocKey(ns, epoch, id, /*vector=*/false));
            keys.push_back(DocKey(ns, epoch, id, /*vector=*/true));
            keys.push_back(IntentKey(ns, id));
            char kind = doc.tombstone ? (doc.repairable ? 'r' : 't') : (doc.repair ? 'R' : 'd');
            args.push_back(kind + Digits20(doc.upserted_at) +
                           (kind == 'R' ? Digits20(doc.repair_bound) : std::string()));
            args.push_back(doc.tombstone ? std::string() : doc.attributes_json);
            // Rows only: a tombstone is never held back by a write (write_intents.h).
            if (doc.tombstone) {
              args.emplace_back();
            } else if (doc.read_generation) {
              args.push_back("r" + std::to_string(*doc.read_generation));
            } else if (doc.write_generation) {
              args.push_back("w" + std::to_string(*doc.write_generation));
            } else {
              args.emplace_back();
            }
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
  return EvalIdChunks(
      "invalidate", ns, ids, kDelete,
      [&](uint64_t, std::vector<std::string>* k) { k->push_back(EpochKey(ns)); },
      [&](uint64_t epoch, const DocId& id, std::vector<std::string>* k) {
        k->push_back(DocKey(ns, epoch, id, false));
        k->push_back(DocKey(ns, epoch, id, true));
      },
      {}, nullptr, nullptr);
}

Status RedisCache::PutVector(std::string_view ns, const DocId& id, std::string_view f32le) {
  return WithEpoch(ns, [&](Conn& conn, uint64_t epoch, std::optional<uint64_t>* moved) -> Status {
    auto reply = conn.EvalOne("put vector", kPutVector,
                              ScriptArgs({EpochKey(ns), DocKey(ns, epoch, id, true)},
                                         {std::to_string(epoch), std::string(f32le),
                                          std::to_string(options_.doc_ttl.count())}));
    if (!reply.ok()) return reply.status();
    auto a = ReadAnswer("put vector", reply->get());
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
  return OnSlot(NamespaceSlot(ns), [&](Conn& conn) -> Status {
    auto reply = conn.EvalOne("bump epoch", kBump, ScriptArgs({EpochKey(ns), RecordsKey(ns)}, {}));
    if (!reply.ok()) return reply.status();
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
      return Status::Internal("redis bump epoch: unexpected answer");
    }
    SawEpoch(ns, static_cast<uint64_t>(r->integer));
    return Status::Ok();
  });
}

Result<IntentStart> RedisCache::BeginIntent(std::string_view ns, std::span<const DocId> ids,
                                            bool whole_namespace, uint64_t proposed_stamp,
                                            std::chrono::milliseconds deadline) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  std::vector<std::string> keys = {GenerationKey(ns), LastStampKey(ns), NsIntentKey(ns)};
  if (!whole_namespace) {
    keys.reserve(3 + ids.size());
    for (const auto& id : ids) keys.push_back(IntentKey(ns, id));
  }
  std::vector<std::string> args = {whole_namespace ? "1" : "0", Digits20(proposed_stamp),
                                    std::to_string(std::max<int64_t>(deadline.count(), 1))};
  const size_t registered = whole_namespace ? 1 : ids.size();
  IntentStart out;
  Status st = OnSlot(NamespaceSlot(ns), [&](Conn& conn) -> Status {
    auto reply = conn.EvalOne("begin intent", kBegin, ScriptArgs(keys, args));
    if (!reply.ok()) return reply.status();
    const redisReply* r = reply->get();
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 + registered &&
              r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer > 0 &&
              r->element[1]->type == REDIS_REPLY_STRING;
    if (ok) {
      out.generation = static_cast<uint64_t>(r->element[0]->integer);
      out.stamp = ParseU64(ReplyText(r->element[1]), &ok);
    }
    if (!ok) return Status::Internal("redis begin intent: unexpected answer");
    out.overlapped.assign(registered, false);
    for (size_t i = 0; i < registered; ++i) {
      out.overlapped[i] = r->element[2 + i]->type == REDIS_REPLY_INTEGER &&
                          r->element[2 + i]->integer == 1;
    }
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Status RedisCache::EndIntent(std::string_view ns, std::span<const DocId> ids,
                             bool whole_namespace, uint64_t generation) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  std::vector<std::string> keys;
  if (whole_namespace) {
    keys.push_back(NsIntentKey(ns));
  } else {
    keys.reserve(ids.size());
    for (const auto& id : ids) keys.push_back(IntentKey(ns, id));
  }
  if (keys.empty()) return Status::Ok();
  std::vector<std::string> args = {std::to_string(generation),
                                   std::to_string(options_.tombstone_ttl.count())};
  return OnSlot(NamespaceSlot(ns), [&](Conn& conn) -> Status {
    return conn.EvalOne("end intent", kEnd, ScriptArgs(keys, args)).status();
  });
}

Result<std::vector<IntentLookup>> RedisCache::Lookup(std::string_view ns,
                                                     std::span<const DocId> ids) {
  std::vector<IntentLookup> out;
  const std::string ttl = std::to_string(options_.tombstone_ttl.count());
  Status st = EvalIdChunks(
      "lookup", ns, ids, kLookup,
      [&](uint64_t, std::vector<std::string>* k) {
        *k = {EpochKey(ns), GenerationKey(ns), NsIntentKey(ns), TombIndexKey(ns), RecordsKey(ns)};
      },
      [&](uint64_t epoch, const DocId& id, std::vector<std::string>* k) {
        k->push_back(DocKey(ns, epoch, id, /*vector=*/false));
        k->push_back(IntentKey(ns, id));
      },
      {ttl, ttl},  // the tombstone TTL, and the retention of an ended intent
      [&] { out.clear(); },
      [&](const redisReply& v) -> Status {
        if ((v.elements - 1) % 3 != 0) return Status::Internal("redis lookup: bad answer");
        for (size_t i = 1; i + 2 < v.elements; i += 3) {
          std::optional<std::string> raw;
          if (v.element[i]->type == REDIS_REPLY_STRING) raw.emplace(ReplyText(v.element[i]));
          auto rec = Decode(raw);
          if (!rec.ok()) return rec.status();
          IntentLookup entry;
          entry.record = std::move(*rec);
          entry.write_in_flight = v.element[i + 1]->integer == 1;
          entry.begun = static_cast<uint64_t>(std::max<long long>(v.element[i + 2]->integer, 0));
          out.push_back(std::move(entry));
        }
        return Status::Ok();
      });
  if (!st.ok()) return st;
  if (out.size() != ids.size()) return Status::Internal("redis lookup: wrong number of ids");
  return out;
}

Result<uint64_t> RedisCache::Generation(std::string_view ns) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  uint64_t gen = 0;
  Status st = CommandOnSlot("generation", {"GET", GenerationKey(ns)},
                            [&](const redisReply& r) -> Status {
                              if (r.type == REDIS_REPLY_NIL) return Status::Ok();
                              bool ok = false;
                              gen = ParseU64(ReplyText(&r), &ok);
                              return ok ? Status::Ok()
                                        : Status::Corruption("redis: bad write generation");
                            });
  if (!st.ok()) return st;
  return gen;
}

Status RedisCache::CommandOnSlot(std::string_view what, const std::vector<std::string>& cmd,
                                 const std::function<Status(const redisReply&)>& read) {
  return OnSlot(RedisKeySlot(cmd.at(1)), [&](Conn& conn) -> Status {
    auto r = conn.Command(what, cmd);
    if (!r.ok()) return r.status();
    if ((*r)->type == REDIS_REPLY_ERROR) return FromErrorReply(what, ReplyText(r->get()));
    return read ? read(**r) : Status::Ok();
  });
}

// A string reply as a value; anything else (nil) as none.
std::function<Status(const redisReply&)> RedisCache::StringInto(std::optional<std::string>* out) {
  return [out](const redisReply& r) {
    if (r.type == REDIS_REPLY_STRING) *out = std::string(ReplyText(&r));
    return Status::Ok();
  };
}

Result<std::optional<std::string>> RedisCache::GetNamespaceRecord(std::string_view ns,
                                                                  std::string_view key) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  std::optional<std::string> out;
  if (Status s = CommandOnSlot("get namespace record", {"HGET", RecordsKey(ns), std::string(key)},
                               StringInto(&out));
      !s.ok()) {
    return s;
  }
  return out;
}

Status RedisCache::PutNamespaceRecord(std::string_view ns, std::string_view key,
                                      std::string_view value) {
  if (Status s = CheckNs(ns); !s.ok()) return s;
  // The registry first: a listed namespace whose record is missing is skipped by the lister,
  // a record missing from the registry would never be listed. (On a cluster the two keys are in
  // different slots: two calls.)
  if (Status s = CommandOnSlot("put namespace record", {"SADD", RegistryKey(key), std::string(ns)},
                               nullptr);
      !s.ok()) {
    return s;
  }
  return CommandOnSlot("put namespace record",
                       {"HSET", RecordsKey(ns), std::string(key), std::string(value)}, nullptr);
}

Result<std::vector<std::pair<std::string, std::string>>> RedisCache::ListNamespaceRecords(
    std::string_view key) {
  std::vector<std::string> names;
  auto read_names = [&names](const redisReply& m) {
    if (m.type != REDIS_REPLY_ARRAY) return Status::Internal("redis smembers: not an array");
    for (size_t i = 0; i < m.elements; ++i) names.emplace_back(ReplyText(m.element[i]));
    return Status::Ok();
  };
  Status listed =
      CommandOnSlot("list namespace records", {"SMEMBERS", RegistryKey(key)}, read_names);
  if (!listed.ok()) return listed;
  // The namespaces' records live in their own slots: one pipeline of HGETs per master.
  std::vector<std::optional<std::string>> values(names.size());
  std::vector<std::pair<std::shared_ptr<Node>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < names.size(); ++i) {
    auto node = NodeFor(NamespaceSlot(names[i]));
    if (!node.ok()) return node.status();
    auto g = std::find_if(groups.begin(), groups.end(),
                          [&](const auto& group) { return group.first == *node; });
    if (g == groups.end()) {
      groups.emplace_back(*node, std::vector<size_t>());
      g = groups.end() - 1;
    }
    g->second.push_back(i);
  }
  for (const auto& group : groups) {
    const auto& node = group.first;  // named, not bound: lambdas capture them (clang 14)
    const std::vector<size_t>& indexes = group.second;
    std::vector<size_t> redirected;  // HGETs whose slot moved: asked again one by one
    Status st = node->Run(
        false,
        [&](Conn& conn) -> Status {
          redirected.clear();
          std::vector<std::vector<std::string>> cmds;
          for (size_t i : indexes) cmds.push_back({"HGET", RecordsKey(names[i]), std::string(key)});
          std::vector<Reply> replies;
          Status s = conn.Pipeline("list namespace records", cmds, &replies);
          if (!s.ok() && !conn.TakeRedirect()) return s;
          for (size_t j = 0; j < replies.size(); ++j) {
            const redisReply* r = replies[j].get();
            if (r->type == REDIS_REPLY_ERROR) {
              if (!cluster_ || !ParseRedirect(ReplyText(r), node->host())) {
                return FromErrorReply("list namespace records", ReplyText(r));
              }
              redirected.push_back(indexes[j]);
            } else if (r->type == REDIS_REPLY_STRING) {
              values[indexes[j]] = std::string(ReplyText(r));
            }
          }
          return Status::Ok();
        },
        nullptr, nullptr);
    if (!st.ok()) return st;
    for (size_t i : redirected) {
      if (Status s = CommandOnSlot("list namespace records",
                                   {"HGET", RecordsKey(names[i]), std::string(key)},
                                   StringInto(&values[i]));
          !s.ok()) {
        return s;
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (values[i]) out.emplace_back(std::move(names[i]), std::move(*values[i]));
  }
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
  for (const auto& node : Masters()) {
    Status st = node->Run(
        false,
        [&](Conn& conn) -> Status {
          auto r = conn.Command("ping", {"PING"});
          if (!r.ok()) return r.status();
          if ((*r)->type == REDIS_REPLY_ERROR) return FromErrorReply("ping", ReplyText(r->get()));
          return Status::Ok();
        },
        nullptr, nullptr);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

CacheStats RedisCache::Stats() {
  CacheStats stats;
  stats.backend = "redis";
  for (const auto& node : Masters()) {
    (void)node->Run(
        false,
        [&](Conn& conn) -> Status {
          std::vector<std::vector<std::string>> cmds = {{"DBSIZE"}, {"INFO", "memory"}};
          std::vector<Reply> replies;
          if (Status s = conn.Pipeline("stats", cmds, &replies); !s.ok()) return s;
          if (replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer > 0) {
            stats.approx_keys += static_cast<uint64_t>(replies[0]->integer);
          }
          std::string_view info = ReplyText(replies[1].get());
          constexpr std::string_view kUsed = "used_memory:";
          if (size_t at = info.find(kUsed); at != std::string_view::npos) {
            std::string_view rest = info.substr(at + kUsed.size());
            rest = rest.substr(0, rest.find_first_of("\r\n"));
            bool ok = false;
            uint64_t v = ParseU64(rest, &ok);
            if (ok) stats.approx_bytes += v;
          }
          return Status::Ok();
        },
        nullptr, nullptr);
  }
  return stats;
}

}  // namespace layer::cache
