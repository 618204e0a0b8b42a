#include "cli/stamp_ceiling.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace layer::cli {
namespace {

Status Errno(const char* what, const std::string& path, int err) {
  return Status::IoError(std::string(what) + " " + path + ": " + std::strerror(err));
}

Status Fsync(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("fsync", path, err);
}

}  // namespace

Result<uint64_t> ReadStampCeiling(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && !ec) return uint64_t{0};
    return Status::IoError("cannot read the stamp ceiling " + path);
  }
  std::stringstream buf;
  buf << f.rdbuf();
  std::string text = buf.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument("the stamp ceiling " + path + " does not hold a number");
  }
  return v;
}

Status WriteStampCeiling(const std::string& path, uint64_t ceiling) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << ceiling << "\n";
    f.flush();
    if (!f) return Status::IoError("cannot write the stamp ceiling " + tmp);
  }
  if (Status st = Fsync(tmp, O_RDONLY); !st.ok()) return st;
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot rename " + tmp + ": " + ec.message());
  std::string dir = std::filesystem::path(path).parent_path().string();
  return Fsync(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY);
}

}  // namespace layer::cli
