// Unit tests of the document model's building blocks (used by the local origin's engine and by
// cache scans): ids, number formatting, tokenising, stemming, globbing and value ordering.
#include <gtest/gtest.h>

#include "tpuf/model/doc_model.h"
#include "tpuf/model/filter.h"
#include "tpuf/model/json_out.h"
#include "tpuf/model/schema.h"
#include "tpuf/model/text.h"

namespace layer::tpuf::model {
namespace {

TEST(DocModel, IdConformance) {
  DocId id = std::string("769C134D07B84225954AB6CC5FFC320C");
  EXPECT_FALSE(ConformId(IdType::kUuid, &id));
  EXPECT_EQ(std::get<std::string>(id), "769c134d-07b8-4225-954a-b6cc5ffc320c");
  DocId n = uint64_t{18446744073709551615ull};
  EXPECT_FALSE(ConformId(IdType::kUint, &n));
  EXPECT_TRUE(ConformId(IdType::kString, &n));
  DocId raw;
  EXPECT_TRUE(ParseRawId(json::value(7), &raw));
  EXPECT_FALSE(ParseRawId(json::value(-1), &raw));
  EXPECT_FALSE(ParseRawId(json::value(1.5), &raw));
  EXPECT_FALSE(ParseRawId(json::value(true), &raw));
}

TEST(JsonOut, SerdeDescriptions) {
  EXPECT_EQ(SerdeUnexpected(json::object{}), "map");
  EXPECT_EQ(SerdeUnexpected(json::array{}), "sequence");
  EXPECT_EQ(SerdeUnexpected(json::value("bad")), "string \"bad\"");
  EXPECT_EQ(SerdeUnexpected(json::value(true)), "boolean `true`");
  EXPECT_EQ(SerdeUnexpected(json::value(1)), "integer `1`");
  EXPECT_EQ(SerdeUnexpected(json::value(1.5)), "floating point `1.5`");
  EXPECT_EQ(DisplayValue(json::array{"a", "b"}), "[a, b]");
  EXPECT_EQ(DisplayValue(json::value(1)), "1");
}

TEST(Text, TokenizerAndStopwords) {
  FtsConfig cfg;
  EXPECT_EQ(TokenizeText("Quick, brown-fox's DEN!", cfg),
            (std::vector<std::string>{"quick", "brown", "fox", "s", "den"}));
  cfg.remove_stopwords = true;
  EXPECT_EQ(TokenizeText("the fox is quick and brown", cfg),
            (std::vector<std::string>{"fox", "quick", "brown"}));
  cfg.case_sensitive = true;
  EXPECT_EQ(TokenizeText("Fox", cfg), (std::vector<std::string>{"Fox"}));
  FtsConfig pre;
  pre.tokenizer = "pre_tokenized_array";
  EXPECT_EQ(TokenizeValue(json::array{"A b", "c"}, pre), (std::vector<std::string>{"A b", "c"}));
}

TEST(Text, PorterStemmer) {
  EXPECT_EQ(PorterStem("jumping"), "jump");
  EXPECT_EQ(PorterStem("jumped"), "jump");
  EXPECT_EQ(PorterStem("walruses"), "walrus");
  EXPECT_EQ(PorterStem("mammals"), "mammal");
  EXPECT_EQ(PorterStem("caresses"), "caress");
  EXPECT_EQ(PorterStem("ponies"), "poni");
  EXPECT_EQ(PorterStem("relational"), "relat");
  EXPECT_EQ(PorterStem("hopping"), "hop");
  EXPECT_EQ(PorterStem("filing"), "file");
  EXPECT_EQ(PorterStem("happy"), "happi");
  EXPECT_EQ(PorterStem("generalizations"), "gener");
  EXPECT_EQ(PorterStem("a"), "a");
}

TEST(Text, Bm25MatchesLiveValues) {  // B-01 arithmetic
  FtsConfig cfg;
  std::vector<std::vector<std::string>> docs = {TokenizeText("walrus narwhal arctic mammal", cfg),
                                                TokenizeText("pufferfish clownfish swordfish", cfg),
                                                TokenizeText("quick walrus sea mammal", cfg)};
  std::vector<bool> has(3, true);
  Bm25Scorer scorer(cfg, docs, has, TokenizeText("quick walrus", cfg), false);
  EXPECT_NEAR(scorer.Score(2), 1.3988, 1e-4);
  EXPECT_NEAR(scorer.Score(0), 0.4532, 1e-4);
  EXPECT_EQ(scorer.Score(1), 0);
}

TEST(Filter, Glob) {
  EXPECT_TRUE(GlobMatch("c*", "charlie", false));
  EXPECT_FALSE(GlobMatch("C*", "charlie", false));
  EXPECT_TRUE(GlobMatch("C*", "charlie", true));
  EXPECT_TRUE(GlobMatch("a?c", "abc", false));
  EXPECT_TRUE(GlobMatch("[a-c]x", "bx", false));
  EXPECT_FALSE(GlobMatch("[!a-c]x", "bx", false));
  EXPECT_TRUE(GlobMatch("*.txt", "notes.txt", false));
  EXPECT_FALSE(GlobMatch("*.txt", "notes.txt.bak", false));
  EXPECT_TRUE(GlobMatch("**", "", false));
}

TEST(Schema, DecodesVectorsOfNumbersOrBase64) {
  std::vector<float> v;
  ASSERT_TRUE(DecodeVector(boost::json::parse("[1, 2.5]"), &v));
  EXPECT_EQ(v, (std::vector<float>{1.0f, 2.5f}));
  ASSERT_TRUE(DecodeVector(boost::json::value("AACAPwAAIEA="), &v));  // 1.0f, 2.5f
  EXPECT_EQ(v, (std::vector<float>{1.0f, 2.5f}));
  // Found by fuzz_origin_query (rank_by ["vector", "ANN", ""]): no bytes, no copy from null.
  ASSERT_TRUE(DecodeVector(boost::json::value(""), &v));
  EXPECT_TRUE(v.empty());
  EXPECT_FALSE(DecodeVector(boost::json::value("AAA="), &v));  // not a multiple of 4 bytes
  EXPECT_FALSE(DecodeVector(boost::json::parse("[1, \"x\"]"), &v));
}

TEST(DocModel, ValueOrder) {
  EXPECT_LT(CompareValues(json::value(nullptr), json::value(false)), 0);
  EXPECT_LT(CompareValues(json::value(-1), json::value(uint64_t{18446744073709551615ull})), 0);
  EXPECT_EQ(CompareValues(json::value(2), json::value(2.0)), 0);
  EXPECT_LT(CompareValues(json::value(1.5), json::value(2)), 0);
  EXPECT_LT(CompareValues(json::value("a"), json::value("b")), 0);
  EXPECT_LT(CompareValues(json::array{1, 2}, json::array{1, 3}), 0);
}

}  // namespace
}  // namespace layer::tpuf::model

#include "common/json_text.h"

namespace layer::tpuf::model {
namespace {

TEST(JsonIn, RestoresExactDoubles) {
  // Boost.JSON 1.81 parses this literal one ulp off; serde_json does not.
  std::string text = R"({"a":[1.6266288757324219,"x\"1.5",2,-9.355753898620605e0],"b":{"c":0.1}})";
  json::value v = json::parse(text);
  ASSERT_TRUE(RestoreExactDoubles(text, &v));
  EXPECT_EQ(v.at("a").at(0).as_double(), 1.6266288757324219);
  EXPECT_EQ(v.at("a").at(3).as_double(), -9.355753898620605);
  EXPECT_EQ(FormatDouble(v.at("a").at(0).as_double()), "1.6266288757324219");
  EXPECT_EQ(v.at("a").at(2).as_int64(), 2);
  EXPECT_EQ(v.at("b").at("c").as_double(), 0.1);
}

}  // namespace
}  // namespace layer::tpuf::model
