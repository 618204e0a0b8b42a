#include "origin/engine/engine.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <shared_mutex>

#include "common/base64.h"
#include "common/gzip.h"
#include "common/json_text.h"
#include "common/namespace_name.h"
#include "common/url.h"
#include "origin/engine/model.h"
#include "origin/engine/namespace_state.h"
#include "origin/engine/query.h"
#include "origin/engine/storage.h"
#include "origin/engine/write.h"
#include "tpuf/routes.h"

namespace layer::origin {

namespace {

constexpr size_t kMaxBodyBytes = 512ull << 20;
constexpr int64_t kDefaultPageSize = 100;
constexpr int64_t kMaxPageSize = 1000;
constexpr size_t kExportBatch = 10000;
constexpr uint64_t kCompactEveryRecords = 1000;

OriginResponse Json(int status, const json::value& body) {
  OriginResponse r;
  r.status = status;
  r.body = SerializeJson(body);
  return r;
}

OriginResponse Error(const ApiError& e) {
  OriginResponse r;
  r.status = e.http_status;
  if (e.plain_text) {
    r.content_type = "text/plain; charset=utf-8";
    r.body = e.message;
    return r;
  }
  json::object o;
  o["status"] = "error";
  o["error"] = e.message;
  if (!e.attribute.empty()) o["attribute"] = e.attribute;
  r.body = SerializeJson(o);
  return r;
}

ApiError PlainText(int status, std::string text) {
  return ApiError{status, std::move(text), {}, true};
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigitValue(s[i + 1]) >= 0 &&
        HexDigitValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2]));
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQueryString(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = PercentDecode(part.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1), true);
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  if (!path.empty() && path[0] == '/') i = 1;
  while (i <= path.size()) {
    size_t slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    parts.push_back(path.substr(i, slash - i));
    i = slash + 1;
  }
  if (!parts.empty() && parts.back().empty()) parts.pop_back();  // trailing slash
  return parts;
}

// Parses a JSON request body the way axum's Json extractor does.
ApiStatus ParseBody(const OriginRequest& req, json::value* out, size_t* decoded_bytes) {
  std::string decoded;
  std::string_view body = req.body;
  std::string encoding;
  for (char c : req.content_encoding) {
    if (c != ' ' && c != '\t')
      encoding += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (encoding == "gzip" || encoding == "x-gzip") {
    auto r = GzipDecompress(req.body, kMaxBodyBytes);
    if (!r.ok()) return PlainText(400, "Failed to decompress request body");
    decoded = std::move(r).value();
    body = decoded;
  } else if (!encoding.empty() && encoding != "identity") {
    return PlainText(415, "Unsupported Content-Encoding: " + std::string(req.content_encoding));
  }
  *decoded_bytes = body.size();
  json::parse_options opts;
  opts.max_depth = 256;
  json::stream_parser parser(json::storage_ptr(), opts);
  boost::system::error_code ec;
  size_t consumed = parser.write_some(body.data(), body.size(), ec);
  std::string what;
  size_t pos = consumed;
  if (ec) {
    what = "expected value";
  } else if (!parser.done()) {
    parser.finish(ec);
    if (ec || !parser.done()) what = "EOF while parsing a value";
    pos = body.size();
  } else if (body.find_first_not_of(" \t\r\n", consumed) != std::string_view::npos) {
    what = "trailing characters";
    pos = body.find_first_not_of(" \t\r\n", consumed) + 1;
  }
  if (!what.empty()) {
    // serde_json style position: 1-based line, column of the offending character.
    size_t line = 1, column = 0;
    for (size_t i = 0; i < pos && i < body.size(); ++i) {
      if (body[i] == '\n') {
        ++line;
        column = 0;
      } else {
        ++column;
      }
    }
    if (what == "expected value") ++column;
    return BadRequestRaw("Failed to parse the request body as JSON: " + what + " at line " +
                         std::to_string(line) + " column " + std::to_string(column));
  }
  *out = parser.release();
  (void)RestoreExactDoubles(body, out);
  return {};
}

std::string ListKey(const std::string& name) { return name + "-table/"; }

}  // namespace

