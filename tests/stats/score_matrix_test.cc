// ScoreMatrix construction, the long-format CSV loader and its error messages,
// and shape warnings.

#include "tokenrl/stats/score_matrix.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tokenrl::stats {
namespace {

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(ScoreMatrixTest, CreateValidatesShapeAndValues) {
  EXPECT_TRUE(ScoreMatrix::Create(2, 2, {1, 2, 3, 4}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(0, 2, {}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(2, 2, {1, 2, 3}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(1, 2, {1, std::numeric_limits<double>::quiet_NaN()}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(1, 2, {1, std::numeric_limits<double>::infinity()}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(1, 2, {1, 2}, {}, {"pong", "pong"}).ok());
  EXPECT_FALSE(ScoreMatrix::Create(1, 2, {1, 2}, {"a", "b"}).ok());
  EXPECT_FALSE(ScoreMatrix::FromRows({{1, 2}, {3}}).ok());
  EXPECT_FALSE(ScoreMatrix::FromRows({}).ok());
  const ScoreMatrix m = ScoreMatrix::FromRows({{1, 2, 3}, {4, 5, 6}}).value();
  EXPECT_EQ(m.num_runs(), 2);
  EXPECT_EQ(m.num_tasks(), 3);
  EXPECT_EQ(m(1, 0), 4.0);
  EXPECT_EQ(m.task_names()[2], "task_2");
  EXPECT_EQ(m.run_labels()[1], "1");
}

TEST(ScoreMatrixTest, SelectTasksKeepsRunsAndOrdersColumnsAsAsked) {
  const ScoreMatrix m =
      ScoreMatrix::Create(2, 3, {1, 2, 3, 4, 5, 6}, {"s0", "s1"}, {"asterix", "breakout", "freeway"}).value();
  const ScoreMatrix picked = m.SelectTasks({"freeway", "asterix"}).value();
  EXPECT_EQ(picked.num_runs(), 2);
  EXPECT_EQ(picked.task_names(), (std::vector<std::string>{"freeway", "asterix"}));
  EXPECT_EQ(picked.run_labels(), m.run_labels());
  EXPECT_EQ(std::vector<double>(picked.values().begin(), picked.values().end()), (std::vector<double>{3, 1, 6, 4}));
  EXPECT_TRUE(Contains(m.SelectTasks({"pong"}).status().message(), "no task \"pong\" (tasks: asterix, breakout, freeway)"));
  EXPECT_FALSE(m.SelectTasks({}).ok());
  EXPECT_TRUE(Contains(m.SelectTasks({"asterix", "asterix"}).status().message(), "appears twice"));
}

TEST(ScoresCsvTest, ParsesLongFormatSortingTasksAndKeepingRunOrder) {
  const std::string csv =
      "# final scores\n"
      "Run, Task ,score\r\n"
      "seed7,pong,1.5\n"
      "seed7,breakout,2\n"
      "\n"
      "\"seed,3\",breakout,-0.25\n"
      "\"seed,3\",pong,+3e-1\n";
  auto m = ParseScoresCsv(csv, "f.csv");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->task_names(), (std::vector<std::string>{"breakout", "pong"}));
  EXPECT_EQ(m->run_labels(), (std::vector<std::string>{"seed7", "seed,3"}));
  EXPECT_EQ((*m)(0, 0), 2.0);
  EXPECT_EQ((*m)(0, 1), 1.5);
  EXPECT_EQ((*m)(1, 0), -0.25);
  EXPECT_EQ((*m)(1, 1), 0.3);
}

TEST(ScoresCsvTest, ExtraColumnsAndAnyColumnOrder) {
  auto m = ParseScoresCsv("score,step,task,run\n1,100,a,0\n2,100,b,0\n", "f.csv");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->num_tasks(), 2);
}

struct BadCase {
  const char* csv;
  std::vector<std::string> message_parts;
};

TEST(ScoresCsvTest, ClearErrorsForBadInput) {
  const std::vector<BadCase> cases = {
      {"", {"empty file"}},
      {"0,pong,1\n", {"header", "run,task,score"}},
      {"run,task\n0,pong\n", {"header", "run,task,score"}},
      {"run,task,score\n", {"no score rows"}},
      {"run,task,score\n0,pong,1,extra\n", {"f.csv:2", "4 fields"}},
      {"run,task,score\n0,pong,abc\n", {"f.csv:2", "not a number"}},
      {"run,task,score\n0,pong,nan\n", {"f.csv:2", "not a finite number", "pong"}},
      {"run,task,score\n0,pong,-inf\n", {"not a finite number"}},
      {"run,task,score\n0,pong,\n", {"f.csv:2", "missing score"}},
      {"run,task,score\n,pong,1\n", {"empty run label"}},
      {"run,task,score\n0,,1\n", {"empty task name"}},
      {"run,task,score\n0,pong,1\n0,pong,2\n", {"f.csv:3", "duplicate", "line 2", "one score per"}},
      {"run,task,score\n0,pong,1\n0,qbert,2\n1,pong,3\n",
       {"1 missing", "run \"1\" has no score for task \"qbert\"", "add the missing rows"}},
      {"run,task,score\n\"0,pong,1\n", {"unterminated"}},
  };
  for (const auto& c : cases) {
    auto m = ParseScoresCsv(c.csv, "f.csv");
    ASSERT_FALSE(m.ok()) << c.csv;
    EXPECT_EQ(m.status().code(), Status::Code::kInvalidArgument) << c.csv;
    for (const auto& part : c.message_parts) {
      EXPECT_TRUE(Contains(m.status().message(), part)) << "csv: " << c.csv << "\nmessage: " << m.status().message()
                                                        << "\nmissing: " << part;
    }
  }
}

TEST(ScoresCsvTest, ManyMissingCellsAreSummarized) {
  std::string csv = "run,task,score\n";
  for (int t = 0; t < 10; ++t) csv += "0,t" + std::to_string(t) + ",1\n";
  csv += "1,t0,1\n";
  auto m = ParseScoresCsv(csv, "f.csv");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status().message(), "9 missing")) << m.status().message();
  EXPECT_TRUE(Contains(m.status().message(), "and 4 more")) << m.status().message();
}

TEST(ScoresCsvTest, MissingFileIsAnError) {
  auto m = LoadScoresCsv("/nonexistent/dir/scores.csv");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(Contains(m.status().message(), "/nonexistent/dir/scores.csv")) << m.status().message();
}

TEST(ShapeWarningsTest, FlagsSuspiciousShapes) {
  const ScoreMatrix normal = ScoreMatrix::Create(5, 20, std::vector<double>(100, 1.0)).value();
  EXPECT_TRUE(ShapeWarnings(normal, false).empty());
  EXPECT_TRUE(ShapeWarnings(normal, true).empty());

  const ScoreMatrix one_run = ScoreMatrix::Create(1, 20, std::vector<double>(20, 1.0)).value();
  ASSERT_EQ(ShapeWarnings(one_run, false).size(), 1u);
  EXPECT_TRUE(Contains(ShapeWarnings(one_run, false)[0], "zero width"));

  const ScoreMatrix tall = ScoreMatrix::Create(30, 1, std::vector<double>(30, 1.0)).value();
  ASSERT_EQ(ShapeWarnings(tall, false).size(), 1u);
  EXPECT_TRUE(Contains(ShapeWarnings(tall, false)[0], "transposed"));
  ASSERT_EQ(ShapeWarnings(tall, true).size(), 1u);
  EXPECT_TRUE(Contains(ShapeWarnings(tall, true)[0], "task bootstrap"));

  const ScoreMatrix swapped =
      ScoreMatrix::Create(2, 3, std::vector<double>(6, 1.0), {"pong", "qbert"}, {"0", "1", "2"}).value();
  ASSERT_EQ(ShapeWarnings(swapped, false).size(), 1u);
  EXPECT_TRUE(Contains(ShapeWarnings(swapped, false)[0], "swapped"));
}

}  // namespace
}  // namespace tokenrl::stats
