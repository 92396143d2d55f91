// The training runner without torch: a small deterministic linear Q learner
// (registered as the "test_linear" backend) drives the real Agent on MinAtar
// Breakout, so metrics, evaluation, checkpoints and resume are exercised end
// to end.

#include "tokenrl/runner/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenrl/core/file_util.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::runner {
namespace {

namespace fs = std::filesystem;

// Q(s, a) = w_a . [x(s), 1], plain SGD on the TD error against a target copy.
// "test_nan" makes every loss NaN from gradient update `nan_after` on.
class LinearLearner : public nn::Learner {
 public:
  LinearLearner(const nn::NetworkConfig& network, const nn::LearnerConfig& config, const nn::NetworkIo& io,
                int members, int64_t nan_after)
      : network_(network), config_(config), io_(io), members_(members), nan_after_(nan_after) {
    features_ = io.channels * io.height * io.width + 1;
    online_.assign(static_cast<size_t>(members * io.num_actions * features_), 0.0f);
    for (size_t i = 0; i < online_.size(); ++i) {  // Small deterministic init from the seed.
      online_[i] = 0.01f * static_cast<float>((i * 2654435761u + static_cast<uint64_t>(config.seed)) % 7) - 0.03f;
    }
    target_ = online_;
  }

  int members() const override { return members_; }
  const nn::NetworkConfig& network_config() const override { return network_; }
  const nn::NetworkIo& io() const override { return io_; }

  void QValues(std::span<const uint8_t> obs, int n, bool, std::span<float> q) override {
    Forward(online_, obs, n, q);
  }
  void GreedyActions(std::span<const uint8_t> obs, int n, bool, std::span<int32_t> actions) override {
    std::vector<float> q(static_cast<size_t>(members_ * n * io_.num_actions));
    Forward(online_, obs, n, q);
    for (size_t i = 0; i < actions.size(); ++i) {
      const float* row = q.data() + i * static_cast<size_t>(io_.num_actions);
      actions[i] = static_cast<int32_t>(std::max_element(row, row + io_.num_actions) - row);
    }
  }

  Status Update(const nn::UpdateBatch& batch, nn::UpdateResult& result) override {
    const int b = batch.batch_size, a = io_.num_actions;
    std::vector<float> q(static_cast<size_t>(members_ * b * a)), qn(q.size());
    Forward(online_, batch.observations, b, q);
    Forward(target_, batch.next_observations, b, qn);
    result.per_sample_loss.assign(static_cast<size_t>(members_ * b), 0.0f);
    result.loss.assign(static_cast<size_t>(members_), 0.0f);
    result.q_mean.assign(static_cast<size_t>(members_), 0.0f);
    const bool nan = nan_after_ >= 0 && updates_ >= nan_after_;
    ++updates_;
    const size_t obs_size = static_cast<size_t>(features_ - 1);
    for (int e = 0; e < members_; ++e) {
      for (int i = 0; i < b; ++i) {
        const size_t s = static_cast<size_t>(e * b + i);
        const float* next = qn.data() + s * static_cast<size_t>(a);
        const float y = batch.returns[s] + batch.discounts[s] * *std::max_element(next, next + a);
        const float qa = q[s * static_cast<size_t>(a) + static_cast<size_t>(batch.actions[s])];
        const float td = y - qa;
        const float w = batch.weights.empty() ? 1.0f : batch.weights[s];
        result.per_sample_loss[s] = nan ? NAN : td * td;
        result.loss[static_cast<size_t>(e)] += (nan ? NAN : w * td * td) / static_cast<float>(b);
        result.q_mean[static_cast<size_t>(e)] += qa / static_cast<float>(b);
        float* wrow = online_.data() + (static_cast<size_t>(e * a + batch.actions[s])) * static_cast<size_t>(features_);
        const float step = static_cast<float>(config_.learning_rate) * w * td / static_cast<float>(b);
        const uint8_t* x = batch.observations.data() + s * obs_size;
        for (size_t f = 0; f < obs_size; ++f) wrow[f] += step * static_cast<float>(x[f]);
        wrow[obs_size] += step;
      }
    }
    return Status::Ok();
  }
  void SyncTarget() override { target_ = online_; }

  std::vector<nn::ParameterInfo> Parameters() const override {
    return {{"w", {io_.num_actions, features_}}};
  }
  Status GetParameter(const std::string&, int member, std::span<float> out) const override {
    const size_t n = static_cast<size_t>(io_.num_actions * features_);
    std::copy_n(online_.begin() + static_cast<std::ptrdiff_t>(n * static_cast<size_t>(member)), n, out.begin());
    return Status::Ok();
  }
  Status SetParameter(const std::string&, int member, std::span<const float> values) override {
    std::copy(values.begin(), values.end(),
              online_.begin() + static_cast<std::ptrdiff_t>(values.size() * static_cast<size_t>(member)));
    return Status::Ok();
  }
  Status ResetOptimizerState(const std::string&, int) override { return Status::Ok(); }

