// The Atari protocol (env/atari/) on the scripted fake emulator: resizing
// against hand-computed INTER_AREA values, frame skip and max-pooling, sticky
// actions, life-loss terminals, the episode cap, no-op starts, stacking,
// save/restore, action sets, registry errors and VectorEnv. The real-ALE test
// at the end skips unless tokenrl was built with ALE and tetris.bin is in
// $TOKENRL_ATARI_ROMS.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/core/seed.h"
#include "tokenrl/env/atari/ale/ale_emulator.h"
#include "tokenrl/env/atari/area_resize.h"
#include "tokenrl/env/atari/atari_env.h"
#include "tokenrl/env/atari/fake_emulator.h"
#include "tokenrl/env/atari/registration.h"
#include "tokenrl/env/frame_stack.h"
#include "tokenrl/env/registry.h"
#include "tokenrl/env/vector_env.h"

namespace tokenrl::env::atari {
namespace {

using Fake = FakeAtariEmulator;
constexpr int kScreen = Fake::kHeight * Fake::kWidth;
// Minimal action indices of the fake: {NOOP, FIRE, RIGHT, LEFT}.
constexpr int kNoop = 0, kFire = 1, kRight = 2, kLeft = 3;

std::vector<uint8_t> Resize(const std::vector<uint8_t>& src, int sh, int sw, int dh, int dw) {
  std::vector<uint8_t> out(static_cast<size_t>(dh * dw));
  AreaResizer(sh, sw, dh, dw).Resize(src, out);
  return out;
}

// ---- INTER_AREA, hand-computed ----------------------------------------------

TEST(AreaResizeTest, IntegerFactorIsTheBlockMeanRoundedHalfUp) {
  // 4x4 -> 2x2: each output is the mean of a 2x2 block.
  const std::vector<uint8_t> src{1, 2, 10, 20,  //
                                 3, 4, 30, 40,  //
                                 0, 0, 255, 255,
                                 0, 1, 255, 254};
  // (1+2+3+4)/4 = 2.5 -> 3 (tie up); 100/4 = 25; 1/4 = 0.25 -> 0; 1019/4 = 254.75 -> 255.
  EXPECT_EQ(Resize(src, 4, 4, 2, 2), (std::vector<uint8_t>{3, 25, 0, 255}));
}

TEST(AreaResizeTest, FractionalFootprintsWeighByOverlap) {
  // 1x5 -> 1x2, factor 2.5: out0 = (p0 + p1 + p2/2) / 2.5, out1 = (p2/2 + p3 + p4) / 2.5.
  EXPECT_EQ(Resize({10, 20, 30, 40, 50}, 1, 5, 1, 2), (std::vector<uint8_t>{18, 42}));
  // 3x1 -> 2x1, factor 1.5: out0 = (p0 + p1/2) / 1.5 = 127.5 / 1.5 = 85.
  EXPECT_EQ(Resize({0, 255, 0}, 3, 1, 2, 1), (std::vector<uint8_t>{85, 85}));
}

TEST(AreaResizeTest, AtariWidth160To84) {
  // Factor 40/21: output 0 covers source [0, 40/21): p0 whole and 19/21 of p1;
  // output 1 covers [40/21, 80/21): 2/21 of p1, p2 whole, 18/21 of p3.
  std::vector<uint8_t> row(160, 0);
  row[1] = 210;
  const auto out = Resize(row, 1, 160, 1, 84);
  EXPECT_EQ(out[0], 100);  // 210 * (19/21) / (40/21) = 99.75
  EXPECT_EQ(out[1], 11);   // 210 * (2/21) / (40/21) = 10.5: a tie, rounded up
  for (size_t i = 2; i < out.size(); ++i) EXPECT_EQ(out[i], 0) << i;
}

TEST(AreaResizeTest, Atari210x160To84x84) {
  // One lit source pixel (row 2, column 1) = 200. Output (0, 0) covers rows [0, 2.5) and columns [0, 40/21),
  // area 100/21; the pixel contributes 200 * (1/2) * (19/21) -> 200 * 0.5 * 19 / 100 = 19. Output (0, 1) gets
  // 200 * 0.5 * (2/21) / (100/21) = 2; output (1, 0) (rows [2.5, 5)) the other half row: 19; (1, 1): 2.
  std::vector<uint8_t> src(kScreen, 0);
  src[2 * 160 + 1] = 200;
  const auto out = Resize(src, 210, 160, 84, 84);
  EXPECT_EQ(out[0], 19);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[84], 19);
  EXPECT_EQ(out[85], 2);
  int nonzero = 0;
  for (uint8_t v : out) nonzero += v != 0;
  EXPECT_EQ(nonzero, 4);
  // A constant image stays constant.
  EXPECT_EQ(Resize(std::vector<uint8_t>(kScreen, 77), 210, 160, 84, 84), std::vector<uint8_t>(84 * 84, 77));
}

// The specification, implemented the slow, obvious way: for each output pixel, the sum of
// overlap_rows * overlap_cols * pixel over all source pixels, in units of 1/dst.
std::vector<uint8_t> ReferenceAreaResize(const std::vector<uint8_t>& src, int sh, int sw, int dh, int dw) {
  auto overlap = [](int d, int s, int src_n, int dst_n) -> int64_t {
    const int64_t lo = int64_t{d} * src_n, hi = lo + src_n;
    return std::max<int64_t>(0, std::min(hi, int64_t{s + 1} * dst_n) - std::max(lo, int64_t{s} * dst_n));
  };
  std::vector<uint8_t> out(static_cast<size_t>(dh * dw));
  const int64_t den = int64_t{sh} * sw;
  for (int y = 0; y < dh; ++y) {
    for (int x = 0; x < dw; ++x) {
      int64_t num = 0;
      for (int r = 0; r < sh; ++r) {
        const int64_t wy = overlap(y, r, sh, dh);
        if (wy == 0) continue;
        for (int c = 0; c < sw; ++c) num += wy * overlap(x, c, sw, dw) * src[static_cast<size_t>(r * sw + c)];
      }
      out[static_cast<size_t>(y * dw + x)] = static_cast<uint8_t>((2 * num + den) / (2 * den));
    }
  }
  return out;
}

TEST(AreaResizeTest, MatchesTheSpecificationOnRandomImages) {
  std::mt19937 rng(5);
  for (auto [sh, sw, dh, dw] : std::vector<std::array<int, 4>>{
           {210, 160, 84, 84}, {210, 160, 42, 42}, {210, 160, 160, 160}, {7, 5, 3, 2}, {9, 9, 9, 9}, {13, 11, 1, 1}}) {
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<uint8_t> src(static_cast<size_t>(sh * sw));
      for (auto& v : src) v = static_cast<uint8_t>(trial == 2 ? 255 : rng() & 0xFF);  // trial 2: the largest sums
      ASSERT_EQ(Resize(src, sh, sw, dh, dw), ReferenceAreaResize(src, sh, sw, dh, dw))
          << sh << "x" << sw << " -> " << dh << "x" << dw << " trial " << trial;
    }
  }
}

