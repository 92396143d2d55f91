#include "tokenrl/replay/sum_tree.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace tokenrl::replay {
namespace {

// The leaf a linear scan assigns to `value`: the first i with value < prefix[i].
int64_t LinearFind(const std::vector<double>& leaves, double value) {
  double prefix = 0.0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    prefix += leaves[i];
    if (value < prefix) return static_cast<int64_t>(i);
  }
  return -1;
}

void ExpectInvariants(const SumTree& tree, const std::vector<double>& leaves) {
  const std::vector<double>& nodes = tree.nodes();
  for (int64_t node = 1; node < tree.leaf_offset(); ++node) {
    ASSERT_EQ(nodes[node], nodes[2 * node] + nodes[2 * node + 1]) << "node " << node;
  }
  double sum = 0.0;
  for (size_t i = 0; i < leaves.size(); ++i) {
    ASSERT_EQ(tree.Get(i), leaves[i]);
    sum += leaves[i];
  }
  for (int64_t i = static_cast<int64_t>(leaves.size()); i < tree.leaf_offset(); ++i) {
    ASSERT_EQ(nodes[tree.leaf_offset() + i], 0.0) << "padding leaf " << i;
  }
  EXPECT_NEAR(tree.Total(), sum, 1e-12 * sum);
}

TEST(SumTreeTest, StartsEmpty) {
  SumTree tree(5);
  EXPECT_EQ(tree.capacity(), 5);
  EXPECT_EQ(tree.leaf_offset(), 8);
  EXPECT_EQ(tree.Total(), 0.0);
  EXPECT_EQ(tree.max_recorded_priority(), 1.0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(tree.Get(i), 0.0);
}

TEST(SumTreeTest, InvariantsHoldAfterRandomUpdates) {
  for (int64_t capacity : {1, 2, 7, 37, 64, 1000}) {
    SCOPED_TRACE(capacity);
    SumTree tree(capacity);
    std::vector<double> leaves(capacity, 0.0);
    std::mt19937_64 rng(capacity);
    std::uniform_real_distribution<double> priority(0.0, 10.0);
    for (int step = 0; step < 5000; ++step) {
      const int64_t index = static_cast<int64_t>(rng() % capacity);
      const double p = (rng() % 4 == 0) ? 0.0 : priority(rng);
      tree.Set(index, p);
      leaves[index] = p;
      if (step % 500 == 0) ExpectInvariants(tree, leaves);
    }
    ExpectInvariants(tree, leaves);
  }
}

TEST(SumTreeTest, QueryReturnsLeafForPrefixSumExactly) {
  // Integer priorities make every prefix sum exact, so the tree must agree
  // with the linear scan on every value, boundaries included.
  const std::vector<double> leaves = {3, 0, 1, 4, 0, 0, 2, 5, 1};
  SumTree tree(static_cast<int64_t>(leaves.size()));
  for (size_t i = 0; i < leaves.size(); ++i) tree.Set(i, leaves[i]);
  ASSERT_EQ(tree.Total(), 16.0);
  for (double value = 0.0; value < 16.0; value += 0.25) {
    EXPECT_EQ(tree.FindPrefixSum(value), LinearFind(leaves, value)) << "value " << value;
  }
}

TEST(SumTreeTest, QueryMatchesLinearScanForRandomValues) {
  const int64_t capacity = 257;
  SumTree tree(capacity);
  std::vector<double> leaves(capacity);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int64_t i = 0; i < capacity; ++i) {
    leaves[i] = (i % 5 == 0) ? 0.0 : unit(rng) * 3.0;
    tree.Set(i, leaves[i]);
  }
  // Prefix sums for skipping values within rounding distance of a boundary.
  std::vector<double> prefix;
  double acc = 0.0;
  for (double p : leaves) prefix.push_back(acc += p);
  int checked = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const double value = unit(rng) * tree.Total();
    bool near_boundary = false;
    for (double b : prefix) near_boundary |= std::abs(value - b) < 1e-9;
    if (near_boundary) continue;
    ASSERT_EQ(tree.FindPrefixSum(value), LinearFind(leaves, value)) << "value " << value;
    ++checked;
  }
  EXPECT_GT(checked, 19000);
}