struct Engine::Namespace {
  std::shared_mutex mu;
  std::atomic<bool> exists{false};
  NamespaceState state;               // guarded by mu
  std::unique_ptr<NamespaceLog> log;  // guarded by mu; null until the first durable write
  int64_t unindexed_bytes = 0;        // guarded by mu
  int64_t last_write_ms = 0;          // guarded by mu
};

// ---- Router: one method per route family ----------------------------------------------------

class Engine::Router {
 public:
  Router(Engine* engine, const OriginRequest& req) : e_(engine), req_(req) {}

  OriginResponse Route() {
    auto parts = SplitPath(req_.path);
    std::string_view m = req_.method;
    if (parts.size() < 2 || parts[1] != "namespaces" || (parts[0] != "v1" && parts[0] != "v2")) {
      return NotFound();
    }
    bool v1 = parts[0] == "v1";
    if (parts.size() == 2) {
      if (v1 && m == "GET") return ListNamespaces();
      return NotFound();
    }
    std::string name = PercentDecode(parts[2], false);
    NamespaceNameError err = CheckNamespaceName(name);
    if (err != NamespaceNameError::kNone) {
      return Error(PlainText(400, NamespaceNameErrorText(err, name)));
    }
    std::vector<std::string_view> rest(parts.begin() + 3, parts.end());
    // Undocumented cache endpoints used by turbopuffer's benchmark tool; nothing to do here.
    if (rest.size() == 2 && rest[0] == "_debug" &&
        (rest[1] == "purge_cache" || rest[1] == "warm_cache")) {
      if (m != "GET") return MethodNotAllowed();
      if (e_->Find(name) == nullptr) return Error(NamespaceNotFound(name));
      return Json(200, json::object{{"status", "OK"}});
    }
    // Every other route is Turbopuffer's, as its route table (tpuf/routes.h) names it.
    auto route = tpuf::MatchRoute(boost::beast::http::string_to_verb(m), req_.path);
    if (!route) return KnownPath(v1, rest) ? MethodNotAllowed() : NotFound();
    switch (route->id) {
      case tpuf::RouteId::kWrite:
        return Write(name, false);
      case tpuf::RouteId::kDeleteNamespace:
        return DeleteNamespace(name);
      case tpuf::RouteId::kLegacyNamespace:
        if (m == "POST") return Write(name, true);
        if (m == "DELETE") return DeleteNamespace(name);
        if (m == "HEAD") return Head(name);
        return Export(name);
      case tpuf::RouteId::kQuery:
      case tpuf::RouteId::kQueryV1:
        return Query(name);
      case tpuf::RouteId::kExplainQuery:
        return Explain(name);
      case tpuf::RouteId::kMetadataV1:
      case tpuf::RouteId::kMetadataV2:
        return Metadata(name, route->id == tpuf::RouteId::kMetadataV1);
      case tpuf::RouteId::kPatchMetadata:
        return PatchMetadata(name, v1);
      case tpuf::RouteId::kGetSchema:
        return GetSchema(name);
      case tpuf::RouteId::kUpdateSchema:
        return UpdateSchema(name);
      case tpuf::RouteId::kHintCacheWarm:
        return HintCacheWarm(name);
      case tpuf::RouteId::kRecall:
        return Recall(name);
      case tpuf::RouteId::kListNamespaces:  // two segments: answered above
      case tpuf::RouteId::kOperation:       // the origin answers every write synchronously
        return NotFound();
    }
    return NotFound();
  }

 private:
  // A path of a Turbopuffer route under another method: 405 rather than 404.
  static bool KnownPath(bool v1, const std::vector<std::string_view>& rest) {
    if (rest.empty()) return true;
    if (rest.size() == 2) return v1 && rest[0] == "_debug" && rest[1] == "recall";
    if (rest.size() != 1) return false;
    std::string_view leaf = rest[0];
    return leaf == "query" || leaf == "metadata" || (!v1 && leaf == "explain_query") ||
           (v1 && (leaf == "schema" || leaf == "hint_cache_warm"));
  }

