// Sweeps (issue 7): strict sweep files, expansion into cells and packed jobs
// with stable ids, the plan file, job states, and the local process pool
// (with a stand-in for `tokenrl train`, so these tests need no torch).

#include "tokenrl/runner/sweep.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tokenrl/core/file_util.h"

namespace tokenrl::runner {
namespace {

namespace fs = std::filesystem;

const std::string kConfigs = std::string(TOKENRL_SOURCE_DIR) + "/configs";

std::string Sweep(const std::string& extra = "") {
  return R"(
name = "t"
base = ["agents/minatar_dqn.toml", "encoders/minatar.toml"]
set = ["learner.num_threads=1"]
games = ["minatar/breakout", "minatar/asterix"]
seeds = [0, 1, 2]
budget = 1000
[variants.softmoe_4]
configs = ["networks/softmoe_4.toml"]
set = ["network.mixer.expert_hidden_units=32"]
[variants]
flat = "networks/baseline.toml"
)" + extra;
}

StatusOr<SweepConfig> Parse(const std::string& text) { return ParseSweepConfig(text, kConfigs, "test.toml"); }

std::string TempDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/sweep_" + name + "_" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(SweepTest, ExpandsVariantsAxesGamesSeedsWithPacking) {
  auto config = Parse(Sweep("[axes]\n\"learner.learning_rate\" = [1e-4, 2.5e-4]\n"));
  ASSERT_TRUE(config.ok()) << config.status().message();
  auto plan = ExpandSweep(*config);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  // 2 variants x 2 axis values x 2 games x 3 seeds.
  EXPECT_EQ(plan->cells.size(), 24u);
  // Default pack = 0: all 3 seeds of a (group, game) in one process.
  ASSERT_EQ(plan->jobs.size(), 8u);
  std::set<std::string> groups, ids;
  for (const auto& c : plan->cells) {
    groups.insert(c.group);
    EXPECT_TRUE(ids.insert(c.id).second) << c.id;
  }
  EXPECT_EQ(groups, (std::set<std::string>{"flat-learning_rate=0.0001", "flat-learning_rate=0.00025",
                                           "softmoe_4-learning_rate=0.0001", "softmoe_4-learning_rate=0.00025"}));
  const SweepJob& job = plan->jobs.front();
  EXPECT_EQ(job.seeds, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(job.dir.substr(0, job.dir.find('/')), job.group);
  EXPECT_NE(std::find(job.overrides.begin(), job.overrides.end(), "vector_env.members=3"), job.overrides.end());
  EXPECT_NE(std::find(job.overrides.begin(), job.overrides.end(), "seed=0"), job.overrides.end());
  EXPECT_NE(std::find(job.overrides.begin(), job.overrides.end(), "schedule.total_env_steps=1000"), job.overrides.end());
  EXPECT_EQ(job.files.size(), 3u);
  EXPECT_TRUE(fs::path(job.files[0]).is_absolute());

  // pack = 2: seeds {0, 1} and {2}; pack = 1: one process per cell.
  auto pack2 = ExpandSweep(*config, 2);
  ASSERT_TRUE(pack2.ok());
  EXPECT_EQ(pack2->jobs.size(), 16u);
  EXPECT_EQ(pack2->jobs[0].seeds, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(pack2->jobs[1].seeds, (std::vector<int64_t>{2}));
  EXPECT_EQ(std::find(pack2->jobs[1].overrides.begin(), pack2->jobs[1].overrides.end(), "vector_env.members=1"),
            pack2->jobs[1].overrides.end());
  auto pack1 = ExpandSweep(*config, 1, 500);
  ASSERT_TRUE(pack1.ok());
  EXPECT_EQ(pack1->jobs.size(), 24u);
  EXPECT_NE(std::find(pack1->jobs[0].overrides.begin(), pack1->jobs[0].overrides.end(), "schedule.total_env_steps=500"),
            pack1->jobs[0].overrides.end());
  // Every job's config loads strictly; the cost adds members x steps.
  auto cost = EstimateCost(*plan);
  ASSERT_TRUE(cost.ok()) << cost.status().message();
  EXPECT_EQ(cost->env_steps, 24 * 1000);
  EXPECT_EQ(cost->processes, 8);
}

TEST(SweepTest, IdsAreStableAndDependOnTheOverrides) {
  auto a = ExpandSweep(*Parse(Sweep()));
  auto b = ExpandSweep(*Parse(Sweep()));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->cells.size(), 12u);
  for (size_t i = 0; i < a->cells.size(); ++i) EXPECT_EQ(a->cells[i].id, b->cells[i].id);
  // A fixed expectation: ids must not change between builds or machines.
  EXPECT_EQ(a->cells[0].id.substr(0, a->cells[0].id.size() - 8), "flat-breakout-s0-");
  const std::string golden = "flat-breakout-s0-cef2d014";
  EXPECT_EQ(a->cells[0].id, golden);
  // A different override changes the hash, not the slug.
  auto c = ExpandSweep(*Parse([] {
    std::string s = Sweep();
    s.replace(s.find("budget = 1000"), 13, "budget = 2000");
    return s;
  }()));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cells[0].id.substr(0, 17), "flat-breakout-s0-");
  EXPECT_NE(c->cells[0].id, golden);
}

