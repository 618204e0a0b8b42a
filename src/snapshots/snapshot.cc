#include "snapshots/snapshot.h"

#include "common/tenant.h"

#include <openssl/sha.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <fmt/format.h>

#include "common/namespace_name.h"

namespace layer::snapshots {

namespace json = boost::json;

namespace {

constexpr uint64_t kMaxWatermark = 9999999999999ull;  // 13 digits

std::string Quote(std::string_view s) { return json::serialize(json::string(s)); }

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint64_t> AsU64(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return std::nullopt;
}

const json::string* AsString(const json::value* v) {
  return v && v->is_string() ? &v->get_string() : nullptr;
}

Status Bad(std::string_view what) {
  return Status::Corruption(fmt::format("snapshot body: {}", what));
}

// The "fields" array, compact.
void AppendFields(std::string& out, const std::vector<SnapshotField>& fields) {
  out += '[';
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":" + Quote(fields[i].name) + ",\"values\":[";
    const auto& values = fields[i].values;
    for (size_t j = 0; j < values.size(); ++j) {
      if (j) out += ',';
      out += "{\"v\":" + Quote(values[j].v) + fmt::format(",\"n\":{}}}", values[j].n);
    }
    out += "]}";
  }
  out += ']';
}

void AppendSkipped(std::string& out, const std::vector<SkippedField>& skipped) {
  out += '[';
  for (size_t i = 0; i < skipped.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":" + Quote(skipped[i].name) + ",\"reason\":" + Quote(skipped[i].reason) +
           fmt::format(",\"distinct_observed\":{},\"cap\":{}}}", skipped[i].distinct_observed,
                       skipped[i].cap);
  }
  out += ']';
}

}  // namespace

void Canonicalize(SnapshotBody& body) {
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(body.fields.begin(), body.fields.end(), by_name);
  for (auto& f : body.fields) {
    std::sort(f.values.begin(), f.values.end(),
              [](const SnapshotValue& a, const SnapshotValue& b) { return a.v < b.v; });
  }
  std::sort(body.fields_skipped.begin(), body.fields_skipped.end(), by_name);
}

std::string ShaInput(const SnapshotBody& body) {
  std::string out = "{\"row_count\":";
  out += body.row_count ? std::to_string(*body.row_count) : "null";
  out += ",\"fields\":";
  AppendFields(out, body.fields);
  out += ",\"fields_skipped\":";
  AppendSkipped(out, body.fields_skipped);
  out += '}';
  return out;
}

std::string ComputeSha(const SnapshotBody& body) { return Sha256Hex(ShaInput(body)); }

void Seal(SnapshotBody& body) {
  Canonicalize(body);
  body.sha = ComputeSha(body);
}