// ---- the fake emulator's script -------------------------------------------------

TEST(FakeEmulatorTest, ScriptIsAsDocumented) {
  std::vector<uint8_t> screen(kScreen);
  Fake::ScreenAt(3, 10, screen);
  EXPECT_EQ(screen[0], 3);
  EXPECT_EQ(screen[5 * 160 + 7], (5 + 14 + 3) & 0xFF);
  EXPECT_EQ(screen[100 * 160 + 100], (100 + 200 + 3) & 0xFF);
  EXPECT_EQ(screen[190 * 160 + 10], 255);
  EXPECT_EQ(screen[193 * 160 + 17], 255);
  EXPECT_NE(screen[193 * 160 + 18], 255);
  EXPECT_EQ(Fake::FrameReward(5, 0), 1);
  EXPECT_EQ(Fake::FrameReward(3, 1), 2);   // FIRE on f % 3 == 0
  EXPECT_EQ(Fake::FrameReward(15, 11), 3);  // RIGHTFIRE
  EXPECT_EQ(Fake::FrameReward(50, 0), -3);  // +1 - 4
  EXPECT_EQ(Fake::FrameReward(7, 1), 0);
  EXPECT_EQ(Fake::PaddleAfter(0, 4), 0);
  EXPECT_EQ(Fake::PaddleAfter(152, 3), 152);
  EXPECT_EQ(Fake::PaddleAfter(5, 6), 6);  // UPRIGHT
}

