// The server's fast request parser (http/simple_request.h) against Beast's: whatever
// ParseSimpleRequest accepts, Beast's request parser must accept with the same method, target,
// version, fields (id, spelling, value, order), body and length. Input: the request bytes.
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/simple_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = layer::http;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kHeadLimit = 8 << 10;
  constexpr uint64_t kBodyLimit = 64 << 10;
  http::Request simple;
  const size_t taken = http::ParseSimpleRequest(in, kHeadLimit, kBodyLimit, simple);
  if (taken == 0) return 0;
  http::RequestParser parser;
  parser.header_limit(kHeadLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (ec || !parser.is_done() || used != taken) __builtin_trap();
  const http::Request& beast = parser.get();
  if (beast.method() != simple.method() || beast.target() != simple.target() ||
      beast.version() != simple.version() || beast.body() != simple.body() ||
      beast.keep_alive() != simple.keep_alive()) {
    __builtin_trap();
  }
  auto a = beast.begin();
  auto b = simple.begin();
  for (; a != beast.end() && b != simple.end(); ++a, ++b) {
    if (a->name() != b->name() || a->name_string() != b->name_string() ||
        a->value() != b->value()) {
      __builtin_trap();
    }
  }
  if (a != beast.end() || b != simple.end()) __builtin_trap();
  return 0;
}
