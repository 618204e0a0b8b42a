// Snapshot bodies and where they live in the object store (docs/design.md §7).
//
// A snapshot is a content-addressed facet histogram of one namespace at a stable watermark. Its
// `sha` is the lowercase hex SHA-256 of the compact JSON of
//   {"row_count":…,"fields":[{"name":…,"values":[{"v":…,"n":…}]}],
//    "fields_skipped":[{"name":…,"reason":…,"distinct_observed":…,"cap":…}]}
// with members in exactly that order, strings as UTF-8 with JSON escapes, and "row_count":null
// when the row count is unknown. Namespace and watermark are excluded, so identical
// distributions hash identically.
//
// Keys: snapshots/{ns}/{watermark_ms zero-padded to 13 digits}-{first 7 hex of sha}.json. Lexical
// order of keys is chronological order, so the latest snapshot is the last key of the prefix
// listing (no index file).
//
// Everything here is pure computation except the *Latest* helpers, which call the ObjectStore
// (blocking; see object_store.h). Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "snapshots/object_store.h"

namespace layer::snapshots {

inline constexpr uint64_t kMaxFacetValues = 10000;  // distinct values per field (§8.2)

struct SnapshotValue {
  std::string v;   // the value as text: JSON strings verbatim, other JSON values as their JSON text
  uint64_t n = 0;  // documents with this value
  friend bool operator==(const SnapshotValue&, const SnapshotValue&) = default;
};

struct SnapshotField {
  std::string name;
  std::vector<SnapshotValue> values;  // canonical order: by v ascending (bytewise)
  friend bool operator==(const SnapshotField&, const SnapshotField&) = default;
};

struct SkippedField {
  std::string name;
  std::string reason = "exceeded_cap";
  uint64_t distinct_observed = 0;
  uint64_t cap = kMaxFacetValues;
  friend bool operator==(const SkippedField&, const SkippedField&) = default;
};

struct SnapshotBody {
  std::string ns;  // "namespace" on the wire
  uint64_t watermark_ms = 0;
  std::string sha;  // 64 lowercase hex
  std::optional<uint64_t> row_count;
  std::vector<SnapshotField> fields;         // canonical order: by name
  std::vector<SkippedField> fields_skipped;  // canonical order: by name
  friend bool operator==(const SnapshotBody&, const SnapshotBody&) = default;
};

// Sorts fields, values and skipped fields into canonical order.
void Canonicalize(SnapshotBody& body);

// The compact JSON the sha covers (see the top of this file), and its SHA-256 as lowercase hex.
std::string ShaInput(const SnapshotBody& body);
std::string ComputeSha(const SnapshotBody& body);

// Canonicalizes `body` and sets body.sha from its content. What a writer calls before storing.
void Seal(SnapshotBody& body);

// The body as pretty JSON (2-space indent), the stored form:
// {"namespace","watermark_ms","sha","row_count"?,"fields","fields_skipped"}.
std::string SerializeSnapshotBody(const SnapshotBody& body);

struct ParseOptions {
  // When set, a body naming another namespace is refused (Corruption).
  std::optional<std::string> expected_namespace;
  // Recompute the sha and refuse a body whose sha does not match its content (Corruption).
  bool verify_sha = true;
};

// Parses and validates a stored body. Corruption when the text is not JSON, a member is missing
// or has the wrong type, the sha is not 64 lowercase hex, or the options' checks fail.
// A missing "fields_skipped" is read as empty; "row_count" may be absent or null.
Result<SnapshotBody> ParseSnapshotBody(std::string_view json, const ParseOptions& options = {});

// Tenants (docs/design.md §9.7): every object of a partition "{ns}@{tag}" lives under
// "tenants/{tag}/" (the one tenant's, with no tag, at the top), so that objects of two tenants
// never share a key. The namespace functions below take a partition (common/tenant.h).
std::string PartitionObjectPrefix(std::string_view partition);

// "[tenants/{tag}/]snapshots/{ns}/".
std::string SnapshotPrefix(std::string_view partition);
// The key of a snapshot. InvalidArgument for an invalid namespace name or tag, a sha shorter than
// 7 or not lowercase hex, or a watermark that does not fit 13 digits.
Result<std::string> SnapshotKey(std::string_view partition, uint64_t watermark_ms,
                                std::string_view sha);

// On-demand snapshots (single-field bodies, docs/design.md §7.4) live under their own prefix,
// "[tenants/{tag}/]snapshots-on-demand/{ns}/", outside SnapshotPrefix, so that they never appear in
// a listing of full snapshots and never become "latest".
std::string OnDemandSnapshotPrefix(std::string_view partition);
// "[tenants/{tag}/]snapshots-on-demand/{ns}/{watermark_ms:013}-{sha7}.json"; errors as SnapshotKey.
Result<std::string> OnDemandSnapshotKey(std::string_view partition, uint64_t watermark_ms,
                                        std::string_view sha);

struct SnapshotKeyInfo {
  std::string ns;
  uint64_t watermark_ms = 0;
  std::string sha7;
  std::string tag;  // the tenant's, "" for the one tenant
  friend bool operator==(const SnapshotKeyInfo&, const SnapshotKeyInfo&) = default;
};
// The parts of a snapshot key; nullopt for any key not of the scheme's exact shape.
std::optional<SnapshotKeyInfo> ParseSnapshotKey(std::string_view key);

// Every snapshot key of the partition, oldest first (keys not of the scheme are ignored).
Result<std::vector<std::string>> ListSnapshotKeys(ObjectStore& store, std::string_view partition);
// The namespace's latest snapshot key (the last key of the listing), or nullopt when it has none.
Result<std::optional<std::string>> LatestSnapshotKey(ObjectStore& store, std::string_view ns);

struct StoredSnapshot {
  std::string key;
  std::string bytes;  // exactly as stored (pass these through; never re-serialise)
  SnapshotBody body;
};
// Reads and validates the latest snapshot (namespace and sha checked). nullopt when the namespace
// has none; IoError (retryable) when the key vanished between listing and reading; Corruption
// when the body is invalid.
Result<std::optional<StoredSnapshot>> ReadLatestSnapshot(ObjectStore& store, std::string_view ns);

}  // namespace layer::snapshots