// ---- the protocol -----------------------------------------------------------------

EnvConfig FakeConfig(double sticky = 0.0) {
  EnvConfig config;
  config.name = "atari-fake/test";
  config.atari.repeat_action_probability = sticky;
  config.atari.frame_stack = 1;
  return config;
}

std::unique_ptr<AtariEnvironment> MakeFake(const EnvConfig& config) {
  auto emulator = std::make_unique<Fake>(EmulatorOptions{config.atari.repeat_action_probability});
  TOKENRL_CHECK(emulator->LoadRom("test").ok(), "LoadRom");
  return std::make_unique<AtariEnvironment>(config, GameInfo{"fake", Fake::kMinReward, Fake::kMaxReward},
                                            std::move(emulator));
}

const Fake& FakeOf(const AtariEnvironment& env) { return dynamic_cast<const Fake&>(env.emulator()); }

std::vector<uint8_t> Observation(const Environment& env) {
  std::vector<uint8_t> obs(static_cast<size_t>(env.spec().observation_size()));
  env.WriteObservation(std::span<uint8_t>(obs));
  return obs;
}

std::vector<uint8_t> ExpectedPooled(int64_t f1, int p1, int64_t f2, int p2) {
  std::vector<uint8_t> a(kScreen), b(kScreen);
  Fake::ScreenAt(f1, p1, a);
  Fake::ScreenAt(f2, p2, b);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::max(a[i], b[i]);
  return Resize(a, 210, 160, 84, 84);
}

TEST(AtariEnvTest, SpecFollowsDopamine) {
  EnvConfig config = FakeConfig();
  auto env = MakeFake(config);
  const EnvSpec& spec = env->spec();
  EXPECT_EQ(spec.observation_shape, (std::array<int, 3>{1, 84, 84}));
  EXPECT_EQ(spec.observation_high, 255.0f);
  EXPECT_EQ(spec.max_episode_steps, 27000);  // 108,000 frames / frame skip 4
  EXPECT_EQ(spec.action_names, (std::vector<std::string>{"NOOP", "FIRE", "RIGHT", "LEFT"}));
  config.atari.action_set = ActionSet::kFull;
  EXPECT_EQ(MakeFake(config)->spec().num_actions(), 18);
  EXPECT_EQ(MakeFake(config)->spec().action_names[17], "DOWNLEFTFIRE");
  config.atari.max_episode_frames = 41;
  EXPECT_EQ(MakeFake(config)->spec().max_episode_steps, 11);  // ceil(41 / 4)
  config.max_episode_steps = 5;
  EXPECT_EQ(MakeFake(config)->spec().max_episode_steps, 5);
}

