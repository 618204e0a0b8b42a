// JSON text in serde_json's number format, written straight into a string.
//
// Turbopuffer is a Rust service (serde_json + ryu): integers print as integers, floats in
// shortest round-trip form laid out as ryu does (plain decimals with a ".0" for integral values
// from 1e-5 up to below 1e16, "1e16", "1.5e-7" and "-1e300" beyond), and f32 values (vectors,
// scores) print in shortest *f32* digits ("0.7", not "0.699999988079071"; laid out by the f64
// rule, a difference from ryu's f32 rule below 1e-5 and from 1e13). Boost.JSON's own serializer
// prints "1.5E0", so every JSON body Layer writes (the local origin's answers, the gateway's
// rewritten bodies and cached documents) goes through these functions.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace layer {

// Serialises `v` compactly with the number rules above (doubles as f64 shortest).
std::string SerializeJson(const boost::json::value& v);
void AppendJson(const boost::json::value& v, std::string* out);

// Shortest f64 text of `d`, as serde_json prints it ("1.0", "0.1", "0.0001", "1e20", "1.5e-7").
// Non-finite values print as null.
std::string FormatDouble(double d);
void AppendDouble(double d, std::string* out);
// A JSON string literal (quoted, escaped) and an unsigned integer, appended to `out`.
void AppendJsonString(std::string_view s, std::string* out);
void AppendJsonUint(uint64_t v, std::string* out);

// The double whose shortest f64 text equals the shortest f32 text of `f`; storing it in a
// boost::json::value makes SerializeJson print the f32 form.
double F32AsPrintableDouble(float f);

// ---- Reading ----
//
// Boost.JSON before 1.83 may read a decimal of 16 or 17 significant digits one ulp away from the
// nearest double (a fifth of the shortest texts of random doubles, e.g. "0.11935319286735585"),
// while Turbopuffer (serde_json) reads it exactly. A value read so and written back would change:
// every JSON text whose numbers are written out again (a forwarded write, a cached row) is read
// with ParseJson.

// boost::json::parse, with every floating-point number read exactly (correctly rounded).
boost::json::value ParseJson(std::string_view text, boost::system::error_code& ec);

// Replaces the floating-point numbers of `v`, which must be what Boost.JSON read from exactly
// `text`, by the exact values of their literals. Returns false when the numbers of `v` do not
// line up with the literals of `text` (only an object with duplicate keys does that): some
// doubles may then already hold an exact value, none further than a few ulps from what was read
// (ParseJson reads the text again). Allocates nothing; scans `text` once.
bool RestoreExactDoubles(std::string_view text, boost::json::value* v);

}  // namespace layer