  OriginResponse NotFound() {
    return Error(
        ApiError{404,
                 "🤷 route not found: " + std::string(req_.method) + " " + std::string(req_.path),
                 {},
                 false});
  }
  OriginResponse MethodNotAllowed() {
    return Error(ApiError{405, "💔 method not allowed", {}, false});
  }

  // -- writes --

  OriginResponse Write(const std::string& name, bool v1) {
    json::value body;
    size_t bytes = 0;
    ApiStatus st = ParseBody(req_, &body, &bytes);
    if (!st.ok()) return Error(st.error());
    if (!body.is_object()) {
      return Error(Unprocessable("invalid type: " + SerdeUnexpected(body) +
                                 ", expected struct WriteRequest"));
    }
    if (v1) body = TranslateV1Write(body.get_object());
    std::string source;
    bool is_branch = false;
    st = ParseCopySource(body.get_object(), &source, &is_branch);
    if (!st.ok()) return Error(st.error());
    if (!source.empty()) return Copy(name, source, bytes);

    auto ns = e_->Entry(name);
    std::unique_lock lock(ns->mu);
    int64_t now = e_->Now();
    WritePlan plan;
    st = PlanWrite(body.get_object(), ns->state, ns->exists, now, bytes, &plan);
    if (!st.ok()) return Error(st.error());
    json::object response = std::move(plan.response);
    if (plan.has_effect) {
      LogRecord rec;
      rec.meta = &plan.meta;
      for (const auto& [id, doc] : plan.changes) {
        if (doc) {
          rec.puts.emplace_back(id, &*doc);
        } else {
          rec.deletes.push_back(id);
        }
      }
      Status s = AppendLocked(ns.get(), name, EncodeLogRecord(rec));
      if (!s.ok()) return Error(InternalError());
      ApplyWritePlan(std::move(plan), &ns->state);
      ns->exists = true;
      NoteWriteLocked(ns.get(), now, bytes);
      MaybeCompactLocked(ns.get());
    }
    return Json(200, response);
  }

  OriginResponse Copy(const std::string& dest, const std::string& source, size_t bytes) {
    if (CheckNamespaceName(source) != NamespaceNameError::kNone) {
      return Error(BadRequest("invalid source namespace name"));
    }
    NamespaceState snapshot;
    {
      auto src = e_->Find(source);
      if (src == nullptr) return Error(NamespaceNotFound(source));
      std::shared_lock lock(src->mu);
      if (!src->exists) return Error(NamespaceNotFound(source));
      snapshot = src->state;
    }
    auto ns = e_->Entry(dest);
    std::unique_lock lock(ns->mu);
    if (ns->exists && !ns->state.docs.empty()) {
      return Error(BadRequest("copy_from_namespace requires an empty destination namespace"));
    }
    int64_t now = e_->Now();
    snapshot.meta.created_at_ms = ns->exists ? ns->state.meta.created_at_ms : now;
    snapshot.meta.updated_at_ms = now;
    snapshot.meta.last_write_at_ms = now;
    snapshot.meta.pinning = nullptr;
    Status s = AppendLocked(ns.get(), dest, EncodeSnapshot(snapshot));
    if (!s.ok()) return Error(InternalError());
    uint64_t rows = snapshot.docs.size();
    ns->state = std::move(snapshot);
    ns->exists = true;
    NoteWriteLocked(ns.get(), now, bytes);
    return Json(200, CopyWriteResult(rows, bytes));
  }

  OriginResponse DeleteNamespace(const std::string& name) {
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::unique_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    if (ns->log != nullptr) {
      Status s = ns->log->Destroy();
      if (!s.ok()) return Error(InternalError());
      ns->log.reset();
    }
    ns->state = NamespaceState{};
    ns->exists = false;
    ns->unindexed_bytes = 0;
    return Json(200, json::object{{"status", "OK"}});
  }