std::string SerializeSnapshotBody(const SnapshotBody& body) {
  std::string out = "{\n  \"namespace\": " + Quote(body.ns) + ",\n";
  out += fmt::format("  \"watermark_ms\": {},\n", body.watermark_ms);
  out += "  \"sha\": " + Quote(body.sha) + ",\n";
  if (body.row_count) out += fmt::format("  \"row_count\": {},\n", *body.row_count);
  out += "  \"fields\": [";
  for (size_t i = 0; i < body.fields.size(); ++i) {
    const SnapshotField& f = body.fields[i];
    out += i ? ",\n" : "\n";
    out += "    {\n      \"name\": " + Quote(f.name) + ",\n      \"values\": [";
    for (size_t j = 0; j < f.values.size(); ++j) {
      out += j ? ",\n" : "\n";
      out +=
          "        { \"v\": " + Quote(f.values[j].v) + fmt::format(", \"n\": {} }}", f.values[j].n);
    }
    out += f.values.empty() ? "]\n    }" : "\n      ]\n    }";
  }
  out += body.fields.empty() ? "],\n" : "\n  ],\n";
  out += "  \"fields_skipped\": [";
  for (size_t i = 0; i < body.fields_skipped.size(); ++i) {
    const SkippedField& s = body.fields_skipped[i];
    out += i ? ",\n" : "\n";
    out += "    { \"name\": " + Quote(s.name) + ", \"reason\": " + Quote(s.reason) +
           fmt::format(", \"distinct_observed\": {}, \"cap\": {} }}", s.distinct_observed, s.cap);
  }
  out += body.fields_skipped.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Result<SnapshotBody> ParseSnapshotBody(std::string_view text, const ParseOptions& options) {
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return Bad("not valid JSON: " + ec.message());
  if (!root.is_object()) return Bad("not a JSON object");
  const json::object& obj = root.get_object();

  SnapshotBody body;
  const json::string* ns = AsString(obj.if_contains("namespace"));
  if (!ns) return Bad("\"namespace\" missing or not a string");
  body.ns = std::string(*ns);
  if (options.expected_namespace && body.ns != *options.expected_namespace) {
    return Bad(
        fmt::format("namespace is \"{}\", expected \"{}\"", body.ns, *options.expected_namespace));
  }
  auto wm = AsU64(obj.if_contains("watermark_ms"));
  if (!wm) return Bad("\"watermark_ms\" missing or not a non-negative integer");
  body.watermark_ms = *wm;
  const json::string* sha = AsString(obj.if_contains("sha"));
  if (!sha || sha->size() != 64 || !IsLowerHex(*sha)) {
    return Bad("\"sha\" missing or not 64 lowercase hex digits");
  }
  body.sha = std::string(*sha);
  if (const json::value* rc = obj.if_contains("row_count"); rc && !rc->is_null()) {
    auto n = AsU64(rc);
    if (!n) return Bad("\"row_count\" is not a non-negative integer");
    body.row_count = *n;
  }

  const json::value* fields = obj.if_contains("fields");
  if (!fields || !fields->is_array()) return Bad("\"fields\" missing or not an array");
  for (const json::value& fv : fields->get_array()) {
    if (!fv.is_object()) return Bad("a field is not an object");
    const json::object& fo = fv.get_object();
    const json::string* name = AsString(fo.if_contains("name"));
    if (!name) return Bad("a field has no string \"name\"");
    const json::value* values = fo.if_contains("values");
    if (!values || !values->is_array()) return Bad("field \"values\" missing or not an array");
    SnapshotField field;
    field.name = std::string(*name);
    field.values.reserve(values->get_array().size());
    for (const json::value& vv : values->get_array()) {
      const json::object* vo = vv.if_object();
      const json::string* v = vo ? AsString(vo->if_contains("v")) : nullptr;
      auto n = vo ? AsU64(vo->if_contains("n")) : std::nullopt;
      if (!v || !n) return Bad("a value is not {\"v\": string, \"n\": integer}");
      field.values.push_back({std::string(*v), *n});
    }
    body.fields.push_back(std::move(field));
  }

  if (const json::value* skipped = obj.if_contains("fields_skipped")) {
    if (!skipped->is_array()) return Bad("\"fields_skipped\" is not an array");
    for (const json::value& sv : skipped->get_array()) {
      const json::object* so = sv.if_object();
      const json::string* name = so ? AsString(so->if_contains("name")) : nullptr;
      const json::string* reason = so ? AsString(so->if_contains("reason")) : nullptr;
      auto distinct = so ? AsU64(so->if_contains("distinct_observed")) : std::nullopt;
      auto cap = so ? AsU64(so->if_contains("cap")) : std::nullopt;
      if (!name || !reason || !distinct || !cap) return Bad("a skipped field is malformed");
      body.fields_skipped.push_back({std::string(*name), std::string(*reason), *distinct, *cap});
    }
  }

  if (options.verify_sha) {
    std::string actual = ComputeSha(body);
    if (actual != body.sha) {
      return Bad(fmt::format("sha {} does not match the content ({})", body.sha, actual));
    }
  }
  return body;
}

std::string PartitionObjectPrefix(std::string_view partition) {
  const PartitionParts parts = SplitPartition(partition);
  if (parts.tag.empty()) return {};
  return fmt::format("tenants/{}/", parts.tag);
}

std::string SnapshotPrefix(std::string_view partition) {
  return fmt::format("{}snapshots/{}/", PartitionObjectPrefix(partition),
                     PartitionNamespace(partition));
}

Result<std::string> SnapshotKey(std::string_view partition, uint64_t watermark_ms,
                                std::string_view sha) {
  const PartitionParts parts = SplitPartition(partition);
  const std::string_view ns = parts.ns;
  if (CheckNamespaceName(ns) != NamespaceNameError::kNone || ns == "." || ns == ".." ||
      (!parts.tag.empty() && !IsLowerHex(parts.tag))) {
    return Status::InvalidArgument(
        fmt::format("snapshot key: invalid namespace \"{}\"", partition));
  }
  if (sha.size() < 7 || !IsLowerHex(sha)) {
    return Status::InvalidArgument("snapshot key: sha must be at least 7 lowercase hex digits");
  }
  if (watermark_ms > kMaxWatermark) {
    return Status::InvalidArgument("snapshot key: watermark_ms does not fit 13 digits");
  }
  return fmt::format("{}{:013}-{}.json", SnapshotPrefix(partition), watermark_ms,
                     sha.substr(0, 7));
}

std::string OnDemandSnapshotPrefix(std::string_view partition) {
  return fmt::format("{}snapshots-on-demand/{}/", PartitionObjectPrefix(partition),
                     PartitionNamespace(partition));
}

Result<std::string> OnDemandSnapshotKey(std::string_view partition, uint64_t watermark_ms,
                                        std::string_view sha) {
  auto key = SnapshotKey(partition, watermark_ms, sha);
  if (!key.ok()) return key.status();
  return OnDemandSnapshotPrefix(partition) + key->substr(SnapshotPrefix(partition).size());
}

std::optional<SnapshotKeyInfo> ParseSnapshotKey(std::string_view key) {
  constexpr std::string_view kTenants = "tenants/";
  constexpr std::string_view kHead = "snapshots/";
  constexpr std::string_view kTail = ".json";
  std::string_view tag;
  if (key.substr(0, kTenants.size()) == kTenants) {
    std::string_view rest = key.substr(kTenants.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return std::nullopt;
    tag = rest.substr(0, slash);
    if (!IsLowerHex(tag)) return std::nullopt;
    key = rest.substr(slash + 1);
  }
  if (key.size() < kHead.size() || key.substr(0, kHead.size()) != kHead) return std::nullopt;
  std::string_view rest = key.substr(kHead.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view ns = rest.substr(0, slash);
  std::string_view file = rest.substr(slash + 1);
  // 13 digits, '-', 7 hex, ".json"
  if (file.size() != 13 + 1 + 7 + kTail.size() || file.substr(21) != kTail || file[13] != '-') {
    return std::nullopt;
  }
  std::string_view digits = file.substr(0, 13);
  std::string_view sha7 = file.substr(14, 7);
  if (!IsDigits(digits) || !IsLowerHex(sha7)) return std::nullopt;
  if (CheckNamespaceName(ns) != NamespaceNameError::kNone) return std::nullopt;
  return SnapshotKeyInfo{std::string(ns), std::stoull(std::string(digits)), std::string(sha7),
                         std::string(tag)};
}

Result<std::vector<std::string>> ListSnapshotKeys(ObjectStore& store,
                                                  std::string_view partition) {
  auto keys = store.List(SnapshotPrefix(partition));
  if (!keys.ok()) return keys.status();
  const PartitionParts parts = SplitPartition(partition);
  std::vector<std::string> out;
  out.reserve(keys->size());
  for (std::string& k : *keys) {
    auto info = ParseSnapshotKey(k);
    if (info && info->ns == parts.ns && info->tag == parts.tag) out.push_back(std::move(k));
  }
  return out;
}

Result<std::optional<std::string>> LatestSnapshotKey(ObjectStore& store, std::string_view ns) {
  auto keys = ListSnapshotKeys(store, ns);
  if (!keys.ok()) return keys.status();
  if (keys->empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(keys->back()));
}

Result<std::optional<StoredSnapshot>> ReadLatestSnapshot(ObjectStore& store, std::string_view ns) {
  auto key = LatestSnapshotKey(store, ns);
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::optional<StoredSnapshot>();
  auto bytes = store.Get(**key);
  if (!bytes.ok()) {
    if (bytes.status().IsNotFound()) {
      return Status::IoError(fmt::format("snapshot {} disappeared between list and get", **key),
                             /*retryable=*/true);
    }
    return bytes.status();
  }
  ParseOptions opts;
  opts.expected_namespace = std::string(PartitionNamespace(ns));
  auto body = ParseSnapshotBody(*bytes, opts);
  if (!body.ok()) {
    return Status::Corruption(fmt::format("{}: {}", **key, body.status().message()));
  }
  auto info = ParseSnapshotKey(**key);
  if (!info || body->sha.compare(0, 7, info->sha7) != 0) {
    return Status::Corruption(
        fmt::format("{}: body sha {} does not match the key", **key, body->sha));
  }
  return std::optional<StoredSnapshot>(
      StoredSnapshot{std::move(**key), std::move(bytes).value(), std::move(body).value()});
}

}  // namespace layer::snapshots
