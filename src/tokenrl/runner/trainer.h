#pragma once
// The training runner behind `tokenrl train` and `tokenrl eval`.
//
// RunTraining builds the VectorEnv (M members x N envs), the learner
// (nn::MakeLearner; the backend must be registered) and the Agent, then loops
// select actions -> step -> Observe until every member has taken
// schedule.total_env_steps env steps. It writes into `out_dir`:
//  * config.resolved.toml  first, before any work (seeds resolved);
//  * metrics.csv           one row per member at every log or evaluation
//                          boundary: member, env_steps, gradient_updates,
//                          episodes, return_mean_recent (last 100 training
//                          episodes), loss and q_mean (means over the updates
//                          since the previous row), epsilon, eval_return_mean
//                          (empty where no evaluation ran at this row), eval_
//                          return_std. Empty cells mean "no value". Nothing
//                          wall-clock goes here, so the file is a pure
//                          function of the config: a resumed run reproduces it
//                          byte for byte;
//  * progress.csv          wall-clock timing per row (env_steps, seconds,
//                          env_steps_per_s summed over members); appended, not
//                          reproducible;
//  * diagnostics.csv       ([diagnostics].every_env_steps > 0) one row per
//                          member at every crossing of that period:
//                          Learner::Diagnostics (nn/learner.h) on the
//                          diagnostics.batch_size observations most recently
//                          written to the member's replay (no row while the
//                          replay is empty): penultimate and per-expert
//                          dormant fractions per tau, per-expert combine
//                          share and load, routing entropies, tokens dropped,
//                          specialization similarities, srank, parameter norm;
//  * interventions.csv     ([interventions].type != none) one row per member
//                          and firing: env_steps, type, the experts touched,
//                          include_router, alpha, beta. Both files are pure
//                          functions of the config (their lengths are
//                          checkpointed like metrics.csv), and a resumed run
//                          reproduces them byte for byte. Per iteration, after
//                          Observe: pruned experts are re-zeroed, then the
//                          diagnostics row, then the intervention (its fresh
//                          weights from DeriveSeed(learner.seed, {5, env
//                          step})), then evaluation / metrics / checkpoint;
//  * checkpoints/ckpt-<env steps>.bin  see "Checkpoints" below;
//  * summary.json          final per-member statistics and timing;
//  * DONE                  written last, atomically, when the run completed.
//
// Order within one loop iteration (after Observe): evaluation if due, the
// metrics rows if due, the checkpoint if due. Boundaries are crossings of
// multiples of the period in per-member env steps. At the end, a final
// evaluation (when evaluation is on) and row are added unless they fell on
// the last iteration, then a final checkpoint, summary.json and DONE.
//
// Evaluation: fresh environments (M x eval_episodes, one episode each,
// truncated at eval_max_episode_steps), seeded from config.seed and the
// evaluation index; actions from Agent::SelectEvalActions.
//
// Checkpoints hold everything needed to continue exactly: the resolved
// config, the agent (learner, replay, RNG streams, counters), every
// environment's state (Environment::SaveState), the current observations,
// the runner's statistics, and the length of metrics.csv at that point.
// File layout: "TKRLCKPT", u32 format version, u32 0, u64 payload size,
// u64 XXH64 of the payload, payload. Written to a temporary file, fsynced,
// renamed, directory fsynced; the newest schedule.keep_checkpoints are kept.
//
// Resume (resume = true): the newest checkpoint whose header and checksum
// verify is loaded (a corrupted or truncated one is reported on stderr as a
// warning, left in place, and the previous one used; the next checkpoint
// written removes it as superseded); metrics.csv is
// truncated to the length recorded in it and the run continues. Without a
// usable checkpoint the run starts over. A run whose DONE exists is not
// rerun. Killed at any point (SIGKILL included), a resumed run therefore
// writes the same metrics.csv as an uninterrupted one (CPU, fixed threads).
//
// A non-finite loss (or any learner error) stops the run with an error
// naming the env step; the last good checkpoint stays on disk and no DONE is
// written.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/runner/train_config.h"

namespace tokenrl::runner {

struct TrainOptions {
  // Progress on stderr: a refreshed line when stderr is a TTY, otherwise a
  // line every ~10 s.
  bool progress = true;
  // Tests only: return Status::Internal("simulated kill") as soon as the
  // agent reaches this many env steps per member (0 = never), without any
  // end-of-run work, as if the process had been killed there.
  int64_t kill_at_env_steps = 0;
};

struct TrainSummary {
  int64_t env_steps = 0;  // Per member.
  int64_t gradient_updates = 0;
  int64_t resumed_from_env_steps = 0;         // 0 for a fresh run.
  std::vector<double> eval_return_mean;       // [M] last evaluation (NaN: none)
  std::vector<double> return_mean_recent;     // [M] last 100 training episodes (NaN: none)
  double seconds = 0.0;                       // This process only.
  bool already_complete = false;              // Resumed a run whose DONE exists; nothing ran.
};

// Trains `config` into `out_dir` (created if needed). With resume = false the
// directory must not already hold a run (config.resolved.toml); with resume
// = true it continues the run there (see above). Errors: invalid config,
// unregistered backend, I/O, a learner error or non-finite loss.
StatusOr<TrainSummary> RunTraining(TrainConfig config, const std::string& out_dir, bool resume,
                                   const TrainOptions& options = {});

struct EvalResult {
  int64_t env_steps = 0;                 // Per member, of the checkpoint.
  std::vector<double> return_mean;       // [M]
  std::vector<std::vector<double>> returns;  // [M][episodes]
};

// Loads `checkpoint_file` (verifying its checksum) and evaluates its agent for
// `episodes` episodes per member (0 = the config's schedule.eval_episodes)
// on environments seeded with `seed`.
StatusOr<EvalResult> EvaluateCheckpoint(const std::string& checkpoint_file, int64_t episodes, uint64_t seed);

// The agent (with its learner, for config.vector_env.members members) that
// RunTraining builds for environments of `spec`; for benchmarks and tools.
StatusOr<std::unique_ptr<agents::Agent>> MakeAgent(const TrainConfig& config, const env::EnvSpec& spec);

// XXH64 (seed 0) of `bytes`: the checkpoint checksum.
uint64_t Checksum64(std::string_view bytes);

}  // namespace tokenrl::runner
