// Unit tests of the JSON text writer: serde_json number format and string escaping.
#include <gtest/gtest.h>

#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

#include "common/json_text.h"

namespace layer {
namespace {

namespace json = boost::json;

TEST(JsonText, NumbersPrintLikeServeJson) {
  EXPECT_EQ(FormatDouble(1.0), "1.0");
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(-2.5), "-2.5");
  EXPECT_EQ(FormatDouble(-0.0), "-0.0");
  EXPECT_EQ(FormatDouble(0.0), "0.0");
  EXPECT_EQ(FormatDouble(123456789.0), "123456789.0");
  EXPECT_EQ(FormatDouble(1.25e15), "1250000000000000.0");
  EXPECT_EQ(FormatDouble(1e15), "1000000000000000.0");  // up to 16 digits before the point
  EXPECT_EQ(FormatDouble(1e16), "1e16");
  EXPECT_EQ(FormatDouble(1e20), "1e20");
  EXPECT_EQ(FormatDouble(-1.5e300), "-1.5e300");
  EXPECT_EQ(FormatDouble(18446744073709551615.0), "1.8446744073709552e19");
  EXPECT_EQ(FormatDouble(9007199254740992.0), "9007199254740992.0");
  EXPECT_EQ(FormatDouble(12.34), "12.34");
  EXPECT_EQ(FormatDouble(0.0001), "0.0001");  // down to 1e-5 in plain decimals
  EXPECT_EQ(FormatDouble(0.00001234), "0.00001234");
  EXPECT_EQ(FormatDouble(0.000001), "1e-6");
  EXPECT_EQ(FormatDouble(1.5e-7), "1.5e-7");
  EXPECT_EQ(FormatDouble(5e-324), "5e-324");
  EXPECT_EQ(FormatDouble(1.7976931348623157e308), "1.7976931348623157e308");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(FormatDouble(F32AsPrintableDouble(0.7f)), "0.7");
  EXPECT_EQ(FormatDouble(static_cast<double>(0.7f)), "0.699999988079071");
  json::object o{{"i", -3}, {"u", uint64_t{18446744073709551615ull}}, {"s", "a\"\n💔"}};
  EXPECT_EQ(SerializeJson(o), "{\"i\":-3,\"u\":18446744073709551615,\"s\":\"a\\\"\\n💔\"}");
}

// Escaping skips clean 8-byte words; every special byte at every offset must still be escaped.
TEST(JsonText, EscapesSpecialBytesAtEveryOffset) {
  auto reference = [](std::string_view in) {
    std::string out = "\"";
    for (char c : in) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"') {
        out += "\\\"";
      } else if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\b') {
        out += "\\b";
      } else if (c == '\f') {
        out += "\\f";
      } else if (u < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", u);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  };
  const std::string specials = std::string("\"\\\n\x01\x1f\x7f\x80") + "\xf0\x9f\x92\x94" + " ";
  for (size_t len = 0; len < 40; ++len) {
    for (size_t pos = 0; pos < len; ++pos) {
      for (char sp : specials) {
        std::string s(len, 'a');
        s[pos] = sp;
        if (pos + 3 < len) s[pos + 3] = '\x1f';
        EXPECT_EQ(SerializeJson(json::value(s)), reference(s)) << len << " " << pos;
      }
    }
  }
}

}  // namespace
}  // namespace layer
