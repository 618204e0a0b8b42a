#include "tpuf/canonical.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cmath>
#include <cstring>
#include <string>

#include "common/base64.h"
#include "common/json_text.h"

namespace layer::tpuf {
namespace {

TEST(Canonical, UuidForms) {
  const std::string want = "769c134d-07b8-4225-954a-b6cc5ffc320c";
  EXPECT_EQ(CanonicalUuid("769C134D-07B8-4225-954A-B6CC5FFC320C"), want);
  EXPECT_EQ(CanonicalUuid("769c134d07b84225954ab6cc5ffc320c"), want);
  EXPECT_EQ(CanonicalUuid("{769c134d-07b8-4225-954a-b6cc5ffc320c}"), want);
  EXPECT_EQ(CanonicalUuid("urn:uuid:769c134d-07b8-4225-954a-b6cc5ffc320c"), want);
  EXPECT_FALSE(CanonicalUuid("urn:uuid:{769c134d-07b8-4225-954a-b6cc5ffc320c}"));
  EXPECT_FALSE(CanonicalUuid("not-a-uuid"));
  EXPECT_FALSE(CanonicalUuid("769c134d-07b8-4225-954a-b6cc5ffc320g"));
}

TEST(Canonical, Datetimes) {
  EXPECT_EQ(ParseDatetime("1970-01-01"), 0);
  EXPECT_EQ(ParseDatetime("2026-05-30T00:00:00Z"), 1780099200000);
  EXPECT_EQ(ParseDatetime("2026-05-30T02:00:00+02:00"), 1780099200000);
  EXPECT_EQ(ParseDatetime("2024-03-01T00:00:00.123Z"), 1709251200123);
  EXPECT_EQ(ParseDatetime("2024-03-01T00:00"), 1709251200000);
  EXPECT_FALSE(ParseDatetime("yesterday"));
  EXPECT_FALSE(ParseDatetime("2024-13-01"));
  EXPECT_EQ(FormatDatetime(1780099200000), "2026-05-30T00:00:00.000000000Z");
  EXPECT_EQ(FormatDatetime(1709251200123), "2024-03-01T00:00:00.123000000Z");
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(-1000), "1969-12-31T23:59:59Z");
}

TEST(Canonical, DatetimeTextsTakeTheFormTurbopufferReturns) {
  const std::string midnight = "2026-05-30T00:00:00.000000000Z";
  // Time zones: the same instant whatever offset it is written with.
  for (const char* in :
       {"2026-05-30T00:00:00Z", "2026-05-30T02:00:00+02:00", "2026-05-30T02:00:00+0200",
        "2026-05-30T02:00:00+02", "2026-05-29T19:30:00-04:30", "2026-05-30t00:00:00z",
        "2026-05-30 00:00:00Z", "2026-05-30", "2026-05-30T00:00", midnight.c_str(),
        "2026-05-30T00:00:00.000Z", "2026-05-30T00:00:00,000000000Z"}) {
    EXPECT_EQ(CanonicalDatetime(in), midnight) << in;
  }
  // Fractional seconds: milliseconds are kept; zero digits below them change nothing.
  EXPECT_EQ(CanonicalDatetime("2024-03-01T00:00:00.1Z"), "2024-03-01T00:00:00.100000000Z");
  EXPECT_EQ(CanonicalDatetime("2024-03-01T00:00:00.123Z"), "2024-03-01T00:00:00.123000000Z");
  EXPECT_EQ(CanonicalDatetime("2024-03-01T00:00:00.123000Z"), "2024-03-01T00:00:00.123000000Z");
  EXPECT_EQ(CanonicalDatetime("2024-03-01T00:00:00.999+01:00"), "2024-02-29T23:00:00.999000000Z");
  // An offset that moves the instant across a day, a month and a year.
  EXPECT_EQ(CanonicalDatetime("2025-01-01T00:30:00+01:00"), "2024-12-31T23:30:00.000000000Z");
  // Before the epoch.
  EXPECT_EQ(CanonicalDatetime("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500000000Z");
  EXPECT_EQ(CanonicalDatetime("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00.000000000Z");
  EXPECT_EQ(CanonicalDatetime("9999-12-31T23:59:59.999Z"), "9999-12-31T23:59:59.999000000Z");
  // Not certain, or no datetime at all.
  EXPECT_FALSE(CanonicalDatetime("2024-03-01T00:00:00.1234Z"));    // sub-millisecond digit
  EXPECT_FALSE(CanonicalDatetime("2024-03-01T00:00:00.000001Z"));  // sub-millisecond digit
  EXPECT_FALSE(CanonicalDatetime("2016-12-31T23:59:60Z"));         // leap second
  EXPECT_FALSE(CanonicalDatetime("2026-02-29"));                   // no such day
  EXPECT_FALSE(CanonicalDatetime("2026-04-31T00:00:00Z"));
  EXPECT_TRUE(CanonicalDatetime("2024-02-29"));                  // a leap year's day
  EXPECT_FALSE(CanonicalDatetime("9999-12-31T23:00:00-02:00"));  // year 10000
  EXPECT_FALSE(CanonicalDatetime("0000-01-01T00:00:00+01:00"));  // year -1
  for (const char* bad : {"", "yesterday", "2026-5-30", "2026-05-30T", "2026-05-30T24:00:00Z",
                          "2026-05-30T00:00:00.Z", "2026-05-30T00:00:00Zjunk", "20260530"}) {
    EXPECT_FALSE(CanonicalDatetime(bad)) << bad;
  }
  // The origin keeps ParseDatetime's older, lenient reading.
  EXPECT_EQ(ParseDatetime("2024-03-01T00:00:00.1234Z"), 1709251200123);
}

TEST(Canonical, AttributeTypeNames) {
  using K = AttributeType::Kind;
  EXPECT_EQ(ParseAttributeType("string"), (AttributeType{K::kString, false, 0}));
  EXPECT_EQ(ParseAttributeType("[]datetime"), (AttributeType{K::kDatetime, true, 0}));
  EXPECT_EQ(ParseAttributeType("[]uuid"), (AttributeType{K::kUuid, true, 0}));
  EXPECT_EQ(ParseAttributeType("uint"), (AttributeType{K::kUint, false, 0}));
  EXPECT_EQ(ParseAttributeType("[768]f32"), (AttributeType{K::kVectorF32, false, 768}));
  for (const char* other : {"[2]f16", "[8]i8", "{}f16", "[][2]f32", "[]f32", "[0]f32", "[x]f32",
                            "[]", "", "text", "[][]int", "Int"}) {
    EXPECT_EQ(ParseAttributeType(other), AttributeType{}) << other;
  }
}

TEST(Canonical, AttributeTypesOfASchema) {
  auto types = AttributeTypesOfSchema(boost::json::parse(R"({
    "id":{"type":"uuid"},"when":"datetime","tags":{"type":"[]string","filterable":true},
    "v":{"type":"[2]f32","ann":true},"odd":{"filterable":true},"n":7})"));
  ASSERT_EQ(types.size(), 3u);
  EXPECT_EQ(types.at("when").kind, AttributeType::Kind::kDatetime);
  EXPECT_TRUE(types.at("tags").array);
  EXPECT_EQ(types.at("v").dims, 2u);
  EXPECT_TRUE(AttributeTypesOfSchema(boost::json::parse("[1]")).empty());
  EXPECT_TRUE(AttributeTypesOfSchema(boost::json::value(nullptr)).empty());
}

// The text of `value` (JSON) written to an attribute of type `type`, as Turbopuffer returns it;
// "?" when that form is unknown, "=" when the value is returned as written.
std::string Form(std::string_view type, std::string_view value) {
  boost::json::value in = boost::json::parse(value);
  boost::json::value out;
  switch (CanonicalValue(ParseAttributeType(type), in, &out)) {
    case ValueForm::kCanonical:
      return "=";
    case ValueForm::kRewritten:
      EXPECT_NE(SerializeJson(out), SerializeJson(in)) << type << " " << value;
      return SerializeJson(out);
    case ValueForm::kUnknown:
      return "?";
  }
  return "";
}

TEST(Canonical, StringsBoolsAndUints) {
  EXPECT_EQ(Form("string", R"("2026-05-30T02:00:00+02:00")"), "=");
  EXPECT_EQ(Form("string", R"("769C134D-07B8-4225-954A-B6CC5FFC320C")"), "=");
  EXPECT_EQ(Form("string", "1"), "?");
  EXPECT_EQ(Form("bool", "true"), "=");
  EXPECT_EQ(Form("bool", "1"), "?");
  EXPECT_EQ(Form("uint", "0"), "=");
  EXPECT_EQ(Form("uint", "18446744073709551615"), "=");  // u64 max
  EXPECT_EQ(Form("uint", "-1"), "?");
  EXPECT_EQ(Form("uint", "1.0"), "?");  // not pinned
}

TEST(Canonical, Ints) {
  EXPECT_EQ(Form("int", "-7"), "=");
  EXPECT_EQ(Form("int", "9223372036854775807"), "=");   // i64 max
  EXPECT_EQ(Form("int", "-9223372036854775808"), "=");  // i64 min
  EXPECT_EQ(Form("int", "1.0"), "1");                   // integral floats are ints
  EXPECT_EQ(Form("int", "1e3"), "1000");
  EXPECT_EQ(Form("int", "2.5E1"), "25");
  EXPECT_EQ(Form("int", "-0.0"), "0");
  EXPECT_EQ(Form("int", "-9.223372036854775808e18"), "-9223372036854775808");
  EXPECT_EQ(Form("int", "9.223372036854775808e18"), "?");  // past i64
  EXPECT_EQ(Form("int", "9223372036854775808"), "?");      // past i64, as an integer
  EXPECT_EQ(Form("int", "1.5"), "?");
  EXPECT_EQ(Form("int", "1e300"), "?");
  EXPECT_EQ(Form("int", R"("1")"), "?");
}

TEST(Canonical, Floats) {
  EXPECT_EQ(Form("float", "1.5"), "=");
  EXPECT_EQ(Form("float", "1.0"), "=");
  EXPECT_EQ(Form("float", "1e-7"), "=");
  EXPECT_EQ(Form("float", "-0.0"), "=");  // negative zero stays negative
  EXPECT_EQ(Form("float", "1"), "1.0");   // integers are floats
  EXPECT_EQ(Form("float", "-3"), "-3.0");
  EXPECT_EQ(Form("float", "0"), "0.0");
  EXPECT_EQ(Form("float", "-0"), "0.0");
  EXPECT_EQ(Form("float", "9007199254740993"), "9007199254740992.0");  // f64 rounding
  EXPECT_EQ(Form("float", "18446744073709551615"), FormatDouble(18446744073709551615.0));
  EXPECT_EQ(Form("float", "true"), "?");
  // JSON has no NaN or infinities; the parser reads a literal past f64 as an infinity.
  EXPECT_EQ(Form("float", "1e400"), "?");
  EXPECT_EQ(Form("float", "-1e400"), "?");
  EXPECT_EQ(Form("[]float", "[1,1e400]"), "?");
  EXPECT_EQ(Form("int", "-1e400"), "?");
  // An integer literal past u64 is read as a float.
  EXPECT_EQ(Form("float", "18446744073709551616"), "=");
}

TEST(Canonical, DatetimeValues) {
  EXPECT_EQ(Form("datetime", R"("2026-05-30T02:00:00+02:00")"),
            R"("2026-05-30T00:00:00.000000000Z")");
  EXPECT_EQ(Form("datetime", R"("2026-05-30T00:00:00.000000000Z")"), "=");
  EXPECT_EQ(Form("datetime", R"("2026-05-30")"), R"("2026-05-30T00:00:00.000000000Z")");
  EXPECT_EQ(Form("datetime", R"("2026-05-30T00:00:00.0001Z")"), "?");
  EXPECT_EQ(Form("datetime", "1780099200000"), "?");  // epoch ms as a number: not pinned
  EXPECT_EQ(Form("datetime", R"("soon")"), "?");
}

TEST(Canonical, Uuids) {
  const std::string want = R"("769c134d-07b8-4225-954a-b6cc5ffc320c")";
  EXPECT_EQ(Form("uuid", want), "=");
  for (const char* in :
       {"769C134D-07B8-4225-954A-B6CC5FFC320C", "769c134d07b84225954ab6cc5ffc320c",
        "{769c134d-07b8-4225-954a-b6cc5ffc320c}", "urn:uuid:769c134d-07b8-4225-954a-b6cc5ffc320c",
        "URN:UUID:769C134D07B84225954AB6CC5FFC320C"}) {
    EXPECT_EQ(Form("uuid", std::string("\"") + in + "\""), want) << in;
  }
  EXPECT_EQ(Form("uuid", R"("urn:uuid:{769c134d-07b8-4225-954a-b6cc5ffc320c}")"), "?");
  EXPECT_EQ(Form("uuid", R"("not-a-uuid")"), "?");
  EXPECT_EQ(Form("uuid", "7"), "?");
}

TEST(Canonical, Arrays) {
  EXPECT_EQ(Form("[]int", "[1,2,3]"), "=");
  EXPECT_EQ(Form("[]int", "[1,2.0,3e0]"), "[1,2,3]");
  EXPECT_EQ(Form("[]int", "[1,2.5]"), "?");
  EXPECT_EQ(Form("[]float", "[1,0.5]"), "[1.0,0.5]");
  EXPECT_EQ(Form("[]string", R"(["a","b"])"), "=");
  EXPECT_EQ(Form("[]datetime", R"(["2026-05-30T00:00:00.000000000Z","2026-05-30T02:00:00+02:00"])"),
            R"(["2026-05-30T00:00:00.000000000Z","2026-05-30T00:00:00.000000000Z"])");
  EXPECT_EQ(Form("[]uuid", R"(["769C134D07B84225954AB6CC5FFC320C"])"),
            R"(["769c134d-07b8-4225-954a-b6cc5ffc320c"])");
  EXPECT_EQ(Form("[]uuid", R"(["769c134d-07b8-4225-954a-b6cc5ffc320c","x"])"), "?");
  EXPECT_EQ(Form("[]bool", "[true,false]"), "=");
  EXPECT_EQ(Form("[]int", "[]"), "=");
  EXPECT_EQ(Form("[]int", "1"), "?");      // a scalar for an array type
  EXPECT_EQ(Form("int", "[1]"), "?");      // an array for a scalar type
  EXPECT_EQ(Form("[]int", "[[1]]"), "?");  // nested
}

TEST(Canonical, F32Vectors) {
  EXPECT_EQ(Form("[2]f32", "[0.5,0.25]"), "=");
  EXPECT_EQ(Form("[2]f32", "[1,0]"), "[1.0,0.0]");
  // f64 values become the f32 they are stored as, printed in shortest f32 form.
  EXPECT_EQ(Form("[2]f32", "[0.1,0.30000000000000004]"), "[0.1,0.3]");
  EXPECT_EQ(Form("[1]f32", "[0.1000000001]"), "[0.1]");
  std::string bytes(8, '\0');
  const float f[2] = {1.0f, 0.7f};
  std::memcpy(bytes.data(), f, 8);
  EXPECT_EQ(Form("[2]f32", "\"" + Base64Encode(bytes) + "\""), "[1.0,0.7]");
  EXPECT_EQ(Form("[3]f32", "\"" + Base64Encode(bytes) + "\""), "?");  // dimensions differ
  EXPECT_EQ(Form("[3]f32", "[1,2]"), "?");
  EXPECT_EQ(Form("[1]f32", "[1e39]"), "?");  // no f32
  EXPECT_EQ(Form("[1]f32", R"(["a"])"), "?");
  EXPECT_EQ(Form("[2]f16", "[0.5,0.25]"), "?");  // stored as f16: its form is not pinned here
  EXPECT_EQ(Form("{}f16", R"({"1":0.5})"), "?");
}

TEST(Canonical, FormsIndependentOfType) {
  EXPECT_TRUE(FormIndependentOfType(boost::json::parse("true")));
  EXPECT_TRUE(FormIndependentOfType(boost::json::parse("[]")));
  for (const char* v : {R"("x")", "1", "1.5", "[1]", "{}", "null"}) {
    EXPECT_FALSE(FormIndependentOfType(boost::json::parse(v))) << v;
  }
}

}  // namespace
}  // namespace layer::tpuf
