// The WriteIntents contract suite: what every backend of cache/write_intents.h must do (the cases
// are in write_intents_contract_test.cc): generations and fleet-ordered stamps, overlaps, lookups
// that see writes in flight, puts of rows read or written checked against later writes, and the
// closing of an intent whose replica never ended it.
//
// A backend whose cache has write intents joins from its own test file, with the factory of its
// DocumentCache contract instantiation:
//
//   INSTANTIATE_TEST_SUITE_P(Redis, WriteIntentsContractTest,
//                            ::testing::Values(DocumentCacheContractParam{"Redis", factory}));
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "cache/write_intents.h"
#include "unit/cache/document_cache_contract.h"

namespace layer::cache {

class WriteIntentsContractTest : public ::testing::TestWithParam<DocumentCacheContractParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().factory();
    if (IsSkipped()) return;
    ASSERT_NE(backend_, nullptr) << "backend " << GetParam().name << " did not open";
    cache_ = &backend_->cache();
    intents_ = cache_->write_intents();
    ASSERT_NE(intents_, nullptr) << GetParam().name << " keeps no write intents";
  }

  std::unique_ptr<DocumentCacheBackend> backend_;
  DocumentCache* cache_ = nullptr;
  WriteIntents* intents_ = nullptr;
};

}  // namespace layer::cache
