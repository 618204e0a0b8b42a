// The stamp ceiling file (<data-dir>/stamp-ceiling, docs/design.md §4.2.6): a bound above every
// write stamp this data dir's gateway has given, persisted before a stamp passes it, so that a
// restarted gateway (after a clean stop or a kill -9) never stamps below an earlier one.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace layer::cli {

// The ceiling stored at `path`; 0 when there is none (a new data dir). A file that does not
// hold a number is an error: guessing low could order new writes before old ones.
Result<uint64_t> ReadStampCeiling(const std::string& path);

// Stores `ceiling` at `path` durably (a temporary file, fsync, rename, fsync of the directory).
Status WriteStampCeiling(const std::string& path, uint64_t ceiling);

}  // namespace layer::cli
