#include "snapshots/open_object_store.h"

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "snapshots/fs/fs_object_store.h"
#include "snapshots/object_store_url.h"

namespace layer::snapshots {
namespace {

std::string RegionOrDefault(const std::string& flag) {
  if (!flag.empty()) return flag;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return v;
  }
  return "us-east-1";
}

Result<OpenedObjectStore> OpenFs(const std::string& dir) {
  auto fs = FsObjectStore::Open(dir);
  if (!fs.ok()) return fs.status();
  std::error_code ec;
  std::string where = std::filesystem::absolute(dir, ec).string();
  return OpenedObjectStore{std::move(*fs), fmt::format("directory {}", ec ? dir : where)};
}

}  // namespace

Result<OpenedObjectStore> OpenObjectStore(const ObjectStoreSettings& settings) {
  if (settings.url.empty()) return OpenFs(settings.default_dir);
  auto url = ParseObjectStoreUrl(settings.url);
  if (!url.ok()) return url.status();
  if (url->kind == ObjectStoreUrl::Kind::kFile) return OpenFs(url->path);
  S3Options o;
  o.bucket = url->bucket;
  o.prefix = url->prefix;
  o.endpoint = settings.s3_endpoint;
  o.region = RegionOrDefault(settings.s3_region);
  o.credentials = settings.s3_credentials;
  auto s3 = S3ObjectStore::Open(std::move(o));
  if (!s3.ok()) return s3.status();
  const S3Options& opts = (*s3)->options();
  std::string description = fmt::format(
      "{} (region {}, {}, {})", ToString(*url), opts.region,
      opts.endpoint.empty() ? std::string("AWS, virtual-hosted style")
                            : fmt::format("endpoint {}, path style", opts.endpoint),
      opts.credentials.empty() ? std::string("unsigned requests: no AWS_ACCESS_KEY_ID")
                               : fmt::format("access key {}…{}",
                                             opts.credentials.access_key_id.substr(0, 4),
                                             opts.credentials.session_token.empty()
                                                 ? ""
                                                 : " with a session token"));
  return OpenedObjectStore{std::move(*s3), std::move(description)};
}

}  // namespace layer::snapshots
