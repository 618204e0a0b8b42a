// WriteIntents: the writes in flight through every gateway replica of a shared cache, kept next
// to the records they may change (docs/design.md §4.9). Implemented by a DocumentCache backend
// that several replicas share (redis/), and reached through DocumentCache::write_intents(); an
// embedded backend, which one process owns, has none (the coherence core's process-local counts
// are then all there is).
//
// What it keeps, per namespace:
// - a write generation, raised by every write that begins (BeginIntent answers the new value);
// - per id, and for the namespace as a whole: how many writes that may change it are in flight,
//   the generation of the last one begun, a deadline (the latest of its writes' deadlines) and
//   the highest stamp among them;
// - the last write stamp given, so that stamps grow in the order writes begin across replicas.
//
// Rules, atomic on the backend with the records of the same namespace:
// - Lookup reads records together with, per id, whether a write that may change it is in flight
//   (one naming it, or a whole-namespace one) and the generation of the last write of it begun.
//   An intent whose deadline passed with writes still counted belongs to a replica that stopped
//   (or lost the cache) before it ended them: Lookup then writes a tombstone (not repairable)
//   with the intent's highest stamp for an id, or moves the namespace epoch for a
//   whole-namespace intent, and closes the intent, so that what such a write may have changed
//   upstream is never served from before it. EndIntent of a write counted before that closing is
//   ignored.
// - A put of a row read upstream (CachedDoc::read_generation = the generation Lookup answered
//   for the id, or Generation() taken before the read) is dropped (reported not stored) when a
//   write that may change the id is in flight or has begun since that generation.
// - A put of a write's own row (CachedDoc::write_generation = its BeginIntent generation) is
//   dropped when a whole-namespace write began after it: their order upstream is unknown.
//
// Blocking like DocumentCache; called through CacheGuard. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "cache/document_cache.h"
#include "common/status.h"
#include "tpuf/doc_id.h"

namespace layer::cache {

// What BeginIntent answers.
struct IntentStart {
  uint64_t generation = 0;  // this write's generation: hand it to EndIntent
  // The write's stamp: the one proposed, or, when a write begun earlier (through any replica)
  // was stamped with it or later, the next stamp after that one.
  uint64_t stamp = 0;
  // Per id (in order; one entry for a whole-namespace write): another write that may change it
  // was in flight when this one began, so the upstream may apply the two in either order.
  std::vector<bool> overlapped;
};

// One id's answer to Lookup.
struct IntentLookup {
  std::optional<CachedDoc> record;  // as DocumentCache::Get answers it
  bool write_in_flight = false;     // a write that may change the id is in flight
  uint64_t begun = 0;               // generation of the last write of the id (or namespace) begun
};

class WriteIntents {
 public:
  virtual ~WriteIntents() = default;

  // Registers a write before it is sent upstream: of `ids`, or, with `whole_namespace`, of any
  // row of `ns` (`ids` then ignored). `proposed_stamp` is the stamp the replica would give it;
  // `deadline` is how long the replica may take to end it (its upstream timeout and its hold of
  // a write whose outcome is unknown, with a margin).
  virtual Result<IntentStart> BeginIntent(std::string_view ns, std::span<const tpuf::DocId> ids,
                                          bool whole_namespace, uint64_t proposed_stamp,
                                          std::chrono::milliseconds deadline) = 0;
  // The write's effects are in the cache (or it certainly changed nothing): ends it. The same
  // `ids` and `whole_namespace` as BeginIntent.
  virtual Status EndIntent(std::string_view ns, std::span<const tpuf::DocId> ids,
                           bool whole_namespace, uint64_t generation) = 0;
  // Records and write state of `ids`, in order (see above).
  virtual Result<std::vector<IntentLookup>> Lookup(std::string_view ns,
                                                   std::span<const tpuf::DocId> ids) = 0;
  // The namespace's write generation now: take it before reading rows upstream whose ids are
  // not known yet (a warm page), and put them with it as their read_generation.
  virtual Result<uint64_t> Generation(std::string_view ns) = 0;
};

}  // namespace layer::cache