TEST(AtariEnvTest, FrameSkipSumsRewardsAndMaxPoolsTheLastTwoFrames) {
  auto env = MakeFake(FakeConfig());
  env->Reset(1);
  // Reset: frame 0, paddle 76; the observation is the current screen (max with zeros).
  {
    std::vector<uint8_t> screen(kScreen);
    Fake::ScreenAt(0, 76, screen);
    EXPECT_EQ(Observation(*env), Resize(screen, 210, 160, 84, 84));
  }
  // FIRE over frames 1-4: +2 at frame 3.
  auto r = env->Step(kFire);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reward, 2.0f);
  EXPECT_EQ(FakeOf(*env).frame(), 4);
  EXPECT_EQ(Observation(*env), ExpectedPooled(3, 76, 4, 76));
  // RIGHT over frames 5-8: +1 at frame 5; the paddle moves to 80.
  r = env->Step(kRight);
  EXPECT_EQ(r->reward, 1.0f);
  EXPECT_EQ(FakeOf(*env).paddle(), 80);
  const auto pooled = ExpectedPooled(7, 79, 8, 80);
  EXPECT_EQ(Observation(*env), pooled);
  // The max matters: the last frame alone (where 255 wrapped to 0) resizes differently.
  std::vector<uint8_t> last(kScreen);
  Fake::ScreenAt(8, 80, last);
  EXPECT_NE(Resize(last, 210, 160, 84, 84), pooled);
  // FIRE over frames 9-12: +2 at 9 and 12, +1 at 10.
  r = env->Step(kFire);
  EXPECT_EQ(r->reward, 5.0f);
  EXPECT_DOUBLE_EQ(env->episode_return(), 8.0);
}

TEST(AtariEnvTest, FrameSkipIsConfigurable) {
  EnvConfig config = FakeConfig();
  config.atari.frame_skip = 1;
  auto env = MakeFake(config);
  env->Reset(0);
  ASSERT_TRUE(env->Step(kLeft).ok());
  EXPECT_EQ(FakeOf(*env).frame(), 1);
  std::vector<uint8_t> screen(kScreen);
  Fake::ScreenAt(1, 75, screen);
  EXPECT_EQ(Observation(*env), Resize(screen, 210, 160, 84, 84));  // no pooling with frame skip 1
  config.atari.frame_skip = 7;
  env = MakeFake(config);
  env->Reset(0);
  ASSERT_TRUE(env->Step(kNoop).ok());
  EXPECT_EQ(FakeOf(*env).frame(), 7);
  EXPECT_EQ(Observation(*env), ExpectedPooled(6, 76, 7, 76));
}

TEST(AtariEnvTest, StickyActionsRepeatThePreviousFrameWithSeededDraws) {
  constexpr double kP = 0.25;
  auto env = MakeFake(FakeConfig(kP));
  env->Reset(42);
  // The same rule and stream, replayed by hand: Reset(42) seeds the emulator with 42.
  StickyActions sticky(kP);
  sticky.Seed(42);
  int paddle = Fake::kPaddleStart, repeats = 0, frames = 0;
  const int ids[] = {0, 1, 3, 4};
  std::mt19937 policy(3);
  for (int t = 0; t < 140; ++t) {
    const int a = static_cast<int>(policy() % 4);
    for (int f = 0; f < 4; ++f) {
      const int executed = sticky.Apply(ids[a]);
      repeats += executed != ids[a];
      ++frames;
      paddle = Fake::PaddleAfter(paddle, executed);
    }
    ASSERT_TRUE(env->Step(a).ok());
    ASSERT_EQ(FakeOf(*env).paddle(), paddle) << "step " << t;
  }
  EXPECT_GT(repeats, 0);
  // Draw statistics: a repeat needs the draw below 0.25 (and a different previous action).
  uint64_t below = 0;
  StickyActions probe(kP);
  probe.Seed(7);
  for (int i = 0; i < 40000; ++i) {
    const int previous = probe.last_action();
    below += probe.Apply(1 - previous) == previous;  // always ask for the other action
  }
  EXPECT_NEAR(static_cast<double>(below) / 40000.0, kP, 4 * std::sqrt(kP * (1 - kP) / 40000.0));
  // Probability 0: never repeats; different seeds give different paddles with 0.25.
  auto a = MakeFake(FakeConfig(kP)), b = MakeFake(FakeConfig(kP));
  a->Reset(1);
  b->Reset(2);
  bool differ = false;
  for (int t = 0; t < 100; ++t) {
    const int act = t % 8 < 4 ? kRight : kLeft;
    ASSERT_TRUE(a->Step(act).ok());
    ASSERT_TRUE(b->Step(act).ok());
    differ |= FakeOf(*a).paddle() != FakeOf(*b).paddle();
  }
  EXPECT_TRUE(differ);
}

