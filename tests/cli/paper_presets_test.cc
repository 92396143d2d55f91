// The MinAtar presets of the paper's figures (configs/paper/, issue 13): every
// figure of ../shared/docs/experiments.md has a preset, every preset passes
// `tokenrl sweep FILE --dry-run` (strict sweep file, every job's config
// loaded strictly), runs 5 games x 5 seeds packed as 5 members per process,
// states its budget (>= 1M env steps per run for the core figures), and the
// dry run prints core-hours from configs/paper/speeds.toml.

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/process.h"
#include "tokenrl/core/file_util.h"

namespace tokenrl {
namespace {

namespace fs = std::filesystem;
using testing::RunShell;
using testing::ShellResult;

const std::string kBin = TOKENRL_BINARY;
const std::string kPaper = std::string(TOKENRL_SOURCE_DIR) + "/configs/paper";

std::vector<std::string> Presets() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kPaper)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.rfind("fig", 0) == 0 && name.ends_with(".toml")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

int64_t Count(const std::string& text, const std::string& needle) {
  int64_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(PaperPresetsTest, EveryFigureHasAPresetListedInTheReadme) {
  // The figures of experiments.md's table (13 and 14 are Figure 1's runs).
  const std::vector<std::string> figures = {"1",  "4 (i)", "4 (ii)", "4 (iii)", "5",  "6",  "7",  "8",  "9",
                                            "10", "11",    "12",     "13",      "14", "15", "16", "17", "18",
                                            "19", "20"};
  std::string headers;
  for (const auto& file : Presets()) {
    auto text = ReadFile(file);
    ASSERT_TRUE(text.ok());
    headers += text->substr(0, text->find('\n')) + "\n";  // "# Figure 6 on MinAtar (...)."
  }
  auto readme = ReadFile(kPaper + "/README.md");
  ASSERT_TRUE(readme.ok()) << "configs/paper/README.md";
  for (const auto& f : figures) {
    // "# Figure 1 (and 13, 14..." / "# Figure 11 and 20 (...": any mention in a first line.
    const std::regex mention("Figure[^\\n]*[ (,]" + std::regex_replace(f, std::regex("[()]"), "\\$&") + "[ ,):]");
    EXPECT_TRUE(std::regex_search(headers, mention)) << "no preset's first line names Figure " << f << "\n" << headers;
  }
  for (const auto& file : Presets()) {
    EXPECT_NE(readme->find(fs::path(file).filename().string()), std::string::npos)
        << fs::path(file).filename() << " is not in configs/paper/README.md";
  }
}

TEST(PaperPresetsTest, EveryPresetPassesTheDryRunWithCoreHours) {
  const std::vector<std::string> presets = Presets();
  ASSERT_GE(presets.size(), 18u);
  // Core figures: at least 1,000,000 env steps per run.
  const std::set<std::string> core = {"fig01_13_14_minatar_rainbow.toml", "fig05_minatar_rainbow_lite.toml",
                                      "fig05_minatar_rainbow_lite_impala.toml", "fig06_minatar_rainbow.toml",
                                      "fig07_minatar_rainbow.toml", "fig10_minatar_dqn.toml",
                                      "fig10_minatar_der.toml"};
  for (const auto& file : presets) {
    SCOPED_TRACE(file);
    const ShellResult r = RunShell(kBin + " sweep " + file + " --dry-run");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("(\\d+) cell\\(s\\) in (\\d+) job\\(s\\)"))) << r.output;
    const int64_t cells = std::stoll(m[1]);
    const int64_t jobs = std::stoll(m[2]);
    EXPECT_EQ(cells % 25, 0) << "5 games x 5 seeds per variant";
    EXPECT_EQ(jobs * 5, cells) << "the 5 seeds of a (variant, game) are one process";
    EXPECT_EQ(Count(r.output, "(5 member(s))"), jobs) << r.output;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("estimated cost: (\\d+) env steps"))) << r.output;
    const int64_t budget = std::stoll(m[1]) / cells;
    EXPECT_GE(budget, core.count(fs::path(file).filename().string()) ? 1000000 : 100000) << r.output;
    EXPECT_NE(r.output.find("estimated core-hours (speeds: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("speeds.toml"), std::string::npos) << r.output;
    EXPECT_EQ(Count(r.output, " job(s) x "), jobs / 5) << "one core-hour line per variant\n" << r.output;
    EXPECT_TRUE(std::regex_search(r.output, std::regex("\ntotal: (\\d+\\.\\d core-hours|unknown \\()"))) << r.output;
  }
}

