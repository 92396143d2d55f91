#include "tokenrl/env/environment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tokenrl::env {

void Environment::Reset(uint32_t seed) {
  DoSeed(seed);
  seeded_ = true;
  Reset();
}

void Environment::Reset() {
  TOKENRL_CHECK(seeded_, "{}: Reset() before the first Reset(seed)", spec_.name);
  DoReset();
  running_ = true;
  episode_steps_ = 0;
  episode_return_ = 0.0;
}

StatusOr<StepResult> Environment::Step(int action) {
  if (action < 0 || action >= spec_.num_actions()) [[unlikely]] {
    return Status::InvalidArgument(fmt::format("{}: action {} is out of range; valid actions are 0..{}", spec_.name,
                                               action, spec_.num_actions() - 1));
  }
  if (!running_) [[unlikely]] {
    return Status::InvalidArgument(
        fmt::format("{}: Step() called with no episode running; call Reset() first", spec_.name));
  }
  const Transition t = DoStep(action);
  ++episode_steps_;
  episode_return_ += t.reward;
  StepResult result{.reward = t.reward, .terminated = t.terminal, .truncated = false};
  // Terminated wins when both happen on one step: no bootstrapping.
  if (!t.terminal && spec_.max_episode_steps > 0 && episode_steps_ >= spec_.max_episode_steps) {
    result.truncated = true;
  }
  running_ = !result.done();
  return result;
}

void Environment::WriteObservation(std::span<uint8_t> out) const {
  TOKENRL_CHECK(out.size() == static_cast<size_t>(spec_.observation_size()), "observation buffer has {} elements, "
                "expected {}", out.size(), spec_.observation_size());
  std::memset(out.data(), 0, out.size());
  DoWriteObservation(out);
}

void Environment::WriteObservation(std::span<float> out) const {
  TOKENRL_CHECK(out.size() == static_cast<size_t>(spec_.observation_size()), "observation buffer has {} elements, "
                "expected {}", out.size(), spec_.observation_size());
  // Small stack buffer: MinAtar observations are at most 10x10x10 bytes.
  constexpr size_t kStackBytes = 4096;
  uint8_t stack[kStackBytes];
  std::vector<uint8_t> heap;
  uint8_t* bytes = stack;
  if (out.size() > kStackBytes) {
    heap.resize(out.size());
    bytes = heap.data();
  }
  std::span<uint8_t> byte_span(bytes, out.size());
  std::memset(bytes, 0, out.size());
  DoWriteObservation(byte_span);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(bytes[i]);
}

std::string Environment::SaveState() const {
  ByteWriter writer;
  writer.WriteString(spec_.name);
  writer.Write<uint8_t>(seeded_);
  writer.Write<uint8_t>(running_);
  writer.Write(episode_steps_);
  writer.Write(episode_return_);
  DoSaveState(writer);
  return writer.Release();
}

Status Environment::LoadState(std::string_view bytes) {
  ByteReader reader(bytes);
  std::string name;
  uint8_t seeded = 0, running = 0;
  int64_t steps = 0;
  double ret = 0.0;
  if (!reader.ReadString(name) || name != spec_.name) {
    return Status::Corruption(fmt::format("{}: state bytes belong to environment \"{}\"", spec_.name, name));
  }
  reader.Read(seeded);
  reader.Read(running);
  reader.Read(steps);
  reader.Read(ret);
  if (!reader.ok()) return reader.Finish(spec_.name);
  // An episode runs only after a seeded reset; the bookkeeping must be what a run could have produced.
  // A running episode has not reached the time limit (the step that reaches it ends the episode).
  if (seeded > 1 || running > 1 || (running && !seeded) || steps < 0 || !std::isfinite(ret) ||
      (running && spec_.max_episode_steps > 0 && steps >= spec_.max_episode_steps)) {
    return Status::Corruption(fmt::format("{}: malformed episode bookkeeping in the state", spec_.name));
  }
  TOKENRL_RETURN_IF_ERROR(DoLoadState(reader, {.seeded = seeded != 0, .running = running != 0, .steps = steps}));
  TOKENRL_RETURN_IF_ERROR(reader.Finish(spec_.name));
  seeded_ = seeded != 0;
  running_ = running != 0;
  episode_steps_ = steps;
  episode_return_ = ret;
  return Status::Ok();
}

std::string Environment::ToString() const {
  const auto [c, h, w] = spec_.observation_shape;
  std::vector<uint8_t> obs(static_cast<size_t>(spec_.observation_size()));
  WriteObservation(std::span<uint8_t>(obs));
  std::string out;
  for (int row = 0; row < h; ++row) {
    for (int col = 0; col < w; ++col) {
      char glyph = '.';
      for (int ch = 0; ch < c; ++ch) {
        if (obs[(static_cast<size_t>(ch) * h + row) * w + col] != 0) {
          glyph = ch < static_cast<int>(spec_.channel_glyphs.size()) ? spec_.channel_glyphs[ch] : '#';
          break;
        }
      }
      out += glyph;
    }
    out += '\n';
  }
  out += fmt::format("step={} return={}", episode_steps_, episode_return_);
  const std::string extra = StatusLine();
  if (!extra.empty()) out += " " + extra;
  if (!running_) out += " (episode over)";
  out += '\n';
  return out;
}

}  // namespace tokenrl::env
