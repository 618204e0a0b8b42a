// Route matching and percent-decoding (gateway/routes.h, common/url.h): any method and path,
// and any query string's parameters. Input: method byte, then "path?query".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/url.h"
#include "gateway/routes.h"
#include "gateway/hint_cache_warm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr layer::http::Verb kVerbs[] = {
      layer::http::Verb::get, layer::http::Verb::post, layer::http::Verb::put,
      layer::http::Verb::delete_, layer::http::Verb::patch, layer::http::Verb::head};
  const auto verb = kVerbs[data[0] % (sizeof kVerbs / sizeof kVerbs[0])];
  std::string_view target(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  (void)layer::gateway::MatchRoute(verb, path);
  for (const char* name : {"page_size", "include_attributes", "turbopuffer", "documents"}) {
    (void)layer::QueryParam(query, name);
  }
  (void)layer::gateway::IsOrchestratedHint(query);
  (void)layer::gateway::HintRequiredScope(query);
  std::string decoded;
  (void)layer::PercentDecode(path, &decoded);
  return 0;
}
