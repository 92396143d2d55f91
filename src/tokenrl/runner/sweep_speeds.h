#pragma once
// Measured training speeds and the core-hour estimate of a sweep.
//
// A speed table (TOML, e.g. configs/paper/speeds.toml) lists measured training
// throughputs, one [[speed]] entry per (agent preset, encoder, network preset,
// width, members, threads), as `tokenrl bench train --sweep FILE` prints them:
//
//   [[speed]]
//   agent = "minatar_rainbow"     # stem of the agent preset (configs/agents/)
//   encoder = "minatar"           # network.encoder.type
//   network = "softmoe_4"         # stem of the network preset (configs/networks/)
//   width = 128                   # hidden_units (flatten, tokenized, gap) or expert_hidden_units (MoE)
//   members = 5                   # vector_env.members of the process
//   threads = 1                   # learner.num_threads
//   env_steps_per_s = 312.0       # env steps per second per member, training after the replay warm-up
//   machine = "2-core VM, loaded"  # free text: where and how it was measured
//   measured = "2026-12-05"
//
// A job's key is read from its config files (the stems of the files under an
// `agents/` and a `networks/` folder) and its resolved TrainConfig. There is
// no interpolation: a job whose key has no exact entry has an unknown speed,
// and its cost is reported as unknown, never guessed.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/runner/sweep.h"
#include "tokenrl/runner/train_config.h"

namespace tokenrl::runner {

struct SpeedKey {
  std::string agent;    // "" when no config file lies in an agents/ folder.
  std::string encoder;
  std::string network;  // "" when no config file lies in a networks/ folder.
  int64_t width = 0;
  int64_t members = 1;
  int64_t threads = 1;

  bool operator==(const SpeedKey&) const = default;
  // "agent=minatar_rainbow encoder=minatar network=softmoe_4 width=128 E=5 threads=1"
  std::string ToString() const;
};

struct SpeedEntry {
  SpeedKey key;
  double env_steps_per_s = 0.0;  // Per member.
  std::string machine;
  std::string measured;
};

struct SpeedTable {
  std::string file;
  std::vector<SpeedEntry> entries;
  // The entry for `key`, or nullptr (unknown).
  const SpeedEntry* Find(const SpeedKey& key) const;
};

// Strict: an unknown key, a wrong type or a non-positive speed is an error
// naming the entry ("speed[2].width: ...").
StatusOr<SpeedTable> ParseSpeedTable(const std::string& text, const std::string& source);
StatusOr<SpeedTable> LoadSpeedTable(const std::string& file);

// The key of a job whose resolved config is `config`.
SpeedKey JobSpeedKey(const SweepJob& job, const TrainConfig& config);

// Width of the network's penultimate layer or of each expert.
int64_t MixerWidth(const TrainConfig& config);

// The estimate per group (variant with its axis values) and in total.
struct GroupHours {
  std::string group;
  int jobs = 0;
  int64_t env_steps_per_member = 0;   // Per job (the largest, if they differ).
  std::vector<SpeedKey> keys;         // Distinct keys of its jobs.
  std::optional<double> env_steps_per_s;  // Per member; the slowest of its jobs; unset: unknown.
  std::optional<double> core_hours;       // Unset: some job's speed is unknown.
};
struct SweepHours {
  std::vector<GroupHours> groups;
  std::optional<double> total_core_hours;  // Unset when any group is unknown.
  double known_core_hours = 0.0;           // Sum over the groups that are known.
  int unknown_groups = 0;
};
// Core-hours of a job: total_env_steps / speed (per member; members train in
// lock step) / 3600 x learner.num_threads. Every job's config is loaded.
StatusOr<SweepHours> EstimateCoreHours(const SweepPlan& plan, const SpeedTable& table);

// The dry-run text of an estimate (one line per group, then the total).
std::string CoreHoursText(const SweepHours& hours, const std::string& speeds_file);

}  // namespace tokenrl::runner
