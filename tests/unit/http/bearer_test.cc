#include "http/bearer.h"

#include <gtest/gtest.h>

namespace layer::http {
namespace {

TEST(ParseBearer, AcceptsOnlyWellFormedHeaders) {
  EXPECT_EQ(ParseBearer("Bearer abc").value_or(""), "abc");
  EXPECT_EQ(ParseBearer("bearer  abc ").value_or(""), "abc");
  EXPECT_FALSE(ParseBearer(""));
  EXPECT_FALSE(ParseBearer("Bearer"));
  EXPECT_FALSE(ParseBearer("Bearer "));
  EXPECT_FALSE(ParseBearer("Basic abc"));
  EXPECT_FALSE(ParseBearer("Bearer a b"));
}

}  // namespace
}  // namespace layer::http
