// Expert interventions (agents/expert_interventions.h) against a mock
// learner: each intervention changes exactly the values (and Adam moments) it
// should and nothing else.

#include "tokenrl/agents/expert_interventions.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tokenrl/nn/init.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::agents {
namespace {

// A learner that only holds named parameters and per-value Adam moments.
class MockLearner : public nn::Learner {
 public:
  explicit MockLearner(int members) : members_(members) {
    infos_ = {{"encoder.conv.weight", {4, 3}},        {"mixer.phi", {8, 4, 2}},
              {"mixer.scale", {1}},                   {"mixer.experts.hidden.weight", {4, 8, 16}},
              {"mixer.experts.hidden.bias", {4, 1, 16}}, {"mixer.experts.output.weight", {4, 16, 8}},
              {"mixer.experts.output.bias", {4, 1, 8}}, {"head.output.weight", {64, 6}}};
    float x = 0.25f;
    for (const auto& p : infos_) {
      for (int m = 0; m < members; ++m) {
        auto& v = values_[p.name].emplace_back(static_cast<size_t>(p.numel()));
        for (float& f : v) f = (x += 0.01f);
        moments_[p.name].emplace_back(static_cast<size_t>(p.numel()), 1.0f);
      }
    }
  }
  int members() const override { return members_; }
  const nn::NetworkConfig& network_config() const override { return network_; }
  const nn::NetworkIo& io() const override { return io_; }
  void QValues(std::span<const uint8_t>, int, bool, std::span<float>) override {}
  void GreedyActions(std::span<const uint8_t>, int, bool, std::span<int32_t>) override {}
  Status Update(const nn::UpdateBatch&, nn::UpdateResult&) override { return Status::Ok(); }
  void SyncTarget() override {}
  std::vector<nn::ParameterInfo> Parameters() const override { return infos_; }
  Status GetParameter(const std::string& name, int member, std::span<float> out) const override {
    const auto& v = values_.at(name)[member];
    if (out.size() != v.size()) return Status::InvalidArgument("size");
    std::copy(v.begin(), v.end(), out.begin());
    return Status::Ok();
  }
  Status SetParameter(const std::string& name, int member, std::span<const float> values) override {
    auto& v = values_.at(name)[member];
    if (values.size() != v.size()) return Status::InvalidArgument("size");
    v.assign(values.begin(), values.end());
    return Status::Ok();
  }
  Status ResetOptimizerState(const std::string& name, int member) override {
    auto& m = moments_.at(name)[member];
    std::fill(m.begin(), m.end(), 0.0f);
    return Status::Ok();
  }
  Status ResetOptimizerStateRange(const std::string& name, int member, int64_t offset, int64_t count) override {
    auto& m = moments_.at(name)[member];
    std::fill(m.begin() + offset, m.begin() + offset + count, 0.0f);
    return Status::Ok();
  }
  void Save(ByteWriter&) const override {}
  Status Load(ByteReader&) override { return Status::Ok(); }

  std::map<std::string, std::vector<std::vector<float>>> values_, moments_;

 private:
  int members_;
  nn::NetworkConfig network_;
  nn::NetworkIo io_;
  std::vector<nn::ParameterInfo> infos_;
};

bool IsExpert(const std::string& name) { return name.rfind("mixer.experts.", 0) == 0; }

std::vector<float> Fresh(const MockLearner& learner, const std::string& name, int member, uint64_t seed) {
  int64_t numel = 0;
  for (const auto& p : learner.Parameters())
    if (p.name == name) numel = p.numel();
  std::vector<float> out(static_cast<size_t>(numel));
  auto spec = FreshInitSpec(learner, name);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  nn::FillInit(out, *spec, nn::ParameterSeed(seed, member, name));
  return out;
}

// Checks every value and moment of `after` against `before`: inside the
// touched blocks of member `member` (experts `experts`; the router when
// `router`) values equal alpha * old + beta * fresh and moments are 0 when
// `moments_zeroed`; everything else is unchanged.
void ExpectOnly(const MockLearner& before, const MockLearner& after, int member, const std::vector<int>& experts,
                bool router, double alpha, double beta, uint64_t seed, bool moments_zeroed) {
  for (const auto& p : before.Parameters()) {
    for (int m = 0; m < before.members(); ++m) {
      const auto& old_v = before.values_.at(p.name)[m];
      const auto& new_v = after.values_.at(p.name)[m];
      const auto& new_m = after.moments_.at(p.name)[m];
      const bool has_init = IsExpert(p.name) || p.name == "mixer.phi";
      const std::vector<float> fresh =
          has_init ? Fresh(before, p.name, m, seed) : std::vector<float>(static_cast<size_t>(p.numel()), 0.0f);
      const int64_t block = IsExpert(p.name) ? p.numel() / 4 : p.numel();
      for (int64_t i = 0; i < p.numel(); ++i) {
        bool touched = false;
        if (m == member && IsExpert(p.name)) {
          touched = std::find(experts.begin(), experts.end(), static_cast<int>(i / block)) != experts.end();
        }
        if (m == member && router && p.name == "mixer.phi") touched = true;
        if (touched) {
          const float want = static_cast<float>(alpha * old_v[i] + beta * fresh[i]);
          ASSERT_EQ(new_v[i], want) << p.name << " member " << m << " index " << i;
          ASSERT_EQ(new_m[i], moments_zeroed ? 0.0f : 1.0f) << p.name << " index " << i;
        } else {
          ASSERT_EQ(new_v[i], old_v[i]) << p.name << " member " << m << " index " << i << " changed";
          ASSERT_EQ(new_m[i], 1.0f) << p.name << " member " << m << " index " << i << " moment changed";
        }
      }
    }
  }
}

TEST(ExpertInterventionTest, CountsExpertsAndNamesParameters) {
  MockLearner learner(2);
  EXPECT_EQ(NumExperts(learner), 4);
  EXPECT_EQ(ExpertParameterNames(learner).size(), 4u);
  EXPECT_EQ(RouterParameterNames(learner), std::vector<std::string>{"mixer.phi"});
  auto w = FreshInitSpec(learner, "mixer.experts.hidden.weight");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->scheme, nn::InitScheme::kXavierUniform);
  EXPECT_EQ(w->fan_in, 8.0);
  EXPECT_EQ(w->fan_out, 16.0);
  auto phi = FreshInitSpec(learner, "mixer.phi");
  ASSERT_TRUE(phi.ok());
  EXPECT_EQ(phi->scheme, nn::InitScheme::kLecunNormal);
  EXPECT_EQ(phi->fan_in, 32.0);  // n D, as at construction.
  EXPECT_FALSE(FreshInitSpec(learner, "mixer.scale").ok());
  EXPECT_FALSE(FreshInitSpec(learner, "head.output.weight").ok());
}

