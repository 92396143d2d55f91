// `tokenrl sweep` end to end through the binary (issue 7): a local sweep on 2
// workers runs every job exactly once; a worker SIGKILLed mid-run is resumed
// and gives metrics identical to the clean sweep; a second driver on the same
// directory is refused; a SIGKILLed driver is re-run without redoing finished
// jobs; re-running skips done jobs; `sweep status` and `tokenrl report` read
// the directory; and the Slurm backend runs on a real single-node Slurm
// (tests/cli/slurm_local.sh). Runs on the built-in CPU engine (no torch needed).

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"


namespace tokenrl {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kBin = TOKENRL_BINARY;
const std::string kSrc = TOKENRL_SOURCE_DIR;
// Wall-clock limits of the real-Slurm scenarios scale with this (larger in sanitizer builds).
const std::string kTimeScale = std::to_string(TOKENRL_TEST_TIME_SCALE);

using testing::RunShell;
using testing::ShellResult;
using testing::SpawnProcess;
using testing::WaitProcess;

// Children of `parent` (from /proc/*/stat).
std::vector<pid_t> Children(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z') {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

// The run directory a `tokenrl train` process writes (its --out / --resume).
std::string TrainDirOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> args;
  for (size_t s = 0, e; s < all.size(); s = e + 1) {
    e = all.find('\0', s);
    if (e == std::string::npos) e = all.size();
    args.push_back(all.substr(s, e - s));
  }
  if (args.size() < 2 || args[1] != "train") return "";  // Not (yet) exec'ed as `tokenrl train`.
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--out" || args[i] == "--resume") return args[i + 1];
  return "";
}

// 2 variants (flatten, hidden 32 and 64) x 2 games x 2 seeds = 8 cells, packed into 4 processes of 2 members.
std::string WriteSweep(const std::string& dir) {
  const std::string c = kSrc + "/configs";
  const std::string path = dir + "/tiny.toml";
  std::ofstream(path) << "name = \"tiny\"\n"
                      << "base = [\"" << c << "/agents/minatar_dqn.toml\", \"" << c << "/encoders/minatar.toml\"]\n"
                      << R"(games = ["minatar/breakout", "minatar/freeway"]
seeds = [0, 1]
budget = 1200
retries = 2
set = ["learner.backend=cpu", "learner.num_threads=1", "agent.min_replay_env_steps=400",
       "agent.target_update_period_env_steps=400", "agent.replay.capacity=5000",
       "schedule.eval_every_env_steps=800", "schedule.eval_episodes=2", "schedule.eval_max_episode_steps=300",
       "schedule.log_every_env_steps=200", "schedule.checkpoint_every_env_steps=200"]
[variants.flat]
configs = [")" << c << R"(/networks/baseline.toml"]
set = ["network.mixer.hidden_units=32"]
[variants.wide]
configs = [")" << c << R"(/networks/baseline.toml"]
set = ["network.mixer.hidden_units=64"]
)";
  return path;
}

