#include "tokenrl/core/seed.h"

#include <set>

#include <gtest/gtest.h>

#include "tokenrl/core/thread_pool.h"

namespace tokenrl {
namespace {

TEST(SeedTest, DerivedSeedsAreDistinctAndStable) {
  std::set<uint32_t> seen;
  for (uint64_t m = 0; m < 16; ++m)
    for (uint64_t e = 0; e < 256; ++e) seen.insert(DeriveSeed32(0, {m, e}));
  EXPECT_EQ(seen.size(), 16u * 256u);
  EXPECT_EQ(DeriveSeed(7, {1, 2}), DeriveSeed(7, {1, 2}));
  EXPECT_NE(DeriveSeed(7, {1, 2}), DeriveSeed(7, {2, 1}));
  EXPECT_NE(DeriveSeed(7, {1, 2}), DeriveSeed(8, {1, 2}));
}

TEST(ThreadPoolTest, RunsEveryChunkExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 50; ++round) {
      std::vector<int> hits(37, 0);
      pool.ParallelFor(37, [&](int c) { hits[static_cast<size_t>(c)] += 1; });
      for (int h : hits) ASSERT_EQ(h, 1);
    }
  }
}

}  // namespace
}  // namespace tokenrl