TEST(SweepTest, StrictErrorsNameTheKey) {
  auto expect_error = [](const std::string& text, const std::string& needle) {
    auto c = Parse(text);
    ASSERT_FALSE(c.ok()) << "accepted: " << text;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  expect_error("gamez = [1]\n" + Sweep(), "gamez: unknown key");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\n[variants.x]\nconfig = \"a.toml\"\n",
               "variants.x.config: unknown key");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [\"a\"]\n", "seeds[0]");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0, 0]\n", "listed twice");
  expect_error("seeds = [0]\n", "games: required");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\npack = -1\n", "pack: value -1 is out of range");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\n[axes]\n\"learner.learning_rate\" = 0.1\n",
               "axes.learner.learning_rate: expected a non-empty array");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\n[variants.x]\nconfigs = [\"nope.toml\"]\n",
               "variants.x.configs[0]: config file");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\n[slurm]\nqueue = \"a\"\n", "slurm.queue: unknown key");
  expect_error("games = [\"minatar/breakout\"]\nseeds = [0]\nbudget = \"big\"\n", "budget: expected an integer");
  // A bad train key surfaces when the jobs' configs are loaded, naming the key and the job.
  auto config = Parse("games = [\"minatar/breakout\"]\nseeds = [0]\nset = [\"agent.no_such_key=1\"]\n");
  ASSERT_TRUE(config.ok());
  auto plan = ExpandSweep(*config);
  ASSERT_TRUE(plan.ok());
  auto cost = EstimateCost(*plan);
  ASSERT_FALSE(cost.ok());
  EXPECT_NE(cost.status().message().find("agent.no_such_key"), std::string::npos) << cost.status().message();
  EXPECT_NE(cost.status().message().find("base/breakout-s0-"), std::string::npos) << cost.status().message();
}

TEST(SweepTest, PlanRoundTripsAndTrainArgumentsResume) {
  auto plan = ExpandSweep(*Parse(Sweep()), 2);
  ASSERT_TRUE(plan.ok());
  const std::string dir = TempDir("plan");
  ASSERT_TRUE(WritePlan(dir, *plan).ok());
  auto back = ReadPlan(dir);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(PlanToJson(*back), PlanToJson(*plan));
  EXPECT_FALSE(ReadPlan(dir + "/nope").ok());

  const SweepJob& job = plan->jobs[0];
  auto args = TrainArguments(dir, job);
  ASSERT_GE(args.size(), 4u);
  EXPECT_EQ(args[0], "train");
  EXPECT_EQ(args[args.size() - 2], dir + "/" + job.dir);
  // A thread count goes last, after the plan's overrides, so that it wins.
  auto threaded = TrainArguments(dir, job, 3);
  args.insert(args.end(), {"--set", "learner.num_threads=3"});
  EXPECT_EQ(threaded, args);
  EXPECT_EQ(GetJobState(dir, job), JobState::kPending);
  fs::create_directories(dir + "/" + job.dir);
  std::ofstream(dir + "/" + job.dir + "/config.resolved.toml") << "seed = 0\n";
  EXPECT_EQ(TrainArguments(dir, job), (std::vector<std::string>{"train", "--resume", dir + "/" + job.dir, "-q"}));
  EXPECT_EQ(TrainArguments(dir, job, 2), (std::vector<std::string>{"train", "--resume", dir + "/" + job.dir, "-q",
                                                                   "--set", "learner.num_threads=2"}));
  bool partial = false;
  EXPECT_EQ(GetJobState(dir, job, &partial), JobState::kPending);
  EXPECT_TRUE(partial);
  std::ofstream(dir + "/" + job.dir + "/FAILED") << "x\n";
  EXPECT_EQ(GetJobState(dir, job), JobState::kFailed);
  std::ofstream(dir + "/" + job.dir + "/DONE") << "";
  EXPECT_EQ(GetJobState(dir, job), JobState::kDone);
  const std::string status = SweepStatusText(dir, *plan, true);
  EXPECT_NE(status.find("1/8 jobs done"), std::string::npos) << status;
  fs::remove_all(dir);
}

