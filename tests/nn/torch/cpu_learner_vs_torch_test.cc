// Parity of the built-in CPU engine ("cpu" backend) with libtorch, judged
// against a float64 oracle so that the criterion follows from the numerics and
// holds on any CPU (oneDNN and the engine's loops pick other kernels, so other
// summation orders, on other CPUs; a bound tuned on one machine failed on
// another).
//
// For every network preset under configs/networks/ and every head and loss (Q
// with MSE, Q with Huber + double Q + importance weights, dueling, C51 +
// dueling + noisy + double Q, as Rainbow), plus Nature / Impala cases on 84x84
// frames, three learners are built from the same seed: the CPU engine, the
// torch backend in float32, and the torch backend in float64 (the oracle:
// TorchLearner::CreateWithDtype; its initial parameters are the float32 ones,
// converted exactly). They start bit-identical (checked), and each takes three
// updates on the same batches (a target sync between). After each update the
// Q-values before it, per-sample losses, losses, mean Q and every gradient are
// compared to the oracle's; the Adam step (new - old weights) is compared to
// float64 Adam applied to the backend's own gradients (AdamReference: the
// step is judged on its arithmetic, the gradient on its own).
//
// Criterion, per tensor x with reference o (err(x) = ||x - o||_2 / ||o||_2):
//
//     err(cpu) <= kFactor * err(torch32) + kFloor      (kFactor 4, kFloor 1e-6)
//
// i.e. the CPU engine is about as accurate as float32 libtorch on the same
// computation: a different but equally sound order of summation passes, a
// less accurate one fails (a running sum over 500 rows did, 10-20x worse than
// libtorch; the engine now sums in blocks, layer.h ColumnSums). The floor, a
// few float32 ulps (2^-24 = 6e-8) relative to the tensor's norm, is for
// tensors that float32 torch happens to get nearly exact; for values that are
// sums of terms much larger than themselves (C51 Q-values near 0, batch means
// of Q-values) it is taken relative to the terms' magnitude (Check's
// terms_scale). Where the oracle is exactly zero (a parameter that no sample
// used), the CPU value must be exactly zero too. A real defect is of the size
// of the computation itself: the planted-error tests at the end show gradients
// 1e-4 too large and a dropped bias term failing the criterion.
// Diagnostics (dormant fractions, srank: exact; routing statistics: 1e-5)
// are compared with float32 torch at the end.
// Each case prints its largest errors per quantity for both backends and the
// largest share of its bound that a CPU error used (0.55 over the whole suite
// on an AMD EPYC, for each of TOKENRL_CPU_ISA=avx512, avx2 and baseline).

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "testing/network_presets.h"
#include "tokenrl/config/config.h"
#include "tokenrl/nn/cpu/cpu_learner.h"
#include "tokenrl/nn/learner.h"
#include "tokenrl/nn/torch/torch_learner.h"
#include "tokenrl/nn/torch/torch_learner_impl.h"

