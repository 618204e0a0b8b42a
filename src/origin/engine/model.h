// The Turbopuffer document model the engine works in (tpuf/model/: ids, documents, schemas,
// text analysis, filters), shared with the gateway's cache scans (docs/design.md §7.8), named
// here as the engine's own.
#pragma once

#include "tpuf/model/api_error.h"
#include "tpuf/model/doc_model.h"
#include "tpuf/model/filter.h"
#include "tpuf/model/json_out.h"
#include "tpuf/model/schema.h"
#include "tpuf/model/text.h"

namespace layer::origin {
using namespace ::layer::tpuf::model;  // NOLINT(google-build-using-namespace)
}  // namespace layer::origin
