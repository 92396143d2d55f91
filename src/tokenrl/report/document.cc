#include "tokenrl/report/document.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "tokenrl/report/format.h"

namespace tokenrl::report {

void Heading(Doc& d, int level, const std::string& text) {
  d.md += fmt::format("\n{} {}\n\n", std::string(static_cast<size_t>(level), '#'), text);
  d.html += fmt::format("<h{0}>{1}</h{0}>\n", level, HtmlEscape(text));
}

void Paragraph(Doc& d, const std::string& text) {
  d.md += text + "\n\n";
  d.html += "<p>" + HtmlEscape(text) + "</p>\n";
}

void Bullets(Doc& d, const std::vector<std::string>& items) {
  if (items.empty()) return;
  d.html += "<ul>\n";
  for (const auto& i : items) {
    d.md += "- " + i + "\n";
    d.html += "<li>" + HtmlEscape(i) + "</li>\n";
  }
  d.md += "\n";
  d.html += "</ul>\n";
}

void Table(Doc& d, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
           bool first_col_code) {
  std::vector<std::string> h;
  for (const auto& c : header) h.push_back(MdCell(c));
  d.md += "| " + Join(h, " | ") + " |\n|";
  // Settings tables (code keys) are left-aligned; metric tables right-align numbers.
  for (size_t i = 0; i < header.size(); ++i) d.md += (i == 0 || first_col_code) ? "---|" : "---:|";
  d.md += "\n";
  d.html += first_col_code ? "<table class=\"kv\">\n<tr>" : "<table>\n<tr>";
  for (const auto& c : header) d.html += "<th>" + HtmlEscape(c) + "</th>";
  d.html += "</tr>\n";
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    d.html += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      const bool code = first_col_code && i == 0;
      cells.push_back(code ? fmt::format("`{}`", MdCell(row[i])) : MdCell(row[i]));
      d.html += code ? fmt::format("<td><code>{}</code></td>", HtmlEscape(row[i]))
                     : fmt::format("<td>{}</td>", HtmlEscape(row[i]));
    }
    d.md += "| " + Join(cells, " | ") + " |\n";
    d.html += "</tr>\n";
  }
  d.md += "\n";
  d.html += "</table>\n";
}

void Image(Doc& d, const std::string& name, const std::string& alt, bool drawn) {
  if (drawn) {
    d.md += fmt::format("![{}]({}.png)\n\n", alt, name);
    d.html += fmt::format("<p><img src=\"{}.svg\" alt=\"{}\"></p>\n", name, HtmlEscape(alt));
  } else {
    Paragraph(d, fmt::format("({} not drawn: gnuplot was not run; see plots/{}.gp)", alt, name));
  }
}

// What a run's final score is, in words (report.h; ReportOptions::final_fraction).
std::string FinalScoreText(const std::vector<ReportRun>& runs, double fraction) {
  size_t from_eval = 0;
  for (const auto& run : runs) from_eval += run.final_from_eval;
  const std::string source =
      from_eval == runs.size() ? "evaluation return (eval_return_mean)"
      : from_eval == 0         ? "training return (return_mean_recent: the mean of its last 100 training episodes, "
                                 "exploration on)"
                               : fmt::format("evaluation return (eval_return_mean) for {} runs, training return "
                                             "(return_mean_recent) for the {} without evaluations",
                                             from_eval, runs.size() - from_eval);
  if (fraction <= 0.0) return "its last logged " + source;
  return fmt::format("the mean of its {} over the logged points in the last {:g}% of its env steps", source,
                     100.0 * fraction);
}