namespace tokenrl::nn {
namespace {

using testing::PresetRoot;

constexpr double kFactor = 4.0;
constexpr double kFloor = 1e-6;  // About 8 float32 ulps (2^-24 = 6e-8), relative.

std::vector<double> ToDoubles(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
std::vector<double> ToDoubles(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// ||x - o|| and ||o||.
std::pair<double, double> Norms(const std::vector<double>& x, const std::vector<double>& o) {
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < o.size(); ++i) {
    diff += (x[i] - o[i]) * (x[i] - o[i]);
    ref += o[i] * o[i];
  }
  return {std::sqrt(diff), std::sqrt(ref)};
}

// The criterion of this file, over many tensors; records the failures (the
// planted-error tests inspect them) and the largest errors.
class OracleChecker {
 public:
  struct Failure {
    std::string what;
    double cpu_error, torch_error;
  };

  // Compares one tensor of the CPU engine and of float32 torch to the oracle.
  // `terms_scale`: for values that are sums of terms much larger than the
  // result (C51's Q = sum_z z p(z) with |z| up to v_max, near 0 at
  // initialization; a batch mean of Q-values of either sign), the terms'
  // magnitude; the floor then also covers kFloor * terms_scale per value,
  // since no float32 order of summation does better than a few ulps of the
  // terms.
  void Check(const std::string& what, const std::vector<double>& cpu, const std::vector<double>& torch32,
             const std::vector<double>& oracle, double terms_scale = 0.0) {
    Check(what, cpu, oracle, torch32, oracle, terms_scale);
  }
  // The same with a reference of each backend's own (the Adam step: float64
  // Adam applied to that backend's gradients).
  void Check(const std::string& what, const std::vector<double>& cpu, const std::vector<double>& cpu_reference,
             const std::vector<double>& torch32, const std::vector<double>& torch_reference,
             double terms_scale = 0.0) {
    if (cpu.size() != cpu_reference.size() || torch32.size() != torch_reference.size()) {
      failures_.push_back({what + " (size mismatch)", 0.0, 0.0});
      return;
    }
    const auto [cpu_diff, norm] = Norms(cpu, cpu_reference);
    const auto [torch_diff, torch_norm] = Norms(torch32, torch_reference);
    if (norm == 0.0) {
      if (cpu_diff != 0.0) failures_.push_back({what + " (oracle exactly zero)", cpu_diff, torch_diff});
      return;
    }
    const double cpu_error = cpu_diff / norm, torch_error = torch_diff / std::max(torch_norm, 1e-300);
    const double floor = kFloor * (1.0 + terms_scale * std::sqrt(static_cast<double>(cpu_reference.size())) / norm);
    const double bound = kFactor * torch_error + floor;
    std::string quantity = what.substr(0, what.find(','));  // "gradient of x, step 1" -> "gradient"
    Largest& largest = largest_[quantity.substr(0, quantity.find(" of "))];
    largest.cpu = std::max(largest.cpu, cpu_error);
    largest.torch = std::max(largest.torch, torch_error);
    largest_share_ = std::max(largest_share_, cpu_error / bound);
    if (cpu_error > bound) failures_.push_back({what, cpu_error, torch_error});
  }

  const std::vector<Failure>& failures() const { return failures_; }
  bool Failed(const std::string& prefix) const {
    return std::any_of(failures_.begin(), failures_.end(),
                       [&](const Failure& f) { return f.what.rfind(prefix, 0) == 0; });
  }
  // Largest errors per quantity (cpu / torch float32) and the largest share
  // of its bound that any CPU error used.
  std::string Summary() const {
    std::string text;
    for (const auto& [quantity, largest] : largest_) {
      text += fmt::format("{} {:.1e}/{:.1e}; ", quantity, largest.cpu, largest.torch);
    }
    return text + fmt::format("largest share of the bound {:.2f}", largest_share_);
  }

 private:
  struct Largest {
    double cpu = 0, torch = 0;
  };
  std::vector<Failure> failures_;
  std::map<std::string, Largest> largest_;
  double largest_share_ = 0;
};

// Adam in float64 (the arithmetic of learner.h) on one backend's own
// gradients: the reference for that backend's Adam step, so that the step is
// judged on its arithmetic; the gradients it starts from are judged against
// the oracle's. (Comparing steps to the oracle's step directly would re-judge
// the gradient error, reweighted: Adam's step g / (|g| + eps) gives small
// entries, which carry larger relative rounding, the weight of large ones.)
class AdamReference {
 public:
  AdamReference(const LearnerConfig& config, size_t params) : config_(config), m_(params), v_(params) {}
  void NextStep() { ++t_; }
  // The step (new - old weights) of parameter i for gradient g (empty: unused).
  std::vector<double> Step(size_t i, const std::vector<double>& g, size_t numel) {
    if (m_[i].empty()) m_[i].assign(numel, 0.0), v_[i].assign(numel, 0.0);
    const double b1 = config_.adam_beta1, b2 = config_.adam_beta2;
    const double bias1 = 1.0 - std::pow(b1, t_), bias2 = 1.0 - std::pow(b2, t_);
    std::vector<double> step(numel);
    for (size_t j = 0; j < numel; ++j) {
      const double gj = g.empty() ? 0.0 : g[j];
      m_[i][j] = b1 * m_[i][j] + (1.0 - b1) * gj;
      v_[i][j] = b2 * v_[i][j] + (1.0 - b2) * gj * gj;
      step[j] = -config_.learning_rate / bias1 * m_[i][j] /
                (std::sqrt(v_[i][j]) / std::sqrt(bias2) + config_.adam_epsilon);
    }
    return step;
  }

 private:
  LearnerConfig config_;
  int t_ = 0;
  std::vector<std::vector<double>> m_, v_;
};

enum class Head { kQMse, kQHuberDoubleWeighted, kDueling, kRainbow };

const char* HeadName(Head head) {
  static const char* kHeads[] = {"QMse", "QHuberDoubleWeighted", "Dueling", "Rainbow"};
  return kHeads[static_cast<int>(head)];
}

// Errors planted in the CPU engine's results, to show that the criterion
// catches real defects.
enum class Plant {
  kNone,
  kGradientScale,  // every CPU gradient reported 1e-4 too large (a wrong loss scale)
  kDroppedBias,    // the CPU network's last bias term zeroed after the first update (as if dropped)
};

struct Case {
  std::string preset;
  Head head;
  std::string encoder = "minatar";
  Plant plant = Plant::kNone;
};

// Runs the three learners side by side; returns the checker with every
// comparison made (diagnostics are checked with EXPECT directly).
OracleChecker RunAgainstOracle(const Case& c) {
  OracleChecker checker;
  RegisterTorchLearnerBackend();
  const std::string dir = std::string(TOKENRL_SOURCE_DIR) + "/configs/";
  std::vector<std::string> overrides;
  if (c.head == Head::kDueling) overrides = {"network.head.dueling=true"};
  if (c.head == Head::kRainbow) {
    overrides = {"network.head.distributional=true", "network.head.dueling=true", "network.head.noisy=true"};
  }
  auto root = config::Load<PresetRoot>(
      {dir + "encoders/" + c.encoder + ".toml", dir + "networks/" + c.preset + ".toml"}, overrides);
  EXPECT_TRUE(root.ok()) << root.status().ToString();
  if (!root.ok()) return checker;
  // The structure, not the width, is under test.
  root->network.mixer.hidden_units = std::min<int64_t>(root->network.mixer.hidden_units, 64);
  root->network.mixer.expert_hidden_units = std::min<int64_t>(root->network.mixer.expert_hidden_units, 64);
  root->network.mixer.post_moe_dense_units = std::min<int64_t>(root->network.mixer.post_moe_dense_units, 64);
  const bool atari = c.encoder != "minatar";
  const NetworkIo io{.channels = 4, .height = atari ? 84 : 10, .width = atari ? 84 : 10, .num_actions = 6,
                     .input_scale = atari ? 1.0f / 255.0f : 1.0f};
  LearnerConfig config;
  config.seed = 7;
  config.learning_rate = 1e-3;
  config.double_q = c.head == Head::kQHuberDoubleWeighted || c.head == Head::kRainbow;
  config.td_loss = c.head == Head::kQHuberDoubleWeighted ? TdLoss::kHuber : TdLoss::kMse;
  const int members = atari ? 1 : 2, batch = atari ? 2 : 5;
  config.backend = "torch";
  auto torch_learner = MakeLearner(root->network, config, io, members);
  auto oracle_learner =
      torch_backend::TorchLearner::CreateWithDtype(root->network, config, io, members, torch::kFloat64);
  config.backend = "cpu";
  auto cpu_learner = MakeLearner(root->network, config, io, members);
  EXPECT_TRUE(torch_learner.ok() && oracle_learner.ok() && cpu_learner.ok());
  if (!torch_learner.ok() || !oracle_learner.ok() || !cpu_learner.ok()) return checker;
  auto& t = dynamic_cast<torch_backend::TorchLearner&>(**torch_learner);
  auto& o = dynamic_cast<torch_backend::TorchLearner&>(**oracle_learner);
  auto& k = dynamic_cast<cpu::CpuLearner&>(**cpu_learner);

  // Same parameters, bit for bit (the oracle's are the same values in float64).
  const std::vector<ParameterInfo> params = t.Parameters();
  EXPECT_EQ(params.size(), k.Parameters().size());
  EXPECT_EQ(params.size(), o.Parameters().size());
  if (params.size() != k.Parameters().size() || params.size() != o.Parameters().size()) return checker;
  auto get = [&](Learner& l, const ParameterInfo& p) {  // All members, concatenated.
    std::vector<double> all;
    std::vector<float> v(static_cast<size_t>(p.numel()));
    for (int e = 0; e < members; ++e) {
      EXPECT_TRUE(l.GetParameter(p.name, e, v).ok());
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  // The oracle's parameters in float64, in Parameters() order.
  auto oracle_params = [&] {
    std::vector<std::vector<double>> values;
    for (const auto& item : o.online()->named_parameters()) values.push_back(ToDoubles(item.value()));
    return values;
  };
  const std::vector<std::vector<double>> initial_oracle = oracle_params();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].name, k.Parameters()[i].name);
    EXPECT_EQ(params[i].shape, k.Parameters()[i].shape) << params[i].name;
    EXPECT_EQ(get(t, params[i]), get(k, params[i])) << params[i].name;
    EXPECT_EQ(get(t, params[i]), initial_oracle[i]) << params[i].name;
  }
  // The planted dropped bias: the penultimate dense layer's.
  const auto dense_bias = std::find_if(params.begin(), params.end(),
                                       [](const ParameterInfo& p) { return p.name == "mixer.dense.bias"; });
  if (c.plant == Plant::kDroppedBias && dense_bias == params.end()) {
    ADD_FAILURE() << c.preset << " has no mixer.dense.bias to drop";
    return checker;
  }
  // C51 Q-values are sums of terms up to v_max (see Check).
  const double q_terms = root->network.head.distributional
                             ? std::max(std::fabs(root->network.head.v_min), std::fabs(root->network.head.v_max))
                             : 0.0;

  AdamReference adam_cpu(config, params.size()), adam_torch(config, params.size());
  std::mt19937 rng(3);
  const size_t rows = static_cast<size_t>(members) * batch;
  const size_t obs_size = rows * io.channels * io.height * io.width;
  std::vector<uint8_t> obs(obs_size), next_obs(obs_size);
  auto pixel = [&] { return static_cast<uint8_t>(atari ? rng() % 256 : (rng() % 3 == 0 ? 1 : 0)); };
  std::vector<int32_t> actions(rows);
  std::vector<float> returns(rows), discounts(rows), weights;
  for (int step = 0; step < 3; ++step) {
    const std::string at = fmt::format(", step {}", step);
    for (auto& x : obs) x = pixel();
    for (auto& x : next_obs) x = pixel();
    for (size_t i = 0; i < rows; ++i) {
      actions[i] = static_cast<int32_t>(rng() % io.num_actions);
      returns[i] = static_cast<float>(static_cast<int>(rng() % 7) - 3) * 0.7f;
      discounts[i] = rng() % 4 == 0 ? 0.0f : 0.99f;
    }
    if (c.head == Head::kQHuberDoubleWeighted || c.head == Head::kRainbow) {
      weights.resize(rows);
      for (auto& w : weights) w = 0.25f + static_cast<float>(rng() % 100) / 100.0f;
    }
    const UpdateBatch b{batch, obs, actions, returns, discounts, next_obs, weights};
    if (c.plant == Plant::kDroppedBias && step == 1) {
      const std::vector<float> zeros(static_cast<size_t>(dense_bias->numel()), 0.0f);
      for (int e = 0; e < members; ++e) EXPECT_TRUE(k.SetParameter(dense_bias->name, e, zeros).ok());
    }

    // Greedy Q-values (noise off) before the update.
    std::vector<float> q_torch(rows * io.num_actions), q_cpu(rows * io.num_actions);
    t.QValues(obs, batch, false, q_torch);
    k.QValues(obs, batch, false, q_cpu);
    const std::vector<double> q_oracle = ToDoubles(o.Forward(obs, batch, false).q);
    checker.Check("Q-values" + at, ToDoubles(q_cpu), ToDoubles(q_torch), q_oracle, q_terms);
    // Mean Q is a mean over the batch of Q-values of either sign: its terms'
    // magnitude is that of the Q-values (RMS), not of the mean.
    double q_rms = 0.0;
    for (double q : q_oracle) q_rms += q * q / static_cast<double>(q_oracle.size());
    const double mean_q_terms = std::max(q_terms, std::sqrt(q_rms));

    std::vector<std::vector<double>> before_t(params.size()), before_k(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      before_t[i] = get(t, params[i]);
      before_k[i] = get(k, params[i]);
    }
    UpdateResult rt, rk, ro;
    EXPECT_TRUE(t.Update(b, rt).ok());
    EXPECT_TRUE(o.Update(b, ro).ok());
    EXPECT_TRUE(k.Update(b, rk).ok());
    checker.Check("per-sample loss" + at, ToDoubles(rk.per_sample_loss), ToDoubles(rt.per_sample_loss),
                  ToDoubles(ro.per_sample_loss));
    checker.Check("loss" + at, ToDoubles(rk.loss), ToDoubles(rt.loss), ToDoubles(ro.loss));
    checker.Check("mean Q" + at, ToDoubles(rk.q_mean), ToDoubles(rt.q_mean), ToDoubles(ro.q_mean), mean_q_terms);
    adam_cpu.NextStep();
    adam_torch.NextStep();
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string& name = params[i].name;
      const std::vector<double> cpu_grad = ToDoubles(k.online().params().params()[i]->grad);
      const torch::Tensor& g_torch = t.last_gradients()[i];
      const torch::Tensor& g_oracle = o.last_gradients()[i];
      if (!g_oracle.defined()) {  // No sample used it: no gradient anywhere.
        EXPECT_FALSE(g_torch.defined()) << name;
        for (double g : cpu_grad) EXPECT_EQ(g, 0.0) << "gradient of unused " << name;
      } else {
        std::vector<double> reported = cpu_grad;
        if (c.plant == Plant::kGradientScale) {
          for (double& g : reported) g *= 1.0 + 1e-4;
        }
        checker.Check("gradient of " + name + at, reported, ToDoubles(g_torch), ToDoubles(g_oracle));
      }
      const std::vector<double> after_t = get(t, params[i]), after_k = get(k, params[i]);
      std::vector<double> step_t(after_t.size()), step_k(after_k.size());
      for (size_t j = 0; j < step_k.size(); ++j) {
        step_t[j] = after_t[j] - before_t[i][j];
        step_k[j] = after_k[j] - before_k[i][j];
      }
      const size_t numel = step_k.size();
      checker.Check("Adam step of " + name + at, step_k, adam_cpu.Step(i, cpu_grad, numel), step_t,
                    adam_torch.Step(i, g_torch.defined() ? ToDoubles(g_torch) : std::vector<double>{}, numel));
    }
    if (step == 1) {
      t.SyncTarget();
      o.SyncTarget();
      k.SyncTarget();
    }
  }
  if (c.plant != Plant::kNone) return checker;