TEST(AtariEnvTest, GameOverTerminatesAndLifeLossOptionallyDoes) {
  // Without terminal_on_life_loss: 3 lives x 200 frames = 600 frames = 150 steps.
  auto env = MakeFake(FakeConfig());
  env->Reset(0);
  for (int t = 1; t <= 150; ++t) {
    auto r = env->Step(kNoop);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->terminated, t == 150) << t;
    ASSERT_FALSE(r->truncated);
  }
  // With it: each life is an episode; the game goes on between them.
  EnvConfig config = FakeConfig();
  config.atari.terminal_on_life_loss = true;
  env = MakeFake(config);
  env->Reset(0);
  for (int life = 0; life < 3; ++life) {
    for (int t = 1; t <= 50; ++t) {
      auto r = env->Step(kNoop);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->terminated, t == 50) << "life " << life << " step " << t;
    }
    EXPECT_EQ(FakeOf(*env).frame(), 200 * (life + 1));
    EXPECT_EQ(FakeOf(*env).lives(), 2 - life);
    const auto last = Observation(*env);
    env->Reset();
    if (life < 2) {
      EXPECT_EQ(FakeOf(*env).frame(), 200 * (life + 1)) << "a life loss must not reset the game";
      EXPECT_EQ(Observation(*env), last);
    } else {
      EXPECT_EQ(FakeOf(*env).frame(), 0) << "game over resets the game";
      EXPECT_EQ(FakeOf(*env).lives(), 3);
    }
  }
  // The frame loop stops at the terminal frame: frame skip 3, the life is lost at frame 200 = frame 2 of step 67.
  config.atari.frame_skip = 3;
  env = MakeFake(config);
  env->Reset(0);
  for (int t = 1; t <= 67; ++t) {
    auto r = env->Step(kNoop);
    ASSERT_EQ(r->terminated, t == 67);
  }
  EXPECT_EQ(FakeOf(*env).frame(), 200);
}

TEST(AtariEnvTest, EpisodeCapIsTruncationNotTermination) {
  EnvConfig config = FakeConfig();
  config.atari.max_episode_frames = 40;  // 10 agent steps
  auto env = MakeFake(config);
  env->Reset(0);
  for (int t = 1; t <= 10; ++t) {
    auto r = env->Step(kFire);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->truncated, t == 10);
    EXPECT_FALSE(r->terminated);
  }
  EXPECT_FALSE(env->Step(kFire).ok()) << "the truncated episode is over";
  // Cap and game over on the same step: terminated wins (no bootstrapping).
  config.atari.max_episode_frames = 600;
  env = MakeFake(config);
  env->Reset(0);
  for (int t = 1; t <= 150; ++t) {
    auto r = env->Step(kNoop);
    ASSERT_EQ(r->terminated, t == 150);
    ASSERT_FALSE(r->truncated);
  }
}

uint64_t ExpectedNoops(uint32_t seed, int noop_max) {
  uint64_t state = DeriveSeed(seed, {1}) + 0x9E3779B97F4A7C15ull;
  return SplitMix64(state) % static_cast<uint64_t>(noop_max + 1);
}

