// `tokenrl train`, `tokenrl eval` and `tokenrl bench train`: thin wrappers
// over runner/trainer.h.

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "tokenrl/cli/commands.h"
#include "tokenrl/cli/config_options.h"
#include "tokenrl/cli/train_commands.h"
#include "tokenrl/env/vector_env.h"
#include "tokenrl/runner/sweep.h"
#include "tokenrl/runner/sweep_speeds.h"
#include "tokenrl/runner/trainer.h"

namespace tokenrl::cli {
namespace {

namespace fs = std::filesystem;

struct TrainArgs {
  ConfigOptions config;
  std::string out_dir;
  std::string resume_dir;
  bool resume = false;
  bool quiet = false;
};

std::string Returns(const std::vector<double>& xs) {
  std::string out = "[";
  for (double x : xs) {
    if (out.size() > 1) out += ' ';
    out += std::isfinite(x) ? fmt::format("{:.2f}", x) : std::string("-");
  }
  return out += ']';
}

Status Train(const TrainArgs& args) {
  std::string dir = args.resume && !args.resume_dir.empty() ? args.resume_dir : args.out_dir;
  if (!args.resume_dir.empty() && !args.out_dir.empty() && args.resume_dir != args.out_dir) {
    return Status::InvalidArgument("--resume DIR and --out DIR name different directories");
  }
  if (dir.empty()) return Status::InvalidArgument("--out DIR is required (or --resume DIR)");
  std::vector<std::string> files = args.config.files;
  const std::string resolved = dir + "/config.resolved.toml";
  if (args.resume) {
    if (fs::exists(resolved)) {
      files.insert(files.begin(), resolved);  // The run's own config; --config / --set layer on top.
    } else if (files.empty()) {
      return Status::InvalidArgument(fmt::format("nothing to resume in {} (no config.resolved.toml)", dir));
    }
  }
  TOKENRL_ASSIGN_OR_RETURN(runner::TrainConfig config, config::Load<runner::TrainConfig>(files, args.config.overrides));
  config.ResolveSeeds();
  if (args.config.print_config) {
    std::cout << config::ToToml(config);
    return Status::Ok();
  }
  std::cout << fmt::format("train: {} | {} member(s) x {} env(s) | backend {} | {} env steps per member | {}{}\n",
                           config.env.name, config.vector_env.members, config.vector_env.envs_per_member,
                           nn::ResolvedBackend(config.learner), config.schedule.total_env_steps, dir,
                           args.resume ? " (resume)" : "")
            << std::flush;
  runner::TrainOptions options;
  options.progress = !args.quiet;
  TOKENRL_ASSIGN_OR_RETURN(runner::TrainSummary summary, runner::RunTraining(config, dir, args.resume, options));
  if (summary.already_complete) {
    std::cout << fmt::format("{}: the run is already complete (DONE exists); nothing to do\n", dir);
    return Status::Ok();
  }
  if (summary.resumed_from_env_steps > 0) {
    std::cout << fmt::format("resumed from env step {}\n", summary.resumed_from_env_steps);
  }
  std::cout << fmt::format(
      "done: {} env steps and {} gradient updates per member in {:.1f} s\n"
      "  recent training return per member {}\n  final evaluation return per member {}\n"
      "  wrote {}/metrics.csv, summary.json, checkpoints/\n",
      summary.env_steps, summary.gradient_updates, summary.seconds, Returns(summary.return_mean_recent),
      Returns(summary.eval_return_mean), dir);
  return Status::Ok();
}

// A run directory stands for its newest checkpoint (names are zero-padded).
StatusOr<std::string> CheckpointPath(const std::string& path) {
  if (!fs::is_directory(path)) return path;
  std::string newest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(path + "/checkpoints", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.ends_with(".bin") && e.path().string() > newest) newest = e.path().string();
  }
  if (newest.empty()) return Status::NotFound(fmt::format("no checkpoint in {}/checkpoints", path));
  return newest;
}

Status Eval(const std::string& checkpoint, int64_t episodes, uint64_t seed) {
  TOKENRL_ASSIGN_OR_RETURN(std::string file, CheckpointPath(checkpoint));
  if (!fs::exists(file)) return Status::NotFound(fmt::format("{}: no such checkpoint", file));
  TOKENRL_ASSIGN_OR_RETURN(runner::EvalResult result, runner::EvaluateCheckpoint(file, episodes, seed));
  std::cout << fmt::format("eval {} (env step {} per member), {} episodes per member, seed {}\n", file,
                           result.env_steps, result.returns.front().size(), seed);
  double total = 0.0;
  for (size_t m = 0; m < result.returns.size(); ++m) {
    const auto& rs = result.returns[m];
    double sq = 0.0;
    for (double r : rs) sq += (r - result.return_mean[m]) * (r - result.return_mean[m]);
    const double se = rs.size() > 1 ? std::sqrt(sq / static_cast<double>(rs.size() - 1) / static_cast<double>(rs.size())) : 0.0;
    std::cout << fmt::format("  member {}: return {:.3f} ± {:.3f}\n", m, result.return_mean[m], se);
    total += result.return_mean[m];
  }
  std::cout << fmt::format("mean return over members: {:.3f}\n", total / static_cast<double>(result.returns.size()));
  return Status::Ok();
}

// ---- bench train -------------------------------------------------------------

struct BenchArgs {
  std::vector<std::string> variants{"flatten", "softmoe-4"};
  std::vector<int64_t> members{1, 8};
  int64_t steps = 3000;   // Timed env steps per member, after the warm-up.
  int64_t warmup = 1000;  // Untimed env steps per member (= min replay), so updates run while timed.
  std::vector<std::string> overrides;
  // --sweep: measure every distinct speed key of a sweep's jobs instead.
  std::string sweep;
  std::vector<std::string> groups;  // Only these groups (variants); empty: all.
  std::string skip_known;           // A speed table whose keys are not measured again.
  std::string machine;              // Written into each [[speed]] entry.
};

// The fixed configuration: MinAtar Breakout DQN, MinAtar encoder (3x3
// conv, 16 channels, SAME), batch 32, Adam, an update every 4 env steps.
StatusOr<runner::TrainConfig> BenchConfig(const std::string& variant, int64_t members, const BenchArgs& args) {
  runner::TrainConfig c;
  c.env.name = "minatar/breakout";
  c.vector_env.members = members;
  c.network.encoder.type = nn::EncoderType::kMinatar;
  if (variant == "flatten") {
    c.network.mixer.type = nn::MixerType::kFlatten;  // flatten -> Dense(128) -> Q
    c.network.mixer.hidden_units = 128;
  } else if (variant == "softmoe-4") {
    c.network.tokenizer.type = nn::TokenizerType::kPerConv;  // 100 tokens of 16
    c.network.mixer.type = nn::MixerType::kSoftMoe;
    c.network.mixer.num_experts = 4;
    c.network.mixer.expert_hidden_units = 128;
  } else {
    return Status::InvalidArgument(fmt::format("unknown variant \"{}\"; allowed: flatten, softmoe-4", variant));
  }
  c.agent.batch_size = 32;
  c.agent.update_period_env_steps = 4;
  c.agent.min_replay_env_steps = args.warmup;
  c.agent.target_update_period_env_steps = 1000;
  c.agent.replay.capacity = 100000;
  c.learner.learning_rate = 2.5e-4;
  c.learner.adam_epsilon = 3.125e-4;
  // --set overrides apply on top (e.g. learner.backend=cpu, learner.num_threads=2).
  toml::table table = toml::parse(config::ToToml(c));
  for (const auto& o : args.overrides) TOKENRL_RETURN_IF_ERROR(config::ApplyOverride(table, o));
  runner::TrainConfig out;
  TOKENRL_RETURN_IF_ERROR(config::ParseTable(table, out));
  out.ResolveSeeds();
  return out;
}

// CPU seconds (user + system, all threads) of this process so far.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Env steps per member per second of wall-clock time and per second of the
// process's CPU time: `warmup` untimed env steps per member (the replay
// warm-up, so that updates run while timed), then `steps` timed. On a loaded
// machine the CPU-time rate is the one that says what a core delivers.
struct TrainingRate {
  double wall = 0.0;
  double cpu = 0.0;
};
StatusOr<TrainingRate> MeasureTraining(const runner::TrainConfig& c, int64_t warmup, int64_t steps) {
  TOKENRL_ASSIGN_OR_RETURN(auto vec, env::VectorEnv::Create(c.env, c.vector_env));
  TOKENRL_ASSIGN_OR_RETURN(auto agent, runner::MakeAgent(c, vec->spec()));
  vec->Reset();
  std::vector<uint8_t> obs(vec->observations_u8().begin(), vec->observations_u8().end());
  std::vector<int32_t> actions(static_cast<size_t>(vec->num_envs()));
  auto step = [&]() -> Status {
    agent->SelectActions(obs, actions);
    TOKENRL_RETURN_IF_ERROR(vec->Step(actions));
    TOKENRL_RETURN_IF_ERROR(agent->Observe({obs, actions, vec->rewards(), vec->terminated(), vec->truncated(),
                                            vec->observations_u8(), vec->final_observations_u8()}));
    std::copy(vec->observations_u8().begin(), vec->observations_u8().end(), obs.begin());
    return Status::Ok();
  };
  while (agent->env_steps() <= warmup) TOKENRL_RETURN_IF_ERROR(step());
  const int64_t start_steps = agent->env_steps();
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds();
  while (agent->env_steps() - start_steps < steps) TOKENRL_RETURN_IF_ERROR(step());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_secs = ProcessCpuSeconds() - cpu_start;
  const double n = static_cast<double>(agent->env_steps() - start_steps);
  return TrainingRate{n / secs, n / std::max(cpu_secs, 1e-9)};
}

// The 1-minute load average ("?" when unreadable).
std::string LoadAverage() {
  double load[1];
  return getloadavg(load, 1) == 1 ? fmt::format("{:.2f}", load[0]) : std::string("?");
}

std::string Today() {
  const std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// --sweep: one measurement per distinct speed key of the sweep's jobs (on the
// first job with that key: its game, members, threads and whole config), as
// [[speed]] entries that can be appended to a speed table.
Status BenchTrainSweep(const BenchArgs& args) {
  TOKENRL_ASSIGN_OR_RETURN(runner::SweepConfig sweep, runner::LoadSweepConfig(args.sweep));
  TOKENRL_ASSIGN_OR_RETURN(runner::SweepPlan plan, runner::ExpandSweep(sweep));
  runner::SpeedTable known;
  if (!args.skip_known.empty()) {
    TOKENRL_ASSIGN_OR_RETURN(known, runner::LoadSpeedTable(args.skip_known));
  }
  for (const auto& g : args.groups) {
    if (std::none_of(plan.jobs.begin(), plan.jobs.end(), [&](const runner::SweepJob& j) { return j.group == g; })) {
      return Status::InvalidArgument(fmt::format("--group {}: no such variant in {}", g, args.sweep));
    }
  }
  std::vector<runner::SpeedKey> done;
  std::cout << fmt::format("# tokenrl bench train --sweep {} --steps {} ({})\n", args.sweep, args.steps, Today());
  for (const auto& job : plan.jobs) {
    if (!args.groups.empty() && std::find(args.groups.begin(), args.groups.end(), job.group) == args.groups.end()) {
      continue;
    }
    auto loaded = config::Load<runner::TrainConfig>(job.files, job.overrides);
    if (!loaded.ok()) return loaded.status().WithContext(fmt::format("job {}", job.dir));
    runner::TrainConfig c = std::move(loaded).value();
    c.ResolveSeeds();
    const runner::SpeedKey key = runner::JobSpeedKey(job, c);
    if (std::find(done.begin(), done.end(), key) != done.end() || known.Find(key) != nullptr) continue;
    done.push_back(key);
    TOKENRL_ASSIGN_OR_RETURN(TrainingRate rate, MeasureTraining(c, c.agent.min_replay_env_steps, args.steps));
    const double per_core = rate.cpu * static_cast<double>(std::max<int64_t>(1, c.learner.num_threads));
    std::cout << fmt::format(
                     "# {} on {} (job {}), backend {}: {:.1f} env steps/s per member of wall-clock time "
                     "(load average {}), {:.1f} per CPU-second x threads\n[[speed]]\nagent = \"{}\"\nencoder = \"{}\"\n"
                     "network = \"{}\"\nwidth = {}\nmembers = {}\nthreads = {}\nenv_steps_per_s = {:.1f}\n"
                     "machine = {}\nmeasured = \"{}\"\n\n",
                     job.group, c.env.name, job.dir, nn::ResolvedBackend(c.learner), rate.wall, LoadAverage(),
                     per_core, key.agent, key.encoder, key.network, key.width, key.members, key.threads, per_core,
                     config::internal::QuoteTomlString(args.machine), Today())
              << std::flush;
  }
  return Status::Ok();
}

Status BenchTrain(const BenchArgs& args) {
  if (!args.sweep.empty()) return BenchTrainSweep(args);
  if (!args.groups.empty() || !args.skip_known.empty() || !args.machine.empty()) {
    return Status::InvalidArgument("--group, --skip-known and --machine measure a sweep's jobs: add --sweep FILE");
  }
  for (const auto& variant : args.variants) {
    for (int64_t members : args.members) {
      TOKENRL_ASSIGN_OR_RETURN(runner::TrainConfig c, BenchConfig(variant, members, args));
      TOKENRL_ASSIGN_OR_RETURN(TrainingRate rate, MeasureTraining(c, args.warmup, args.steps));
      std::cout << fmt::format("bench train {} E={} {:.0f} backend={}", variant, members, rate.wall,
                               nn::ResolvedBackend(c.learner))
                << std::endl;
    }
  }
  return Status::Ok();
}

}  // namespace

void AddTrainCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train an agent; writes config.resolved.toml, metrics.csv, progress.csv, checkpoints/, summary.json, DONE.\n"
      "Example: tokenrl train --config configs/train/minatar_breakout_quick.toml --out out/breakout\n"
      "Resume:  tokenrl train --resume out/breakout");
  auto args = std::make_shared<TrainArgs>();
  args->config.AddTo(cmd);
  cmd->add_option("-o,--out", args->out_dir, "Run directory (must not hold a run unless --resume)");
  cmd->add_option("--resume", args->resume_dir,
                  "Continue the run in DIR (or in --out when given without a value) from its newest valid "
                  "checkpoint; its config.resolved.toml is the base config")
      ->expected(0, 1);
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line on stderr");
  cmd->callback([cmd, args, &exit_code] {
    args->resume = cmd->count("--resume") > 0;
    const Status st = Train(*args);
    exit_code = st.ok() ? 0 : ReportError("train", st);
  });
}

void AddEvalCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a saved agent (epsilon_eval, noise off) on fresh environments.\n"
              "Example: tokenrl eval --checkpoint out/breakout --episodes 100");
  auto checkpoint = std::make_shared<std::string>();
  auto episodes = std::make_shared<int64_t>(0);
  auto seed = std::make_shared<uint64_t>(0);
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint file, or a run directory (its newest checkpoint)")
      ->required();
  cmd->add_option("-n,--episodes", *episodes, "Episodes per member (default: the run's schedule.eval_episodes)")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  cmd->add_option("--seed", *seed, "Seed of the evaluation environments");
  cmd->callback([checkpoint, episodes, seed, &exit_code] {
    const Status st = Eval(*checkpoint, *episodes, *seed);
    exit_code = st.ok() ? 0 : ReportError("eval", st);
  });
}

void AddBenchTrainCommand(CLI::App& bench, int& exit_code) {
  auto* cmd = bench.add_subcommand(
      "train",
      "Training throughput on MinAtar Breakout DQN (batch 32, Adam, update every 4 env steps, after warm-up).\n"
      "Prints one line per variant and member count: `bench train VARIANT E=<E> ENV_STEPS_PER_S_PER_MEMBER backend=<name>`");
  auto args = std::make_shared<BenchArgs>();
  cmd->add_option("--variant", args->variants, "flatten and/or softmoe-4")
      ->check(CLI::IsMember({"flatten", "softmoe-4"}));
  cmd->add_option("-E,--members", args->members, "Member counts E to measure")->check(CLI::Range(1, 4096));
  cmd->add_option("-n,--steps", args->steps, "Timed env steps per member")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--warmup", args->warmup, "Untimed warm-up env steps per member (the replay warm-up)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("-s,--set", args->overrides, "Override the benchmark config: dotted.key=value (e.g. "
                                              "learner.backend=cpu)");
  cmd->add_option("--sweep", args->sweep,
                  "Measure the jobs of a sweep file instead: one [[speed]] entry (TOML, for a speed table such as\n"
                  "configs/paper/speeds.toml) per distinct (agent, encoder, network, width, members, threads),\n"
                  "each on its first job's full config, after that config's replay warm-up")
      ->check(CLI::ExistingFile);
  cmd->add_option("--group", args->groups, "With --sweep: only these variants (groups)");
  cmd->add_option("--skip-known", args->skip_known, "With --sweep: skip keys this speed table already has")
      ->check(CLI::ExistingFile);
  cmd->add_option("--machine", args->machine, "With --sweep: where it was measured (free text for `machine`)");
  cmd->callback([args, &exit_code] {
    const Status st = BenchTrain(*args);
    exit_code = st.ok() ? 0 : ReportError("bench train", st);
  });
}

}  // namespace tokenrl::cli
