#include "fuzz_support.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace tokenrl::fuzz {

void Require(bool condition, std::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz contract violated: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

namespace {

uint32_t ReadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <typename T>
void Put(std::string& s, size_t offset, T value) {
  const size_t n = std::min(sizeof(T), s.size() - offset);
  std::memcpy(s.data() + offset, &value, n);
}

}  // namespace

std::string StateFromInput(std::string_view valid, const uint8_t* data, size_t size) {
  if (size == 0) return std::string(valid);
  const int mode = data[0] % 3;
  ++data, --size;
  if (mode == 0) return std::string(reinterpret_cast<const char*>(data), size);
  std::string state(valid);
  if (mode == 2 && size >= 4) {
    state.resize(ReadU32(data) % (state.size() + 1));
    data += 4, size -= 4;
  }
  for (; size >= 6 && !state.empty(); data += 6, size -= 6) {
    const size_t offset = ReadU32(data) % state.size();
    const uint8_t value = data[5];
    switch (data[4] % 4) {
      case 0: state[offset] = static_cast<char>(state[offset] ^ value); break;
      case 1: Put<int32_t>(state, offset, static_cast<int32_t>(value) - 128); break;
      case 2: Put<uint64_t>(state, offset, uint64_t{1} << (value % 64)); break;
      default: {
        constexpr float kInf = std::numeric_limits<float>::infinity();
        const float special[4] = {std::numeric_limits<float>::quiet_NaN(), kInf, -kInf, -1.0f};
        Put<float>(state, offset, special[value % 4]);
      }
    }
  }
  return state;
}

void CheckStateLoad(std::string_view state, const std::function<std::string()>& save,
                    const std::function<Status(std::string_view)>& load, const std::function<void()>& exercise) {
  const std::string before = save();
  const Status status = load(state);
  if (!status.ok()) {
    Require(!status.message().empty(), "a rejected state must say why");
    Require(save() == before, "a rejected state changed the object: " + status.ToString());
    return;
  }
  const std::string after = save();
  const Status again = load(after);
  Require(again.ok(), "an accepted state, saved, does not load again: " + again.ToString());
  Require(save() == after, "save -> load -> save is not byte-identical");
  exercise();
}

}  // namespace tokenrl::fuzz
