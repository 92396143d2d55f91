#pragma once
// ByteWriter / ByteReader: a minimal little-endian binary encoding for state
// snapshots (environment states now, checkpoints later). Trivially copyable
// values are written as raw bytes; the reader fails softly (returns false /
// Corruption) on truncated input instead of reading past the end.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tokenrl/core/status.h"

namespace tokenrl {

class ByteWriter {
 public:
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  void Write(const T& value) {
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  void WriteVector(const std::vector<T>& values) {
    Write<uint64_t>(values.size());
    bytes_.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  void WriteString(std::string_view s) {
    Write<uint64_t>(s.size());
    bytes_.append(s);
  }
  const std::string& bytes() const { return bytes_; }
  std::string Release() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
    requires std::is_trivially_copyable_v<T>
  bool Read(T& value) {
    if (bytes_.size() - offset_ < sizeof(T)) return Fail();
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return true;
  }
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  bool ReadVector(std::vector<T>& values, uint64_t max_size = 1u << 30) {
    uint64_t n = 0;
    if (!Read(n) || n > max_size || (bytes_.size() - offset_) / sizeof(T) < n) return Fail();
    values.resize(n);
    // An empty vector's data() may be null, which memcpy must not get even
    // for 0 bytes (UBSan, found by tests/fuzz/replay_state_fuzz.cc).
    if (n > 0) std::memcpy(values.data(), bytes_.data() + offset_, n * sizeof(T));
    offset_ += n * sizeof(T);
    return true;
  }
  bool ReadString(std::string& s) {
    uint64_t n = 0;
    if (!Read(n) || bytes_.size() - offset_ < n) return Fail();
    s.assign(bytes_.data() + offset_, n);
    offset_ += n;
    return true;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return offset_ == bytes_.size(); }
  // OK if every read succeeded and all bytes were consumed.
  Status Finish(std::string_view what) const {
    if (ok_ && at_end()) return Status::Ok();
    return Status::Corruption(fmt::format("{}: truncated or malformed state ({} of {} bytes read)", what, offset_,
                                          bytes_.size()));
  }

 private:
  bool Fail() {
    ok_ = false;
    offset_ = bytes_.size();
    return false;
  }
  std::string_view bytes_;
  size_t offset_ = 0;
  bool ok_ = true;
};

}  // namespace tokenrl
