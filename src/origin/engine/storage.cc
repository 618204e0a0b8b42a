#include "origin/engine/storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace layer::origin {
namespace {

constexpr char kLogName[] = "wal.log";
constexpr char kTmpName[] = "wal.log.tmp";

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno), true);
}

Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("open " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync " + path);
  return Status::Ok();
}

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("write");
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

std::string Frame(std::string_view payload) {
  std::string out;
  out.resize(8);
  uint32_t len = static_cast<uint32_t>(payload.size());
  uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size())));
  for (int i = 0; i < 4; ++i) {
    out[i] = static_cast<char>((len >> (8 * i)) & 0xFF);
    out[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  }
  out.append(payload);
  return out;
}

uint32_t ReadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

Status EnsureDir(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return Status::Ok();
  std::string parent = Parent(path);
  if (parent != path) {
    Status s = EnsureDir(parent);
    if (!s.ok()) return s;
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + path);
  return FsyncPath(parent);
}

std::vector<std::string> ListSubdirs(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::stat((path + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(name);
  }
  ::closedir(d);
  return out;
}

NamespaceLog::~NamespaceLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<NamespaceLog>> NamespaceLog::Open(
    const std::string& dir, bool create,
    const std::function<bool(std::string_view payload)>& apply) {
  std::string path = dir + "/" + kLogName;
  if (create) {
    Status s = EnsureDir(dir);
    if (!s.ok()) return s;
  }
  // A leftover temp file from an interrupted compaction is garbage.
  ::unlink((dir + "/" + kTmpName).c_str());
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no log in " + dir);
    return Errno("open " + path);
  }
  if (create) {
    Status s = FsyncPath(dir);
    if (!s.ok()) {
      ::close(fd);
      return s;
    }
  }
  std::string data;
  char buf[1 << 16];
  while (true) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return Errno("read " + path);
    }
    if (r == 0) break;
    data.append(buf, static_cast<size_t>(r));
  }
  uint64_t good = 0;
  uint64_t records = 0;
  while (good + 8 <= data.size()) {
    uint32_t len = ReadU32(data.data() + good);
    uint32_t crc = ReadU32(data.data() + good + 4);
    if (good + 8 + len > data.size()) break;
    std::string_view payload(data.data() + good + 8, len);
    uint32_t actual = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(len)));
    if (actual != crc || !apply(payload)) break;
    good += 8 + len;
    ++records;
  }
  if (good != data.size()) {
    if (::ftruncate(fd, static_cast<off_t>(good)) != 0 || ::fdatasync(fd) != 0) {
      ::close(fd);
      return Errno("truncate " + path);
    }
  }
  if (::lseek(fd, static_cast<off_t>(good), SEEK_SET) < 0) {
    ::close(fd);
    return Errno("seek " + path);
  }
  return std::unique_ptr<NamespaceLog>(new NamespaceLog(dir, fd, good, records));
}

Status NamespaceLog::Append(std::string_view payload) {
  std::string framed = Frame(payload);
  Status s = WriteAll(fd_, framed.data(), framed.size());
  if (s.ok() && ::fdatasync(fd_) != 0) s = Errno("fdatasync");
  if (!s.ok()) {
    // Drop any partial record so the log stays a clean prefix of acknowledged writes.
    if (::ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
      ::lseek(fd_, static_cast<off_t>(size_), SEEK_SET);
    }
    return s;
  }
  size_ += framed.size();
  ++records_;
  return Status::Ok();
}

Status NamespaceLog::Rewrite(std::string_view payload) {
  std::string tmp = dir_ + "/" + kTmpName;
  std::string path = dir_ + "/" + kLogName;
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open " + tmp);
  std::string framed = Frame(payload);
  Status s = WriteAll(fd, framed.data(), framed.size());
  if (s.ok() && ::fdatasync(fd) != 0) s = Errno("fdatasync " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Errno("rename " + tmp);
  if (s.ok()) s = FsyncPath(dir_);
  if (!s.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd_);
  fd_ = fd;
  ::lseek(fd_, 0, SEEK_END);
  size_ = framed.size();
  records_ = 1;
  return Status::Ok();
}

Status NamespaceLog::Destroy() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  std::string path = dir_ + "/" + kLogName;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink " + path);
  Status s = FsyncPath(dir_);
  if (!s.ok()) return s;
  ::rmdir(dir_.c_str());
  return FsyncPath(Parent(dir_));
}

}  // namespace layer::origin