TEST(SweepTest, LockRefusesASecondDriver) {
  const std::string dir = TempDir("lock");
  auto first = LockSweepDir(dir);
  ASSERT_TRUE(first.ok());
  const pid_t pid = fork();
  if (pid == 0) _exit(LockSweepDir(dir).ok() ? 0 : 3);  // Another process: refused.
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  close(*first);
  fs::remove_all(dir);
}

// A stand-in for `tokenrl train`: logs its invocation, fails once for jobs
// whose directory name contains "asterix-s1" (when FAIL_ONCE is set), and
// otherwise writes DONE.
std::string FakeTrainer(const std::string& dir) {
  const std::string path = dir + "/fake_tokenrl.sh";
  std::ofstream(path) << R"(#!/bin/sh
out=""; prev=""
for a in "$@"; do
  if [ "$prev" = "--out" ] || [ "$prev" = "--resume" ]; then out="$a"; fi
  prev="$a"
done
mkdir -p "$out"
echo "$out" >> ")" << dir << R"(/invocations"
case "$out" in
  *asterix-s1*) if [ ! -e "$out/failed_once" ]; then : > "$out/failed_once"; : > "$out/config.resolved.toml"; exit 3; fi ;;
esac
: > "$out/DONE"
)";
  chmod(path.c_str(), 0755);
  return path;
}

TEST(SweepTest, LocalPoolRunsEveryJobOnceRetriesAndSkipsDone) {
  const std::string dir = TempDir("local");
  auto plan = ExpandSweep(*Parse(Sweep()), 1);
  ASSERT_TRUE(plan.ok());
  LocalRunOptions options;
  options.binary = FakeTrainer(dir);
  options.workers = 2;
  options.retries = 1;
  options.verbose = false;
  const std::string out = dir + "/out";
  auto result = RunSweepLocal(out, *plan, options);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_TRUE(result->failed.empty());
  EXPECT_EQ(result->done, 12);
  EXPECT_EQ(result->ran, 12);
  EXPECT_EQ(result->attempts, 14);  // Two asterix seed-1 jobs failed once each and were retried.
  for (const auto& job : plan->jobs) {
    EXPECT_EQ(GetJobState(out, job), JobState::kDone) << job.dir;
    auto log = ReadFile(out + "/" + job.dir + "/sweep.log");
    ASSERT_TRUE(log.ok());
    const bool retried = job.id.find("asterix-s1") != std::string::npos;
    EXPECT_NE(log->find(retried ? "attempt 2: tokenrl train --resume" : "attempt 1: tokenrl train --config"),
              std::string::npos)
        << *log;
  }
  // Re-running skips every done job.
  auto again = RunSweepLocal(out, *plan, options);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->skipped, 12);
  EXPECT_EQ(again->attempts, 0);
  auto invocations = ReadFile(dir + "/invocations");
  ASSERT_TRUE(invocations.ok());
  EXPECT_EQ(std::count(invocations->begin(), invocations->end(), '\n'), 14);

  // No retries: a failing job is reported (FAILED written), never dropped.
  const std::string out2 = dir + "/out2";
  options.retries = 0;
  auto failing = RunSweepLocal(out2, *plan, options);
  ASSERT_TRUE(failing.ok());
  EXPECT_EQ(failing->failed.size(), 2u);
  EXPECT_EQ(failing->done, 10);
  const std::string status = SweepStatusText(out2, *plan, false);
  EXPECT_NE(status.find("failed 2"), std::string::npos) << status;
  fs::remove_all(dir);
}

TEST(SweepTest, SlurmBatchScriptHasTheOptions) {
  SlurmRunOptions options;
  options.binary = "/opt/tokenrl";
  options.slurm.partition = "gpu";
  options.slurm.time = "02:00:00";
  options.slurm.cpus = 4;
  options.slurm.mem = "8G";
  options.slurm.extra = {"#SBATCH --qos=low", "--account=me", "module load x"};
  const std::string s = SlurmBatchScript("/sw", "/sw/slurm/submit-0.jobs", 6, options);
  for (const char* needle : {"#SBATCH --array=0-5", "#SBATCH --partition=gpu", "#SBATCH --time=02:00:00",
                             "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --qos=low",
                             "#SBATCH --account=me", "module load x", "#SBATCH --requeue",
                             "exec '/opt/tokenrl' sweep run-job '/sw' \"$JOB\""}) {
    EXPECT_NE(s.find(needle), std::string::npos) << needle << "\n" << s;
  }
}

}  // namespace
}  // namespace tokenrl::runner