TEST(AtariEnvTest, NoopStartsDrawFromTheEnvironmentSeed) {
  EnvConfig config = FakeConfig();
  config.atari.noop_max = 30;
  auto env = MakeFake(config);
  std::vector<int> seen(31, 0);
  for (uint32_t seed = 0; seed < 300; ++seed) {
    env->Reset(seed);
    const int64_t n = FakeOf(*env).frame();
    ASSERT_EQ(static_cast<uint64_t>(n), ExpectedNoops(seed, 30)) << seed;
    ASSERT_LE(n, 30);
    ++seen[static_cast<size_t>(n)];
    std::vector<uint8_t> screen(kScreen);
    Fake::ScreenAt(n, 76, screen);
    ASSERT_EQ(Observation(*env), Resize(screen, 210, 160, 84, 84));
  }
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[30], 0);
  // Reset() draws the next count from the same stream.
  env->Reset(5);
  const int64_t first = FakeOf(*env).frame();
  uint64_t state = DeriveSeed(5, {1});
  state += 0x9E3779B97F4A7C15ull;
  EXPECT_EQ(static_cast<uint64_t>(first), SplitMix64(state) % 31);
  env->Reset();
  state += 0x9E3779B97F4A7C15ull;
  EXPECT_EQ(static_cast<uint64_t>(FakeOf(*env).frame()), SplitMix64(state) % 31);
  // Default: no no-ops.
  auto plain = MakeFake(FakeConfig());
  plain->Reset(5);
  EXPECT_EQ(FakeOf(*plain).frame(), 0);
}

TEST(AtariEnvTest, RegistryStacksFourFramesOldestFirst) {
  EnvConfig config;
  config.name = "atari-fake/stack";
  config.atari.repeat_action_probability = 0.0;
  auto stacked = MakeEnvironment(config);
  ASSERT_TRUE(stacked.ok()) << stacked.status().ToString();
  EXPECT_EQ((*stacked)->spec().observation_shape, (std::array<int, 3>{4, 84, 84}));
  config.atari.frame_stack = 1;
  auto single = std::move(MakeEnvironment(config)).value();
  (*stacked)->Reset(3);
  single->Reset(3);
  const size_t frame = 84 * 84;
  std::vector<std::vector<uint8_t>> frames{Observation(*single)};
  auto obs = Observation(**stacked);
  EXPECT_EQ(std::vector<uint8_t>(obs.begin(), obs.begin() + 3 * frame), std::vector<uint8_t>(3 * frame, 0));
  EXPECT_EQ(std::vector<uint8_t>(obs.begin() + 3 * frame, obs.end()), frames[0]);
  for (int t = 0; t < 5; ++t) {
    ASSERT_TRUE((*stacked)->Step(t % 4).ok());
    ASSERT_TRUE(single->Step(t % 4).ok());
    frames.push_back(Observation(*single));
  }
  obs = Observation(**stacked);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(std::vector<uint8_t>(obs.begin() + k * frame, obs.begin() + (k + 1) * frame), frames[2 + k]) << k;
  }
}

TEST(AtariEnvTest, CloneAndSaveStateContinueIdentically) {
  EnvConfig config = FakeConfig(0.25);
  config.atari.noop_max = 10;
  config.atari.terminal_on_life_loss = true;
  auto env = MakeFake(config);
  env->Reset(9);
  for (int t = 0; t < 70; ++t) {
    auto r = env->Step(t % 4);
    if (r->done()) env->Reset();
  }
  auto clone = env->Clone();
  auto restored = MakeFake(config);
  ASSERT_TRUE(restored->LoadState(env->SaveState()).ok());
  for (int t = 0; t < 500; ++t) {
    const int a = (t * 7) % 4;
    auto r1 = env->Step(a);
    auto r2 = clone->Step(a);
    auto r3 = restored->Step(a);
    ASSERT_EQ(r1->reward, r2->reward);
    ASSERT_EQ(r1->reward, r3->reward);
    ASSERT_EQ(r1->terminated, r3->terminated);
    ASSERT_EQ(Observation(*env), Observation(*clone));
    ASSERT_EQ(Observation(*env), Observation(*restored));
    if (r1->done()) {
      env->Reset();
      clone->Reset();
      restored->Reset();
    }
  }
  // The fake emulator rejects foreign bytes and keeps its state.
  Fake fake(EmulatorOptions{0.25});
  ASSERT_TRUE(fake.LoadRom("x").ok());
  const std::string state = fake.SaveState();
  EXPECT_FALSE(fake.LoadState("garbage").ok());
  EXPECT_FALSE(fake.LoadState(state.substr(0, state.size() - 1)).ok());
  // The state ends with frame (int64), paddle and lives (int32): a frame past
  // the game's end (where frame arithmetic could overflow) is rejected.
  auto with_frame = [&state](int64_t frame) {
    std::string edited = state;
    std::memcpy(edited.data() + edited.size() - 16, &frame, sizeof frame);
    return edited;
  };
  constexpr int64_t kLastFrame = int64_t{Fake::kLives} * Fake::kFramesPerLife;
  EXPECT_FALSE(fake.LoadState(with_frame(std::numeric_limits<int64_t>::max())).ok());
  EXPECT_FALSE(fake.LoadState(with_frame(kLastFrame + 1)).ok());
  EXPECT_EQ(fake.SaveState(), state);
  ASSERT_TRUE(fake.LoadState(with_frame(kLastFrame)).ok());
  EXPECT_EQ(fake.SaveState(), with_frame(kLastFrame));
}

