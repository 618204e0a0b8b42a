#include "snapshots/metered_object_store.h"

#include <chrono>

namespace layer::snapshots {

namespace {

bool Failed(const Status& st, bool not_found_is_answer) {
  return !st.ok() && !(not_found_is_answer && st.IsNotFound());
}

}  // namespace

MeteredObjectStore::MeteredObjectStore(std::shared_ptr<ObjectStore> inner,
                                       MetricsRegistry* metrics)
    : inner_(std::move(inner)) {
  MetricsRegistry& r = MetricsOr(metrics);
  const char* names[kOps] = {"put", "put_if_absent", "get", "list", "delete"};
  for (int op = 0; op < kOps; ++op) {
    meters_[op].seconds = &r.GetHistogram("layer_object_store_request_seconds",
                                          "Object-store calls, by operation", {{"op", names[op]}});
    meters_[op].errors = &r.GetCounter("layer_object_store_errors_total",
                                       "Object-store calls that failed, by operation",
                                       {{"op", names[op]}});
  }
}

template <typename R, typename Fn>
R MeteredObjectStore::Measure(Op op, Fn fn) {
  const auto t0 = std::chrono::steady_clock::now();
  R r = fn();
  meters_[op].seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  Status st;
  if constexpr (std::is_same_v<R, Status>) {
    st = r;
  } else {
    st = r.status();
  }
  if (Failed(st, op == kGet)) meters_[op].errors->Inc();
  return r;
}

Status MeteredObjectStore::Put(std::string_view key, std::string_view bytes) {
  return Measure<Status>(kPut, [&] { return inner_->Put(key, bytes); });
}

Result<bool> MeteredObjectStore::PutIfAbsent(std::string_view key, std::string_view bytes) {
  return Measure<Result<bool>>(kPutIfAbsent, [&] { return inner_->PutIfAbsent(key, bytes); });
}

Result<std::string> MeteredObjectStore::Get(std::string_view key) {
  return Measure<Result<std::string>>(kGet, [&] { return inner_->Get(key); });
}

Result<std::vector<std::string>> MeteredObjectStore::List(std::string_view prefix) {
  return Measure<Result<std::vector<std::string>>>(kList, [&] { return inner_->List(prefix); });
}

Status MeteredObjectStore::Delete(std::string_view key) {
  return Measure<Status>(kDelete, [&] { return inner_->Delete(key); });
}

}  // namespace layer::snapshots