  // Diagnostics (dormant fractions, routing statistics, srank, norms) of
  // the trained networks on the last batch.
  const std::vector<double> taus{0.0, 0.025, 0.1};
  auto dt = t.Diagnostics(obs, batch, taus);
  auto dk = k.Diagnostics(obs, batch, taus);
  EXPECT_TRUE(dt.ok() && dk.ok());
  if (!dt.ok() || !dk.ok()) return checker;
  for (int e = 0; e < members; ++e) {
    const MemberDiagnostics &a = (*dk)[e], &b = (*dt)[e];
    EXPECT_EQ(a.penultimate_dormant, b.penultimate_dormant);
    EXPECT_EQ(a.expert_dormant, b.expert_dormant);
    EXPECT_EQ(a.feature_srank, b.feature_srank);
    EXPECT_NEAR(a.parameter_norm, b.parameter_norm, 1e-5 * b.parameter_norm);
    EXPECT_EQ(a.combine_share.size(), b.combine_share.size());
    for (size_t j = 0; j < std::min(a.combine_share.size(), b.combine_share.size()); ++j) {
      EXPECT_NEAR(a.combine_share[j], b.combine_share[j], 1e-5);
    }
    EXPECT_EQ(a.expert_load, b.expert_load);
    for (auto [x, y] : {std::pair{a.dispatch_entropy, b.dispatch_entropy}, {a.combine_entropy, b.combine_entropy},
                        {a.tokens_dropped, b.tokens_dropped}, {a.combine_similarity, b.combine_similarity},
                        {a.slot_similarity, b.slot_similarity}}) {
      if (std::isnan(y)) {
        EXPECT_TRUE(std::isnan(x));
      } else {
        EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::fabs(y)));
      }
    }
  }
  return checker;
}

