// Score normalization: shipped tables, task-name matching, locating the data
// files, and error messages for unknown tasks.

#include "tokenrl/stats/normalization.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "testing/shared_data.h"

namespace tokenrl::stats {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(CanonicalTaskKeyTest, MatchesCommonSpellings) {
  EXPECT_EQ(CanonicalTaskKey("MontezumaRevenge"), "montezumarevenge");
  EXPECT_EQ(CanonicalTaskKey("ALE/MontezumaRevenge-v5"), "montezumarevenge");
  EXPECT_EQ(CanonicalTaskKey("MontezumaRevengeNoFrameskip-v4"), "montezumarevenge");
  EXPECT_EQ(CanonicalTaskKey("montezuma_revenge"), "montezumarevenge");
  EXPECT_EQ(CanonicalTaskKey("PongDeterministic-v4"), "pong");
  EXPECT_EQ(CanonicalTaskKey("minatar/space_invaders"), "spaceinvaders");
  EXPECT_EQ(CanonicalTaskKey("MinAtar/SpaceInvaders-v1"), "spaceinvaders");
  EXPECT_EQ(CanonicalTaskKey("Pitfall2"), "pitfall2");  // digits without "-v" stay
}

TEST(NormalizationTest, ShippedTablesEqualTheSharedReference) {
  for (const auto& name : {std::string(kAtariReferenceFile), std::string(kMinAtarReferenceFile)}) {
    auto path = FindReferenceScoresFile(name);
    ASSERT_TRUE(path.ok()) << path.status().ToString();
    std::ifstream a(*path), b(tokenrl::testing::SharedDir() + "/reference_scores/" + name);
    const std::string shipped((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
    const std::string shared((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(shared.empty());
    EXPECT_EQ(shipped, shared) << name;
  }
}

TEST(NormalizationTest, AtariHumanNormalized) {
  auto n = Normalizer::Atari();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->kind(), NormalizationKind::kAtari);
  // Pong: random -20.7, human 14.6; Breakout: random 1.7, human 30.5.
  const ScoreMatrix raw =
      ScoreMatrix::Create(2, 2, {14.6, 30.5, -20.7, 1.7}, {}, {"PongNoFrameskip-v4", "ALE/Breakout-v5"}).value();
  auto norm = n->Normalize(raw);
  ASSERT_TRUE(norm.ok()) << norm.status().ToString();
  EXPECT_DOUBLE_EQ((*norm)(0, 0), 1.0);
  EXPECT_DOUBLE_EQ((*norm)(0, 1), 1.0);
  EXPECT_DOUBLE_EQ((*norm)(1, 0), 0.0);
  EXPECT_DOUBLE_EQ((*norm)(1, 1), 0.0);
  EXPECT_EQ(norm->task_names(), raw.task_names());
  const auto ref = n->Find("montezuma_revenge");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->low, 0.0);
  EXPECT_EQ(ref->high, 4753.3);
  EXPECT_TRUE(n->Warnings(raw).empty());
  const ScoreMatrix with_defender = ScoreMatrix::Create(1, 1, {100.0}, {}, {"Defender"}).value();
  ASSERT_EQ(n->Warnings(with_defender).size(), 1u);
  EXPECT_TRUE(Contains(n->Warnings(with_defender)[0], "55-game"));
}

TEST(NormalizationTest, MinAtarRandomReference) {
  auto n = Normalizer::MinAtar();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  const ScoreMatrix raw = ScoreMatrix::Create(1, 2, {10.0, 43.0}, {}, {"minatar/breakout", "space_invaders"}).value();
  auto norm = n->Normalize(raw);
  ASSERT_TRUE(norm.ok()) << norm.status().ToString();
  EXPECT_DOUBLE_EQ((*norm)(0, 0), 1.0);                    // breakout reference 10.0
  EXPECT_DOUBLE_EQ((*norm)(0, 1), 1.0);                    // space_invaders reference 43.0
  EXPECT_DOUBLE_EQ(n->Find("Asterix")->low, 0.47);
}

TEST(NormalizationTest, UnknownTaskIsAClearError) {
  auto n = Normalizer::MinAtar();
  ASSERT_TRUE(n.ok());
  const ScoreMatrix raw = ScoreMatrix::Create(1, 2, {1.0, 2.0}, {}, {"breakout", "pong"}).value();
  auto norm = n->Normalize(raw);
  ASSERT_FALSE(norm.ok());
  EXPECT_EQ(norm.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(norm.status().message(), "pong")) << norm.status().message();
  EXPECT_TRUE(Contains(norm.status().message(), "--normalize none")) << norm.status().message();
  EXPECT_TRUE(Contains(norm.status().message(), "space_invaders")) << norm.status().message();
}

TEST(NormalizationTest, MinMaxAndNone) {
  const ScoreMatrix raw = ScoreMatrix::Create(1, 2, {5.0, 15.0}, {}, {"a", "b"}).value();
  auto mm = Normalizer::MinMax(5.0, 15.0);
  ASSERT_TRUE(mm.ok());
  auto norm = mm->Normalize(raw);
  ASSERT_TRUE(norm.ok());
  EXPECT_EQ((*norm)(0, 0), 0.0);
  EXPECT_EQ((*norm)(0, 1), 1.0);
  EXPECT_FALSE(Normalizer::MinMax(1.0, 1.0).ok());
  EXPECT_FALSE(Normalizer::MinMax(0.0, std::nan("")).ok());
  auto same = Normalizer::None().Normalize(raw);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ((*same)(0, 1), 15.0);
}

TEST(NormalizationTest, ParseKind) {
  EXPECT_EQ(ParseNormalizationKind("MinAtar").value(), NormalizationKind::kMinAtar);
  EXPECT_EQ(ParseNormalizationKind("atari").value(), NormalizationKind::kAtari);
  EXPECT_EQ(ParseNormalizationKind("none").value(), NormalizationKind::kNone);
  auto bad = ParseNormalizationKind("procgen");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Contains(bad.status().message(), "atari"));
}

TEST(FindReferenceScoresFileTest, ExplicitPathThenEnvironmentVariable) {
  const std::string shared = tokenrl::testing::SharedDir() + "/reference_scores/atari_human_random.csv";
  EXPECT_EQ(FindReferenceScoresFile(kAtariReferenceFile, shared).value(), shared);
  auto missing = FindReferenceScoresFile(kAtariReferenceFile, "/nonexistent/atari.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);

  ::setenv("TOKENRL_DATA_DIR", tokenrl::testing::SharedDir().c_str(), 1);
  EXPECT_EQ(FindReferenceScoresFile(kAtariReferenceFile).value(),
            tokenrl::testing::SharedDir() + "/reference_scores/atari_human_random.csv");
  auto none = FindReferenceScoresFile("no_such_table.csv");
  ::unsetenv("TOKENRL_DATA_DIR");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(Contains(none.status().message(), "TOKENRL_DATA_DIR")) << none.status().message();
}

TEST(NormalizationTest, FromCsvRejectsBadTables) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/bad_reference.csv";
  {
    std::ofstream out(path);
    out << "game,random,human\npong,1,1\n";
  }
  EXPECT_FALSE(Normalizer::FromCsv(path, NormalizationKind::kAtari).ok());
  {
    std::ofstream out(path);
    out << "game,low,high\npong,0,1\n";
  }
  EXPECT_FALSE(Normalizer::FromCsv(path, NormalizationKind::kAtari).ok());
  {
    std::ofstream out(path);
    out << "task,random,reference\npong,0,1\nPong,0,2\n";
  }
  EXPECT_FALSE(Normalizer::FromCsv(path, NormalizationKind::kAtari).ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace tokenrl::stats