  // -- reads --

  OriginResponse Query(const std::string& name) {
    return ReadNamespace<std::string>(
        name, [](const json::value& b, const auto& state, std::string* out) {
          if (b.is_object() && b.get_object().contains("queries")) {
            return RunMultiQuery(b.get_object(), state, out);
          }
          return RunQuery(b, state, QueryEnv{}, out);
        });
  }

  static OriginResponse Respond(const json::object& result) { return Json(200, result); }
  static OriginResponse Respond(std::string&& text) {
    OriginResponse r;
    r.body = std::move(text);
    return r;
  }

  // A read of an existing namespace's state under its shared lock: parse the body, then `run`,
  // which fills an `Out` (a json::object, or the response's JSON text).
  template <typename Out, typename Run>
  OriginResponse ReadNamespace(const std::string& name, Run run) {
    json::value body;
    size_t bytes = 0;
    ApiStatus st = ParseBody(req_, &body, &bytes);
    if (!st.ok()) return Error(st.error());
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::shared_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    Out result;
    st = run(body, ns->state, &result);
    if (!st.ok()) return Error(st.error());
    return Respond(std::move(result));
  }

  OriginResponse Explain(const std::string& name) {
    return ReadNamespace<json::object>(
        name, [](const json::value& b, const auto& state, json::object* out) {
      return ExplainQuery(b, state, out);
    });
  }

  OriginResponse Recall(const std::string& name) {
    return ReadNamespace<json::object>(
        name, [](const json::value& b, const auto& state, json::object* out) {
      return RunRecall(b, state, out);
    });
  }


  json::object MetadataJson(Namespace* ns, bool v1) {
    const NamespaceState& s = ns->state;
    json::object md;
    md["schema"] = s.meta.schema.ToMetadataJson(s.meta.distance_metric);
    uint64_t bytes = 0;
    for (const auto& [id, doc] : s.docs) bytes += ApproxDocBytes(id, doc);
    md["approx_logical_bytes"] = bytes;
    md["approx_row_count"] = static_cast<uint64_t>(s.docs.size());
    md["created_at"] = tpuf::FormatTimestamp(s.meta.created_at_ms);
    md["updated_at"] = tpuf::FormatTimestamp(s.meta.updated_at_ms);
    md["last_write_at"] = tpuf::FormatTimestamp(s.meta.last_write_at_ms);
    if (v1) {
      md["encryption"] = json::object{{"sse", true}};
    } else {
      md["encryption"] = json::object{{"mode", "default"}};
    }
    int64_t now = e_->Now();
    if (e_->options_.index_lag_ms > 0 && ns->unindexed_bytes > 0 &&
        now - ns->last_write_ms < e_->options_.index_lag_ms) {
      md["index"] = json::object{{"status", "updating"}, {"unindexed_bytes", ns->unindexed_bytes}};
    } else {
      md["index"] = json::object{{"status", "up-to-date"}};
    }
    if (s.meta.pinning.is_object()) {
      json::object pin = s.meta.pinning.get_object();
      int64_t replicas = 1;
      if (const auto* r = pin.if_contains("replicas"); r && r->is_int64())
        replicas = r->get_int64();
      pin["status"] = json::object{{"ready_replicas", replicas},
                                   {"updated_at", tpuf::FormatTimestamp(s.meta.updated_at_ms)},
                                   {"utilization", 0.0}};
      md["pinning"] = std::move(pin);
    }
    return md;
  }

  OriginResponse Metadata(const std::string& name, bool v1) {
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::shared_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    return Json(200, MetadataJson(ns.get(), v1));
  }

