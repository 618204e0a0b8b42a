// Opens the object store the configuration names (docs/design.md §7.3): the fs/ backend in
// `default_dir` when no URL is given, else the backend of the URL's scheme (object_store_url.h).
// Blocking (creates the directory of a file store; never contacts an S3 store). Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "snapshots/object_store.h"
#include "snapshots/s3/s3_object_store.h"

namespace layer::snapshots {

struct ObjectStoreSettings {
  std::string url;           // --object-store; "" = the fs/ backend in default_dir
  std::string default_dir;   // <data-dir>/objects, or --object-store-dir
  std::string s3_endpoint;   // --s3-endpoint; "" = AWS
  // --s3-region; "" = $AWS_REGION, else $AWS_DEFAULT_REGION, else us-east-1.
  std::string s3_region;
  S3Credentials s3_credentials;  // usually S3Credentials::FromEnvironment()
};

struct OpenedObjectStore {
  std::unique_ptr<ObjectStore> store;
  std::string description;  // for the start-up log; never holds a secret
};

// InvalidArgument (with what to write instead) for a bad URL or S3 setting; IoError when the
// directory of a file store cannot be created.
Result<OpenedObjectStore> OpenObjectStore(const ObjectStoreSettings& settings);

}  // namespace layer::snapshots
