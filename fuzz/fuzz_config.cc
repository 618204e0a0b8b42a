// Configuration values (common/config.h): durations, gateway key lists, host:port, auth modes,
// connection strings to redact.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)layer::ParseDurationMs(text);
  (void)layer::ParseGatewayKeys(text);
  (void)layer::ParseAuthMode(text);
  std::string host;
  uint16_t port = 0;
  (void)layer::ParseHostPort(text, &host, &port);
  (void)layer::RedactConnectionString(text);
  return 0;
}
