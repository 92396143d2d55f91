#include "tokenrl/env/atari/atari_env.h"

#include <algorithm>
#include <cstring>

#include "tokenrl/core/seed.h"
#include "tokenrl/core/serialization.h"
#include "tokenrl/env/frame_stack.h"

namespace tokenrl::env::atari {
namespace {

constexpr uint64_t kNoopStream = 1;
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

size_t ScreenBytes(const AtariEmulator& e) {
  return static_cast<size_t>(e.screen_height()) * static_cast<size_t>(e.screen_width());
}

}  // namespace

EnvSpec AtariEnvironment::MakeSpec(const EnvConfig& config, const GameInfo& game, const AtariEmulator& emulator) {
  const AtariConfig& a = config.atari;
  EnvSpec spec;
  spec.name = config.name;
  spec.description = game.description;
  const int s = static_cast<int>(a.screen_size);
  spec.observation_shape = {1, s, s};
  spec.channel_names.emplace_back("gray");
  spec.channel_glyphs.assign(1, '#');  // assign(n, c): GCC 12 misreads assigning a literal (-Wrestrict)
  spec.observation_low = 0.0f;
  spec.observation_high = 255.0f;
  const std::vector<int> ids =
      a.action_set == ActionSet::kMinimal ? emulator.MinimalActionSet() : emulator.FullActionSet();
  for (int id : ids) spec.action_names.emplace_back(kAleActionNames[static_cast<size_t>(id)]);
  const float skip = static_cast<float>(a.frame_skip);
  spec.min_step_reward = std::min(0.0f, game.min_frame_reward * skip);
  spec.max_step_reward = std::max(0.0f, game.max_frame_reward * skip);
  spec.max_episode_steps = config.max_episode_steps > 0 ? config.max_episode_steps
                                                        : (a.max_episode_frames + a.frame_skip - 1) / a.frame_skip;
  return spec;
}

AtariEnvironment::AtariEnvironment(const EnvConfig& config, const GameInfo& game,
                                   std::unique_ptr<AtariEmulator> emulator)
    : Environment(MakeSpec(config, game, *emulator)),
      config_(config.atari),
      emulator_(std::move(emulator)),
      action_ids_(config.atari.action_set == ActionSet::kMinimal ? emulator_->MinimalActionSet()
                                                                 : emulator_->FullActionSet()),
      resizer_(emulator_->screen_height(), emulator_->screen_width(), static_cast<int>(config.atari.screen_size),
               static_cast<int>(config.atari.screen_size)),
      screens_{std::vector<uint8_t>(ScreenBytes(*emulator_), 0), std::vector<uint8_t>(ScreenBytes(*emulator_), 0)},
      pooled_(ScreenBytes(*emulator_), 0),
      observation_(static_cast<size_t>(config.atari.screen_size * config.atari.screen_size), 0) {
  TOKENRL_CHECK(config_.screen_size <= emulator_->screen_height() && config_.screen_size <= emulator_->screen_width(),
                "{}: screen_size {} exceeds the {}x{} screen", config.name, config_.screen_size,
                emulator_->screen_height(), emulator_->screen_width());
}

AtariEnvironment::AtariEnvironment(const AtariEnvironment& other)
    : Environment(other),
      config_(other.config_),
      emulator_(other.emulator_->Clone()),
      action_ids_(other.action_ids_),
      resizer_(other.resizer_),
      screens_(other.screens_),
      pooled_(other.pooled_),
      observation_(other.observation_),
      noop_rng_(other.noop_rng_),
      lives_(other.lives_),
      continue_game_(other.continue_game_) {}

uint64_t AtariEnvironment::NextRandom() {
  noop_rng_ += kGolden;
  return SplitMix64(noop_rng_);
}

void AtariEnvironment::DoSeed(uint32_t seed) {
  emulator_->Seed(seed);
  noop_rng_ = DeriveSeed(seed, {kNoopStream});
  continue_game_ = false;
}

void AtariEnvironment::DoReset() {
  if (continue_game_) {
    // Dopamine's runner: a life-loss terminal ends the agent's episode, not the
    // game; the next episode starts from the last observation.
    continue_game_ = false;
    lives_ = emulator_->lives();
    return;
  }
  emulator_->ResetGame();
  if (config_.noop_max > 0) {
    const uint64_t noops = NextRandom() % static_cast<uint64_t>(config_.noop_max + 1);
    for (uint64_t i = 0; i < noops; ++i) {
      emulator_->Act(kAleNoop);
      if (emulator_->game_over()) emulator_->ResetGame();
    }
  }
  lives_ = emulator_->lives();
  CaptureScreen(0);
  std::fill(screens_[1].begin(), screens_[1].end(), 0);
  PoolAndResize();
}

Environment::Transition AtariEnvironment::DoStep(int action) {
  const int id = action_ids_[static_cast<size_t>(action)];
  const int skip = static_cast<int>(config_.frame_skip);
  int reward = 0;
  bool terminal = false;
  for (int t = 0; t < skip; ++t) {
    reward += emulator_->Act(id);
    if (config_.terminal_on_life_loss) {
      const int lives = emulator_->lives();
      terminal = emulator_->game_over() || lives < lives_;
      lives_ = lives;
    } else {
      terminal = emulator_->game_over();
    }
    if (terminal) break;
    // The last two frames (just the last with frame_skip 1) go to the buffers.
    if (t >= skip - 2) CaptureScreen(skip == 1 ? 0 : t - (skip - 2));
  }
  PoolAndResize();
  continue_game_ = terminal && !emulator_->game_over();
  return {static_cast<float>(reward), terminal};
}

void AtariEnvironment::CaptureScreen(int slot) {
  emulator_->WriteGrayscaleScreen(std::span<uint8_t>(screens_[static_cast<size_t>(slot)]));
}

void AtariEnvironment::PoolAndResize() {
  if (config_.frame_skip > 1) {
    const uint8_t* __restrict a = screens_[0].data();
    const uint8_t* __restrict b = screens_[1].data();
    uint8_t* __restrict out = pooled_.data();
    // n in a local: stores through a uint8_t pointer may alias the vector's own size.
    const size_t n = pooled_.size();
    for (size_t i = 0; i < n; ++i) out[i] = a[i] > b[i] ? a[i] : b[i];
    resizer_.Resize(pooled_, observation_);
  } else {
    resizer_.Resize(screens_[0], observation_);
  }
}

void AtariEnvironment::DoWriteObservation(std::span<uint8_t> zeroed_chw) const {
  std::memcpy(zeroed_chw.data(), observation_.data(), observation_.size());
}

void AtariEnvironment::DoSaveState(ByteWriter& writer) const {
  writer.WriteString(emulator_->SaveState());
  writer.Write(noop_rng_);
  writer.Write<int32_t>(lives_);
  writer.Write<uint8_t>(continue_game_);
  writer.WriteVector(screens_[0]);
  writer.WriteVector(screens_[1]);
  writer.WriteVector(observation_);
}

Status AtariEnvironment::DoLoadState(ByteReader& reader, const LoadedEpisode& /*episode*/) {
  std::string emulator_state;
  uint64_t noop_rng = 0;
  int32_t lives = 0;
  uint8_t continue_game = 0;
  std::array<std::vector<uint8_t>, 2> screens;
  std::vector<uint8_t> observation;
  if (!reader.ReadString(emulator_state) || !reader.Read(noop_rng) || !reader.Read(lives) ||
      !reader.Read(continue_game) || !reader.ReadVector(screens[0]) || !reader.ReadVector(screens[1]) ||
      !reader.ReadVector(observation) || screens[0].size() != pooled_.size() ||
      screens[1].size() != pooled_.size() || observation.size() != observation_.size() || continue_game > 1) {
    return Status::Corruption(fmt::format("{}: malformed Atari state", spec().name));
  }
  // The emulator restores all or nothing, so a failure leaves everything as it was.
  TOKENRL_RETURN_IF_ERROR(emulator_->LoadState(emulator_state));
  noop_rng_ = noop_rng;
  lives_ = lives;
  continue_game_ = continue_game != 0;
  screens_ = std::move(screens);
  observation_ = std::move(observation);
  return Status::Ok();
}

std::string AtariEnvironment::StatusLine() const {
  return fmt::format("lives={}{}", lives_, emulator_->game_over() ? " game_over" : "");
}

std::unique_ptr<Environment> MakeAtariEnvironment(const EnvConfig& config, const GameInfo& game,
                                                  std::unique_ptr<AtariEmulator> emulator) {
  auto env = std::make_unique<AtariEnvironment>(config, game, std::move(emulator));
  if (config.atari.frame_stack <= 1) return env;
  return std::make_unique<FrameStack>(std::move(env), static_cast<int>(config.atari.frame_stack));
}

}  // namespace tokenrl::env::atari
