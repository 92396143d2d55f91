#include "tokenrl/core/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tokenrl {

Status WriteFileAtomic(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::IoError(fmt::format("cannot create {}: {}", tmp, std::strerror(errno)));
  // On failure (a full disk: ENOSPC, EFBIG, EDQUOT) the partial temporary
  // file goes, so that it neither holds the space nor is mistaken for data.
  const auto fail = [&](std::string_view what, int error) {
    ::unlink(tmp.c_str());
    return Status::IoError(fmt::format("cannot {}: {}", what, std::strerror(error)));
  };
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return fail("write " + tmp, error);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return fail("flush " + tmp, error);
  }
  if (::close(fd) != 0) return fail("close " + tmp, errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail(fmt::format("rename {} to {}", tmp, path), errno);
  return Status::Ok();
}

StatusOr<std::string> ReadFile(const std::string& path) {
  // A directory, FIFO or device (a hand-edited path of /dev/zero) would fail
  // late or never end; refuse it by name.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return Status::InvalidArgument(fmt::format("{} is not a regular file", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace tokenrl
