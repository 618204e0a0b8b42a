// Document ids and canonical values (tpuf/doc_id.h, tpuf/canonical.h): ids from URL text and from
// JSON under every id type, the id type of a schema, datetimes and UUIDs, attribute types and the
// canonical form of a value under each.
#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tpuf/canonical.h"
#include "tpuf/doc_id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using layer::tpuf::IdType;
  for (IdType t : {IdType::kU64, IdType::kUuid, IdType::kString}) {
    auto id = layer::tpuf::ParseIdText(text, t);
    if (id) {
      (void)id->ToJson();
      (void)id->ToText();
    }
  }
  (void)layer::tpuf::IdTypeFromSchema(text);
  (void)layer::tpuf::CanonicalUuid(text);
  (void)layer::tpuf::ParseDatetime(text);
  (void)layer::tpuf::CanonicalDatetime(text);
  (void)layer::tpuf::ParseAttributeType(text);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (!ec) {
    for (IdType t : {IdType::kU64, IdType::kUuid, IdType::kString}) {
      (void)layer::tpuf::ParseIdJson(v, t);
    }
    // The value under every attribute type, and the types a schema of it declares.
    (void)layer::tpuf::AttributeTypesOfSchema(v);
    (void)layer::tpuf::FormIndependentOfType(v);
    for (const char* type : {"string", "int", "uint", "float", "bool", "datetime", "uuid",
                             "[]int", "[]float", "[]datetime", "[]uuid", "[2]f32", "[2]f16"}) {
      boost::json::value out;
      (void)layer::tpuf::CanonicalValue(layer::tpuf::ParseAttributeType(type), v, &out);
    }
  }
  return 0;
}
