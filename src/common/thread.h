// Per-thread settings for the gateway's own worker threads (Linux; a no-op elsewhere).
#pragma once

#include <string_view>

namespace layer {

// Names the calling thread (at most 15 bytes are kept), as top, perf and gdb show it.
void NameCurrentThread(std::string_view name);

}  // namespace layer