  OriginResponse PatchMetadata(const std::string& name, bool v1) {
    json::value body;
    size_t bytes = 0;
    ApiStatus st = ParseBody(req_, &body, &bytes);
    if (!st.ok()) return Error(st.error());
    if (!body.is_object()) {
      return Error(Unprocessable("invalid type: " + SerdeUnexpected(body) +
                                 ", expected struct UpdateMetadata"));
    }
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::unique_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    NamespaceMeta meta = ns->state.meta;
    if (const auto* p = body.get_object().if_contains("pinning")) {
      if (p->is_bool()) {
        meta.pinning = p->get_bool() ? json::value(json::object{{"replicas", 1}}) : nullptr;
      } else if (p->is_null()) {
        meta.pinning = nullptr;
      } else if (p->is_object()) {
        json::object pin;
        const auto* r = p->get_object().if_contains("replicas");
        pin["replicas"] = r && r->is_int64() ? r->get_int64() : 1;
        meta.pinning = std::move(pin);
      } else {
        return Error(
            Unprocessable("pinning: data did not match any variant of untagged enum "
                          "PinningInput"));
      }
    }
    meta.updated_at_ms = e_->Now();
    LogRecord rec;
    rec.meta = &meta;
    if (!AppendLocked(ns.get(), name, EncodeLogRecord(rec)).ok()) return Error(InternalError());
    ns->state.meta = std::move(meta);
    ns->state.InvalidateIndexes();
    return Json(200, MetadataJson(ns.get(), v1));
  }

  OriginResponse GetSchema(const std::string& name) {
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::shared_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    return Json(200, ns->state.meta.schema.ToSchemaJson());
  }

  OriginResponse UpdateSchema(const std::string& name) {
    json::value body;
    size_t bytes = 0;
    ApiStatus st = ParseBody(req_, &body, &bytes);
    if (!st.ok()) return Error(st.error());
    std::vector<std::pair<std::string, AttrSchema>> updates;
    st = ParseSchemaInput(body, "", &updates);
    if (!st.ok()) return Error(st.error());
    auto ns = e_->Entry(name);
    std::unique_lock lock(ns->mu);
    NamespaceMeta meta = ns->state.meta;
    st = MergeSchema(updates, &meta.schema);
    if (!st.ok()) return Error(st.error());
    int64_t now = e_->Now();
    if (!ns->exists) meta.created_at_ms = meta.last_write_at_ms = now;
    meta.updated_at_ms = now;
    LogRecord rec;
    rec.meta = &meta;
    if (!AppendLocked(ns.get(), name, EncodeLogRecord(rec)).ok()) return Error(InternalError());
    ns->state.meta = std::move(meta);
    ns->state.InvalidateIndexes();
    ns->exists = true;
    return Json(200, ns->state.meta.schema.ToSchemaJson());
  }

  OriginResponse HintCacheWarm(const std::string& name) {
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    return Json(202, json::object{{"status", "ACCEPTED"}, {"message", "cache warm hint accepted"}});
  }