TEST(ExpertInterventionTest, ResetTouchesOnlyChosenExpertsOfOneMember) {
  MockLearner learner(2);
  const MockLearner before = learner;
  InterventionTarget t;
  t.experts = {1, 3};
  ASSERT_TRUE(ResetExperts(learner, 1, t, 77).ok());
  ExpectOnly(before, learner, 1, {1, 3}, false, 0.0, 1.0, 77, true);
  // Biases are re-initialized to zero.
  const auto& bias = learner.values_.at("mixer.experts.hidden.bias")[1];
  for (int i = 16; i < 32; ++i) EXPECT_EQ(bias[i], 0.0f);
}

TEST(ExpertInterventionTest, ResetAllExpertsWithRouter) {
  MockLearner learner(2);
  const MockLearner before = learner;
  InterventionTarget t;
  t.experts = TopExperts({0, 0, 0, 0}, 0);
  t.include_router = true;
  ASSERT_TRUE(ResetExperts(learner, 0, t, 5).ok());
  ExpectOnly(before, learner, 0, {0, 1, 2, 3}, true, 0.0, 1.0, 5, true);
}

TEST(ExpertInterventionTest, ShrinkAndPerturbMixesWithFreshWeights) {
  MockLearner learner(2);
  const MockLearner before = learner;
  InterventionTarget t;
  t.experts = {2};
  t.reset_optimizer = false;
  ASSERT_TRUE(ShrinkPerturbExperts(learner, 0, t, 0.5, 0.5, 9).ok());
  ExpectOnly(before, learner, 0, {2}, false, 0.5, 0.5, 9, false);
}

TEST(ExpertInterventionTest, PruneZeroesExpertsAndMoments) {
  MockLearner learner(1);
  const MockLearner before = learner;
  InterventionTarget t;
  t.experts = {0, 2};
  ASSERT_TRUE(PruneExperts(learner, 0, t).ok());
  ExpectOnly(before, learner, 0, {0, 2}, false, 0.0, 0.0, 0, true);
}

TEST(ExpertInterventionTest, FreshWeightsDependOnSeedOnly) {
  MockLearner a(1), b(1), c(1);
  InterventionTarget t;
  t.experts = {1};
  ASSERT_TRUE(ResetExperts(a, 0, t, 3).ok());
  ASSERT_TRUE(ResetExperts(b, 0, t, 3).ok());
  ASSERT_TRUE(ResetExperts(c, 0, t, 4).ok());
  EXPECT_EQ(a.values_, b.values_);
  EXPECT_NE(a.values_, c.values_);
}

TEST(ExpertInterventionTest, RejectsBadTargetsWithoutChanges) {
  MockLearner learner(1);
  const MockLearner before = learner;
  InterventionTarget t;
  t.experts = {4};
  EXPECT_FALSE(ResetExperts(learner, 0, t, 1).ok());
  t.experts = {0};
  EXPECT_FALSE(ResetExperts(learner, 1, t, 1).ok());
  EXPECT_EQ(learner.values_, before.values_);
  EXPECT_EQ(learner.moments_, before.moments_);
}

TEST(ExpertInterventionTest, TopExpertsRanksByScoreWithTiesToLowerIndex) {
  EXPECT_EQ(TopExperts({0.1, 0.5, 0.5, 0.2}, 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(TopExperts({0.1, 0.5, 0.5, 0.2}, 1), (std::vector<int>{1}));
  EXPECT_EQ(TopExperts({0.1, 0.5, 0.5, 0.2}, 0), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(TopExperts({0.1, 0.5, 0.5, 0.2}, 2, {1}), (std::vector<int>{2, 3}));
  EXPECT_EQ(TopExperts({0.9, 0.5}, 5, {0}), (std::vector<int>{1}));
}

}  // namespace
}  // namespace tokenrl::agents
