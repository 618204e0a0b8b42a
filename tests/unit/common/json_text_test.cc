// Unit tests of the JSON text writer: serde_json number format and string escaping.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

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
  // Around the edges of plain decimals.
  EXPECT_EQ(FormatDouble(0.00001), "0.00001");
  EXPECT_EQ(FormatDouble(0.000012), "0.000012");
  EXPECT_EQ(FormatDouble(9.999999999999999e-6), "9.999999999999999e-6");
  EXPECT_EQ(FormatDouble(0.00012), "0.00012");
  EXPECT_EQ(FormatDouble(9999999999999998.0), "9999999999999998.0");
  EXPECT_EQ(FormatDouble(123456789012345.67), "123456789012345.67");
  EXPECT_EQ(FormatDouble(1.2345678901234567e16), "1.2345678901234568e16");
  EXPECT_EQ(FormatDouble(-1e-5), "-0.00001");
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

TEST(JsonText, ParsesDoublesExactly) {
  // Boost.JSON 1.81 reads these literals one ulp off; serde_json does not.
  for (const char* lit : {"1.6266288757324219", "0.11935319286735585", "2.1829489720880483e+41",
                          "1.3927926388013963e-143"}) {
    boost::system::error_code ec;
    json::value v = ParseJson(std::string("[") + lit + "]", ec);
    ASSERT_FALSE(ec) << lit;
    double want = 0;
    std::from_chars(lit, lit + std::strlen(lit), want);
    EXPECT_EQ(v.as_array()[0].as_double(), want) << lit;
  }
  // Numbers inside strings and keys are not literals; integers and out-of-range values stay.
  const std::string text =
      R"({"1.5":[1.6266288757324219,"x\"1.5\\",2,-9.355753898620605e0,18446744073709551615,)"
      R"(-0,1e400,-5],"b":{"c":0.11935319286735585}})";
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  ASSERT_FALSE(ec);
  const auto& a = v.at("1.5").as_array();
  EXPECT_EQ(FormatDouble(a[0].as_double()), "1.6266288757324219");
  EXPECT_EQ(a[2].as_int64(), 2);
  EXPECT_EQ(a[3].as_double(), -9.355753898620605);
  EXPECT_EQ(a[4].as_uint64(), 18446744073709551615ull);
  EXPECT_EQ(a[5].as_int64(), 0);
  EXPECT_TRUE(std::isinf(a[6].as_double()));
  EXPECT_EQ(a[7].as_int64(), -5);
  EXPECT_EQ(FormatDouble(v.at("b").at("c").as_double()), "0.11935319286735585");
  // Unparseable text fails as boost::json::parse does.
  (void)ParseJson("[1,", ec);
  EXPECT_TRUE(ec);
}

TEST(JsonText, RandomDoublesRoundTripThroughTheirShortestText) {
  std::mt19937_64 rng(7);
  std::string text = "[";
  std::vector<double> want;
  for (int i = 0; i < 20000; ++i) {
    double d;
    if (i % 2) {
      d = std::uniform_real_distribution<double>(-1, 1)(rng);
    } else {
      do {
        uint64_t bits = rng();
        std::memcpy(&d, &bits, sizeof d);
      } while (!std::isfinite(d));
    }
    want.push_back(d);
    if (i) text += ',';
    AppendDouble(d, &text);
  }
  text += ']';
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  ASSERT_FALSE(ec);
  ASSERT_EQ(v.as_array().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(v.as_array()[i].to_number<double>(), want[i]) << i;
  }
  EXPECT_EQ(SerializeJson(v), text);
}

// ParseJson trusts Boost.JSON's reading of literals of at most 15 significant digits whose power
// of ten, once they are an integer, is within ±22; this checks that it is exact.
TEST(JsonText, BoostReadsShortLiteralsExactly) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200000; ++i) {
    const int digits = 1 + static_cast<int>(rng() % 15);
    std::string m;
    for (int d = 0; d < digits; ++d) m += static_cast<char>('0' + rng() % 10);
    const int power = static_cast<int>(rng() % 45) - 22;
    const int len = static_cast<int>(m.size());
    const int point = static_cast<int>(rng() % (len + 1));
    std::string lit = m.substr(0, point);
    while (lit.size() > 1 && lit[0] == '0') lit.erase(0, 1);
    if (lit.empty()) lit = "0";
    if (point < len) lit += "." + m.substr(point);
    const int exponent = power + (len - point);
    if (exponent != 0 || rng() % 2) lit += (rng() % 2 ? "e" : "E") + std::to_string(exponent);
    if (rng() % 2) lit = "-" + lit;
    double want = 0;
    std::from_chars(lit.data(), lit.data() + lit.size(), want);
    ASSERT_EQ(json::parse(lit).to_number<double>(), want) << lit;
  }
}

TEST(JsonText, NumbersThatDoNotLineUpWithTheTextStayAsRead) {
  // Duplicate keys: Boost.JSON keeps one value, so the tree's numbers and the literals differ.
  const std::string text = R"({"a":"x","b":0.11935319286735585,"a":1.6266288757324219})";
  json::value read = json::parse(text);
  json::value v = read;
  EXPECT_FALSE(RestoreExactDoubles(text, &v));
  boost::system::error_code ec;
  EXPECT_EQ(ParseJson(text, ec), read);
  EXPECT_FALSE(ec);
}

}  // namespace
}  // namespace layer