TEST(PaperPresetsTest, CoreFiguresHaveMeasuredSpeeds) {
  // The core figures' speeds are measured, so their dry run gives a number: on AVX-512 machines
  // (configs/paper/speeds.toml, the presets' default) and on CPUs without AVX-512 (speeds_avx2.toml).
  for (const std::string& speeds : {std::string(), " --speeds " + kPaper + "/speeds_avx2.toml"}) {
    for (const std::string name : {"fig01_13_14_minatar_rainbow.toml", "fig06_minatar_rainbow.toml",
                                   "fig05_minatar_rainbow_lite.toml", "fig07_minatar_rainbow.toml",
                                   "fig10_minatar_dqn.toml", "fig10_minatar_der.toml"}) {
      SCOPED_TRACE(name + speeds);
      const ShellResult r = RunShell(kBin + " sweep " + kPaper + "/" + name + " --dry-run" + speeds);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      EXPECT_EQ(r.output.find("unknown"), std::string::npos) << r.output;
      EXPECT_TRUE(std::regex_search(r.output, std::regex("\ntotal: \\d+\\.\\d core-hours\n"))) << r.output;
    }
  }
}

TEST(PaperPresetsTest, UnmeasuredSpeedsSayUnknown) {
  const std::string empty = ::testing::TempDir() + "/empty_speeds.toml";
  ASSERT_TRUE(WriteFileAtomic(empty, "# nothing measured\n").ok());
  const ShellResult r = RunShell(kBin + " sweep " + kPaper + "/fig06_minatar_rainbow.toml --dry-run --speeds " + empty);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Count(r.output, "unknown (no measured speed for agent=minatar_rainbow encoder=minatar network="), 3)
      << r.output;
  EXPECT_NE(r.output.find("total: unknown (3 of 3 variant(s) without a measured speed"), std::string::npos)
      << r.output;
  const ShellResult bad = RunShell(kBin + " sweep " + kPaper + "/fig06_minatar_rainbow.toml --dry-run --speeds " +
                                   kPaper + "/fig06_minatar_rainbow.toml");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("unknown key"), std::string::npos) << bad.output;
}

TEST(PaperPresetsTest, BenchTrainSweepPrintsATableTheDryRunReads) {
  const std::string tiny = std::string(TOKENRL_SOURCE_DIR) + "/configs/sweeps/fig6_minatar_tiny.toml";
  const std::string table = ::testing::TempDir() + "/bench_speeds.toml";
  const ShellResult bench = RunShell(kBin + " bench train --sweep " + tiny +
                                     " --steps 40 --group softmoe_4 --machine 'test VM' > " + table);
  ASSERT_EQ(bench.exit_code, 0) << bench.output;
  auto text = ReadFile(table);
  ASSERT_TRUE(text.ok());
  // One key (2 games, same network): measured once, on the first job.
  EXPECT_EQ(Count(*text, "[[speed]]"), 1) << *text;
  EXPECT_NE(text->find("network = \"softmoe_4\"\nwidth = 32\nmembers = 2\nthreads = 1\n"), std::string::npos)
      << *text;
  EXPECT_NE(text->find("machine = \"test VM\""), std::string::npos) << *text;
  const ShellResult dry = RunShell(kBin + " sweep " + tiny + " --dry-run --speeds " + table);
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_TRUE(std::regex_search(dry.output, std::regex("softmoe_4 +2 job\\(s\\) x 3000 env steps +\\d+ steps/s/member "
                                                       "+\\d+\\.\\d core-hours")))
      << dry.output;
  EXPECT_NE(dry.output.find("total: unknown (2 of 3 variant(s) without a measured speed"), std::string::npos)
      << dry.output;
  // Measuring again with --skip-known adds nothing.
  const ShellResult again =
      RunShell(kBin + " bench train --sweep " + tiny + " --steps 40 --group softmoe_4 --skip-known " + table);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(Count(again.output, "[[speed]]"), 0) << again.output;
  const ShellResult bad = RunShell(kBin + " bench train --group softmoe_4");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("add --sweep FILE"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace tokenrl
