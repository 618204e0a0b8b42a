#include "http/errors.h"

#include <gtest/gtest.h>

namespace layer::http {
namespace {

TEST(ErrorEnvelope, HasKindMessageAndJsonContentType) {
  auto r = MakeError(Code::unprocessable_entity, "validation_error", "bad \"thing\"");
  EXPECT_EQ(r.result_int(), 422);
  EXPECT_EQ(r[Field::content_type], "application/json");
  EXPECT_EQ(r.body(), R"({"error":"validation_error","message":"bad \"thing\""})");
}

TEST(ErrorEnvelope, CarriesExtraFields) {
  auto r = MakeError(Code::service_unavailable, "cache_cold", "cold",
                     boost::json::object{{"cache_state", "cold"}});
  EXPECT_EQ(r.body(), R"({"error":"cache_cold","message":"cold","cache_state":"cold"})");
}

TEST(ErrorEnvelope, PlainText) {
  auto r = MakeText(Code::bad_request, "Invalid URL");
  EXPECT_EQ(r[Field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(r.body(), "Invalid URL");
}

}  // namespace
}  // namespace layer::http