TEST(SumTreeTest, ZeroPriorityLeavesAreNeverReturned) {
  const int64_t capacity = 100;
  SumTree tree(capacity);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int64_t i = 0; i < capacity; ++i) tree.Set(i, (i % 3 == 1) ? unit(rng) + 1e-3 : 0.0);
  const double total = tree.Total();
  std::vector<double> values = {0.0, total, std::nextafter(total, 0.0), 2.0 * total};
  double prefix = 0.0;
  for (int64_t i = 0; i < capacity; ++i) {
    prefix += tree.Get(i);
    values.push_back(prefix);  // Exact boundaries, where zero leaves start.
    values.push_back(std::nextafter(prefix, 0.0));
  }
  for (int trial = 0; trial < 20000; ++trial) values.push_back(unit(rng) * total);
  for (double value : values) {
    const int64_t leaf = tree.FindPrefixSum(value);
    ASSERT_GE(leaf, 0);
    ASSERT_LT(leaf, capacity);
    ASSERT_GT(tree.Get(leaf), 0.0) << "value " << value << " -> leaf " << leaf;
  }
}

TEST(SumTreeTest, SingleNonZeroLeafAlwaysReturned) {
  SumTree tree(33);
  tree.Set(32, 0.5);
  for (double value : {0.0, 0.25, 0.4999, 0.5, 10.0}) EXPECT_EQ(tree.FindPrefixSum(value), 32);
  tree.Set(0, 0.5);
  tree.Set(32, 0.0);
  for (double value : {0.0, 0.25, 0.5, 10.0}) EXPECT_EQ(tree.FindPrefixSum(value), 0);
}

TEST(SumTreeTest, MaxRecordedPriorityFollowsDopamine) {
  SumTree tree(4);
  EXPECT_EQ(tree.max_recorded_priority(), 1.0);
  tree.Set(0, 0.5);
  EXPECT_EQ(tree.max_recorded_priority(), 1.0);  // Never below the initial 1.0.
  tree.Set(1, 3.0);
  EXPECT_EQ(tree.max_recorded_priority(), 3.0);
  tree.Set(1, 0.0);
  EXPECT_EQ(tree.max_recorded_priority(), 3.0);  // Never decreases.
  tree.Clear();
  EXPECT_EQ(tree.max_recorded_priority(), 1.0);
  EXPECT_EQ(tree.Total(), 0.0);
}

TEST(SumTreeDeathTest, RejectsInvalidPrioritiesAndIndices) {
  SumTree tree(4);
  EXPECT_DEATH(tree.Set(0, -1.0), "priority");
  EXPECT_DEATH(tree.Set(0, std::numeric_limits<double>::quiet_NaN()), "priority");
  EXPECT_DEATH(tree.Set(0, std::numeric_limits<double>::infinity()), "priority");
  EXPECT_DEATH(tree.Set(4, 1.0), "out of range");
  EXPECT_DEATH(tree.FindPrefixSum(0.0), "total is 0");
}

TEST(SumTreeTest, SaveLoadRoundTrip) {
  SumTree tree(10);
  for (int i = 0; i < 10; ++i) tree.Set(i, 0.3 * i);
  ByteWriter writer;
  tree.Save(writer);
  SumTree loaded(10);
  ByteReader reader(writer.bytes());
  ASSERT_TRUE(loaded.Load(reader).ok());
  ASSERT_TRUE(reader.Finish("sum tree").ok());
  EXPECT_EQ(loaded.nodes(), tree.nodes());
  EXPECT_EQ(loaded.max_recorded_priority(), tree.max_recorded_priority());
}

TEST(SumTreeTest, LoadRejectsBadState) {
  SumTree tree(10);
  tree.Set(3, 2.0);
  ByteWriter writer;
  tree.Save(writer);
  {
    SumTree other(11);
    ByteReader reader(writer.bytes());
    EXPECT_EQ(other.Load(reader).code(), Status::Code::kCorruption);
    EXPECT_EQ(other.Total(), 0.0);
  }
  {
    SumTree other(10);
    ByteReader reader(std::string_view(writer.bytes()).substr(0, writer.bytes().size() - 3));
    EXPECT_EQ(other.Load(reader).code(), Status::Code::kCorruption);
    EXPECT_EQ(other.Total(), 0.0);
  }
  {
    ByteWriter bad;
    bad.Write<int64_t>(2);
    bad.Write<double>(1.0);
    bad.WriteVector(std::vector<double>{1.0, -2.0});
    SumTree other(2);
    ByteReader reader(bad.bytes());
    EXPECT_EQ(other.Load(reader).code(), Status::Code::kCorruption);
  }
}

}  // namespace
}  // namespace tokenrl::replay