TEST(AtariRegistryTest, FamiliesAndErrors) {
  EXPECT_TRUE(EnvRegistry::Global().Contains("atari/pong"));
  EXPECT_TRUE(EnvRegistry::Global().Contains("atari-fake/anything"));
  EXPECT_FALSE(EnvRegistry::Global().Contains("atari/"));
  EnvConfig config;
  config.name = "atari-fake/Bad-Name";
  auto bad = MakeEnvironment(config);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("lowercase"), std::string::npos);

  config.name = "atari/pong";
  config.atari.rom_dir = "/nonexistent/roms";
  auto pong = MakeEnvironment(config);
  ASSERT_FALSE(pong.ok());
  if (!AleAvailable()) {
    EXPECT_NE(pong.status().message().find("built without ALE"), std::string::npos) << pong.status().ToString();
    EXPECT_NE(pong.status().message().find("docs/atari.md"), std::string::npos);
  } else {
    EXPECT_EQ(pong.status().code(), Status::Code::kNotFound);
    EXPECT_NE(pong.status().message().find("/nonexistent/roms/pong.bin"), std::string::npos);
    EXPECT_NE(pong.status().message().find("ale-py"), std::string::npos);
  }
  // The unknown-name error lists the families.
  config.name = "nope/x";
  auto unknown = MakeEnvironment(config);
  EXPECT_NE(unknown.status().message().find("atari/<game>"), std::string::npos);
}

TEST(AtariRegistryTest, RomDirectoryResolution) {
  AtariConfig config;
  config.rom_dir = "";
  const char* saved = std::getenv(kRomDirVariable);
  const std::string saved_value = saved ? saved : "";
  unsetenv(kRomDirVariable);
  auto none = ResolveRom(config, "pong");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("TOKENRL_ATARI_ROMS"), std::string::npos);
  EXPECT_NE(none.status().message().find("env.atari.rom_dir"), std::string::npos);
  const auto dir = std::filesystem::temp_directory_path() / "tokenrl_atari_rom_test";
  std::filesystem::create_directories(dir);
  { std::FILE* f = std::fopen((dir / "pong.bin").c_str(), "wb"); std::fclose(f); }
  setenv(kRomDirVariable, dir.c_str(), 1);
  auto from_env = ResolveRom(config, "pong");
  ASSERT_TRUE(from_env.ok()) << from_env.status().ToString();
  EXPECT_EQ(*from_env, (dir / "pong.bin").string());
  EXPECT_FALSE(ResolveRom(config, "breakout").ok());
  config.rom_dir = dir.string();
  unsetenv(kRomDirVariable);
  EXPECT_TRUE(ResolveRom(config, "pong").ok());
  if (saved) setenv(kRomDirVariable, saved_value.c_str(), 1);
  std::filesystem::remove_all(dir);
}

