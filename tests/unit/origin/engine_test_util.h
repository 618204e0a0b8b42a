// Test helpers: an Engine over a fresh temp dir with an injectable clock, and terse request
// helpers returning status + parsed JSON.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "common/gzip.h"
#include "origin/engine/engine.h"

namespace layer::origin::testing {

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
  boost::json::value json;  // null if the body is not JSON
  std::vector<std::pair<std::string, std::string>> headers;

  // Convenience: the "error" message of an error body.
  std::string error() const {
    if (!json.is_object() || !json.as_object().contains("error")) return body;
    return std::string(json.as_object().at("error").as_string());
  }
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/origin_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen(int64_t index_lag_ms = 0) {
    engine_.reset();
    EngineOptions opts;
    opts.data_dir = dir_;
    opts.index_lag_ms = index_lag_ms;
    opts.now_ms = [this] { return now_ms_; };
    auto e = Engine::Open(std::move(opts));
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value();
  }

  Reply Do(std::string_view method, std::string_view path, std::string_view body = "",
           std::string_view query = "", std::string_view encoding = "") {
    OriginRequest req{method, path, query, encoding, body};
    OriginResponse r = engine_->Handle(req);
    Reply out;
    out.status = r.status;
    out.body = r.body;
    out.content_type = r.content_type;
    out.headers = r.headers;
    boost::system::error_code ec;
    out.json = boost::json::parse(r.body, ec);
    if (ec) out.json = nullptr;
    return out;
  }

  Reply Write(std::string_view ns, std::string_view body) {
    return Do("POST", "/v2/namespaces/" + std::string(ns), body);
  }
  Reply Query(std::string_view ns, std::string_view body) {
    return Do("POST", "/v2/namespaces/" + std::string(ns) + "/query", body);
  }
  // The "rows" array of a successful query, serialised compactly (for exact comparisons).
  std::string Rows(std::string_view ns, std::string_view body) {
    Reply r = Query(ns, body);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return r.body;
    return RawField(r.body, "rows");
  }

  // Extracts the raw text of a top-level field from a JSON object body (to check formatting).
  static std::string RawField(const std::string& body, std::string_view key) {
    boost::json::value v = boost::json::parse(body);
    (void)v;
    std::string needle = "\"" + std::string(key) + "\":";
    size_t pos = body.find(needle);
    if (pos == std::string::npos) return "";
    pos += needle.size();
    int depth = 0;
    bool in_str = false;
    size_t i = pos;
    for (; i < body.size(); ++i) {
      char c = body[i];
      if (in_str) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_str = false;
        continue;
      }
      if (c == '"')
        in_str = true;
      else if (c == '[' || c == '{')
        ++depth;
      else if (c == ']' || c == '}') {
        if (depth == 0) break;
        --depth;
        if (depth == 0) {
          ++i;
          break;
        }
      } else if (c == ',' && depth == 0)
        break;
    }
    return body.substr(pos, i - pos);
  }

  std::string dir_;
  int64_t now_ms_ = 1780000000000;  // 2026-05-28T...
  std::unique_ptr<Engine> engine_;
};

inline std::string GzipCompressForTest(const std::string& s) {
  auto r = GzipCompress(s);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::string();
}

// Fixture P0 (docs/origin.md) without the sparse vector, plus the sparse vector.
inline constexpr const char* kFixtureP0 = R"({"distance_metric":"cosine_distance",
 "schema":{"title":{"type":"string","fuzzy":true},
           "text":{"type":"string","full_text_search":true},
           "published_at":"datetime","tags":"[]string",
           "sparse_vector":{"type":"{}f16","sparse_knn":{"distance_metric":"dot_product"}}},
 "upsert_rows":[
  {"id":1,"vector":[1.0,0.0],"sparse_vector":{"0":1.0,"2":0.5},"category":"mammal","public":1,"title":"walrus den","text":"walrus narwhal arctic mammal","score":10,"tags":["arctic","mammal"],"published_at":"2026-05-30T00:00:00Z"},
  {"id":2,"vector":[0.0,1.0],"sparse_vector":{"1":1.0},"category":"fish","public":0,"title":"reef fish","text":"pufferfish clownfish swordfish","score":7,"tags":["fish"],"published_at":"2026-05-29T00:00:00Z"},
  {"id":3,"vector":[0.8,0.2],"sparse_vector":{"0":0.8,"2":0.2},"category":"mammal","public":1,"title":"quick walrus","text":"quick walrus sea mammal","score":5,"tags":["mammal","sea"],"published_at":"2026-05-31T00:00:00Z"}]})";

inline constexpr const char* kFixtureF = R"({"distance_metric":"cosine_distance",
 "schema":{"text":{"type":"string","full_text_search":true},"tokens":{"type":"[]string","full_text_search":{"tokenizer":"pre_tokenized_array"}},"name":{"type":"string","regex":true},"published_at":"datetime","tags":"[]string","scores":"[]int","sparse_vector":{"type":"{}f16","sparse_knn":{"distance_metric":"dot_product"}}},
 "upsert_rows":[
 {"id":1,"vector":[1,0],"sparse_vector":{"0":1,"2":0.5},"category":"mammal","public":1,"name":"alpha","text":"walrus narwhal arctic mammal","tokens":["walrus","narwhal","mammal"],"score":10,"tags":["arctic","mammal"],"scores":[1,5],"published_at":"2026-05-30T00:00:00Z"},
 {"id":2,"vector":[0,1],"sparse_vector":{"1":1},"category":"fish","public":0,"name":"bravo","text":"pufferfish clownfish swordfish","tokens":["pufferfish","clownfish","swordfish"],"score":7,"tags":["fish"],"scores":[3,7],"published_at":"2026-05-29T00:00:00Z"},
 {"id":3,"vector":[0.8,0.2],"sparse_vector":{"0":0.8,"2":0.2},"category":"mammal","public":1,"name":"charlie","text":"quick walrus sea mammal","tokens":["quick","walrus","mammal"],"score":5,"tags":["mammal","sea"],"scores":[2,9],"published_at":"2026-05-31T00:00:00Z"},
 {"id":4,"vector":[0.25,0.75],"sparse_vector":{"1":0.9,"3":0.4},"category":"bird","public":1,"name":"delta","text":"swift falcon sky hunter","tokens":["swift","falcon","sky"],"score":12,"tags":["bird","sky"],"scores":[4,8],"published_at":"2026-05-28T00:00:00Z"},
 {"id":5,"vector":[0.6,0.4],"sparse_vector":{"0":0.3,"2":0.9},"category":"mammal","public":0,"name":"echo","text":"brown fox quick den","tokens":["brown","fox","quick"],"score":3,"tags":["mammal","forest"],"scores":[0,3],"published_at":"2026-05-27T00:00:00Z"},
 {"id":6,"vector":[0.1,0.9],"sparse_vector":{"1":0.7,"3":0.1},"category":"fish","public":1,"name":"foxtrot","text":"reef fish coral clownfish","tokens":["reef","fish","coral"],"score":9,"tags":["fish","reef"],"scores":[6,9],"published_at":"2026-05-26T00:00:00Z"}]})";

}  // namespace layer::origin::testing
