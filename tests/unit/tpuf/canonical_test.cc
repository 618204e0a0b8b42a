#include "tpuf/canonical.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace layer::tpuf
