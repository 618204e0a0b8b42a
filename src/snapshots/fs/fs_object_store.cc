#include "snapshots/fs/fs_object_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace layer::snapshots {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStaging = ".staging";

Status Errno(std::string_view what, const std::string& path, int err) {
  return Status::IoError(fmt::format("fs object store: {} {}: {}", what, path, strerror(err)),
                         err == EINTR || err == EAGAIN);
}

// fsyncs a directory so a rename or link into it is durable.
Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open dir", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync dir", dir, err);
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

Status FsObjectStore::ValidateKey(std::string_view key) {
  if (Status st = CheckObjectKey(key); !st.ok()) return st;
  const std::string_view first = key.substr(0, key.find('/'));
  if (first == kStaging) return Status::InvalidArgument("object key is reserved");
  return Status::Ok();
}

Result<std::unique_ptr<FsObjectStore>> FsObjectStore::Open(std::string root) {
  if (root.empty()) return Status::InvalidArgument("fs object store: empty root");
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::error_code ec;
  fs::create_directories(fs::path(root) / kStaging, ec);
  if (ec) return Status::IoError("fs object store: mkdir " + root + ": " + ec.message());
  return std::unique_ptr<FsObjectStore>(new FsObjectStore(std::move(root)));
}

Result<std::string> FsObjectStore::WriteTemp(std::string_view bytes) {
  std::string path = root_ + "/" + std::string(kStaging) + "/tmp-XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) return Errno("create temp", path, errno);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(path.c_str());
      return Errno("write", path, err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return Errno("fsync", path, err);
  }
  ::close(fd);
  return path;
}

Status FsObjectStore::MakeParents(std::string_view key) {
  size_t slash = key.rfind('/');
  if (slash == std::string_view::npos) return Status::Ok();
  std::error_code ec;
  fs::path dir = fs::path(root_) / std::string(key.substr(0, slash));
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("fs object store: mkdir " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

Status FsObjectStore::Put(std::string_view key, std::string_view bytes) {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  if (Status st = MakeParents(key); !st.ok()) return st;
  auto tmp = WriteTemp(bytes);
  if (!tmp.ok()) return tmp.status();
  std::string target = root_ + "/" + std::string(key);
  if (::rename(tmp->c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp->c_str());
    return Errno("rename to", target, err);
  }
  return SyncDir(ParentOf(target));
}

Result<bool> FsObjectStore::PutIfAbsent(std::string_view key, std::string_view bytes) {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  if (Status st = MakeParents(key); !st.ok()) return st;
  auto tmp = WriteTemp(bytes);
  if (!tmp.ok()) return tmp.status();
  std::string target = root_ + "/" + std::string(key);
  // link() never replaces an existing name: the atomic "if absent".
  int rc = ::link(tmp->c_str(), target.c_str());
  int err = errno;
  ::unlink(tmp->c_str());
  if (rc != 0) {
    if (err == EEXIST) return false;
    return Errno("link to", target, err);
  }
  if (Status st = SyncDir(ParentOf(target)); !st.ok()) return st;
  return true;
}

Result<std::string> FsObjectStore::Get(std::string_view key) {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  std::string path = root_ + "/" + std::string(key);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::NotFound(fmt::format("object {} not found", key));
    }
    return Errno("open", path, err);
  }
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      // A directory is not an object.
      if (err == EISDIR) return Status::NotFound(fmt::format("object {} not found", key));
      return Errno("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::vector<std::string>> FsObjectStore::List(std::string_view prefix) {
  // Walk only the deepest directory the prefix names, when that directory is a valid key path.
  std::string start_rel;
  size_t slash = prefix.rfind('/');
  if (slash != std::string_view::npos && slash > 0 && ValidateKey(prefix.substr(0, slash)).ok()) {
    start_rel = std::string(prefix.substr(0, slash));
  }
  fs::path start = start_rel.empty() ? fs::path(root_) : fs::path(root_) / start_rel;
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(start, ec)) return out;
  const fs::path staging = fs::path(root_) / kStaging;
  fs::recursive_directory_iterator it(start, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Status::IoError("fs object store: list " + start.string() + ": " + ec.message());
  const size_t root_len = root_ == "/" ? 1 : root_.size() + 1;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IoError("fs object store: list: " + ec.message());
    const fs::directory_entry& e = *it;
    if (e.path() == staging) {
      it.disable_recursion_pending();
      continue;
    }
    if (!e.is_regular_file(ec)) continue;
    std::string rel = e.path().string().substr(root_len);
    if (rel.compare(0, prefix.size(), prefix) == 0) out.push_back(std::move(rel));
  }
  if (ec) return Status::IoError("fs object store: list: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Status FsObjectStore::Delete(std::string_view key) {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  std::string path = root_ + "/" + std::string(key);
  if (::unlink(path.c_str()) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status::Ok();
    return Errno("unlink", path, err);
  }
  return Status::Ok();
}

}  // namespace layer::snapshots
