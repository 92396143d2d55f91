#pragma once
// Small file helpers shared by every component that writes results.

#include <string>
#include <string_view>

#include "tokenrl/core/status.h"

namespace tokenrl {

// Writes `text` to `path` atomically: a temporary file beside it, fsync, then
// rename, so a crash leaves either the old file or the new one, never a torn one.
Status WriteFileAtomic(const std::string& path, std::string_view text);

// Reads a whole regular file (InvalidArgument for a directory, FIFO or device;
// IoError when it cannot be opened).
StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace tokenrl
