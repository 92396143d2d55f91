// `tokenrl report` library part (tokenrl/report/report.h) on a small synthetic
// set of run directories written by hand: 2 variants x 2 tasks x 3 members
// with known evaluation returns.

#include "tokenrl/report/report.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/report/format.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/bootstrap.h"
#include "tokenrl/stats/csv.h"
#include "tokenrl/stats/normalization.h"
#include "tokenrl/stats/score_matrix.h"

namespace tokenrl::report {
namespace {

using namespace tokenrl::stats;  // The statistics the report must reproduce.

namespace fs = std::filesystem;

const std::vector<std::string> kVariants = {"flatten", "softmoe"};
const std::vector<std::string> kTasks = {"asterix", "breakout"};  // Sorted, as the matrix columns.
constexpr int kMembers = 3;
constexpr int64_t kSteps[] = {5000, 10000};

// Known evaluation return of (variant, task, member) at evaluation point t.
double EvalReturn(int v, int task, int member, int t) {
  const double final_score = 1.0 + 2.0 * v + 3.0 * task + 0.5 * member + 0.25 * member * member;
  return t == 1 ? final_score : 0.5 * final_score - 0.1 * member;
}

class TempDir {
 public:
  explicit TempDir(const std::string& name) {
    path_ = fs::temp_directory_path() / fmt::format("tokenrl_report_test_{}_{}", ::getpid(), name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteText(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

std::string Config(const std::string& env, const std::string& mixer, int seed) {
  return fmt::format(
      "seed = {}\n\n[env]\nname = \"{}\"\nmax_episode_steps = 0\n\n[network.mixer]\ntype = \"{}\"\nhidden_units = "
      "128\n\n[learner]\nlearning_rate = 0.00025\n",
      seed, env, mixer);
}

// metrics.csv as `tokenrl train` writes it: a logging-only row (no
// evaluation) between the two evaluation points.
std::string Metrics(int v, int task) {
  std::string s =
      "member,env_steps,gradient_updates,episodes,return_mean_recent,loss,q_mean,epsilon,eval_return_mean,"
      "eval_return_std\n";
  for (int m = 0; m < kMembers; ++m) s += fmt::format("{},2500,100,10,0.5,0.1,0.2,0.9,,\n", m);
  for (int t = 0; t < 2; ++t) {
    for (int m = 0; m < kMembers; ++m) {
      s += fmt::format("{},{},1000,50,{},0.1,0.2,0.5,{},0.3\n", m, kSteps[t], 0.1 * m, EvalReturn(v, task, m, t));
    }
  }
  return s;
}

// root/<variant>/<task>/ with config.resolved.toml, metrics.csv and DONE.
void WriteSyntheticRuns(const fs::path& root) {
  for (size_t v = 0; v < kVariants.size(); ++v) {
    for (size_t t = 0; t < kTasks.size(); ++t) {
      const fs::path dir = root / kVariants[v] / kTasks[t];
      WriteText(dir / "config.resolved.toml", Config("minatar/" + kTasks[t], kVariants[v], static_cast<int>(t)));
      WriteText(dir / "metrics.csv", Metrics(static_cast<int>(v), static_cast<int>(t)));
      WriteText(dir / "DONE", "");
    }
  }
}

ReportOptions SmallOptions(const fs::path& root, const fs::path& out) {
  ReportOptions o;
  o.roots = {root.string()};
  o.out_dir = out.string();
  o.reps = 3000;
  o.curve_reps = 500;
  o.profile_reps = 500;
  o.seed = 7;
  return o;
}

// Rows are members (runs), columns the sorted tasks; t_index 1 = final scores.
ScoreMatrix ExpectedRaw(int v, int t_index) {
  std::vector<std::vector<double>> rows(kMembers);
  for (int m = 0; m < kMembers; ++m)
    for (int task = 0; task < 2; ++task) rows[m].push_back(EvalReturn(v, task, m, t_index));
  auto matrix = ScoreMatrix::FromRows(rows, kTasks);
  TOKENRL_CHECK(matrix.ok(), "{}", matrix.status().message());
  return std::move(matrix).value();
}

std::map<std::string, std::vector<std::string>> ReadCsvRows(const fs::path& path, const std::string& key_column) {
  auto text = ReadFile(path.string());
  EXPECT_TRUE(text.ok()) << path;
  auto table = ParseCsv(*text, path.string());
  EXPECT_TRUE(table.ok()) << table.status().message();
  std::map<std::string, std::vector<std::string>> rows;
  const int key = *table->Column(key_column);
  for (const auto& row : table->rows) rows[row.fields[key]] = row.fields;
  return rows;
}

std::string Join(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + fields[i];
  return out;
}

double CsvValue(const std::vector<std::string>& fields, const CsvTable& table, const std::string& column) {
  return *ParseDouble(fields[*table.Column(column)], column);
}

TEST(ReportTest, WritesEveryFileAndTheTableEqualsTheLibraryAggregates) {
  TempDir tmp("full");
  WriteSyntheticRuns(tmp.path() / "runs");
  const fs::path out = tmp.path() / "out";
  auto result = RunReport(SmallOptions(tmp.path() / "runs", out));
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->normalization, "minatar");  // auto: every task is minatar/*.
  ASSERT_EQ(result->variants.size(), 2u);
  EXPECT_EQ(result->runs.size(), 12u);
  for (const auto& w : result->warnings) ADD_FAILURE() << "unexpected warning: " << w;

  for (const char* f : {"table.md", "table.csv", "scores.csv", "scores/flatten.csv", "scores/softmoe.csv",
                        "curves.csv", "profiles.csv", "report.md", "report.html", "plots/aggregates.gp",
                        "plots/aggregates.dat", "plots/learning_curves.gp", "plots/learning_curves.dat",
                        "plots/performance_profile.gp", "plots/performance_profile.dat"}) {
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
    EXPECT_GT(fs::file_size(out / f), 0u) << f;
  }
  const bool have_gnuplot = !FindExecutable("gnuplot").empty();
  for (const char* f : {"aggregates", "learning_curves", "performance_profile"}) {
    for (const char* ext : {".png", ".svg"}) {
      const fs::path image = out / (std::string(f) + ext);
      if (have_gnuplot) {
        ASSERT_TRUE(fs::is_regular_file(image)) << image;
        EXPECT_GT(fs::file_size(image), 1000u) << image;
      }
    }
  }
  EXPECT_EQ(result->plots_drawn, have_gnuplot);
  if (!have_gnuplot) GTEST_LOG_(INFO) << "gnuplot not on PATH: image checks skipped";

  // The same matrices through the stats library directly.
  auto normalizer = Normalizer::MinAtar();
  ASSERT_TRUE(normalizer.ok()) << normalizer.status().message();
  BootstrapOptions b;
  b.reps = 3000;
  b.seed = 7;
  auto table_text = ReadFile((out / "table.csv").string());
  ASSERT_TRUE(table_text.ok());
  auto table = ParseCsv(*table_text, "table.csv");
  ASSERT_TRUE(table.ok()) << table.status().message();
  ASSERT_EQ(table->rows.size(), 2u);
  const auto curves = ReadCsvRows(out / "curves.csv", "env_steps");  // Keyed by step: last variant wins.
  for (int v = 0; v < 2; ++v) {
    const ScoreMatrix raw = ExpectedRaw(v, 1);
    auto normalized = normalizer->Normalize(raw);
    ASSERT_TRUE(normalized.ok());
    auto expected = AggregateIntervalEstimates(*normalized, b);
    ASSERT_TRUE(expected.ok());
    const ReportVariant& rv = result->variants[v];
    EXPECT_EQ(rv.name, kVariants[v]);
    ASSERT_EQ(rv.raw->num_runs(), kMembers);
    ASSERT_EQ(rv.raw->num_tasks(), 2);
    for (size_t i = 0; i < raw.size(); ++i) EXPECT_EQ(rv.raw->values()[i], raw.values()[i]);
    const auto& row = table->rows[v].fields;
    EXPECT_EQ(row[*table->Column("variant")], kVariants[v]);
    EXPECT_EQ(row[*table->Column("runs")], "3");
    EXPECT_EQ(row[*table->Column("tasks")], "2");
    for (int a = 0; a < kNumAggregates; ++a) {
      const auto aggregate = static_cast<Aggregate>(a);
      const std::string key(AggregateKey(aggregate));
      const IntervalEstimate& e = expected->Get(aggregate);
      // Point estimates exactly; the intervals too (same seed, same matrix).
      EXPECT_EQ(CsvValue(row, *table, key), e.point) << kVariants[v] << " " << key;
      EXPECT_EQ(CsvValue(row, *table, key + "_lower"), e.lower) << kVariants[v] << " " << key;
      EXPECT_EQ(CsvValue(row, *table, key + "_upper"), e.upper) << kVariants[v] << " " << key;
      EXPECT_EQ(rv.aggregates.Get(aggregate).point, e.point);
    }
    // Point estimates of the learning curve: IQM at both evaluation points.
    ASSERT_EQ(rv.curve_steps, (std::vector<int64_t>{5000, 10000}));
    for (int t = 0; t < 2; ++t) {
      auto norm_t = normalizer->Normalize(ExpectedRaw(v, t));
      ASSERT_TRUE(norm_t.ok());
      EXPECT_DOUBLE_EQ(rv.curve_iqm[t].point, Iqm(norm_t->view())) << "variant " << v << " point " << t;
      EXPECT_LE(rv.curve_iqm[t].lower, rv.curve_iqm[t].point);
      EXPECT_GE(rv.curve_iqm[t].upper, rv.curve_iqm[t].point);
    }
    // Profile point values equal the library's score distribution.
    const auto profile = ScoreDistribution(normalized->view(), result->taus);
    ASSERT_EQ(rv.profile.size(), profile.size());
    for (size_t i = 0; i < profile.size(); ++i) EXPECT_EQ(rv.profile[i].point, profile[i]);

    // scores/<variant>.csv re-reads (as `tokenrl stats --scores` does) to the raw matrix.
    auto reread = LoadScoresCsv((out / "scores" / (kVariants[v] + ".csv")).string());
    ASSERT_TRUE(reread.ok()) << reread.status().message();
    ASSERT_EQ(reread->task_names(), raw.task_names());
    for (size_t i = 0; i < raw.size(); ++i) EXPECT_EQ(reread->values()[i], raw.values()[i]);
  }
  EXPECT_EQ(curves.size(), 2u);

  // The markdown table and the report show the same numbers and each variant's config.
  auto md = ReadFile((out / "table.md").string());
  ASSERT_TRUE(md.ok());
  const auto& iqm0 = result->variants[0].aggregates.iqm;
  EXPECT_NE(md->find(fmt::format("| flatten | 3 | 2 | {:.3f} [{:.3f}, {:.3f}]", iqm0.point, iqm0.lower, iqm0.upper)),
            std::string::npos)
      << *md;
  auto report = ReadFile((out / "report.md").string());
  ASSERT_TRUE(report.ok());
  EXPECT_NE(report->find("`network.mixer.type` | softmoe"), std::string::npos) << *report;
  EXPECT_NE(report->find("table.csv"), std::string::npos);
  if (have_gnuplot) {
    EXPECT_NE(report->find("![Aggregate metrics"), std::string::npos);
  }
  auto html = ReadFile((out / "report.html").string());
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("<table>"), std::string::npos);
  EXPECT_NE(html->find("</html>"), std::string::npos);
  // No diagnostics.csv anywhere: nothing about diagnostics.
  EXPECT_TRUE(result->diagnostics.empty());
  EXPECT_FALSE(fs::exists(out / "diagnostics_curves.csv"));
  EXPECT_FALSE(fs::exists(out / "plots" / "diagnostics.gp"));
  EXPECT_FALSE(fs::exists(out / "diagnostics.png"));
  EXPECT_EQ(report->find("Diagnostics"), std::string::npos);
}

// Diagnostics of (variant, task, member) at logging point t (all dyadic, so
// every mean below is exact): which 0/1 = penultimate dormant at tau 0/0.025,
// 2/3 = expert 0/1 dormant at tau 0, 4/5 = at tau 0.025, 6 = srank, 7 = norm.
constexpr int64_t kDiagSteps[] = {2500, 5000, 10000};
double DiagValue(int v, int task, int member, int t, int which) {
  return 0.0625 * which + 0.125 * member + 0.25 * t + 0.5 * task + (which >= 6 ? 8.0 * which + v : 0.0);
}

// diagnostics.csv exactly as the trainer writes it (taus 0 and 0.025; the
// softmoe variant with 2 experts, the flatten one without experts and with
// empty routing cells).
std::string DiagnosticsCsv(int v, int task) {
  const bool moe = v == 1;
  std::string s = "member,env_steps,batch,penultimate_dormant_0,penultimate_dormant_0.025";
  if (moe) {
    s += ",expert0_dormant_0,expert0_dormant_0.025,expert1_dormant_0,expert1_dormant_0.025,expert0_combine_share,"
         "expert1_combine_share,expert0_load,expert1_load";
  }
  s += ",dispatch_entropy,combine_entropy,tokens_dropped,combine_similarity,slot_similarity,feature_srank,"
       "parameter_norm\n";
  for (int t = 0; t < 3; ++t) {
    for (int m = 0; m < kMembers; ++m) {
      auto d = [&](int which) { return fmt::format("{}", DiagValue(v, task, m, t, which)); };
      s += fmt::format("{},{},256,{},{}", m, kDiagSteps[t], d(0), d(1));
      if (moe) s += fmt::format(",{},{},{},{},0.5,0.5,1,1", d(2), d(4), d(3), d(5));
      s += moe ? ",1.2,0.7,0,0.3,0.4" : ",,,,,";
      s += fmt::format(",{},{}\n", d(6), d(7));
    }
  }
  return s;
}

TEST(ReportTest, DiagnosticsCurvesPerVariant) {
  TempDir tmp("diagnostics");
  const fs::path root = tmp.path() / "runs";
  WriteSyntheticRuns(root);
  for (int v = 0; v < 2; ++v)
    for (int t = 0; t < 2; ++t) WriteText(root / kVariants[v] / kTasks[t] / "diagnostics.csv", DiagnosticsCsv(v, t));
  WriteText(root / "softmoe" / "breakout" / "interventions.csv",
            "member,env_steps,type,experts,include_router,alpha,beta\n0,5000,reset,1,0,0,1\n1,5000,reset,0,0,0,1\n"
            "2,5000,reset,0,0,0,1\n");
  const fs::path out = tmp.path() / "out";
  auto result = RunReport(SmallOptions(root, out));
  ASSERT_TRUE(result.ok()) << result.status().message();
  for (const auto& w : result->warnings) ADD_FAILURE() << "unexpected warning: " << w;
  ASSERT_EQ(result->interventions.size(), 3u);
  EXPECT_EQ(result->interventions[0].variant, "softmoe");
  EXPECT_EQ(result->interventions[0].env_steps, 5000);
  EXPECT_EQ(result->interventions[0].type, "reset");

  // Expected: the mean / min / max over the variant's 2 tasks x 3 members.
  struct Series {
    std::string name;
    std::vector<int> which;  // Columns averaged per row.
    bool moe_only;
  };
  const std::vector<Series> series = {{"penultimate_dormant_0", {0}, false},
                                      {"penultimate_dormant_0.025", {1}, false},
                                      {"expert_dormant_mean_0", {2, 3}, true},
                                      {"expert_dormant_mean_0.025", {4, 5}, true},
                                      {"feature_srank", {6}, false},
                                      {"parameter_norm", {7}, false},
                                      {"expert0_dormant_0", {2}, true},
                                      {"expert1_dormant_0", {3}, true},
                                      {"expert0_dormant_0.025", {4}, true},
                                      {"expert1_dormant_0.025", {5}, true}};
  auto text = ReadFile((out / "diagnostics_curves.csv").string());
  ASSERT_TRUE(text.ok());
  auto table = ParseCsv(*text, "diagnostics_curves.csv");
  ASSERT_TRUE(table.ok()) << table.status().message();
  EXPECT_EQ(Join(table->header), "series,variant,env_steps,runs,mean,min,max");
  std::vector<std::string> expected_rows;
  for (const auto& s : series) {
    for (int v = 0; v < 2; ++v) {
      if (s.moe_only && v == 0) continue;
      for (int t = 0; t < 3; ++t) {
        double sum = 0.0, lo = 1e300, hi = -1e300;
        for (int task = 0; task < 2; ++task) {
          for (int m = 0; m < kMembers; ++m) {
            double x = 0.0;
            for (int w : s.which) x += DiagValue(v, task, m, t, w);
            x /= static_cast<double>(s.which.size());
            sum += x;
            lo = std::min(lo, x);
            hi = std::max(hi, x);
          }
        }
        expected_rows.push_back(fmt::format("{},{},{},6,{},{},{}", s.name, kVariants[v], kDiagSteps[t], sum / 6.0,
                                            lo, hi));
      }
    }
  }
  std::vector<std::string> rows;
  for (const auto& row : table->rows) rows.push_back(Join(row.fields));
  EXPECT_EQ(rows, expected_rows);
  // The library result holds the same numbers.
  ASSERT_EQ(result->diagnostics.size(), 14u);
  EXPECT_EQ(result->diagnostics[0].series, "penultimate_dormant_0");
  EXPECT_EQ(result->diagnostics[0].variant, "flatten");
  EXPECT_EQ(result->diagnostics[0].mean[2], 5.25 / 6.0);

  auto report = ReadFile((out / "report.md").string());
  ASSERT_TRUE(report.ok());
  EXPECT_NE(report->find("## Diagnostics"), std::string::npos) << *report;
  EXPECT_NE(report->find("softmoe: reset at env steps 5000"), std::string::npos) << *report;
  auto html = ReadFile((out / "report.html").string());
  ASSERT_TRUE(html.ok());
  EXPECT_NE(html->find("<h2>Diagnostics</h2>"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(out / "plots" / "diagnostics.gp"));
  EXPECT_TRUE(fs::is_regular_file(out / "plots" / "diagnostics.dat"));
  if (!FindExecutable("gnuplot").empty()) {
    for (const char* f : {"diagnostics.png", "diagnostics.svg"}) {
      ASSERT_TRUE(fs::is_regular_file(out / f)) << f;
      EXPECT_GT(fs::file_size(out / f), 1000u) << f;
    }
    EXPECT_TRUE(result->plots_drawn);
    EXPECT_NE(report->find("![Expert-utilization diagnostics](diagnostics.png)"), std::string::npos);
  } else {
    GTEST_LOG_(INFO) << "gnuplot not on PATH: image checks skipped";
  }
}

TEST(ReportTest, GroupByConfigKeysAndNoNormalization) {
  TempDir tmp("groupby");
  WriteSyntheticRuns(tmp.path() / "runs");
  ReportOptions o = SmallOptions(tmp.path() / "runs", tmp.path() / "out");
  o.group_by = {"network.mixer.type"};
  o.normalize = "none";
  o.plots = false;
  auto result = RunReport(o);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->variants.size(), 2u);
  EXPECT_EQ(result->variants[0].name, "flatten");
  EXPECT_EQ(result->variants[1].name, "softmoe");
  EXPECT_EQ(result->variants[1].aggregates.mean.point, AggregateMean(ExpectedRaw(1, 1).view()));
  EXPECT_FALSE(result->plots_drawn);
  EXPECT_TRUE(fs::is_regular_file(tmp.path() / "out" / "plots" / "aggregates.gp"));
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "aggregates.png"));