void ExpectParity(const Case& c) {
  SCOPED_TRACE(HeadName(c.head));
  const OracleChecker checker = RunAgainstOracle(c);
  for (const auto& f : checker.failures()) {
    ADD_FAILURE() << f.what << ": error vs float64 cpu " << f.cpu_error << " > " << kFactor << " x torch float32 "
                  << f.torch_error << " + " << kFloor;
  }
  std::cout << fmt::format("errors vs float64 (cpu/torch float32), {} {} {}: {}\n", c.preset, HeadName(c.head),
                           c.encoder, checker.Summary());
}

// One test per preset (every head and loss inside), to keep the number of
// test processes small.
class CpuLearnerVsTorchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuLearnerVsTorchTest, MatchesTorchBackendForEveryHead) {
  for (Head head : {Head::kQMse, Head::kQHuberDoubleWeighted, Head::kDueling, Head::kRainbow}) {
    ExpectParity({GetParam(), head});
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, CpuLearnerVsTorchTest, ::testing::ValuesIn(testing::PresetFiles("networks", false)),
                         [](const auto& info) { return info.param; });

TEST(CpuLearnerVsTorchAtariTest, NatureFlatten) { ExpectParity({"baseline", Head::kQMse, "nature"}); }
TEST(CpuLearnerVsTorchAtariTest, NatureTokenizedSum) {
  ExpectParity({"tokenized_sum_per_conv", Head::kQHuberDoubleWeighted, "nature"});
}
TEST(CpuLearnerVsTorchAtariTest, ImpalaSoftMoeRainbow) { ExpectParity({"softmoe_4", Head::kRainbow, "impala"}); }

// The checker itself: planted errors in the CPU engine's results fail it.
TEST(OracleCriterionTest, CatchesAWrongGradientScale) {
  for (Head head : {Head::kQHuberDoubleWeighted, Head::kRainbow}) {
    const OracleChecker checker = RunAgainstOracle({"softmoe_4", head, "minatar", Plant::kGradientScale});
    EXPECT_TRUE(checker.Failed("gradient of ")) << HeadName(head);
    for (const auto& f : checker.failures()) EXPECT_EQ(f.what.rfind("gradient of ", 0), 0u) << f.what;
  }
}

TEST(OracleCriterionTest, CatchesADroppedBiasTerm) {
  for (Head head : {Head::kQMse, Head::kRainbow}) {
    const OracleChecker checker = RunAgainstOracle({"baseline", head, "minatar", Plant::kDroppedBias});
    EXPECT_TRUE(checker.Failed("Q-values, step 1")) << HeadName(head);
    EXPECT_TRUE(checker.Failed("gradient of ")) << HeadName(head);
    EXPECT_FALSE(checker.Failed("Q-values, step 0")) << HeadName(head);  // Planted after step 0.
  }
}

}  // namespace
}  // namespace tokenrl::nn