  void Save(ByteWriter& w) const override {
    w.WriteVector(online_);
    w.WriteVector(target_);
    w.Write(updates_);
  }
  Status Load(ByteReader& r) override {
    if (!r.ReadVector(online_) || !r.ReadVector(target_) || !r.Read(updates_)) {
      return Status::Corruption("LinearLearner: truncated state");
    }
    return Status::Ok();
  }

 private:
  void Forward(const std::vector<float>& w, std::span<const uint8_t> obs, int n, std::span<float> q) const {
    const size_t obs_size = static_cast<size_t>(features_ - 1), a = static_cast<size_t>(io_.num_actions);
    for (int e = 0; e < members_; ++e) {
      for (int i = 0; i < n; ++i) {
        const uint8_t* x = obs.data() + static_cast<size_t>(e * n + i) * obs_size;
        for (size_t k = 0; k < a; ++k) {
          const float* row = w.data() + (static_cast<size_t>(e) * a + k) * static_cast<size_t>(features_);
          float sum = row[obs_size];
          for (size_t f = 0; f < obs_size; ++f) sum += row[f] * static_cast<float>(x[f]);
          q[static_cast<size_t>(e * n + i) * a + k] = sum;
        }
      }
    }
  }

  nn::NetworkConfig network_;
  nn::LearnerConfig config_;
  nn::NetworkIo io_;
  int members_;
  int features_;
  int64_t nan_after_;
  int64_t updates_ = 0;
  std::vector<float> online_, target_;
};

void RegisterTestBackends() {
  static const bool once = [] {
    for (const auto& [name, nan_after] : {std::pair<std::string, int64_t>{"test_linear", -1}, {"test_nan", 30}}) {
      const int64_t n = nan_after;
      nn::RegisterLearnerBackend(name, [n](const nn::NetworkConfig& net, const nn::LearnerConfig& cfg,
                                           const nn::NetworkIo& io, int members)
                                           -> StatusOr<std::unique_ptr<nn::Learner>> {
        return std::unique_ptr<nn::Learner>(new LinearLearner(net, cfg, io, members, n));
      });
    }
    return true;
  }();
  (void)once;
}

TrainConfig SmallConfig() {
  RegisterTestBackends();
  TrainConfig c;
  c.seed = 7;
  c.env.name = "minatar/breakout";
  c.vector_env.members = 2;
  c.vector_env.envs_per_member = 2;
  c.learner.backend = "test_linear";
  c.learner.learning_rate = 0.01;
  c.agent.batch_size = 8;
  c.agent.min_replay_env_steps = 100;
  c.agent.update_period_env_steps = 2;
  c.agent.target_update_period_env_steps = 50;
  c.agent.epsilon_decay_env_steps = 300;
  c.agent.replay.capacity = 1000;
  c.schedule.total_env_steps = 600;
  c.schedule.eval_every_env_steps = 300;
  c.schedule.eval_episodes = 3;
  c.schedule.eval_max_episode_steps = 200;
  c.schedule.log_every_env_steps = 100;
  c.schedule.checkpoint_every_env_steps = 200;
  return c;
}

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tokenrl_trainer_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}

std::string Slurp(const std::string& path) {
  auto text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(Slurp(path));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream ls(line);
    while (std::getline(ls, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    rows.push_back(cells);
  }
  return rows;
}

std::vector<std::string> Checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir + "/checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TrainOptions Quiet(int64_t kill_at = 0) {
  TrainOptions o;
  o.progress = false;
  o.kill_at_env_steps = kill_at;
  return o;
}

