// serde-style descriptions of JSON values, for the live service's error texts. JSON output
// itself is common/json_text.h (re-exported here for the engine).
#pragma once

#include <boost/json.hpp>
#include <string>

#include "common/json_text.h"

namespace layer::tpuf::model {

namespace json = boost::json;

// serde's "invalid type" description of a JSON value: `map`, `a sequence`, `string "x"`,
// `boolean `true``, `integer `1``, `floating point `1.5``, `null`.
std::string SerdeUnexpected(const json::value& v);

// serde's rendering of a value inside filter errors: strings bare, arrays as "[a, b]".
std::string DisplayValue(const json::value& v);

}  // namespace layer::tpuf::model
