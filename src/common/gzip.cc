#include "common/gzip.h"

#include <zlib.h>

namespace layer {

Result<std::string> GzipDecompress(std::string_view compressed, size_t max_out) {
  z_stream zs{};
  // 16 + MAX_WBITS: gzip wrapper only.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return Status::Internal("inflateInit2 failed");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  char buf[64 * 1024];
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::InvalidArgument("invalid gzip body");
    }
    size_t produced = sizeof(buf) - zs.avail_out;
    if (out.size() + produced > max_out) {
      inflateEnd(&zs);
      return Status::InvalidArgument("decompressed body too large");
    }
    out.append(buf, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another gzip member follows.
      if (inflateReset(&zs) != Z_OK) {
        inflateEnd(&zs);
        return Status::InvalidArgument("invalid gzip body");
      }
      continue;
    }
    if (zs.avail_in == 0 && produced == 0) {
      inflateEnd(&zs);
      return Status::InvalidArgument("truncated gzip body");
    }
  }
  inflateEnd(&zs);
  return out;
}

Result<std::string> GzipCompress(std::string_view data, int level) {
  z_stream zs{};
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status::Internal("deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Status::Internal("deflate failed");
  out.resize(zs.total_out);
  return out;
}

}  // namespace layer
