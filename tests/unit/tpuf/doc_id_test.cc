#include "tpuf/doc_id.h"

#include <gtest/gtest.h>

namespace layer::tpuf {
namespace {

constexpr char kCanonical[] = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

TEST(DocIdTest, U64RoundTrip) {
  for (uint64_t v : {0ull, 7ull, 255ull, 256ull, 18446744073709551615ull}) {
    DocId id = DocId::U64(v);
    EXPECT_EQ(id.type, IdType::kU64);
    EXPECT_EQ(id.bytes.size(), 8u);
    EXPECT_EQ(id.as_u64(), v);
    EXPECT_EQ(id.ToText(), std::to_string(v));
    EXPECT_EQ(id.ToJson(), std::to_string(v));
  }
  EXPECT_EQ(DocId::U64(0x0102030405060708ull).bytes,
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
}

TEST(DocIdTest, StringRoundTripAndJsonEscaping) {
  DocId id = DocId::String("doc-1");
  EXPECT_EQ(id.type, IdType::kString);
  EXPECT_EQ(id.ToText(), "doc-1");
  EXPECT_EQ(id.ToJson(), "\"doc-1\"");
  EXPECT_EQ(DocId::String("a\"b\\c\n\x01").ToJson(), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(DocId::String("caf\xc3\xa9").ToJson(), "\"caf\xc3\xa9\"");
}

TEST(DocIdTest, UuidAcceptsTheFourFormsInAnyCase) {
  const char* forms[] = {
      "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
      "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
      "f81d4fae7dec11d0a76500a0c91e6bf6",
      "F81D4FAE7DEC11D0A76500A0C91E6BF6",
      "{f81d4fae-7dec-11d0-a765-00a0c91e6bf6}",
      "{F81D4FAE-7dec-11d0-a765-00a0c91e6bf6}",
      "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
      "URN:UUID:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6",
  };
  for (const char* f : forms) {
    Result<DocId> id = DocId::Uuid(f);
    ASSERT_TRUE(id.ok()) << f;
    EXPECT_EQ(id->type, IdType::kUuid);
    EXPECT_EQ(id->bytes.size(), 16u);
    EXPECT_EQ(id->ToText(), kCanonical) << f;
    EXPECT_EQ(id->ToJson(), std::string("\"") + kCanonical + "\"");
    EXPECT_EQ(*id, *DocId::Uuid(kCanonical));
  }
  EXPECT_EQ(DocId::Uuid("00010203-0405-0607-0809-0a0b0c0d0e0f")->bytes,
            std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
}

TEST(DocIdTest, UuidRejectsMalformedText) {
  const char* bad[] = {
      "",
      "f81d4fae-7dec-11d0-a765-00a0c91e6bf",    // short
      "f81d4fae-7dec-11d0-a765-00a0c91e6bf66",  // long
      "f81d4fae7dec-11d0-a765-00a0c91e6bf6a",   // hyphens misplaced
      "g81d4fae-7dec-11d0-a765-00a0c91e6bf6",   // not hex
      "{f81d4fae-7dec-11d0-a765-00a0c91e6bf6",  // unbalanced brace
      "urn:uuid:{f81d4fae-7dec-11d0-a765-00a0c91e6bf6}",
      "urn:uuid:",
      "f81d4fae 7dec 11d0 a765 00a0c91e6bf6",
  };
  for (const char* b : bad) {
    Result<DocId> id = DocId::Uuid(b);
    EXPECT_FALSE(id.ok()) << b;
    EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument) << b;
  }
}

TEST(DocIdTest, TypesNeverCompareEqual) {
  DocId u = DocId::U64(7);
  DocId s = DocId::String("7");
  DocId raw = DocId::String(u.bytes);  // same bytes as the u64, different type
  DocId uuid = *DocId::Uuid("00000000-0000-0000-0000-000000000007");
  EXPECT_NE(u, s);
  EXPECT_NE(u, raw);
  EXPECT_NE(u, uuid);
  EXPECT_NE(s, uuid);
  EXPECT_EQ(u.ToText(), s.ToText());  // the same text ...
  EXPECT_NE(u.ToJson(), s.ToJson());  // ... but not the same JSON
}

}  // namespace
}  // namespace layer::tpuf
