// `tokenrl sweep`, `tokenrl sweep status`, `tokenrl sweep run-job`: thin
// wrappers over runner/sweep.h.

#include "tokenrl/cli/sweep_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "tokenrl/cli/commands.h"
#include "tokenrl/core/file_util.h"
#include "tokenrl/runner/sweep.h"
#include "tokenrl/runner/sweep_speeds.h"

namespace tokenrl::cli {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

std::string SelfBinary() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("tokenrl") : p.string();
}

struct SweepArgs {
  std::string file;
  std::string out;
  int workers = 0;
  std::string backend = "local";
  bool dry_run = false;
  int64_t pack = -1;
  int64_t budget = 0;
  int64_t retries = -1;
  std::string partition, time, mem;
  int64_t cpus = 0;
  std::vector<std::string> sbatch_lines;
  bool no_follow = false;
  bool quiet = false;
  std::string speeds;
};

Status Sweep(const SweepArgs& args) {
  if (args.file.empty()) return Status::InvalidArgument("a sweep file is required: tokenrl sweep FILE.toml --out DIR");
  TOKENRL_ASSIGN_OR_RETURN(runner::SweepConfig config, runner::LoadSweepConfig(args.file));
  TOKENRL_ASSIGN_OR_RETURN(runner::SweepPlan plan, runner::ExpandSweep(config, args.pack, args.budget));
  // Every job's config is loaded (strictly) before anything runs.
  TOKENRL_ASSIGN_OR_RETURN(runner::SweepCost cost, runner::EstimateCost(plan));
  const int64_t retries = args.retries >= 0 ? args.retries : config.retries;
  if (args.dry_run) {
    std::cout << fmt::format("sweep {}: {} cell(s) in {} job(s) (process(es))\n", plan.name, plan.cells.size(),
                             plan.jobs.size());
    for (const auto& job : plan.jobs) {
      std::string state;
      if (!args.out.empty()) state = std::string(" [") + runner::JobStateName(runner::GetJobState(args.out, job)) + "]";
      std::cout << fmt::format("job {}{} ({} member(s))\n", job.dir, state, job.seeds.size());
      for (int c : job.cells) std::cout << "  cell " << plan.cells[static_cast<size_t>(c)].id << "\n";
    }
    std::cout << fmt::format(
        "estimated cost: {} env steps, {} gradient updates (summed over processes), {} train process(es)\n",
        cost.env_steps, cost.gradient_updates, cost.processes);
    const std::string speeds = args.speeds.empty() ? config.speeds : args.speeds;
    runner::SpeedTable table;  // Empty: every speed unknown.
    if (!speeds.empty()) {
      TOKENRL_ASSIGN_OR_RETURN(table, runner::LoadSpeedTable(speeds));
    }
    TOKENRL_ASSIGN_OR_RETURN(runner::SweepHours hours, runner::EstimateCoreHours(plan, table));
    std::cout << runner::CoreHoursText(hours, speeds.empty() ? "" : fs::proximate(speeds).string());
    return Status::Ok();
  }
  if (args.out.empty()) return Status::InvalidArgument("--out DIR is required (or --dry-run)");
  TOKENRL_ASSIGN_OR_RETURN(int lock_fd, runner::LockSweepDir(args.out));
  (void)lock_fd;  // Held until the process exits.
  TOKENRL_RETURN_IF_ERROR(runner::WritePlan(args.out, plan));
  if (auto text = ReadFile(args.file); text.ok()) (void)WriteFileAtomic(args.out + "/sweep.toml", text.value());
  InstallStopHandlers();
  runner::SweepRunResult result;
  if (args.backend == "local") {
    runner::LocalRunOptions options;
    options.binary = SelfBinary();
    options.workers = args.workers > 0 ? args.workers : std::max(1u, std::thread::hardware_concurrency());
    options.retries = retries;
    options.verbose = !args.quiet;
    options.stop = &g_stop;
    TOKENRL_ASSIGN_OR_RETURN(result, runner::RunSweepLocal(args.out, plan, options));
  } else {
    runner::SlurmRunOptions options;
    options.binary = SelfBinary();
    options.slurm = config.slurm;
    if (!args.partition.empty()) options.slurm.partition = args.partition;
    if (!args.time.empty()) options.slurm.time = args.time;
    if (!args.mem.empty()) options.slurm.mem = args.mem;
    if (args.cpus > 0) options.slurm.cpus = args.cpus;
    options.slurm.extra.insert(options.slurm.extra.end(), args.sbatch_lines.begin(), args.sbatch_lines.end());
    options.retries = retries;
    options.follow = !args.no_follow;
    options.verbose = !args.quiet;
    options.stop = &g_stop;
    TOKENRL_ASSIGN_OR_RETURN(result, runner::RunSweepSlurm(args.out, plan, options));
  }
  if (result.interrupted) return Status::Internal("interrupted; run the same command again to resume");
  if (!result.failed.empty()) {
    std::string list;
    for (const auto& f : result.failed) list += "\n  " + f;
    return Status::Internal(fmt::format("{} of {} job(s) failed (see sweep.log and FAILED in each):{}",
                                        result.failed.size(), plan.jobs.size(), list));
  }
  const bool submitted_only =
      args.backend == "slurm" && args.no_follow && result.done < static_cast<int>(plan.jobs.size());
  if (!args.quiet && submitted_only) {
    std::cout << fmt::format("sweep {}: submitted; follow it with: tokenrl sweep status {}\n", plan.name, args.out);
  } else if (!args.quiet) {
    std::cout << fmt::format("sweep {}: all {} job(s) done ({} ran now, {} already done). "
                             "Report: tokenrl report {} --out {}/report\n",
                             plan.name, plan.jobs.size(), result.ran, result.skipped, args.out, args.out);
  }
  return Status::Ok();
}

}  // namespace

void AddSweepCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "sweep",
      "Run a grid of training runs (variants x axes x games x seeds) on a local process pool or as a Slurm job\n"
      "array; resumable: re-running skips done jobs and resumes interrupted ones. See docs/sweeps.md.\n"
      "Example: tokenrl sweep configs/sweeps/fig6_minatar_tiny.toml --out out/fig6 --workers 2\n"
      "         tokenrl sweep status out/fig6 ; tokenrl report out/fig6 --out out/fig6/report");
  cmd->require_subcommand(0, 1);
  auto args = std::make_shared<SweepArgs>();
  cmd->add_option("file", args->file, "Sweep file (TOML)")->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", args->out, "Sweep directory (plan, one run directory per job)");
  cmd->add_option("-w,--workers", args->workers, "Local worker processes (default: number of cores)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--backend", args->backend, "local or slurm")->check(CLI::IsMember({"local", "slurm"}));
  cmd->add_flag("-n,--dry-run", args->dry_run, "Print the cells, jobs and estimated cost; run nothing");
  cmd->add_option("--pack", args->pack, "Max seeds packed as members of one process (0 = all, 1 = no packing)")
      ->check(CLI::Range(int64_t{0}, int64_t{4096}));
  cmd->add_option("--budget", args->budget, "schedule.total_env_steps for every cell (overrides the file's budget)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--retries", args->retries, "Extra attempts of a failed job (default: the file's retries)")
      ->check(CLI::Range(int64_t{0}, int64_t{100}));
  cmd->add_option("--partition", args->partition, "Slurm partition");
  cmd->add_option("--time", args->time, "Slurm time limit per array task (e.g. 01:00:00)");
  cmd->add_option("--cpus", args->cpus, "Slurm CPUs per array task")->check(CLI::Range(int64_t{1}, int64_t{1024}));
  cmd->add_option("--mem", args->mem, "Slurm memory per array task (e.g. 4G)");
  cmd->add_option("--sbatch-line", args->sbatch_lines,
                  "Extra batch-script line (\"#SBATCH --qos=x\", \"--qos=x\" or a shell line); repeatable");
  cmd->add_flag("--no-follow", args->no_follow, "Slurm: submit and return without following the array");
  cmd->add_flag("-q,--quiet", args->quiet, "Only errors");
  cmd->add_option("--speeds", args->speeds,
                  "Speed table for the dry run's core-hours (default: the sweep file's `speeds`); see "
                  "`tokenrl bench train --sweep`")
      ->check(CLI::ExistingFile);

  auto* status = cmd->add_subcommand("status", "Show done/running/failed/pending jobs of a sweep with a progress bar");
  auto status_dir = std::make_shared<std::string>();
  auto list_jobs = std::make_shared<bool>(false);
  status->add_option("dir", *status_dir, "Sweep directory")->required();
  status->add_flag("-j,--jobs", *list_jobs, "List every job");
  status->callback([status_dir, list_jobs, &exit_code] {
    auto plan = runner::ReadPlan(*status_dir);
    if (!plan.ok()) {
      exit_code = ReportError("sweep status", plan.status());
      return;
    }
    std::cout << runner::SweepStatusText(*status_dir, *plan, *list_jobs);
    exit_code = 0;
  });

  auto* run_job = cmd->add_subcommand("run-job", "Run one job of a sweep's plan (what each Slurm array task runs)");
  auto rj_dir = std::make_shared<std::string>();
  auto rj_job = std::make_shared<std::string>();
  auto rj_retries = std::make_shared<int64_t>(1);
  run_job->add_option("dir", *rj_dir, "Sweep directory")->required();
  run_job->add_option("job", *rj_job, "Job id or directory (relative to the sweep directory)")->required();
  run_job->add_option("--retries", *rj_retries, "Extra attempts")->check(CLI::Range(int64_t{0}, int64_t{100}));
  auto rj_threads = std::make_shared<int64_t>(0);
  run_job->add_option("--threads", *rj_threads,
                      "Learner threads for this job, overriding the plan's learner.num_threads (the results do not "
                      "depend on it; e.g. one job on every core of a machine)")
      ->check(CLI::Range(int64_t{1}, int64_t{256}));
  run_job->callback([rj_dir, rj_job, rj_retries, rj_threads, &exit_code] {
    auto plan = runner::ReadPlan(*rj_dir);
    Status st = plan.ok() ? runner::RunOneJob(*rj_dir, *plan, *rj_job, SelfBinary(), *rj_retries, *rj_threads)
                          : plan.status();
    exit_code = st.ok() ? 0 : ReportError("sweep run-job", st);
  });

  cmd->callback([status, run_job, args, &exit_code] {
    if (status->parsed() || run_job->parsed()) return;
    const Status st = Sweep(*args);
    if (!st.ok() && g_stop.load()) {
      std::fprintf(stderr, "tokenrl sweep: %s\n", st.message().c_str());
      exit_code = 130;
      return;
    }
    exit_code = st.ok() ? 0 : ReportError("sweep", st);
  });
}

}  // namespace tokenrl::cli