TEST(TrainerTest, Checksum64IsXxh64) {
  EXPECT_EQ(Checksum64(""), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(Checksum64("abc"), 0x44BC2CF5AD770999ull);
  const std::string long_text(1000, 'x');
  std::string flipped = long_text;
  flipped[500] ^= 1;
  EXPECT_NE(Checksum64(long_text), Checksum64(flipped));
}

TEST(TrainerTest, WritesMetricsRowsAndColumns) {
  const std::string dir = TempDir("metrics");
  auto summary = RunTraining(SmallConfig(), dir, /*resume=*/false, Quiet());
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->env_steps, 600);
  EXPECT_GT(summary->gradient_updates, 0);
  for (const char* f : {"config.resolved.toml", "metrics.csv", "progress.csv", "summary.json", "DONE"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
  const auto rows = ReadCsv(dir + "/metrics.csv");
  ASSERT_FALSE(rows.empty());
  const std::vector<std::string> header{"member", "env_steps", "gradient_updates", "episodes", "return_mean_recent",
                                        "loss", "q_mean", "epsilon", "eval_return_mean", "eval_return_std"};
  EXPECT_EQ(rows[0], header);
  // Rows at 100..600 (log) per member; evaluations at 300 and 600.
  ASSERT_EQ(rows.size(), 1u + 6u * 2u);
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), header.size()) << i;
    EXPECT_EQ(rows[i][0], std::to_string((i - 1) % 2));
    const int64_t steps = std::stoll(rows[i][1]);
    EXPECT_EQ(steps, 100 * static_cast<int64_t>((i + 1) / 2));
    EXPECT_EQ(rows[i][8].empty(), steps % 300 != 0) << "eval column at " << steps;
    if (steps >= 200) {
      EXPECT_FALSE(rows[i][5].empty()) << "loss at " << steps;  // Updates started after 100.
    }
    EXPECT_FALSE(rows[i][7].empty());
  }
  // Only the newest two checkpoints are kept (400 and the final 600).
  EXPECT_EQ(Checkpoints(dir), (std::vector<std::string>{"ckpt-000000000400.bin", "ckpt-000000000600.bin"}));
  // A second fresh run into the same directory is refused.
  auto again = RunTraining(SmallConfig(), dir, /*resume=*/false, Quiet());
  EXPECT_EQ(again.status().code(), Status::Code::kInvalidArgument);
  // Resuming a finished run does nothing.
  auto resumed = RunTraining(SmallConfig(), dir, /*resume=*/true, Quiet());
  ASSERT_TRUE(resumed.ok());
  EXPECT_TRUE(resumed->already_complete);
  // The final checkpoint evaluates on its own.
  auto eval = EvaluateCheckpoint(dir + "/checkpoints/ckpt-000000000600.bin", 4, 123);
  ASSERT_TRUE(eval.ok()) << eval.status().ToString();
  EXPECT_EQ(eval->env_steps, 600);
  ASSERT_EQ(eval->returns.size(), 2u);
  EXPECT_EQ(eval->returns[0].size(), 4u);
  fs::remove_all(dir);
}

TEST(TrainerTest, ResumeAfterKillIsByteIdentical) {
  const std::string full = TempDir("full"), killed = TempDir("killed");
  ASSERT_TRUE(RunTraining(SmallConfig(), full, false, Quiet()).ok());
  // Killed at 350: rows for 300 exist past the checkpoint at 200, plus a torn
  // row and a stale temp file, as a SIGKILL could leave them.
  auto first = RunTraining(SmallConfig(), killed, false, Quiet(/*kill_at=*/350));
  ASSERT_FALSE(first.ok());
  std::ofstream(killed + "/metrics.csv", std::ios::app) << "0,400,12";
  std::ofstream(killed + "/checkpoints/ckpt-000000000400.bin.tmp") << "partial";
  auto resumed = RunTraining(SmallConfig(), killed, /*resume=*/true, Quiet());
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->resumed_from_env_steps, 200);
  EXPECT_EQ(Slurp(killed + "/metrics.csv"), Slurp(full + "/metrics.csv"));
  EXPECT_EQ(Slurp(killed + "/checkpoints/ckpt-000000000600.bin"), Slurp(full + "/checkpoints/ckpt-000000000600.bin"))
      << "final state differs";
  EXPECT_FALSE(fs::exists(killed + "/checkpoints/ckpt-000000000400.bin.tmp"));

  // Killed before the first checkpoint: the resumed run starts over.
  const std::string early = TempDir("early");
  ASSERT_FALSE(RunTraining(SmallConfig(), early, false, Quiet(/*kill_at=*/150)).ok());
  ASSERT_TRUE(RunTraining(SmallConfig(), early, true, Quiet()).ok());
  EXPECT_EQ(Slurp(early + "/metrics.csv"), Slurp(full + "/metrics.csv"));
  for (const auto& d : {full, killed, early}) fs::remove_all(d);
}

class CorruptCheckpointTest : public ::testing::TestWithParam<bool> {};

