#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/gzip.h"

namespace layer {
namespace {

TEST(Base64, EncodesAndDecodes) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64EncodeUnpadded("fo"), "Zm8");
  EXPECT_EQ(*Base64Decode("Zm8="), "fo");
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");
  EXPECT_EQ(*Base64Decode("Zm9vYmFy"), "foobar");
  EXPECT_FALSE(Base64Decode("Zm9v!").ok());
  EXPECT_FALSE(Base64Decode("Z").ok());
}

TEST(Gzip, RoundTripsAndBoundsOutput) {
  std::string data(100000, 'x');
  auto gz = GzipCompress(data);
  ASSERT_TRUE(gz.ok());
  EXPECT_LT(gz->size(), 1000u);
  auto back = GzipDecompress(*gz, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  EXPECT_FALSE(GzipDecompress(*gz, 1000).ok());
  EXPECT_FALSE(GzipDecompress("not gzip", 1000).ok());
  EXPECT_FALSE(GzipDecompress(gz->substr(0, gz->size() / 2), 1 << 20).ok());
}

}  // namespace
}  // namespace layer
