// The write planner (gateway/write_plan.h): any body of POST /v2/namespaces/{ns}, under each id
// type, with and without known attribute types, and the affected-ids answer parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gateway/write_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // Known attribute types of every kind, under the attribute names the seeds use.
  static const layer::tpuf::AttributeTypes kTypes = {
      {"a", layer::tpuf::ParseAttributeType("datetime")},
      {"b", layer::tpuf::ParseAttributeType("[]uuid")},
      {"n", layer::tpuf::ParseAttributeType("int")},
      {"f", layer::tpuf::ParseAttributeType("float")},
      {"v", layer::tpuf::ParseAttributeType("[2]f32")},
      {"x", layer::tpuf::ParseAttributeType("{}f16")}};
  for (auto type : {layer::gateway::StringIdType{}, layer::gateway::StringIdType(
                                                        layer::tpuf::IdType::kUuid)}) {
    for (const layer::tpuf::AttributeTypes* types :
         {&kTypes, static_cast<const layer::tpuf::AttributeTypes*>(nullptr)}) {
      auto plan = layer::gateway::PlanWrite(body, 1'780'000'000'000ull, type, types);
      (void)plan;
    }
    (void)layer::gateway::ParseAffectedIds(body, type);
  }
  (void)layer::gateway::StripAffectedIds(body);
  return 0;
}
