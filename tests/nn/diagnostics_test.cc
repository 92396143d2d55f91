// Torch-free diagnostics helpers (nn/diagnostics.h) on hand-made activations.

#include "tokenrl/nn/diagnostics.h"

#include <gtest/gtest.h>

#include <vector>

namespace tokenrl::nn {
namespace {

TEST(DormantDiagnosticTest, FractionOnHandMadeActivations) {
  // 3 rows x 4 units: unit means |a| = {2, 0, 0.05, 1.95}; layer mean 1.0.
  const std::vector<float> a{2, 0, 0.1f, -2, -2, 0, 0, 2, 2, 0, 0.05f, 1.85f};
  const std::vector<double> means = UnitMeanAbs(a, 3, 4);
  ASSERT_EQ(means.size(), 4u);
  EXPECT_NEAR(means[0], 2.0, 1e-6);
  EXPECT_EQ(means[1], 0.0);
  EXPECT_NEAR(means[2], 0.05, 1e-6);
  EXPECT_NEAR(means[3], 1.95, 1e-6);
  EXPECT_DOUBLE_EQ(DormantFraction(means, 0.0), 0.25);    // Only the silent unit.
  EXPECT_DOUBLE_EQ(DormantFraction(means, 0.025), 0.25);  // 0.05 / 1.0 > 0.025.
  EXPECT_DOUBLE_EQ(DormantFraction(means, 0.1), 0.5);
  EXPECT_DOUBLE_EQ(DormantFraction(means, 10.0), 1.0);
}

TEST(DormantDiagnosticTest, SilentLayerIsWhollyDormantAndEmptyIsZero) {
  const std::vector<double> zeros(5, 0.0);
  EXPECT_DOUBLE_EQ(DormantFraction(zeros, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(DormantFraction(std::vector<double>{}, 0.0), 0.0);
}

TEST(SRankDiagnosticTest, CountsSingularValuesToNinetyNinePercent) {
  EXPECT_EQ(SRank(std::vector<double>{1, 0, 0}), 1);
  EXPECT_EQ(SRank(std::vector<double>{1, 1, 1, 1}), 4);
  EXPECT_EQ(SRank(std::vector<double>{100, 0.5, 0.4}), 1);  // 100 >= 0.99 * 100.9.
  EXPECT_EQ(SRank(std::vector<double>{100, 2, 0.4}), 2);    // 100 < 0.99 * 102.4 <= 102.
  EXPECT_EQ(SRank(std::vector<double>{0, 0}), 0);
}

}  // namespace
}  // namespace tokenrl::nn
