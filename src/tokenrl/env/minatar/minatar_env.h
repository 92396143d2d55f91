#pragma once
// MinAtar (Young & Tian 2019, arXiv:1903.03176): five miniature Atari games on
// a 10x10 grid, re-implemented bit-exactly from ../shared/docs/minatar_spec.md
// (upstream kenjyoung/MinAtar 1.0.15, commit 4241f24).
//
// | option (EnvConfig.minatar) | type   | default | meaning                              |
// |----------------------------|--------|---------|--------------------------------------|
// | sticky_action_prob         | double | 0.1     | repeat the last executed action      |
// | difficulty_ramping         | bool   | true    | games speed up within an episode     |
// | action_set                 | enum   | full    | full 6 actions or the minimal set    |
//
// Structure: each game is a plain value type holding only its dynamics (the
// upstream `Env` class of one game); `MinatarEnvironment<Game>` is the
// upstream `Environment` wrapper: one numpy-compatible RandomState shared by
// the sticky-action draw and the game, the sticky rule, and the mapping from
// action index to MinAtar's full action id.
//
// A Game type provides (see breakout.h for a commented example):
//   static constexpr std::string_view kName, kDescription, kGlyphs;
//   static constexpr int kChannels;
//   static constexpr std::array<std::string_view, kChannels> kChannelNames;
//   static constexpr std::array<int, K> kMinimalActions;   // full ids
//   static constexpr float kMaxStepReward;                 // for EnvSpec
//   void Reset(NumpyRandomState& rng);                     // upstream reset()
//   int Act(int full_action, NumpyRandomState& rng);       // upstream act(); returns reward
//   bool terminal() const;
//   int ramp_index() const;                                // -1 for games without ramping
//   void WriteObservation(uint8_t* chw) const;             // zeroed [C][10][10] bytes
//   void Save(ByteWriter&) const;  bool Load(ByteReader&);
// and a constructor taking `bool difficulty_ramping`.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tokenrl/core/numpy_random.h"
#include "tokenrl/env/env_config.h"
#include "tokenrl/env/environment.h"

namespace tokenrl::env {
class EnvRegistry;
}

namespace tokenrl::env::minatar {

inline constexpr int kRows = 10;
inline constexpr int kCols = 10;
inline constexpr int kNumFullActions = 6;

// MinAtar's full action ids (not ALE's: id 1 is left here, fire in ALE).
enum FullAction : int { kNoop = 0, kLeft = 1, kUp = 2, kRight = 3, kDown = 4, kFire = 5 };
inline constexpr std::array<std::string_view, kNumFullActions> kFullActionNames{"n", "l", "u", "r", "d", "f"};

// Index of cell (row, col) of channel ch in a CHW [C][10][10] buffer.
constexpr int CellIndex(int ch, int row, int col) { return (ch * kRows + row) * kCols + col; }

// For state restore: a game accepts a state only when every field lies within
// what a run can reach (a timer outside its range would count on forever).
constexpr bool InRange(int value, int low, int high) { return value >= low && value <= high; }

// The game-independent interface of every MinAtar environment, for tests and
// tools that need more than the Environment API (parity replay, rendering).
class MinatarEnv : public Environment {
 public:
  using Environment::Environment;
  // Difficulty-ramp index of the game, -1 for games without ramping.
  virtual int ramp_index() const = 0;
  // 32-bit MT19937 outputs consumed since the last seed (the fixtures' `nd`).
  virtual uint64_t rng_draws() const = 0;
  // The full action id executed by the last step (after the sticky rule).
  virtual int last_executed_action() const = 0;
  // Full MinAtar action id of an action index.
  virtual int FullActionId(int action) const = 0;
};

template <typename Game>
class MinatarEnvironment final : public MinatarEnv {
 public:
  MinatarEnvironment(const MinatarEnvironment&) = default;
  explicit MinatarEnvironment(const EnvConfig& config)
      : MinatarEnv(MakeSpec(config)),
        sticky_action_prob_(config.minatar.sticky_action_prob),
        minimal_actions_(config.minatar.action_set == ActionSet::kMinimal),
        game_(config.minatar.difficulty_ramping) {}

  int ramp_index() const override { return game_.ramp_index(); }
  uint64_t rng_draws() const override { return rng_.draws(); }
  int last_executed_action() const override { return last_action_; }
  int FullActionId(int action) const override {
    return minimal_actions_ ? Game::kMinimalActions[static_cast<size_t>(action)] : action;
  }
  const Game& game() const { return game_; }

  static EnvSpec MakeSpec(const EnvConfig& config) {
    EnvSpec spec;
    spec.name = config.name;
    spec.description = std::string(Game::kDescription);
    spec.observation_shape = {Game::kChannels, kRows, kCols};
    for (auto n : Game::kChannelNames) spec.channel_names.emplace_back(n);
    spec.channel_glyphs = std::string(Game::kGlyphs);
    spec.observation_low = 0.0f;
    spec.observation_high = 1.0f;
    if (config.minatar.action_set == ActionSet::kMinimal) {
      for (int a : Game::kMinimalActions) spec.action_names.emplace_back(kFullActionNames[static_cast<size_t>(a)]);
    } else {
      for (auto n : kFullActionNames) spec.action_names.emplace_back(n);
    }
    spec.min_step_reward = 0.0f;
    spec.max_step_reward = Game::kMaxStepReward;
    spec.max_episode_steps = config.max_episode_steps;
    return spec;
  }

 protected:
  void DoSeed(uint32_t seed) override {
    rng_.Seed(seed);
    last_action_ = kNoop;  // A freshly constructed upstream Environment starts with no-op.
  }
  // Upstream reset() keeps last_action: the sticky rule can repeat the
  // previous episode's final action on the first step of the next one.
  void DoReset() override { game_.Reset(rng_); }

  Transition DoStep(int action) override {
    int full = FullActionId(action);
    // The sticky draw happens on every step, even with probability 0.
    if (rng_.Rand() < sticky_action_prob_) full = last_action_;
    last_action_ = full;
    const int reward = game_.Act(full, rng_);
    return {static_cast<float>(reward), game_.terminal()};
  }
  void DoWriteObservation(std::span<uint8_t> zeroed_chw) const override {
    game_.WriteObservation(zeroed_chw.data());
  }
  std::unique_ptr<Environment> DoClone() const override { return std::make_unique<MinatarEnvironment>(*this); }
  void DoSaveState(ByteWriter& writer) const override {
    rng_.Save(writer);
    writer.Write<int32_t>(last_action_);
    game_.Save(writer);
  }
  Status DoLoadState(ByteReader& reader, const LoadedEpisode& /*episode*/) override {
    MinatarEnvironment copy(*this);
    int32_t last_action = 0;
    if (!copy.rng_.Load(reader) || !reader.Read(last_action) || last_action < 0 || last_action >= kNumFullActions ||
        !copy.game_.Load(reader)) {
      return Status::Corruption(fmt::format("{}: malformed MinAtar state", spec().name));
    }
    rng_ = copy.rng_;
    last_action_ = last_action;
    game_ = std::move(copy.game_);
    return Status::Ok();
  }
  std::string StatusLine() const override {
    return game_.ramp_index() >= 0 ? fmt::format("ramp={}", game_.ramp_index()) : "";
  }

 private:
  double sticky_action_prob_;
  bool minimal_actions_;
  NumpyRandomState rng_;
  int last_action_ = kNoop;
  Game game_;
};

// Registers minatar/{asterix,breakout,freeway,seaquest,space_invaders}.
void RegisterMinatarGames(EnvRegistry& registry);

}  // namespace tokenrl::env::minatar
