#pragma once
// AtariConfig: the Atari protocol's options (`[env.atari]`), each with
// Dopamine's default (../shared/docs/softmoe_reference.md 1.1; docs/atari.md
// has the table with every value's source). Part of EnvConfig.

#include <cstdint>
#include <string>

#include "tokenrl/config/config.h"
#include "tokenrl/env/action_set.h"

namespace tokenrl::env {

struct AtariConfig {
  // Directory holding <game>.bin; "" falls back to $TOKENRL_ATARI_ROMS.
  std::string rom_dir;
  int64_t frame_skip = 4;
  int64_t screen_size = 84;
  int64_t frame_stack = 4;
  double repeat_action_probability = 0.25;
  int64_t max_episode_frames = 108000;
  bool terminal_on_life_loss = false;
  int64_t noop_max = 0;
  ActionSet action_set = ActionSet::kMinimal;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("rom_dir", rom_dir,
            "Directory with the ROMs as <game>.bin (atari/<game>); empty: $TOKENRL_ATARI_ROMS. See docs/atari.md");
    v.Field("frame_skip", frame_skip,
            "Emulator frames per agent step, same action, rewards summed; the observation is the max of the last two "
            "(Dopamine 4)",
            config::InRange<int64_t>(1, 64));
    v.Field("screen_size", screen_size,
            "Side of the square observation; 210x160 grayscale frames are area-resized to it (Dopamine 84)",
            config::InRange<int64_t>(1, 160));
    v.Field("frame_stack", frame_stack,
            "Frames stacked into one observation [k, S, S], oldest first (Dopamine 4; set agent.replay.frame_stack "
            "to the same value to store each frame once)",
            config::InRange<int64_t>(1, 16));
    v.Field("repeat_action_probability", repeat_action_probability,
            "Sticky actions, inside the emulator on every frame: the previous frame's action repeats with this "
            "probability (Machado et al. 2018, Dopamine 0.25)",
            config::InRange(0.0, 1.0));
    v.Field("max_episode_frames", max_episode_frames,
            "Episode cap in emulator frames, reported as truncation: ceil(frames / frame_skip) agent steps "
            "(Dopamine 108000 = 27000 steps); 0 = none; env.max_episode_steps > 0 overrides it",
            config::AtLeast<int64_t>(0));
    v.Field("terminal_on_life_loss", terminal_on_life_loss,
            "A lost life ends the episode (terminated); the next Reset continues the game (Dopamine false, "
            "Atari-100k true)");
    v.Field("noop_max", noop_max,
            "No-op starts: after each game reset, U{0..noop_max} NOOP emulator frames drawn from the env seed "
            "(Mnih et al. 2015 used 30; Dopamine 0)",
            config::InRange<int64_t>(0, 100000));
    v.Field("action_set", action_set, "minimal: the game's minimal action set (Dopamine); full: all 18 ALE actions");
  }
};

}  // namespace tokenrl::env