TEST_P(CorruptCheckpointTest, FallsBackToThePreviousCheckpoint) {
  const bool truncate = GetParam();
  const std::string full = TempDir("ref"), dir = TempDir(truncate ? "truncated" : "flipped");
  ASSERT_TRUE(RunTraining(SmallConfig(), full, false, Quiet()).ok());
  ASSERT_FALSE(RunTraining(SmallConfig(), dir, false, Quiet(/*kill_at=*/450)).ok());
  const std::string latest = dir + "/checkpoints/ckpt-000000000400.bin";
  std::string bytes = Slurp(latest);
  ASSERT_GT(bytes.size(), 100u);
  if (truncate) {
    bytes.resize(bytes.size() / 2);
  } else {
    bytes[bytes.size() / 2] ^= 0x10;
  }
  std::ofstream(latest, std::ios::binary | std::ios::trunc) << bytes;

  testing::internal::CaptureStderr();
  auto resumed = RunTraining(SmallConfig(), dir, /*resume=*/true, Quiet());
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->resumed_from_env_steps, 200);
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_NE(err.find("ckpt-000000000400.bin"), std::string::npos) << err;
  EXPECT_NE(err.find(truncate ? "truncated" : "checksum"), std::string::npos) << err;
  EXPECT_EQ(Slurp(dir + "/metrics.csv"), Slurp(full + "/metrics.csv"));
  fs::remove_all(full);
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(TruncatedOrFlipped, CorruptCheckpointTest, ::testing::Bool());

TEST(TrainerTest, NonFiniteLossStopsKeepingTheLastGoodCheckpoint) {
  TrainConfig c = SmallConfig();
  c.learner.backend = "test_nan";  // NaN from update 30: after 100 warm-up + 60 env steps.
  c.schedule.checkpoint_every_env_steps = 100;
  const std::string dir = TempDir("nan");
  auto result = RunTraining(c, dir, false, Quiet());
  ASSERT_FALSE(result.ok());
  const std::string msg = result.status().message();
  EXPECT_NE(msg.find("stopped at env step"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ckpt-000000000100.bin"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/DONE"));
  EXPECT_EQ(Checkpoints(dir), (std::vector<std::string>{"ckpt-000000000100.bin"}));
  fs::remove_all(dir);
}

TEST(TrainerTest, BadConfigErrorsNameTheKey) {
  auto expect_error = [](const std::vector<std::string>& sets, const std::string& key) {
    auto c = config::Load<TrainConfig>({}, sets);
    ASSERT_FALSE(c.ok()) << key;
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status().message();
  };
  expect_error({"schedule.eval_episodes=0"}, "schedule.eval_episodes");
  expect_error({"schedule.total_steps=5"}, "schedule.total_steps");
  expect_error({"agent.replay.alpha=2.0"}, "agent.replay.alpha");
  expect_error({"learner.td_loss=\"l1\""}, "learner.td_loss");
  expect_error({"vector_env.obs_dtype=\"float32\""}, "vector_env.obs_dtype");
  expect_error({"env.name=minatar/pong"}, "env.name");

  TrainConfig c = SmallConfig();
  c.learner.backend = "no_such_backend";
  auto result = RunTraining(c, TempDir("backend"), false, Quiet());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("no_such_backend"), std::string::npos);
  fs::remove_all(TempDir("backend"));
}

TEST(TrainerTest, PresetsParse) {
  const std::string root = TOKENRL_SOURCE_DIR;
  for (const char* name : {"dqn", "rainbow_lite", "rainbow", "der", "minatar_dqn", "minatar_rainbow_lite",
                           "minatar_rainbow", "minatar_der"}) {
    const std::string file = root + "/configs/agents/" + name + ".toml";
    auto c = config::Load<TrainConfig>({root + "/configs/encoders/minatar.toml", file}, {});
    EXPECT_TRUE(c.ok()) << file << ": " << c.status().ToString();
  }
  auto quick = config::Load<TrainConfig>({root + "/configs/train/minatar_breakout_quick.toml"}, {});
  ASSERT_TRUE(quick.ok()) << quick.status().ToString();
  EXPECT_EQ(quick->env.name, "minatar/breakout");
  EXPECT_EQ(quick->network.mixer.hidden_units, 128);
}

TEST(TrainerTest, SeedFansOutUnlessSetExplicitly) {
  TrainConfig c;
  c.seed = 3;
  c.agent.seed = 42;
  c.ResolveSeeds();
  EXPECT_EQ(c.agent.seed, 42);
  EXPECT_NE(c.vector_env.seed, 0);
  EXPECT_NE(c.learner.seed, 0);
  EXPECT_NE(c.vector_env.seed, c.learner.seed);
  TrainConfig again = c;
  again.ResolveSeeds();
  EXPECT_EQ(again.vector_env.seed, c.vector_env.seed);  // Idempotent.
}

}  // namespace
}  // namespace tokenrl::runner
