#include "tokenrl/env/atari/fake_emulator.h"

#include <algorithm>

#include "tokenrl/core/serialization.h"

namespace tokenrl::env::atari {
namespace {

// ALE action ids containing RIGHT, LEFT and FIRE.
bool HasRight(int a) { return a == 3 || a == 6 || a == 8 || a == 11 || a == 14 || a == 16; }
bool HasLeft(int a) { return a == 4 || a == 7 || a == 9 || a == 12 || a == 15 || a == 17; }
bool HasFire(int a) { return a == 1 || a >= 10; }

}  // namespace

void FakeAtariEmulator::ScreenAt(int64_t frame, int paddle, std::span<uint8_t> out) {
  TOKENRL_CHECK(out.size() == static_cast<size_t>(kHeight * kWidth), "fake screen buffer has {} bytes", out.size());
  for (int r = 0; r < kHeight; ++r) {
    for (int c = 0; c < kWidth; ++c) {
      out[static_cast<size_t>(r * kWidth + c)] = static_cast<uint8_t>((r + 2 * c + frame) & 0xFF);
    }
  }
  for (int r = kPaddleRow; r < kPaddleRow + 4; ++r) {
    for (int c = paddle; c < paddle + kPaddleWidth; ++c) out[static_cast<size_t>(r * kWidth + c)] = 255;
  }
}

int FakeAtariEmulator::FrameReward(int64_t frame, int action) {
  int reward = 0;
  if (frame % 5 == 0) reward += 1;
  if (HasFire(action) && frame % 3 == 0) reward += 2;
  if (frame % 50 == 0) reward -= 4;
  return reward;
}

int FakeAtariEmulator::PaddleAfter(int paddle, int action) {
  if (HasRight(action)) paddle += 1;
  if (HasLeft(action)) paddle -= 1;
  return std::clamp(paddle, 0, kWidth - kPaddleWidth);
}

Status FakeAtariEmulator::LoadRom(const std::string& rom) {
  if (rom.empty()) return Status::InvalidArgument("fake emulator: empty ROM name");
  rom_ = rom;
  Seed(0);
  return Status::Ok();
}

void FakeAtariEmulator::Seed(uint32_t seed) {
  sticky_.Seed(seed);
  ResetGame();
}

void FakeAtariEmulator::ResetGame() {
  frame_ = 0;
  paddle_ = kPaddleStart;
  lives_ = kLives;
  sticky_.ResetGame();
}

int FakeAtariEmulator::Act(int action) {
  TOKENRL_CHECK(action >= 0 && action < kNumAleActions, "fake emulator: action {} out of range", action);
  const int executed = sticky_.Apply(action);
  if (game_over()) return 0;
  ++frame_;
  paddle_ = PaddleAfter(paddle_, executed);
  if (frame_ % kFramesPerLife == 0) --lives_;
  return FrameReward(frame_, executed);
}

void FakeAtariEmulator::WriteGrayscaleScreen(std::span<uint8_t> out) const { ScreenAt(frame_, paddle_, out); }

std::vector<int> FakeAtariEmulator::FullActionSet() const {
  std::vector<int> all(kNumAleActions);
  for (int a = 0; a < kNumAleActions; ++a) all[static_cast<size_t>(a)] = a;
  return all;
}

std::string FakeAtariEmulator::SaveState() const {
  ByteWriter writer;
  writer.WriteString("fake-atari");
  sticky_.Save(writer);
  writer.Write(frame_);
  writer.Write<int32_t>(paddle_);
  writer.Write<int32_t>(lives_);
  return writer.Release();
}

Status FakeAtariEmulator::LoadState(std::string_view bytes) {
  ByteReader reader(bytes);
  std::string tag;
  StickyActions sticky = sticky_;
  int64_t frame = 0;
  int32_t paddle = 0, lives = 0;
  // The game is over by frame kLives * kFramesPerLife, so no frame arithmetic can overflow.
  if (!reader.ReadString(tag) || tag != "fake-atari" || !sticky.Load(reader) || !reader.Read(frame) ||
      !reader.Read(paddle) || !reader.Read(lives) || !reader.Finish("fake emulator").ok() || frame < 0 ||
      frame > int64_t{kLives} * kFramesPerLife || paddle < 0 || paddle > kWidth - kPaddleWidth || lives < 0 ||
      lives > kLives) {
    return Status::Corruption("fake emulator: malformed state");
  }
  sticky_ = sticky;
  frame_ = frame;
  paddle_ = paddle;
  lives_ = lives;
  return Status::Ok();
}

}  // namespace tokenrl::env::atari
