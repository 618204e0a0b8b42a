#include "http/message.h"

#include <gtest/gtest.h>

namespace layer::http {
namespace {

TEST(FieldValue, AnswersAsBeastsLookupDoes) {
  Request req{Verb::post, "/q", 11};
  req.insert("X-Request-Id", "first");
  req.insert(Field::content_type, "application/json");
  req.insert("x-request-id", "second");
  req.insert(Field::authorization, "Bearer a");
  req.insert("AUTHORIZATION", "Bearer b");  // Beast knows the name in any case
  for (Field id : {Field::content_type, Field::authorization, Field::host, Field::user_agent}) {
    EXPECT_EQ(FieldValue(req, id), req[id]) << bhttp::to_string(id);
  }
  EXPECT_EQ(FieldValue(req, Field::authorization), "Bearer a");  // the first in order
  for (std::string_view name : {"x-request-id", "X-REQUEST-ID", "authorization", "x-absent"}) {
    EXPECT_EQ(FieldValue(req, name), req[name]) << name;
  }
  EXPECT_EQ(FieldValue(req, "X-REQUEST-ID"), "first");
  EXPECT_EQ(FieldValue(req, Field::host), "");
}

}  // namespace
}  // namespace layer::http
