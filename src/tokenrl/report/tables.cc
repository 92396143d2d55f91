#include "tokenrl/report/tables.h"

#include <set>

#include <fmt/format.h>

#include "tokenrl/report/document.h"
#include "tokenrl/report/format.h"
#include "tokenrl/stats/aggregates.h"

namespace tokenrl::report {

using stats::Aggregate;

AggregateTable MakeAggregateTable(const ReportResult& result, const ReportOptions& options, const Analysis& analysis) {
  AggregateTable t;
  const std::string ci = CiLabel(options);
  t.header = {"variant", "runs", "tasks"};
  for (Aggregate a : kTableOrder) {
    t.header.push_back(std::string(stats::AggregateLabel(a)) + (a == Aggregate::kOptimalityGap ? " ↓" : "") + " [" +
                       ci + "]");
  }
  for (const auto& v : result.variants) {
    std::vector<std::string> row = {v.name, std::to_string(v.normalized->num_runs()),
                                    std::to_string(v.normalized->num_tasks())};
    for (Aggregate a : kTableOrder) row.push_back(CiText(v.aggregates.Get(a)));
    t.rows.push_back(std::move(row));
  }
  t.method_note = fmt::format(
      "Final scores, {} normalization; {} stratified bootstrap ({} replicates, seed {}, runs resampled within "
      "tasks). runs = runs "
      "per task. IQM: mean of the middle 50% of all run x task scores; median and mean: of per-task means; "
      "optimality gap: mean shortfall below {:g} (lower is better).",
      analysis.normalize, ci, options.reps, options.seed, options.gamma);
  return t;
}

Status WriteAggregateTables(const AggregateTable& table, const ReportOptions& options, ReportResult& result) {
  std::string csv = "variant,runs,tasks";
  for (Aggregate a : kTableOrder) {
    const std::string k(stats::AggregateKey(a));
    csv += fmt::format(",{0},{0}_lower,{0}_upper", k);
  }
  csv += "\n";
  for (const auto& v : result.variants) {
    csv += fmt::format("{},{},{}", CsvField(v.name), v.normalized->num_runs(), v.normalized->num_tasks());
    for (Aggregate a : kTableOrder) {
      const auto& e = v.aggregates.Get(a);
      csv += fmt::format(",{},{},{}", Num(e.point), Num(e.lower), Num(e.upper));
    }
    csv += "\n";
  }
  TOKENRL_RETURN_IF_ERROR(WriteOut(options.out_dir, "table.csv", csv, result.files));
  Doc t;
  Table(t, table.header, table.rows);
  return WriteOut(options.out_dir, "table.md", t.md + table.method_note + "\n", result.files);
}

StatusOr<std::vector<std::string>> WriteScores(const ReportOptions& options, ReportResult& result) {
  std::vector<std::string> slugs;
  std::set<std::string> used;
  for (const auto& v : result.variants) {
    std::string s = Slug(v.name);
    for (int i = 2; used.count(s); ++i) s = Slug(v.name) + "_" + std::to_string(i);
    used.insert(s);
    slugs.push_back(s);
  }
  std::string all = "variant,run,task,score,normalized_score,score_source,run_dir,member\n";
  for (size_t vi = 0; vi < result.variants.size(); ++vi) {
    const auto& v = result.variants[vi];
    std::string one = "run,task,score\n";
    for (int k = 0; k < v.raw->num_runs(); ++k) {
      for (int m = 0; m < v.raw->num_tasks(); ++m) {
        const ReportRun& run = result.runs[v.runs[m][k]];
        one += fmt::format("{},{},{}\n", k, CsvField(v.tasks[m]), Num((*v.raw)(k, m)));
        all += fmt::format("{},{},{},{},{},{},{},{}\n", CsvField(v.name), k, CsvField(v.tasks[m]),
                           Num((*v.raw)(k, m)), Num((*v.normalized)(k, m)),
                           run.final_from_eval ? "eval_return_mean" : "return_mean_recent", CsvField(run.run_dir),
                           run.member);
      }
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(options.out_dir, "scores/" + slugs[vi] + ".csv", one, result.files));
  }
  TOKENRL_RETURN_IF_ERROR(WriteOut(options.out_dir, "scores.csv", all, result.files));
  return slugs;
}

Status WriteCurvesCsv(const ReportOptions& options, ReportResult& result) {
  std::string csv = "variant,env_steps,iqm,iqm_lower,iqm_upper\n";
  for (const auto& v : result.variants) {
    for (size_t t = 0; t < v.curve_steps.size(); ++t) {
      const auto& e = v.curve_iqm[t];
      csv += fmt::format("{},{},{},{},{}\n", CsvField(v.name), v.curve_steps[t], Num(e.point), Num(e.lower),
                         Num(e.upper));
    }
  }
  return WriteOut(options.out_dir, "curves.csv", csv, result.files);
}

Status WriteProfilesCsv(const ReportOptions& options, ReportResult& result) {
  std::string csv = "variant,tau,fraction,fraction_lower,fraction_upper\n";
  for (const auto& v : result.variants) {
    for (size_t t = 0; t < result.taus.size(); ++t) {
      const auto& e = v.profile[t];
      csv += fmt::format("{},{},{},{},{}\n", CsvField(v.name), Num(result.taus[t]), Num(e.point), Num(e.lower),
                         Num(e.upper));
    }
  }
  return WriteOut(options.out_dir, "profiles.csv", csv, result.files);
}

Status WriteTaskCurvesCsv(const ReportOptions& options, ReportResult& result) {
  std::string csv = "variant,task,env_steps,mean,min,max\n";
  for (const auto& v : result.variants) {
    for (const TaskCurve& c : v.task_curves) {
      for (size_t t = 0; t < c.steps.size(); ++t) {
        csv += fmt::format("{},{},{},{},{},{}\n", CsvField(v.name), CsvField(c.task), c.steps[t], Num(c.mean[t]),
                           Num(c.min[t]), Num(c.max[t]));
      }
    }
  }
  return WriteOut(options.out_dir, "task_curves.csv", csv, result.files);
}

Status WriteImprovementCsv(const ReportOptions& options, ReportResult& result) {
  if (result.improvements.empty()) return Status::Ok();
  std::string csv = "x,y,probability,lower,upper,tasks\n";
  for (const ReportImprovement& p : result.improvements) {
    csv += fmt::format("{},{},{},{},{},{}\n", CsvField(p.x), CsvField(p.y), Num(p.estimate.point),
                       Num(p.estimate.lower), Num(p.estimate.upper), CsvField(Join(p.tasks, ";")));
  }
  return WriteOut(options.out_dir, "improvement.csv", csv, result.files);
}

Status WriteDiagnosticsCsv(const ReportOptions& options, ReportResult& result) {
  if (result.diagnostics.empty()) return Status::Ok();
  std::string csv = "series,variant,env_steps,runs,mean,min,max\n";
  for (const auto& c : result.diagnostics) {
    for (size_t t = 0; t < c.steps.size(); ++t) {
      csv += fmt::format("{},{},{},{},{},{},{}\n", c.series, CsvField(c.variant), c.steps[t], c.runs[t],
                         Num(c.mean[t]), Num(c.min[t]), Num(c.max[t]));
    }
  }
  return WriteOut(options.out_dir, "diagnostics_curves.csv", csv, result.files);
}

}  // namespace tokenrl::report
