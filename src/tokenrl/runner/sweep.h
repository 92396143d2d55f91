#pragma once
// Sweeps: a grid of `tokenrl train` runs (variants x axes x games x seeds),
// run on a local process pool or as a Slurm job array, resumable. See
// docs/sweeps.md.
//
// Sweep file (TOML, parsed strictly: an unknown key or a wrong type is an
// InvalidArgument naming the dotted key):
//   name = "fig6"                         # optional; shown in messages
//   base = ["../agents/minatar_rainbow.toml"]  # config files, relative to the sweep file
//   set = ["learner.num_threads=1"]       # --set overrides for every cell
//   games = ["minatar/breakout"]          # env.name per cell (required)
//   seeds = [0, 1]                        # root seed per cell (required)
//   budget = 0                            # > 0: schedule.total_env_steps for every cell
//   pack = 0                              # max members E per process (0 = all seeds, 1 = no packing)
//   retries = 1                           # extra attempts of a failed job
//   speeds = "speeds.toml"                # measured speeds for the dry run's core-hours (sweep_speeds.h)
//   [axes]                                # dotted key -> list of values (cartesian product)
//   "learner.learning_rate" = [1e-4, 2.5e-4]
//   [variants.softmoe_4]                  # named variants (table order = run order)
//   configs = ["../networks/softmoe_4.toml"]
//   set = ["network.mixer.expert_hidden_units=64"]
//   [slurm]                               # Slurm backend defaults (CLI flags override)
//   partition = "" ; time = "01:00:00" ; cpus = 1 ; mem = "" ; extra = ["#SBATCH --qos=x"]
//
// Expansion. A cell is (variant, axis values, game, seed). Its overrides are,
// in order: `set`, the budget, the variant's `set`, the axis values,
// env.name, seed; its config files: `base` then the variant's `configs`. Its
// id is a readable slug plus the first 8 hex digits of XXH64 over the files
// (as written in the sweep file) and the overrides: stable across machines and
// checkouts. A group is the (variant, axis values) part of the slug; it is the
// directory level that `tokenrl report` takes as the variant.
//
// Jobs. A job is one `tokenrl train` process. Cells that differ only in seed
// (same group and game, so the same shapes) are packed as the members of one
// process, up to `pack` of them (vector_env.members = k, seed = the first
// seed; each member is one run). Job directory: OUT/<group>/<game>-s<seeds>-<hash>/,
// the run directory of `tokenrl train`; its DONE (written last, atomically,
// by the trainer) marks the job done.
//
// Per job, beside the training output: sweep.log (the train process's
// stdout/stderr), sweep.lock (flock held while it runs), FAILED (the last
// failure, removed when a later attempt succeeds).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"

