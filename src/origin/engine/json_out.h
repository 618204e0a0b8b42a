// JSON output in the live service's number format, and serde-style descriptions of JSON values.
//
// Turbopuffer is a Rust service (serde_json + ryu): integers print as integers, floats in
// shortest round-trip form with a ".0" for integral values, and f32 values (vectors, scores)
// print in shortest *f32* form ("0.7", not "0.699999988079071"). Boost.JSON's own serializer
// prints "1.5E0", so responses are always written through SerializeJson.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace layer::origin {

namespace json = boost::json;

// Serialises `v` compactly with the number rules above (doubles as f64 shortest).
std::string SerializeJson(const json::value& v);
void AppendJson(const json::value& v, std::string* out);

// Shortest f64 text of `d` ("1.0", "0.1", "1e+20"). Non-finite values print as null.
std::string FormatDouble(double d);
void AppendDouble(double d, std::string* out);
// A JSON string literal (quoted, escaped) and an unsigned integer, appended to `out`.
void AppendJsonString(std::string_view s, std::string* out);
void AppendJsonUint(uint64_t v, std::string* out);

// The double whose shortest f64 text equals the shortest f32 text of `f`; storing it in a
// json::value makes SerializeJson print the f32 form.
double F32AsPrintableDouble(float f);

// serde's "invalid type" description of a JSON value: `map`, `a sequence`, `string "x"`,
// `boolean `true``, `integer `1``, `floating point `1.5``, `null`.
std::string SerdeUnexpected(const json::value& v);

// serde's rendering of a value inside filter errors: strings bare, arrays as "[a, b]".
std::string DisplayValue(const json::value& v);

}  // namespace layer::origin
