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

Status ListenAndWritePort(http::HttpServer& server, const std::string& port_file) {
  if (Status st = server.Listen(); !st.ok()) return st;
  if (port_file.empty()) return Status::Ok();
  return WritePortFile(port_file, server.port());
}

}  // namespace layer::cli