  o.group_by = {"network.mixer.type", "no.such_key"};
  auto missing = RunReport(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no.such_key"), std::string::npos);
}

TEST(ReportTest, MissingGnuplotIsAWarningNotAnError) {
  TempDir tmp("nognuplot");
  WriteSyntheticRuns(tmp.path() / "runs");
  ReportOptions o = SmallOptions(tmp.path() / "runs", tmp.path() / "out");
  o.gnuplot = (tmp.path() / "no" / "gnuplot").string();
  auto result = RunReport(o);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_FALSE(result->plots_drawn);
  ASSERT_FALSE(result->warnings.empty());
  EXPECT_NE(result->warnings.back().find("GNUPLOT NOT FOUND"), std::string::npos) << result->warnings.back();
  EXPECT_TRUE(fs::is_regular_file(tmp.path() / "out" / "plots" / "learning_curves.gp"));
  EXPECT_TRUE(fs::is_regular_file(tmp.path() / "out" / "report.md"));
}

TEST(ReportTest, ClearErrorsAndWarnings) {
  TempDir tmp("errors");
  // No run directories.
  fs::create_directories(tmp.path() / "empty" / "sub");
  auto none = RunReport(SmallOptions(tmp.path() / "empty", tmp.path() / "out"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no run directories found"), std::string::npos)
      << none.status().message();

  // Unparsable metrics.csv: the message names the file and line.
  const fs::path bad = tmp.path() / "bad" / "v" / "breakout";
  WriteText(bad / "config.resolved.toml", Config("minatar/breakout", "flatten", 0));
  WriteText(bad / "metrics.csv", "member,env_steps,return_mean_recent,eval_return_mean\n0,abc,1.0,2.0\n");
  auto unparsable = RunReport(SmallOptions(tmp.path() / "bad", tmp.path() / "out"));
  ASSERT_FALSE(unparsable.ok());
  EXPECT_NE(unparsable.status().message().find((bad / "metrics.csv").string() + ":2"), std::string::npos)
      << unparsable.status().message();

  // A task without a MinAtar reference.
  const fs::path unknown = tmp.path() / "unknown" / "v" / "pong";
  WriteText(unknown / "config.resolved.toml", Config("minatar/pong", "flatten", 0));
  WriteText(unknown / "metrics.csv", Metrics(0, 0));
  ReportOptions o = SmallOptions(tmp.path() / "unknown", tmp.path() / "out");
  o.normalize = "minatar";
  auto no_reference = RunReport(o);
  ASSERT_FALSE(no_reference.ok());
  EXPECT_NE(no_reference.status().message().find("--normalize none"), std::string::npos)
      << no_reference.status().message();

  // Variants on different task sets, a member without evaluation, no DONE: warnings.
  WriteSyntheticRuns(tmp.path() / "mixed");
  fs::remove_all(tmp.path() / "mixed" / "softmoe" / "asterix");
  fs::remove(tmp.path() / "mixed" / "flatten" / "asterix" / "DONE");
  WriteText(tmp.path() / "mixed" / "flatten" / "asterix" / "metrics.csv",
            "member,env_steps,return_mean_recent,eval_return_mean\n0,1000,0.5,\n0,2000,0.7,\n"
            "1,1000,0.5,3.0\n1,2000,0.7,4.0\n2,1000,0.5,3.5\n2,2000,0.7,4.5\n");
  ReportOptions m = SmallOptions(tmp.path() / "mixed", tmp.path() / "out_mixed");
  m.plots = false;
  auto mixed = RunReport(m);
  ASSERT_TRUE(mixed.ok()) << mixed.status().message();
  std::string all;
  for (const auto& w : mixed->warnings) all += w + "\n";
  EXPECT_NE(all.find("variants cover different tasks"), std::string::npos) << all;
  EXPECT_NE(all.find("return_mean_recent"), std::string::npos) << all;
  EXPECT_NE(all.find("without DONE"), std::string::npos) << all;
  // The fallback member's final score is its last training return.
  const auto& runs = mixed->runs;
  auto it = std::find_if(runs.begin(), runs.end(), [](const ReportRun& r) {
    return r.task == "asterix" && r.variant == "flatten" && r.member == 0;
  });
  ASSERT_NE(it, runs.end());
  EXPECT_FALSE(it->final_from_eval);
  EXPECT_EQ(it->final_score, 0.7);
}

// The paper's final aggregates average the training returns of the last 10%
// of steps; final_fraction does that per run, and the report says which score.
TEST(ReportTest, FinalFractionAveragesThePointsOfTheLastSteps) {
  TempDir tmp("final_fraction");
  std::string metrics = "member,env_steps,return_mean_recent,eval_return_mean\n";
  for (int k = 1; k <= 10; ++k) metrics += fmt::format("0,{},{},\n", 100 * k, k);  // Score k at step 100 k.
  for (const std::string& task : kTasks) {
    const fs::path dir = tmp.path() / "runs" / "flatten" / task;
    WriteText(dir / "config.resolved.toml", Config("minatar/" + task, "flatten", 0));
    WriteText(dir / "metrics.csv", metrics);
    WriteText(dir / "DONE", "");
  }
  const std::vector<std::pair<double, double>> cases = {{0.0, 10.0}, {0.1, 10.0}, {0.35, 8.5}, {0.95, 5.5}};
  for (const auto& [fraction, expected] : cases) {
    ReportOptions o = SmallOptions(tmp.path() / "runs", tmp.path() / fmt::format("out{}", fraction));
    o.plots = false;
    o.final_fraction = fraction;
    auto result = RunReport(o);
    ASSERT_TRUE(result.ok()) << result.status().message();
    for (const ReportRun& run : result->runs) EXPECT_DOUBLE_EQ(run.final_score, expected) << fraction;
    const std::string md = *ReadFile(o.out_dir + "/report.md");
    const std::string said = fraction == 0.0 ? "its last logged training return"
                                             : fmt::format("in the last {:g}% of its env steps", 100 * fraction);
    EXPECT_NE(md.find(said), std::string::npos) << md;
  }
  ReportOptions bad = SmallOptions(tmp.path() / "runs", tmp.path() / "bad");
  bad.final_fraction = 1.0;
  auto rejected = RunReport(bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("final_fraction"), std::string::npos);
}

TEST(ReportTest, ProbabilityOfImprovementForPairsAndPerGameCurves) {
  TempDir tmp("pairs");
  WriteSyntheticRuns(tmp.path() / "runs");
  ReportOptions o = SmallOptions(tmp.path() / "runs", tmp.path() / "out");
  o.pairs = {{"softmoe", "flatten"}, {"flatten", "softmoe"}};
  o.improvement_reps = 400;
  auto result = RunReport(o);
  ASSERT_TRUE(result.ok()) << result.status().message();
  ASSERT_EQ(result->improvements.size(), 2u);
  // Per task, softmoe's members score {3, 3.75, 5} (+3 per task index) and
  // flatten's {1, 1.75, 3}: 8.5 of the 9 (softmoe, flatten) pairs favour
  // softmoe (one tie counts half), on both tasks.
  EXPECT_DOUBLE_EQ(result->improvements[0].estimate.point, 8.5 / 9.0);
  EXPECT_DOUBLE_EQ(result->improvements[1].estimate.point, 0.5 / 9.0);
  // The interval is the library's, with the same seed and replicates.
  BootstrapOptions b;
  b.reps = 400;
  b.seed = 7;
  auto expected = ProbabilityOfImprovementEstimate(*result->variants[1].normalized, *result->variants[0].normalized, b);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(result->improvements[0].estimate.lower, expected->lower);
  EXPECT_EQ(result->improvements[0].estimate.upper, expected->upper);
  const auto rows = ReadCsvRows(tmp.path() / "out" / "improvement.csv", "x");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at("softmoe")[1], "flatten");
  EXPECT_EQ(rows.at("softmoe")[5], "asterix;breakout");
  EXPECT_TRUE(result->improvements[0].all_tasks);
  const std::string md = *ReadFile((tmp.path() / "out" / "report.md").string());
  EXPECT_NE(md.find(fmt::format("| softmoe | flatten | {:.3f}", 8.5 / 9.0)), std::string::npos) << md;
  EXPECT_NE(md.find("| all 2 |"), std::string::npos) << md;

  // Per-game curves: mean, min and max of the members' evaluation returns.
  for (int v = 0; v < 2; ++v) {
    const auto& curves = result->variants[v].task_curves;
    ASSERT_EQ(curves.size(), kTasks.size());
    for (int task = 0; task < 2; ++task) {
      const TaskCurve& c = curves[task];
      EXPECT_EQ(c.task, kTasks[task]);
      ASSERT_EQ(c.steps, (std::vector<int64_t>{5000, 10000}));
      for (int t = 0; t < 2; ++t) {
        double sum = 0.0;
        for (int m = 0; m < kMembers; ++m) sum += EvalReturn(v, task, m, t);
        EXPECT_DOUBLE_EQ(c.mean[t], sum / kMembers);
        EXPECT_DOUBLE_EQ(c.min[t], EvalReturn(v, task, 0, t));
        EXPECT_DOUBLE_EQ(c.max[t], EvalReturn(v, task, kMembers - 1, t));
      }
    }
  }
  auto csv = ReadFile((tmp.path() / "out" / "task_curves.csv").string());
  ASSERT_TRUE(csv.ok());
  EXPECT_NE(csv->find(fmt::format("softmoe,breakout,10000,{},", Num(result->variants[1].task_curves[1].mean[1]))),
            std::string::npos)
      << *csv;
  if (!FindExecutable("gnuplot").empty()) {
    for (const char* f : {"task_curves.png", "improvement.svg"}) {
      EXPECT_TRUE(fs::is_regular_file(tmp.path() / "out" / f)) << f;
    }
  }

  // Pairs are checked before any work: unknown names, or a variant against itself.
  for (const auto& [pair, said] : std::vector<std::pair<std::pair<std::string, std::string>, std::string>>{
           {{"softmoe", "dense"}, "no variant \"dense\" (variants: \"flatten\", \"softmoe\")"},
           {{"softmoe", "softmoe"}, "two different variants"}}) {
    ReportOptions bad = SmallOptions(tmp.path() / "runs", tmp.path() / "bad");
    bad.pairs = {pair};
    auto rejected = RunReport(bad);
    ASSERT_FALSE(rejected.ok());
    EXPECT_EQ(rejected.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(rejected.status().message().find(said), std::string::npos) << rejected.status().message();
  }

  // Variants that cover different tasks are compared on the tasks both cover,
  // and the report says so; with no task in common the pair is an error.
  WriteSyntheticRuns(tmp.path() / "partial");
  fs::remove_all(tmp.path() / "partial" / "softmoe" / "breakout");
  ReportOptions partial = SmallOptions(tmp.path() / "partial", tmp.path() / "out_partial");
  partial.pairs = {{"softmoe", "flatten"}};
  partial.improvement_reps = 400;
  partial.plots = false;
  auto on_common = RunReport(partial);
  ASSERT_TRUE(on_common.ok()) << on_common.status().message();
  const ReportImprovement& common = on_common->improvements.at(0);
  EXPECT_EQ(common.tasks, std::vector<std::string>{"asterix"});
  EXPECT_FALSE(common.all_tasks);
  EXPECT_DOUBLE_EQ(common.estimate.point, 8.5 / 9.0);
  const ScoreMatrix flatten_asterix = on_common->variants[0].normalized->SelectTasks({"asterix"}).value();
  auto expected_common = ProbabilityOfImprovementEstimate(*on_common->variants[1].normalized, flatten_asterix, b);
  ASSERT_TRUE(expected_common.ok());
  EXPECT_EQ(common.estimate.lower, expected_common->lower);
  EXPECT_EQ(common.estimate.upper, expected_common->upper);
  std::string warned;
  for (const auto& w : on_common->warnings) warned += w + "\n";
  EXPECT_NE(warned.find("P(softmoe > flatten) is over the 1 task(s) both cover (asterix) only"), std::string::npos)
      << warned;
  EXPECT_EQ(ReadCsvRows(tmp.path() / "out_partial" / "improvement.csv", "x").at("softmoe")[5], "asterix");
  const std::string partial_md = *ReadFile((tmp.path() / "out_partial" / "report.md").string());
  EXPECT_NE(partial_md.find("| asterix |"), std::string::npos) << partial_md;
  fs::remove_all(tmp.path() / "partial" / "flatten" / "asterix");
  auto disjoint = RunReport(partial);
  ASSERT_FALSE(disjoint.ok());
  EXPECT_EQ(disjoint.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(disjoint.status().message().find("no task in common (\"softmoe\": asterix; \"flatten\": breakout)"),
            std::string::npos)
      << disjoint.status().message();
}

TEST(ReportTest, OnlyDoneLeavesUnfinishedRunsOut) {
  TempDir tmp("only_done");
  WriteSyntheticRuns(tmp.path() / "runs");
  fs::remove(tmp.path() / "runs" / "softmoe" / "breakout" / "DONE");
  ReportOptions o = SmallOptions(tmp.path() / "runs", tmp.path() / "out");
  o.plots = false;
  auto all = RunReport(o);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->runs.size(), 12u);
  // The unfinished run has just started: no metrics rows yet (unreadable, so it must be skipped unread).
  {
    std::ofstream metrics(tmp.path() / "runs" / "softmoe" / "breakout" / "metrics.csv", std::ios::trunc);
    metrics << "member,env_steps,return_mean_recent,eval_return_mean\n";
  }
  o.only_done = true;
  auto done = RunReport(o);
  ASSERT_TRUE(done.ok()) << done.status().message();
  EXPECT_EQ(done->runs.size(), 9u);
  for (const ReportRun& run : done->runs) EXPECT_FALSE(run.variant == "softmoe" && run.task == "breakout");
  EXPECT_NE(Join(done->warnings).find("1 run directory without DONE left out"), std::string::npos);
  for (const std::string& v : kVariants)
    for (const std::string& t : kTasks) fs::remove(tmp.path() / "runs" / v / t / "DONE");
  auto none = RunReport(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
}

TEST(ReportTest, ParseMetricsCsvReadsEvalAndTrainingSeries) {
  auto parsed = ParseMetricsCsv(Metrics(0, 1), "m.csv");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[2].eval.size(), 2u);
  EXPECT_EQ((*parsed)[2].eval.back().first, 10000);
  EXPECT_EQ((*parsed)[2].eval.back().second, EvalReturn(0, 1, 2, 1));
  EXPECT_EQ((*parsed)[2].train.size(), 3u);
  EXPECT_FALSE(ParseMetricsCsv("member,env_steps\n0,1\n", "m.csv").ok());  // Columns missing.
  EXPECT_FALSE(ParseMetricsCsv(
                   "member,env_steps,return_mean_recent,eval_return_mean\n", "m.csv")
                   .ok());  // No rows.
}

}  // namespace
}  // namespace tokenrl::report