TEST(AtariVectorEnvTest, RunsUnderVectorEnvThreadCountInvariant) {
  EnvConfig config;
  config.name = "atari-fake/vec";
  auto run = [&](int threads) {
    VectorEnvConfig vc;
    vc.members = 2;
    vc.envs_per_member = 2;
    vc.seed = 11;
    vc.num_threads = threads;
    auto vec = std::move(VectorEnv::Create(config, vc)).value();
    EXPECT_EQ(vec->spec().observation_shape, (std::array<int, 3>{4, 84, 84}));
    vec->Reset();
    std::vector<int32_t> actions(4);
    std::vector<uint8_t> trace;
    int ended = 0;
    for (int t = 0; t < 400; ++t) {
      for (int i = 0; i < 4; ++i) actions[static_cast<size_t>(i)] = (t + i) % 4;
      EXPECT_TRUE(vec->Step(actions).ok());
      for (int i = 0; i < 4; ++i) ended += vec->terminated()[static_cast<size_t>(i)];
      const auto obs = vec->observations_u8();
      trace.insert(trace.end(), obs.begin(), obs.begin() + 1000);
    }
    EXPECT_GE(ended, 8);  // each game ends after 150 steps
    return trace;
  };
  EXPECT_EQ(run(1), run(2));
}

// ---- the real ALE -----------------------------------------------------------------

TEST(AtariAleTest, TetrisIsDeterministicPerSeed) {
  if (!AleAvailable()) GTEST_SKIP() << "tokenrl was built without ALE (docs/atari.md): real-ALE test skipped";
  const char* roms = std::getenv(kRomDirVariable);
  if (roms == nullptr || !std::filesystem::is_regular_file(std::filesystem::path(roms) / "tetris.bin")) {
    GTEST_SKIP() << "no tetris.bin in $" << kRomDirVariable
                 << " (ALE's repository ships it as tests/resources/tetris.bin): real-ALE test skipped";
  }
  EnvConfig config;
  config.name = "atari/tetris";
  auto play = [&](uint32_t seed, int steps, std::vector<float>* rewards) {
    auto env = std::move(MakeEnvironment(config)).value();
    std::vector<uint8_t> trace;
    std::mt19937 policy(1);
    env->Reset(seed);
    for (int t = 0; t < steps; ++t) {
      auto r = env->Step(static_cast<int>(policy() % static_cast<uint32_t>(env->spec().num_actions())));
      EXPECT_TRUE(r.ok());
      rewards->push_back(r->reward);
      if (t % 10 == 0) {
        const auto obs = Observation(*env);
        trace.insert(trace.end(), obs.begin(), obs.end());
      }
      if (r->done()) env->Reset();
    }
    return trace;
  };
  std::vector<float> ra, rb, rc;
  const auto a = play(3, 3000, &ra);
  const auto b = play(3, 3000, &rb);
  const auto c = play(4, 3000, &rc);
  EXPECT_EQ(a, b);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(a, c) << "seeds 3 and 4 gave the same frames";
  const auto max_pixel = *std::max_element(a.begin(), a.end());
  EXPECT_GT(max_pixel, 0) << "tetris frames are blank";
  // A clone continues exactly as the original.
  auto env = std::move(MakeEnvironment(config)).value();
  env->Reset(5);
  for (int t = 0; t < 300; ++t) {
    auto r = env->Step(t % env->spec().num_actions());
    ASSERT_TRUE(r.ok());
    if (r->done()) env->Reset();
  }
  auto clone = env->Clone();
  auto restored = std::move(MakeEnvironment(config)).value();
  ASSERT_TRUE(restored->LoadState(env->SaveState()).ok());
  for (int t = 0; t < 500; ++t) {
    const int act = (t * 3) % env->spec().num_actions();
    auto r1 = env->Step(act);
    auto r2 = clone->Step(act);
    auto r3 = restored->Step(act);
    ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
    ASSERT_EQ(r1->reward, r2->reward);
    ASSERT_EQ(Observation(*env), Observation(*clone)) << t;
    ASSERT_EQ(Observation(*env), Observation(*restored)) << t;
    if (r1->done()) {
      env->Reset();
      clone->Reset();
      restored->Reset();
    }
  }
}

}  // namespace
}  // namespace tokenrl::env::atari
