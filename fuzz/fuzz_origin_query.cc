// The local origin's query and filter parsers (origin/engine): any query body against a seeded
// namespace (queries never write, so the engine's files stay as seeded).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <filesystem>
#include <memory>
#include <string>

#include "origin/engine/engine.h"

namespace {

layer::origin::Engine* engine = nullptr;

void Seed() {
  auto dir = std::filesystem::temp_directory_path() / ("layer-fuzz-origin-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  layer::origin::EngineOptions o;
  o.data_dir = dir.string();
  auto opened = layer::origin::Engine::Open(o);
  if (!opened.ok()) std::abort();
  engine = opened->release();
  const char* writes[] = {
      R"({"upsert_rows":[{"id":1,"title":"red shirt","price":19,"tags":["a","b"],"vector":[0.1,0.2]},)"
      R"({"id":2,"title":"blue jeans","price":49,"tags":["b"],"vector":[0.3,0.4]}],)"
      R"("distance_metric":"cosine_distance","schema":{"title":{"type":"string","full_text_search":true}}})",
  };
  for (const char* w : writes) {
    layer::origin::OriginRequest req{"POST", "/v2/namespaces/fz", "", "", w};
    auto res = engine->Handle(req);
    if (res.status != 200) {
      std::fprintf(stderr, "seeding the origin failed: %d %s\n", res.status, res.body.c_str());
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!engine) Seed();
  std::string_view body(reinterpret_cast<const char*>(data), size);
  layer::origin::OriginRequest query{"POST", "/v2/namespaces/fz/query", "", "", body};
  (void)engine->Handle(query);
  layer::origin::OriginRequest explain{"POST", "/v2/namespaces/fz/explain_query", "", "", body};
  (void)engine->Handle(explain);
  return 0;
}
