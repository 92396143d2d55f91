#pragma once
// EnvConfig: which environment to create and with which options. Parsed from
// the `[env]` table of an experiment config.

#include <cstdint>
#include <string>

#include "tokenrl/config/config.h"
#include "tokenrl/env/action_set.h"
#include "tokenrl/env/atari/atari_config.h"

namespace tokenrl::env {

// Options of the MinAtar games (Young & Tian 2019; defaults as upstream
// MinAtar 1.0.15 and the paper's MinAtar setting: sticky 0.1, ramping on, all
// 6 actions).
struct MinatarConfig {
  double sticky_action_prob = 0.1;
  bool difficulty_ramping = true;
  ActionSet action_set = ActionSet::kFull;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("sticky_action_prob", sticky_action_prob,
            "Probability that the previous executed action repeats instead of the chosen one (MinAtar default 0.1)",
            config::InRange(0.0, 1.0));
    v.Field("difficulty_ramping", difficulty_ramping,
            "Games speed up over an episode (asterix, seaquest, space_invaders; MinAtar default true)");
    v.Field("action_set", action_set,
            "full: MinAtar's 6 actions (n l u r d f) as in the paper; minimal: the game's minimal set");
  }
};

struct EnvConfig {
  std::string name = "minatar/breakout";
  // 0 = no limit, as upstream MinAtar (Freeway ends itself after 2500 steps).
  int64_t max_episode_steps = 0;
  MinatarConfig minatar;
  AtariConfig atari;

  template <typename V>
  void VisitFields(V& v) {
    v.Field("name", name, "Registered environment name (see `tokenrl list`)", config::NonEmpty());
    v.Field("max_episode_steps", max_episode_steps,
            "Time limit in agent steps after which an episode is truncated; 0 = none", config::AtLeast<int64_t>(0));
    v.Field("minatar", minatar, "Options of the MinAtar games");
    v.Field("atari", atari, "Options of the Atari games (atari/<game>, atari-fake/<game>; docs/atari.md)");
  }
};

}  // namespace tokenrl::env
