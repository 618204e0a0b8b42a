// Helpers for simdjson's on-demand API, shared by the page parsers (warm_page, facet_page).
#pragma once

#include <simdjson.h>

namespace layer::jobs {

// Walks `v` to its end, checking that it is valid JSON (the on-demand API checks only what is
// read), nested at most 1000 deep (below simdjson's own limit). False on any error.
bool ValidateJsonValue(simdjson::ondemand::value v, int depth = 0);

}  // namespace layer::jobs
