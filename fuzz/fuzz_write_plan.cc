// The write planner (gateway/write_plan.h): any body of POST /v2/namespaces/{ns}, under each id
// type, and the affected-ids answer parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/write_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  for (auto type : {layer::gateway::StringIdType{}, layer::gateway::StringIdType(
                                                        layer::tpuf::IdType::kUuid)}) {
    auto plan = layer::gateway::PlanWrite(body, 1'780'000'000'000ull, type);
    (void)plan;
    (void)layer::gateway::ParseAffectedIds(body, type);
  }
  (void)layer::gateway::StripAffectedIds(body);
  return 0;
}