namespace tokenrl::runner {

struct SweepVariant {
  std::string name;
  std::vector<std::string> configs;    // As written (relative to the sweep file).
  std::vector<std::string> overrides;
};

struct SweepAxis {
  std::string key;                   // Dotted config key.
  std::vector<std::string> values;   // TOML text of each value.
};

struct SlurmOptions {
  std::string partition;
  std::string time = "01:00:00";
  int64_t cpus = 1;
  std::string mem;
  std::vector<std::string> extra;  // Extra lines for the batch script ("#SBATCH ..." or shell).
};

struct SweepConfig {
  std::string name;
  std::string file;  // The sweep file itself ("" when parsed from text).
  std::string dir;   // Directory relative paths are resolved against.
  std::vector<std::string> base;
  std::vector<std::string> overrides;
  std::vector<std::string> games;
  std::vector<int64_t> seeds;
  int64_t budget = 0;
  int64_t pack = 0;
  int64_t retries = 1;
  std::string speeds;  // Speed table (sweep_speeds.h), resolved against `dir`; "" = none.
  std::vector<SweepAxis> axes;
  std::vector<SweepVariant> variants;  // Empty: one implicit variant "base".
  SlurmOptions slurm;
};

// Parses a sweep file's text; `dir` resolves relative config paths.
StatusOr<SweepConfig> ParseSweepConfig(const std::string& text, const std::string& dir, const std::string& source);
StatusOr<SweepConfig> LoadSweepConfig(const std::string& file);

struct SweepCell {
  std::string id;       // "<group>-<game>-s<seed>-<hash8>"
  std::string group;    // "<variant>[-<key>=<value>...]"
  std::string variant;
  std::string game;     // env.name
  int64_t seed = 0;
  std::vector<std::string> files;      // Absolute.
  std::vector<std::string> overrides;  // Without the seed and packing.
};

struct SweepJob {
  std::string id;   // Directory name: "<game short>-s<seeds>-<hash8>"
  std::string dir;  // Relative to the sweep directory: "<group>/<id>".
  std::string group;
  std::vector<int> cells;              // Indices into SweepPlan::cells.
  std::vector<int64_t> seeds;
  std::vector<std::string> files;      // Absolute config files.
  std::vector<std::string> overrides;  // Complete `--set` list of the job.
};

struct SweepPlan {
  std::string name;
  std::vector<SweepCell> cells;
  std::vector<SweepJob> jobs;
};

// Expands the grid. pack_override >= 0 replaces config.pack; budget_override
// > 0 replaces config.budget.
StatusOr<SweepPlan> ExpandSweep(const SweepConfig& config, int64_t pack_override = -1, int64_t budget_override = 0);

// The plan as JSON (OUT/sweep.plan.json) and back.
std::string PlanToJson(const SweepPlan& plan);
StatusOr<SweepPlan> PlanFromJson(const std::string& text);
StatusOr<SweepPlan> ReadPlan(const std::string& sweep_dir);
Status WritePlan(const std::string& sweep_dir, const SweepPlan& plan);

// Loads every job's TrainConfig (strict; errors name the job) and returns the
// cost: env steps summed over members, and gradient updates.
struct SweepCost {
  int64_t env_steps = 0;
  int64_t gradient_updates = 0;
  int64_t processes = 0;
};
StatusOr<SweepCost> EstimateCost(const SweepPlan& plan);

enum class JobState { kPending, kRunning, kDone, kFailed };
const char* JobStateName(JobState s);
// Done: DONE exists. Running: its sweep.lock is held. Failed: FAILED exists.
// Otherwise pending (possibly partly trained: `partial` is set).
JobState GetJobState(const std::string& sweep_dir, const SweepJob& job, bool* partial = nullptr);

// The `tokenrl train` argument vector (without argv[0]) for a job: a fresh run
// or, when its directory already holds config.resolved.toml, --resume.
// learner_threads > 0 overrides learner.num_threads (results do not depend on
// it: CpuLearnerTest.SameBytesForAnyThreadCountAndRun); a fresh run's
// config.resolved.toml records the count it ran with.
std::vector<std::string> TrainArguments(const std::string& sweep_dir, const SweepJob& job,
                                        int64_t learner_threads = 0);

// Takes the exclusive sweep lock (OUT/sweep.lock). Errors (kInternal) with a
// clear message when another driver holds it. Returns the fd (kept open).
StatusOr<int> LockSweepDir(const std::string& sweep_dir);

struct LocalRunOptions {
  std::string binary;      // tokenrl executable.
  int workers = 1;
  int64_t retries = 1;
  bool verbose = true;     // Progress lines on stdout.
  std::atomic<bool>* stop = nullptr;  // Set (e.g. by SIGINT) -> kill children, return.
};
struct SweepRunResult {
  int done = 0;            // Jobs done at the end (including skipped).
  int skipped = 0;         // Already done at the start.
  int ran = 0;             // Completed in this invocation.
  int attempts = 0;        // Train processes started.
  std::vector<std::string> failed;  // Job dirs that failed after all retries.
  bool interrupted = false;
};
// Runs the plan's jobs that are not done on a pool of `workers` processes.
StatusOr<SweepRunResult> RunSweepLocal(const std::string& sweep_dir, const SweepPlan& plan,
                                       const LocalRunOptions& options);

// Runs one job to completion in this process's control (retries included),
// holding the job's lock; for Slurm array tasks. A held lock: returns OK
// without running (another task has it). learner_threads: as TrainArguments
// (e.g. one job given every core of a machine to finish sooner).
Status RunOneJob(const std::string& sweep_dir, const SweepPlan& plan, const std::string& job_id,
                 const std::string& binary, int64_t retries, int64_t learner_threads = 0);

// Slurm backend.
struct SlurmRunOptions {
  std::string binary;
  SlurmOptions slurm;
  int64_t retries = 1;
  bool follow = true;
  double poll_seconds = 0.5;
  bool verbose = true;
  std::atomic<bool>* stop = nullptr;
};
// The batch script for the given job ids (array index i runs job_ids[i]).
std::string SlurmBatchScript(const std::string& sweep_dir, const std::string& list_file, int num_tasks,
                             const SlurmRunOptions& options);
StatusOr<SweepRunResult> RunSweepSlurm(const std::string& sweep_dir, const SweepPlan& plan,
                                       const SlurmRunOptions& options);

// A status summary with a progress bar (for `tokenrl sweep status`).
std::string SweepStatusText(const std::string& sweep_dir, const SweepPlan& plan, bool list_jobs);

}  // namespace tokenrl::runner
