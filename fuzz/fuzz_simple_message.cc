// The fast parsers (http/simple_message.h) against Beast's: whatever ParseSimpleRequest or
// ParseSimpleResponse accepts, Beast's parser must accept with the same start line, fields (id,
// spelling, value, order), body and length. Input: a byte choosing the parser (even: request,
// odd: response), then the message bytes.
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/simple_message.h"

namespace {

namespace http = layer::http;
constexpr size_t kHeadLimit = 8 << 10;
constexpr uint64_t kBodyLimit = 64 << 10;

template <typename Message>
void ExpectSameFields(const Message& beast, const Message& simple) {
  if (beast.body() != simple.body() || beast.version() != simple.version() ||
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
}

template <typename Parser, typename Message>
const Message& BeastParse(Parser& parser, std::string_view in, size_t taken) {
  parser.header_limit(kHeadLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
  if (ec || !parser.is_done() || used != taken) __builtin_trap();
  return parser.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    http::Request simple;
    const size_t taken = http::ParseSimpleRequest(in, kHeadLimit, kBodyLimit, simple);
    if (taken == 0) return 0;
    http::RequestParser parser;
    const http::Request& beast = BeastParse<http::RequestParser, http::Request>(parser, in, taken);
    if (beast.method() != simple.method() || beast.target() != simple.target()) __builtin_trap();
    ExpectSameFields(beast, simple);
  } else {
    http::Response simple;
    const size_t taken = http::ParseSimpleResponse(in, kHeadLimit, kBodyLimit, simple);
    if (taken == 0) return 0;
    http::ResponseParser parser;
    const http::Response& beast =
        BeastParse<http::ResponseParser, http::Response>(parser, in, taken);
    if (beast.result_int() != simple.result_int() || beast.reason() != simple.reason()) {
      __builtin_trap();
    }
    ExpectSameFields(beast, simple);
  }
  return 0;
}
