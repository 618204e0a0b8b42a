#include "cli/port_file.h"

#include <filesystem>
#include <fstream>

namespace layer::cli {

Status WritePortFile(const std::string& path, uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << port << "\n";
    if (!f) return Status::IoError("cannot write port file " + path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError("cannot write port file " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace layer::cli
