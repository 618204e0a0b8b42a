// Warm pages (jobs/warm_page.h): any upstream query answer, at a few page limits.
#include <cstddef>
#include <cstdint>
#include <string>

#include "jobs/warm_page.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (size_t limit : {size_t{1}, size_t{3}, size_t{1000}}) {
    std::string body(reinterpret_cast<const char*>(data), size);
    auto page = layer::jobs::ParseWarmPage(std::move(body), limit);
    (void)page;
  }
  return 0;
}
