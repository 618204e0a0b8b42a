// Snapshot bodies, keys and policies (snapshots/snapshot.h, snapshots/policy.h): parse any
// text, and re-serialise what parses (it must parse again to the same body).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "snapshots/policy.h"
#include "snapshots/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  layer::snapshots::ParseOptions lax;
  lax.verify_sha = false;
  auto body = layer::snapshots::ParseSnapshotBody(text, lax);
  if (body.ok()) {
    auto again = layer::snapshots::ParseSnapshotBody(
        layer::snapshots::SerializeSnapshotBody(*body), lax);
    if (!again.ok() || !(*again == *body)) std::abort();  // a body must round-trip
  }
  (void)layer::snapshots::ParseSnapshotBody(text);
  (void)layer::snapshots::ParseSnapshotKey(text);
  (void)layer::snapshots::PolicyPartition(text);
  auto policy = layer::snapshots::ParseSnapshotPolicy(text);
  if (policy.ok()) {
    auto again = layer::snapshots::ParseSnapshotPolicy(
        layer::snapshots::SerializeSnapshotPolicy(*policy));
    if (!again.ok() || !(*again == *policy)) std::abort();  // a policy must round-trip
  }
  return 0;
}
