// scripts/report_minatar.sh, the one command that regenerates the MinAtar
// study's report (docs/results/minatar/) from the committed results, run on a
// small committed sample of a sweep (tests/report/sample_results/: Figure 10's
// DQN preset, baseline and SoftMoE-4, 2 games x 2 seeds, 20,000 env steps).

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"

namespace tokenrl {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;

TEST(ReportMinatarScriptTest, RegeneratesTheReportOfEverySweepFromTheCommittedSample) {
  const fs::path out = fs::temp_directory_path() / fmt::format("tokenrl_report_minatar_{}", ::getpid());
  fs::remove_all(out);
  const std::string source = TOKENRL_SOURCE_DIR;
  const auto run = RunShell(fmt::format("TOKENRL={} {}/scripts/report_minatar.sh {}/tests/report/sample_results {}",
                                        TOKENRL_BINARY, source, source, out.string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // The sample holds two of the preset's three variants: the one pair they
  // form is reported, the two with softmoe_1_scaled_x4 are skipped, saying why.
  EXPECT_NE(run.output.find("pair softmoe_1_scaled_x4 > baseline skipped"), std::string::npos) << run.output;
  const fs::path report = out / "fig10_dqn";
  for (const char* f : {"report.md", "report.html", "table.md", "improvement.csv", "task_curves.csv", "scores.csv"}) {
    EXPECT_TRUE(fs::is_regular_file(report / f)) << f;
  }
  const std::string table = *ReadFile((report / "table.md").string());
  EXPECT_NE(table.find("| baseline | 2 | 2 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| softmoe_4 | 2 | 2 |"), std::string::npos) << table;
  const std::string improvement = *ReadFile((report / "improvement.csv").string());
  EXPECT_EQ(improvement.rfind("x,y,probability,lower,upper,tasks\nsoftmoe_4,baseline,", 0), 0u) << improvement;
  EXPECT_EQ(std::count(improvement.begin(), improvement.end(), '\n'), 2) << improvement;
  const std::string md = *ReadFile((report / "report.md").string());
  EXPECT_NE(md.find("in the last 10% of its env steps"), std::string::npos);

  // A variant that has finished fewer games: its pair is reported over the
  // games both finished, and the script and the report say which.
  const fs::path partial = out / "partial_results";
  fs::copy(fs::path(source) / "tests/report/sample_results", partial, fs::copy_options::recursive);
  fs::remove(partial / "fig10_dqn/softmoe_4/freeway-s0-1-fc873f8b/DONE");
  const auto fewer = RunShell(fmt::format("TOKENRL={} {}/scripts/report_minatar.sh {} {}", TOKENRL_BINARY, source,
                                          partial.string(), (out / "partial_report").string()));
  ASSERT_EQ(fewer.exit_code, 0) << fewer.output;
  EXPECT_NE(fewer.output.find("pair softmoe_4 > baseline over the games both finished only: breakout"),
            std::string::npos)
      << fewer.output;
  const std::string fewer_improvement = *ReadFile((out / "partial_report/fig10_dqn/improvement.csv").string());
  EXPECT_NE(fewer_improvement.find("\nsoftmoe_4,baseline,"), std::string::npos) << fewer_improvement;
  EXPECT_NE(fewer_improvement.find(",breakout\n"), std::string::npos) << fewer_improvement;

  // A missing results directory is a clear error.
  const auto missing = RunShell(fmt::format("TOKENRL={} {}/scripts/report_minatar.sh {}/no_such_dir {}",
                                            TOKENRL_BINARY, source, source, out.string()));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("no results directory"), std::string::npos) << missing.output;
  fs::remove_all(out);
}

}  // namespace
}  // namespace tokenrl
