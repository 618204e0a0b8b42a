// MeteredObjectStore: an ObjectStore decorator that measures every call of the store beneath it
// (docs/design.md §7.3): layer_object_store_request_seconds{op} (a histogram) and
// layer_object_store_errors_total{op} (NotFound from Get is an answer, not an error). Ops: put,
// put_if_absent, get, list, delete. Same contract as the store it wraps; thread-safe.
#pragma once

#include <array>
#include <memory>

#include "common/metrics.h"
#include "snapshots/object_store.h"

namespace layer::snapshots {

class MeteredObjectStore final : public ObjectStore {
 public:
  // `metrics` null: layer::Metrics().
  MeteredObjectStore(std::shared_ptr<ObjectStore> inner, MetricsRegistry* metrics = nullptr);

  Status Put(std::string_view key, std::string_view bytes) override;
  Result<bool> PutIfAbsent(std::string_view key, std::string_view bytes) override;
  Result<std::string> Get(std::string_view key) override;
  Result<std::vector<std::string>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;

 private:
  enum Op { kPut, kPutIfAbsent, kGet, kList, kDelete, kOps };
  struct Meters {
    Histogram* seconds;
    Counter* errors;
  };
  template <typename R, typename Fn>
  R Measure(Op op, Fn fn);

  std::shared_ptr<ObjectStore> inner_;
  std::array<Meters, kOps> meters_;
};

}  // namespace layer::snapshots
