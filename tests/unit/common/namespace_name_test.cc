#include "common/namespace_name.h"

#include <gtest/gtest.h>

namespace layer {
namespace {

TEST(NamespaceName, AcceptsTurbopufferCharset) {
  EXPECT_EQ(CheckNamespaceName("products"), NamespaceNameError::kNone);
  EXPECT_EQ(CheckNamespaceName("a-b_c.d09"), NamespaceNameError::kNone);
  EXPECT_EQ(CheckNamespaceName(std::string(128, 'a')), NamespaceNameError::kNone);
}

TEST(NamespaceName, RejectsBadNames) {
  EXPECT_EQ(CheckNamespaceName(""), NamespaceNameError::kInvalidChars);
  EXPECT_EQ(CheckNamespaceName("."), NamespaceNameError::kInvalidChars);
  EXPECT_EQ(CheckNamespaceName(".."), NamespaceNameError::kInvalidChars);
  EXPECT_EQ(CheckNamespaceName("a/b"), NamespaceNameError::kInvalidChars);
  EXPECT_EQ(CheckNamespaceName("bad namespace"), NamespaceNameError::kInvalidChars);
  EXPECT_EQ(CheckNamespaceName(std::string(129, 'a')), NamespaceNameError::kTooLong);
}

TEST(NamespaceName, ErrorTextsMatchTurbopuffer) {
  EXPECT_EQ(NamespaceNameErrorText(NamespaceNameError::kInvalidChars, "x y"),
            "Invalid URL: Namespace contains invalid characters, must be [A-Za-z0-9-_.]");
  EXPECT_EQ(NamespaceNameErrorText(NamespaceNameError::kTooLong, "aaa"),
            "Invalid URL: Namespace `aaa` is too long, limit is currently 128 characters");
}

}  // namespace
}  // namespace layer