  OriginResponse ListNamespaces() {
    auto params = ParseQueryString(req_.query);
    int64_t page_size = kDefaultPageSize;
    if (auto it = params.find("page_size"); it != params.end()) {
      const std::string& s = it->second;
      if (s.empty()) {
        return Error(PlainText(
            400, "Failed to deserialize query string: cannot parse integer from empty string"));
      }
      uint64_t v = 0;
      for (char c : s) {
        if (c < '0' || c > '9') {
          return Error(
              PlainText(400, "Failed to deserialize query string: invalid digit found in string"));
        }
        if (v > (UINT32_MAX - static_cast<uint64_t>(c - '0')) / 10) {
          return Error(PlainText(
              400, "Failed to deserialize query string: number too large to fit in target type"));
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
      page_size = static_cast<int64_t>(v);
      if (page_size < 1 || page_size > kMaxPageSize) {
        return Error(BadRequest("Page size must be in range 1..=1000, was " + std::to_string(v)));
      }
    }
    std::string prefix;
    if (auto it = params.find("prefix"); it != params.end()) prefix = it->second;
    std::string start_after;
    if (auto it = params.find("cursor"); it != params.end() && !it->second.empty()) {
      auto decoded = Base64Decode(it->second);
      if (!decoded.ok()) return Error(InternalError());
      boost::system::error_code ec;
      json::value c = json::parse(*decoded, ec);
      if (ec || !c.is_object()) return Error(InternalError());
      if (const auto* sa = c.get_object().if_contains("start_after"); sa && !sa->is_null()) {
        if (!sa->is_string()) return Error(InternalError());
        start_after = sa->get_string();
      }
    }
    std::vector<std::string> keys;
    {
      std::lock_guard lock(e_->catalog_mu_);
      for (const auto& [name, ns] : e_->namespaces_) {
        if (!ns->exists) continue;
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        keys.push_back(ListKey(name));
      }
    }
    std::sort(keys.begin(), keys.end());
    json::array list;
    std::string last;
    size_t count = 0;
    for (const auto& key : keys) {
      if (!start_after.empty() && key <= start_after) continue;
      if (count == static_cast<size_t>(page_size)) break;
      list.push_back(json::object{{"id", key.substr(0, key.size() - 7)}});
      last = key;
      ++count;
    }
    json::object out;
    out["namespaces"] = std::move(list);
    if (count == static_cast<size_t>(page_size)) {
      json::object cursor;
      cursor["continuation_token"] = nullptr;
      cursor["start_after"] = last;
      out["next_cursor"] = Base64EncodeUnpadded(SerializeJson(cursor));
    } else {
      out["next_cursor"] = nullptr;
    }
    return Json(200, out);
  }

  OriginResponse Export(const std::string& name) {
    auto params = ParseQueryString(req_.query);
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::shared_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    const NamespaceState& s = ns->state;
    auto it = s.docs.begin();
    if (auto c = params.find("cursor"); c != params.end() && !c->second.empty()) {
      auto decoded = Base64Decode(c->second);
      boost::system::error_code ec;
      json::value v = decoded.ok() ? json::parse(*decoded, ec) : json::value();
      DocId after;
      if (!decoded.ok() || ec || !ParseRawId(v, &after)) return Error(InternalError());
      it = s.docs.upper_bound(after);
    }
    std::string vattr = s.meta.schema.VectorAttr();
    std::vector<std::string> columns;
    for (const auto& [attr, a] : s.meta.schema.attrs()) {
      if (attr != "id" && attr != vattr) columns.push_back(attr);
    }
    json::array ids, vectors;
    json::object attributes;
    for (const auto& c : columns) attributes[c] = json::array();
    size_t n = 0;
    const DocId* last = nullptr;
    for (; it != s.docs.end() && n < kExportBatch; ++it, ++n) {
      ids.push_back(IdToJson(it->first));
      const auto& attrs = it->second.attrs;
      const auto* vec = vattr.empty() ? nullptr : attrs.if_contains(vattr);
      vectors.push_back(vec ? RenderAttr(s.meta.schema.Find(vattr), *vec, false) : nullptr);
      for (const auto& c : columns) {
        const auto* v = attrs.if_contains(c);
        attributes[c].as_array().push_back(v ? RenderAttr(s.meta.schema.Find(c), *v, false)
                                             : json::value(nullptr));
      }
      last = &it->first;
    }
    json::object out;
    out["ids"] = std::move(ids);
    out["vectors"] = std::move(vectors);
    out["attributes"] = std::move(attributes);
    if (it != s.docs.end() && last != nullptr) {
      out["next_cursor"] = Base64EncodeUnpadded(SerializeJson(IdToJson(*last)));
    } else {
      out["next_cursor"] = nullptr;
    }
    return Json(200, out);
  }

  OriginResponse Head(const std::string& name) {
    auto ns = e_->Find(name);
    if (ns == nullptr) return Error(NamespaceNotFound(name));
    std::shared_lock lock(ns->mu);
    if (!ns->exists) return Error(NamespaceNotFound(name));
    OriginResponse r;
    r.body.clear();
    const auto& s = ns->state;
    int64_t dims = 0;
    if (const AttrSchema* a = s.meta.schema.Find(s.meta.schema.VectorAttr())) {
      dims = ParseTypeName(a->type)->dims;
    }
    r.headers.emplace_back("x-turbopuffer-approx-num-vectors", std::to_string(s.docs.size()));
    r.headers.emplace_back("x-turbopuffer-dimensions", std::to_string(dims));
    r.headers.emplace_back("x-turbopuffer-created-at", tpuf::FormatTimestamp(s.meta.created_at_ms));
    return r;
  }

  // -- durability helpers (caller holds ns->mu exclusively) --

  Status AppendLocked(Namespace* ns, const std::string& name, const std::string& payload) {
    if (ns->log == nullptr) {
      auto log = NamespaceLog::Open(e_->NamespaceDir(name), /*create=*/true,
                                    [](std::string_view) { return false; });
      if (!log.ok()) return log.status();
      ns->log = std::move(log).value();
      // A fresh log starts with the full state so replay never depends on older files.
      if (ns->exists) {
        Status s = ns->log->Append(EncodeSnapshot(ns->state));
        if (!s.ok()) return s;
      }
    }
    return ns->log->Append(payload);
  }

  void NoteWriteLocked(Namespace* ns, int64_t now, size_t bytes) {
    if (now - ns->last_write_ms >= e_->options_.index_lag_ms) ns->unindexed_bytes = 0;
    ns->unindexed_bytes += std::max<int64_t>(1, static_cast<int64_t>(bytes));
    ns->last_write_ms = now;
  }

  // Every kCompactEveryRecords appends, replaces the log by a snapshot if that halves it.
  void MaybeCompactLocked(Namespace* ns) {
    if (ns->log == nullptr || ns->log->records() % kCompactEveryRecords != 0) return;
    std::string snapshot = EncodeSnapshot(ns->state);
    if (snapshot.size() * 2 < ns->log->size_bytes()) {
      (void)ns->log->Rewrite(snapshot);  // on failure the longer log stays valid
    }
  }

  Engine* e_;
  const OriginRequest& req_;
};

// ---- Engine ---------------------------------------------------------------------------------

Engine::Engine(EngineOptions options) : options_(std::move(options)) {}
Engine::~Engine() = default;

int64_t Engine::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Engine::NamespaceDir(const std::string& name) const {
  return options_.data_dir + "/namespaces/" + name;
}

std::shared_ptr<Engine::Namespace> Engine::Entry(const std::string& name) {
  std::lock_guard lock(catalog_mu_);
  auto& slot = namespaces_[name];
  if (slot == nullptr) slot = std::make_shared<Namespace>();
  return slot;
}

std::shared_ptr<Engine::Namespace> Engine::Find(const std::string& name) {
  std::lock_guard lock(catalog_mu_);
  auto it = namespaces_.find(name);
  if (it == namespaces_.end() || !it->second->exists) return nullptr;
  return it->second;
}

Result<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("data_dir is required");
  Status s = EnsureDir(options.data_dir + "/namespaces");
  if (!s.ok()) return s;
  std::unique_ptr<Engine> engine(new Engine(std::move(options)));
  for (const auto& name : ListSubdirs(engine->options_.data_dir + "/namespaces")) {
    if (CheckNamespaceName(name) != NamespaceNameError::kNone) continue;
    auto ns = std::make_shared<Namespace>();
    auto log = NamespaceLog::Open(
        engine->NamespaceDir(name), /*create=*/false,
        [&](std::string_view payload) { return ApplyLogRecord(payload, &ns->state); });
    if (!log.ok()) {
      if (log.status().IsNotFound()) continue;  // an interrupted create or delete
      return log.status();
    }
    if ((*log)->records() == 0) {
      (void)(*log)->Destroy();
      continue;
    }
    ns->log = std::move(log).value();
    ns->exists = true;
    engine->namespaces_[name] = std::move(ns);
  }
  return engine;
}

OriginResponse Engine::Handle(const OriginRequest& req) {
  try {
    return Router(this, req).Route();
  } catch (const std::exception&) {
    // A broken invariant deep in a JSON accessor; never let it cross the engine boundary.
    return Error(InternalError());
  }
}

}  // namespace layer::origin
