// Warm pages: cuts one upstream page of full rows (the body of a `query` answer with
// `include_attributes: true`, rows ranked by id) into what the cache stores.
//
// Attribute values are sliced from the page byte for byte, never re-serialised: a cached row says
// exactly what upstream said (number text, string escapes). What a cached row leaves out is the
// same as RowForCache (coherence/row_codec.h): `id`, `vector`, `vectors`, `$dist`, `$score` and every
// `_hevlayer_*` attribute; `_hevlayer_upserted_at` becomes the stamp.
//
// Every value that is kept is validated as JSON before it is copied. A page the fast path cannot
// take whole (malformed, or a number simdjson refuses such as 1e400) is parsed again with
// Boost.JSON and RowForCache, so such pages are handled exactly as before slicing existed; only a
// body that is not a JSON object with a `rows` array fails (InvalidArgument).
//
// Pure computation; never blocks. Thread-safe (each thread keeps its own parser buffers, sized to
// the largest page it has seen).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace layer::jobs {

struct WarmRow {
  enum class IdKind : uint8_t {
    kOther = 0,  // an id the cache cannot key (negative, fractional, not a number or string)
    kU64,
    kString,
  };
  IdKind id_kind = IdKind::kOther;
  uint64_t id_u64 = 0;          // kU64
  std::string id_text;          // kString: the id, unescaped
  std::string attributes_json;  // JSON object text, "{}" when the row has no other attribute
  uint64_t stamp = 0;           // `_hevlayer_upserted_at`, 0 when absent or not a u64
};

struct WarmPage {
  // The rows among the first `limit` of the answer that are objects with an `id`, in order.
  std::vector<WarmRow> rows;
  size_t returned = 0;  // rows in the answer, objects or not
  size_t taken = 0;     // min(returned, limit): the rows this page accounts for
  // The `id` of the last taken row as upstream wrote it (the next page starts after it); nullopt
  // when no row was taken or the last one has no id.
  std::optional<std::string> last_id_json;
};

// `body` is consumed (the parser needs padding past its end). InvalidArgument when the body is
// not a JSON object with a `rows` array.
Result<WarmPage> ParseWarmPage(std::string body, size_t limit);

// A look at a page before it is parsed: how many rows it has and the `id` of row `index` as
// upstream wrote it, found by skipping over the other rows (a fraction of a parse), so the next
// page's read can start before this one is parsed. Nothing is validated beyond what that needs:
// ParseWarmPage still decides about the page. nullopt when the body does not look like a page;
// `id_json` is nullopt when row `index` is missing or has no id. May add padding to `body`'s
// capacity (its contents stay as they are).
struct WarmPagePeek {
  size_t returned = 0;
  std::optional<std::string> id_json;
};
std::optional<WarmPagePeek> PeekWarmPage(std::string& body, size_t index);

// PeekWarmPage(body, peek_index), handed to `on_peek`, then ParseWarmPage(body, limit), with the
// same results as the two calls but one pass of simdjson's indexing over the body for both.
// `on_peek` runs before the parse, on the calling thread.
Result<WarmPage> PeekAndParseWarmPage(
    std::string body, size_t limit, size_t peek_index,
    const std::function<void(const std::optional<WarmPagePeek>&)>& on_peek);

}  // namespace layer::jobs