Status WriteDocuments(const ReportOptions& options, const Analysis& analysis, const AggregateTable& table,
                      const std::vector<std::string>& slugs, const std::set<std::string>& drawn,
                      ReportResult& result) {
  const std::string& out = options.out_dir;
  auto& files = result.files;
  const auto& warnings = result.warnings;
  const auto& dirs = analysis.dirs;
  const auto& all_tasks = analysis.all_tasks;
  const std::string& normalize = analysis.normalize;
  const std::string ci = CiLabel(options);
  const std::string score_label = ScoreLabel(normalize);
  const auto& table_header = table.header;
  const auto& table_rows = table.rows;
  const auto& method_note = table.method_note;
  Doc d;
  d.html +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>tokenrl report</title>\n"
      "<style>\nbody{font-family:sans-serif;max-width:1450px;margin:2em auto;padding:0 1em;color:#222}\n"
      "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\n"
      "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}\n"
      ".kv td{text-align:left}code{background:#f5f5f5;padding:1px 3px}\n</style>\n</head>\n<body>\n";
  d.md += "# tokenrl report\n";
  d.html += "<h1>tokenrl report</h1>\n";
  {
    int members = 0;
    for (const auto& v : result.variants) members += v.normalized->num_runs() * v.normalized->num_tasks();
    Bullets(d, {
                   fmt::format("Sources: {}", Join(options.roots, ", ")),
                   fmt::format("{} run directories, {} runs (members) in the statistics, {} variant(s){}",
                               dirs.size(), members, result.variants.size(),
                               options.group_by.empty() ? " (grouped by directory)"
                                                        : " (grouped by " + Join(options.group_by, ", ") + ")"),
                   fmt::format("Tasks: {}",
                               Join(std::vector<std::string>(all_tasks.begin(), all_tasks.end()), ", ")),
                   fmt::format("Normalization: {}{}", normalize,
                               result.normalization_source.empty() ? "" : " (" + result.normalization_source + ")"),
                   fmt::format("Final score of a run: {}; confidence intervals: {} stratified bootstrap, seed {} ({} "
                               "replicates for the table, {} for curves, {} for profiles)",
                               FinalScoreText(result.runs, options.final_fraction), ci, options.seed, options.reps,
                               options.curve_reps, options.profile_reps),
               });
  }
  Heading(d, 2, "Aggregate metrics");
  Table(d, table_header, table_rows);
  Paragraph(d, method_note);
  Image(d, "aggregates", "Aggregate metrics with confidence intervals", drawn.count("aggregates") > 0);
  Heading(d, 2, "Learning curves");
  Paragraph(d, fmt::format("IQM of {} at each evaluation point, with pointwise {} bands (run indices redrawn per "
                           "task and point, as rliable).",
                           score_label, ci));
  Image(d, "learning_curves", "IQM learning curves", drawn.count("learning_curves") > 0);
  if (drawn.count("task_curves") > 0 || std::any_of(result.variants.begin(), result.variants.end(),
                                                     [](const ReportVariant& v) { return !v.task_curves.empty(); })) {
    Heading(d, 2, "Per-game learning curves");
    Paragraph(d, "Raw return per game: the mean over a variant's runs at each logged env step, with the min-max "
                 "range over those runs (task_curves.csv).");
    Image(d, "task_curves", "Per-game learning curves", drawn.count("task_curves") > 0);
  }
  Heading(d, 2, "Performance profiles");
  Paragraph(d, fmt::format("Fraction of all run x task final scores above each threshold τ, with pointwise {} "
                           "bands. A curve above another is better everywhere on the grid.",
                           ci));
  Image(d, "performance_profile", "Performance profiles", drawn.count("performance_profile") > 0);
  if (!result.improvements.empty()) {
    Heading(d, 2, "Probability of improvement");
    Paragraph(d, fmt::format("P(X > Y): the probability that a run of X scores higher than a run of Y on a task "
                             "drawn at random (Mann-Whitney, ties count half; mean over tasks) on {}, with {}s "
                             "from {} replicates of the independent two-sample stratified bootstrap (rliable). 0.5 "
                             "is no difference; an interval that excludes 0.5 says which is better. Where X and Y "
                             "cover different tasks, P(X > Y) is over the tasks both cover (the last column).",
                             score_label, ci, analysis.improvement_options.reps));
    std::vector<std::vector<std::string>> rows;
    for (const ReportImprovement& p : result.improvements) {
      rows.push_back({p.x, p.y,
                      fmt::format("{:.3f} [{:.3f}, {:.3f}]", p.estimate.point, p.estimate.lower, p.estimate.upper),
                      p.all_tasks ? fmt::format("all {}", p.tasks.size()) : Join(p.tasks, ", ")});
    }
    Table(d, {"X", "Y", "P(X > Y)", "tasks"}, rows);
    Image(d, "improvement", "Probability of improvement", drawn.count("improvement") > 0);
  }
  if (!result.diagnostics.empty()) {
    Heading(d, 2, "Diagnostics");
    Paragraph(d,
              "Expert-utilization diagnostics from the runs' diagnostics.csv (tokenrl train [diagnostics]): the mean "
              "over a variant's runs (members) at each logged env step, with the min-max range over those runs. "
              "Dormant fraction: share of units whose mean absolute activation, divided by the layer mean, is at "
              "most τ (Sokar et al. 2023); the expert series average the experts' fractions. All points: "
              "diagnostics_curves.csv. Last logged point:");
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : result.diagnostics) {
      const size_t t = c.steps.size() - 1;
      rows.push_back({c.label, c.variant, std::to_string(c.steps[t]), std::to_string(c.runs[t]),
                      fmt::format("{:.4g} [{:.4g}, {:.4g}]", c.mean[t], c.min[t], c.max[t])});
    }
    Table(d, {"series", "variant", "env steps", "runs", "mean [min, max]"}, rows);
    if (!result.interventions.empty()) {
      std::map<std::string, std::map<std::string, std::set<int64_t>>> fired;  // variant -> type -> steps
      for (const auto& iv : result.interventions) fired[iv.variant][iv.type].insert(iv.env_steps);
      std::vector<std::string> items;
      for (const auto& [variant, types] : fired) {
        for (const auto& [type, steps] : types) {
          std::vector<std::string> list;
          for (int64_t x : steps) list.push_back(std::to_string(x));
          items.push_back(fmt::format("{}: {} at env steps {}", variant, type, Join(list, ", ")));
        }
      }
      Paragraph(d, "Interventions (interventions.csv; dashed vertical lines in the figure):");
      Bullets(d, items);
    }
    Image(d, "diagnostics", "Expert-utilization diagnostics", drawn.count("diagnostics") > 0);
  }
  Heading(d, 2, "Variants");
  if (!result.varying_keys.empty()) {
    Paragraph(d, "Settings that differ between runs of a variant (seeds, tasks): " + Join(result.varying_keys, ", "));
  }
  for (size_t i = 0; i < result.variants.size(); ++i) {
    const auto& v = result.variants[i];
    Heading(d, 3, v.name);
    std::vector<std::string> items;
    items.push_back(fmt::format("{} run(s) per task x {} task(s): {}{}", v.normalized->num_runs(), v.tasks.size(),
                                Join(v.tasks, ", "),
                                v.dropped_runs > 0 ? fmt::format(" ({} run(s) left out)", v.dropped_runs) : ""));
    std::vector<std::string> dirs_list(v.run_dirs.begin(),
                                       v.run_dirs.begin() + std::min<size_t>(v.run_dirs.size(), 12));
    items.push_back(fmt::format("run directories ({}): {}{}", v.run_dirs.size(), Join(dirs_list, ", "),
                                v.run_dirs.size() > 12 ? ", ..." : ""));
    items.push_back(fmt::format("scores: scores/{}.csv (re-read with `tokenrl stats --scores scores/{}.csv "
                                "--normalize {} --reps {} --seed {}`)",
                                slugs[i], slugs[i], normalize, options.reps, options.seed));
    Bullets(d, items);
    if (v.distinct_config.empty()) {
      Paragraph(d, result.variants.size() > 1 ? "Configuration: no resolved setting tells it apart from the others."
                                              : "Configuration: see the shared settings below.");
    } else {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [k, val] : v.distinct_config) rows.push_back({k, val});
      Table(d, {"setting", "value"}, rows, true);
    }
  }
  Heading(d, 2, "Settings shared by every run");
  {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, val] : result.common_config) rows.push_back({k, val});
    d.html += "<details><summary>" + std::to_string(rows.size()) + " settings</summary>\n";
    d.md += "<details><summary>" + std::to_string(rows.size()) + " settings</summary>\n\n";
    Table(d, {"setting", "value"}, rows, true);
    d.md += "</details>\n";
    d.html += "</details>\n";
  }
  if (!warnings.empty()) {
    Heading(d, 2, "Warnings");
    Bullets(d, warnings);
  }
  Heading(d, 2, "Files");
  {
    std::vector<std::string> listed = files;
    listed.push_back("report.md");
    listed.push_back("report.html");
    Bullets(d, {Join(listed, ", ")});
  }
  d.html += "</body>\n</html>\n";
  TOKENRL_RETURN_IF_ERROR(WriteOut(out, "report.md", d.md, files));
  TOKENRL_RETURN_IF_ERROR(WriteOut(out, "report.html", d.html, files));
  return Status::Ok();
}

}  // namespace tokenrl::report