std::vector<std::string> JobDirs(const std::string& out) {
  std::vector<std::string> dirs;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.path().filename() == "config.resolved.toml") dirs.push_back(e.path().parent_path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

std::string Log(const std::string& job_dir) {
  auto t = ReadFile(job_dir + "/sweep.log");
  return t.ok() ? t.value() : "";
}

TEST(SweepCliTest, DryRunPrintsCellsAndCost) {
  const ShellResult r = RunShell(kBin + " sweep " + kSrc + "/configs/sweeps/fig6_minatar_tiny.toml --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("12 cell(s) in 6 job(s)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("job softmoe_4/breakout-s0-1-"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("estimated cost: 36000 env steps"), std::string::npos) << r.output;
  const ShellResult bad = RunShell(kBin + " sweep " + kSrc + "/configs/sweeps/fig6_minatar_tiny.toml --dry-run --pack 1");
  EXPECT_NE(bad.output.find("12 cell(s) in 12 job(s)"), std::string::npos) << bad.output;
}

TEST(SweepCliTest, LocalSweepKillResumeLockAndSkip) {
  const std::string root = ::testing::TempDir() + "/sweep_cli_" + std::to_string(getpid());
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string sweep = WriteSweep(root);
  const std::string a = root + "/clean", b = root + "/killed", c = root + "/driver_killed";

  // 1. A clean sweep on 2 workers: every job once.
  const auto start = Clock::now();
  ShellResult r = RunShell(kBin + " sweep " + sweep + " --out " + a + " --workers 2");
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("clean sweep: %.1f s\n", seconds);
  EXPECT_NE(r.output.find("4 job(s) (8 cell(s)), 0 already done, 4 to run on 2 worker(s)"), std::string::npos) << r.output;
  const std::vector<std::string> jobs = JobDirs(a);
  ASSERT_EQ(jobs.size(), 4u);
  for (const auto& j : jobs) {
    EXPECT_TRUE(fs::exists(j + "/DONE")) << j;
    EXPECT_EQ(Count(Log(j), ": tokenrl train"), 1) << j;
  }
  // 2. Re-running skips every done job; status and report read the directory.
  r = RunShell(kBin + " sweep " + sweep + " --out " + a + " --workers 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4 already done, 0 to run"), std::string::npos) << r.output;
  for (const auto& j : jobs) EXPECT_EQ(Count(Log(j), ": tokenrl train"), 1) << j;
  r = RunShell(kBin + " sweep status " + a);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("4/4 jobs done (100%), 8/8 cells"), std::string::npos) << r.output;
  r = RunShell(kBin + " report " + a + " --out " + root + "/report --no-plots --reps 200 --curve-reps 20 --profile-reps 20");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto table = ReadFile(root + "/report/table.csv");
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->find("flat"), std::string::npos) << *table;
  EXPECT_NE(table->find("wide"), std::string::npos) << *table;
  // run-job --threads: the same job on 2 learner threads (its 2 members split
  // over them) writes the same metrics as the planned single thread.
  const std::string t = root + "/threads";
  fs::create_directories(t);
  fs::copy_file(a + "/sweep.plan.json", t + "/sweep.plan.json");
  const std::string job0 = fs::relative(jobs[0], a).string();
  r = RunShell(kBin + " sweep run-job " + t + " " + job0 + " --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(Log(t + "/" + job0).find("--set learner.num_threads=2"), std::string::npos) << Log(t + "/" + job0);
  EXPECT_EQ(*ReadFile(t + "/" + job0 + "/metrics.csv"), *ReadFile(jobs[0] + "/metrics.csv"));
  EXPECT_NE(RunShell(kBin + " sweep run-job " + t + " " + job0 + " --threads 0").exit_code, 0);

  // 3. SIGKILL a worker mid-run; then, while the driver retries, a second driver is refused.
  const pid_t driver = SpawnProcess({kBin, "sweep", sweep, "--out", b, "--workers", "2"}, root + "/b.log");
  pid_t victim = 0;
  for (int i = 0; i < 2000 && victim == 0; ++i) {
    for (pid_t p : Children(driver))
      if (!TrainDirOf(p).empty()) victim = p;
    if (victim == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_NE(victim, 0) << "no train process appeared";
  const std::string victim_dir = TrainDirOf(victim);
  std::mt19937_64 rng(std::random_device{}());
  // Kill within the training loop of the shortest job (its summary.json time excludes start-up).
  double per_job = seconds;
  for (const auto& j : jobs) {
    auto summary = ReadFile(j + "/summary.json");
    ASSERT_TRUE(summary.ok());
    const size_t k = summary->find("\"seconds_this_process\":");
    ASSERT_NE(k, std::string::npos) << *summary;
    per_job = std::min(per_job, std::stod(summary->substr(summary->find(':', k) + 1)));
  }
  const double after = std::uniform_real_distribution<double>(0.1, 0.6)(rng) * per_job;
  std::this_thread::sleep_for(std::chrono::duration<double>(after));
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  std::printf("killed worker %d (%s) after %.2f s\n", victim, victim_dir.c_str(), after);
  // The driver is still running (it retries the killed job): a second one is
  // refused. Checked only now, so that its start-up cannot delay the kill past
  // the end of a short job.
  r = RunShell(kBin + " sweep " + sweep + " --out " + b + " --workers 1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("another sweep driver"), std::string::npos) << r.output;
  ASSERT_EQ(WaitProcess(driver), 0) << ReadFile(root + "/b.log").value();
  const std::string killed_log = Log(victim_dir);
  EXPECT_NE(killed_log.find("killed by signal 9"), std::string::npos) << killed_log;
  EXPECT_NE(killed_log.find("attempt 2: tokenrl train"), std::string::npos) << killed_log;
  const std::vector<std::string> jobs_b = JobDirs(b);
  ASSERT_EQ(jobs_b.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_TRUE(fs::exists(jobs_b[i] + "/DONE")) << jobs_b[i];
    EXPECT_EQ(fs::relative(jobs_b[i], b), fs::relative(jobs[i], a));
    auto expected = ReadFile(jobs[i] + "/metrics.csv");
    auto actual = ReadFile(jobs_b[i] + "/metrics.csv");
    ASSERT_TRUE(expected.ok() && actual.ok());
    EXPECT_EQ(*actual, *expected) << jobs_b[i] << " differs from the clean sweep";
    EXPECT_EQ(Count(Log(jobs_b[i]), ": tokenrl train"), jobs_b[i] == victim_dir ? 2 : 1) << Log(jobs_b[i]);
  }

  // 4. SIGKILL the driver after its first finished job: its train processes die
  // with it (PDEATHSIG); re-running finishes the rest without redoing done jobs.
  const pid_t driver2 = SpawnProcess({kBin, "sweep", sweep, "--out", c, "--workers", "1"}, root + "/c.log");
  std::string first_done;
  for (int i = 0; i < 6000 && first_done.empty(); ++i) {
    if (fs::exists(c)) {
      for (const auto& j : JobDirs(c))
        if (fs::exists(j + "/DONE")) first_done = j;
    }
    if (first_done.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(first_done.empty());
  kill(driver2, SIGKILL);
  WaitProcess(driver2);
  r = RunShell(kBin + " sweep " + sweep + " --out " + c + " --workers 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("already done"), std::string::npos) << r.output;
  EXPECT_EQ(Count(Log(first_done), ": tokenrl train"), 1) << first_done;
  const std::vector<std::string> jobs_c = JobDirs(c);
  ASSERT_EQ(jobs_c.size(), jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_TRUE(fs::exists(jobs_c[i] + "/DONE")) << jobs_c[i];
    EXPECT_EQ(*ReadFile(jobs_c[i] + "/metrics.csv"), *ReadFile(jobs[i] + "/metrics.csv")) << jobs_c[i];
  }
  fs::remove_all(root);
}

bool HaveSlurm() {
  return RunShell("PATH=$PATH:/usr/sbin; for b in slurmctld slurmd sbatch squeue munged mungekey; do "
             "command -v $b >/dev/null || exit 1; done")
             .exit_code == 0;
}

TEST(SweepCliTest, SlurmBackendOnARealLocalSlurm) {
  if (!HaveSlurm()) {
    std::printf("\n*** SKIPPED: slurm not installed (apt-get install slurmctld slurmd slurm-client munge) ***\n\n");
    GTEST_SKIP() << "SKIPPED: slurm not installed";
  }
  const std::string root = ::testing::TempDir() + "/sweep_slurm_" + std::to_string(getpid());
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string sweep = WriteSweep(root);
  const std::string out = root + "/out";
  // Submit, follow until every array task ends, then re-submit (skips everything).
  const std::string inner = kBin + " sweep " + sweep + " --out " + out + " --backend slurm --time 00:05:00 && " +
                            kBin + " sweep " + sweep + " --out " + out + " --backend slurm";
  const ShellResult r = RunShell("SLURM_LOCAL_CPUS=4 SLURM_LOCAL_TIMEOUT=" + std::to_string(100 * TOKENRL_TEST_TIME_SCALE) + " bash " + kSrc + "/tests/cli/slurm_local.sh bash -c '" +
                       inner + "'");
  if (r.exit_code == 77) GTEST_SKIP() << "SKIPPED: slurm not installed\n" << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("submitted Slurm array job"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4 already done, 0 to submit"), std::string::npos) << r.output;
  const std::vector<std::string> jobs = JobDirs(out);
  ASSERT_EQ(jobs.size(), 4u);
  for (const auto& j : jobs) {
    EXPECT_TRUE(fs::exists(j + "/DONE")) << j;
    EXPECT_EQ(Count(Log(j), ": tokenrl train"), 1) << j;
  }
  auto script = ReadFile(out + "/slurm/submit-0.sbatch");
  ASSERT_TRUE(script.ok());
  EXPECT_NE(script->find("#SBATCH --array=0-3"), std::string::npos) << *script;
  EXPECT_NE(script->find("#SBATCH --time=00:05:00"), std::string::npos) << *script;
  EXPECT_FALSE(fs::exists(out + "/slurm/submit-1.sbatch"));  // Nothing left to submit the second time.
  fs::remove_all(root);
}

// A crashed and a preempted Slurm array task (tests/cli/slurm_kill_scenario.sh):
// task 0 SIGKILLed mid-run, task 1 requeued mid-run. The requeued task resumes
// from its checkpoint inside the same array; re-submitting the sweep submits
// only the killed job, which resumes too. Every job ends done, trained by
// exactly the attempts said, with metrics byte-identical to an uninterrupted
// local sweep of the same plan.
TEST(SweepCliTest, SlurmTaskKilledAndRequeued) {
  if (!HaveSlurm()) {
    std::printf("\n*** SKIPPED: slurm not installed (apt-get install slurmctld slurmd slurm-client munge) ***\n\n");
    GTEST_SKIP() << "SKIPPED: slurm not installed";
  }
  const std::string root = ::testing::TempDir() + "/sweep_slurm_kill_" + std::to_string(getpid());
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string sweep = WriteSweep(root);
  const std::string budget = "6000";  // Long enough to be caught mid-run (checkpoints every 200 steps).
  const std::string clean = root + "/clean", out = root + "/out";
  ShellResult r = RunShell(kBin + " sweep " + sweep + " --out " + clean + " --workers 2 --budget " + budget);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunShell("SLURM_LOCAL_CPUS=4 SLURM_LOCAL_TIMEOUT=" + std::to_string(300 * TOKENRL_TEST_TIME_SCALE) + " bash " + kSrc + "/tests/cli/slurm_local.sh bash " + kSrc +
               "/tests/cli/slurm_kill_scenario.sh " + kBin + " " + sweep + " " + out + " " + budget + " " + kTimeScale);
  if (r.exit_code == 77) GTEST_SKIP() << "SKIPPED: slurm not installed\n" << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(r.output.find("scenario: SIGKILLed array task"), std::string::npos) << r.output;
  ASSERT_NE(r.output.find("scenario: requeued array task"), std::string::npos) << r.output;
  auto first = ReadFile(out + "/slurm/submit-0.jobs");
  auto second = ReadFile(out + "/slurm/submit-1.jobs");
  ASSERT_TRUE(first.ok() && second.ok()) << r.output;
  const std::string killed = first->substr(0, first->find('\n'));
  const std::string requeued = first->substr(killed.size() + 1, first->find('\n', killed.size() + 1) - killed.size() - 1);
  EXPECT_EQ(*second, killed + "\n") << "the re-submission must hold only the killed job\n" << r.output;
  EXPECT_FALSE(fs::exists(out + "/slurm/submit-2.sbatch"));
  const std::vector<std::string> jobs = JobDirs(out), clean_jobs = JobDirs(clean);
  ASSERT_EQ(jobs.size(), 4u);
  ASSERT_EQ(clean_jobs.size(), 4u);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string rel = fs::relative(jobs[i], out).string();
    EXPECT_EQ(rel, fs::relative(clean_jobs[i], clean).string());
    EXPECT_TRUE(fs::exists(jobs[i] + "/DONE")) << rel;
    EXPECT_FALSE(fs::exists(jobs[i] + "/FAILED")) << rel;
    const int attempts = rel == killed || rel == requeued ? 2 : 1;
    EXPECT_EQ(Count(Log(jobs[i]), ": tokenrl train"), attempts) << rel << "\n" << Log(jobs[i]);
    EXPECT_EQ(*ReadFile(jobs[i] + "/metrics.csv"), *ReadFile(clean_jobs[i] + "/metrics.csv"))
        << rel << " differs from the uninterrupted sweep";
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace tokenrl
