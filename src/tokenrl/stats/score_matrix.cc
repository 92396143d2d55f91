#include "tokenrl/stats/score_matrix.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/stats/csv.h"

namespace tokenrl::stats {
namespace {

bool IsInteger(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

StatusOr<ScoreMatrix> ScoreMatrix::Create(int num_runs, int num_tasks, std::vector<double> values,
                                          std::vector<std::string> run_labels,
                                          std::vector<std::string> task_names) {
  if (num_runs < 1 || num_tasks < 1) {
    return Status::InvalidArgument(fmt::format(
        "a score matrix needs at least one run and one task (got {} runs x {} tasks)", num_runs, num_tasks));
  }
  const size_t expected = static_cast<size_t>(num_runs) * static_cast<size_t>(num_tasks);
  if (values.size() != expected) {
    return Status::InvalidArgument(fmt::format("a {} runs x {} tasks matrix needs {} values, got {}", num_runs,
                                               num_tasks, expected, values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return Status::InvalidArgument(fmt::format("score for run {} task {} is {}, not a finite number",
                                                 i / static_cast<size_t>(num_tasks),
                                                 i % static_cast<size_t>(num_tasks), values[i]));
    }
  }
  if (run_labels.empty()) {
    for (int r = 0; r < num_runs; ++r) run_labels.push_back(std::to_string(r));
  } else if (run_labels.size() != static_cast<size_t>(num_runs)) {
    return Status::InvalidArgument(
        fmt::format("{} run labels given for {} runs", run_labels.size(), num_runs));
  }
  if (task_names.empty()) {
    for (int t = 0; t < num_tasks; ++t) task_names.push_back(fmt::format("task_{}", t));
  } else if (task_names.size() != static_cast<size_t>(num_tasks)) {
    return Status::InvalidArgument(
        fmt::format("{} task names given for {} tasks", task_names.size(), num_tasks));
  }
  std::set<std::string> seen;
  for (const auto& name : task_names) {
    if (!seen.insert(name).second) {
      return Status::InvalidArgument(fmt::format("task name \"{}\" appears twice", name));
    }
  }
  ScoreMatrix m;
  m.num_runs_ = num_runs;
  m.num_tasks_ = num_tasks;
  m.values_ = std::move(values);
  m.run_labels_ = std::move(run_labels);
  m.task_names_ = std::move(task_names);
  return m;
}

StatusOr<ScoreMatrix> ScoreMatrix::FromRows(const std::vector<std::vector<double>>& rows,
                                            std::vector<std::string> task_names) {
  if (rows.empty() || rows[0].empty()) {
    return Status::InvalidArgument("a score matrix needs at least one run and one task");
  }
  std::vector<double> values;
  values.reserve(rows.size() * rows[0].size());
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].size() != rows[0].size()) {
      return Status::InvalidArgument(fmt::format("ragged score rows: run 0 has {} tasks but run {} has {}",
                                                 rows[0].size(), r, rows[r].size()));
    }
    values.insert(values.end(), rows[r].begin(), rows[r].end());
  }
  return Create(static_cast<int>(rows.size()), static_cast<int>(rows[0].size()), std::move(values), {},
                std::move(task_names));
}

StatusOr<ScoreMatrix> ScoreMatrix::WithValues(std::vector<double> values) const {
  return Create(num_runs_, num_tasks_, std::move(values), run_labels_, task_names_);
}

StatusOr<ScoreMatrix> ScoreMatrix::SelectTasks(const std::vector<std::string>& task_names) const {
  if (task_names.empty()) return Status::InvalidArgument("select at least one task");
  std::vector<int> columns;
  for (const std::string& name : task_names) {
    const auto it = std::find(task_names_.begin(), task_names_.end(), name);
    if (it == task_names_.end()) {
      std::string known;
      for (const auto& t : task_names_) known += (known.empty() ? "" : ", ") + t;
      return Status::InvalidArgument(fmt::format("no task \"{}\" (tasks: {})", name, known));
    }
    columns.push_back(static_cast<int>(it - task_names_.begin()));
  }
  std::vector<double> values;
  values.reserve(static_cast<size_t>(num_runs_) * columns.size());
  for (int r = 0; r < num_runs_; ++r)
    for (int c : columns) values.push_back((*this)(r, c));
  // Create rejects a name given twice.
  return Create(num_runs_, static_cast<int>(columns.size()), std::move(values), run_labels_, task_names);
}

StatusOr<ScoreMatrix> ParseScoresCsv(std::string_view text, std::string_view source) {
  TOKENRL_ASSIGN_OR_RETURN(CsvTable table, ParseCsv(text, source));
  const StatusOr<int> run_column = table.Column("run");
  const StatusOr<int> task_column = table.Column("task");
  const StatusOr<int> score_column = table.Column("score");
  if (!run_column.ok() || !task_column.ok() || !score_column.ok()) {
    std::string header;
    for (const auto& h : table.header) header += (header.empty() ? "" : ",") + h;
    return Status::InvalidArgument(fmt::format(
        "{}: the first line must be the header `run,task,score` (long format: one row per run and task), found "
        "\"{}\"",
        source, header));
  }
  const int run_col = *run_column;
  const int task_col = *task_column;
  const int score_col = *score_column;

  struct Cell {
    double score;
    int line;
  };
  std::vector<std::string> run_order;
  std::unordered_map<std::string, size_t> run_index;
  std::set<std::string> task_set;
  std::map<std::pair<std::string, std::string>, Cell> cells;
  for (const CsvRow& row : table.rows) {
    const std::string& run = row.fields[static_cast<size_t>(run_col)];
    const std::string& task = row.fields[static_cast<size_t>(task_col)];
    const std::string& score_text = row.fields[static_cast<size_t>(score_col)];
    const std::string where = fmt::format("{}:{}", source, row.line);
    if (run.empty()) return Status::InvalidArgument(where + ": empty run label; give every row a run label");
    if (task.empty()) return Status::InvalidArgument(where + ": empty task name; give every row a task name");
    if (score_text.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{}: missing score for run \"{}\", task \"{}\"; fill it in or remove the run from the file", where, run,
          task));
    }
    TOKENRL_ASSIGN_OR_RETURN(const double score, ParseDouble(score_text, where));
    if (!std::isfinite(score)) {
      return Status::InvalidArgument(fmt::format(
          "{}: score \"{}\" for run \"{}\", task \"{}\" is not a finite number; fix the value or re-run that "
          "run (dropping it would bias the aggregate)",
          where, score_text, run, task));
    }
    auto [it, inserted] = cells.try_emplace({run, task}, Cell{score, row.line});
    if (!inserted) {
      return Status::InvalidArgument(fmt::format(
          "{}: duplicate score for run \"{}\", task \"{}\" (first given on line {}); give exactly one score per "
          "(run, task), e.g. average repeated evaluation episodes before writing the file",
          where, run, task, it->second.line));
    }
    if (run_index.try_emplace(run, run_order.size()).second) run_order.push_back(run);
    task_set.insert(task);
  }
  if (cells.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: no score rows; expected a header `run,task,score` followed by one row per run and task",
                    source));
  }
  const std::vector<std::string> tasks(task_set.begin(), task_set.end());
  std::vector<double> values;
  values.reserve(run_order.size() * tasks.size());
  std::vector<std::string> missing;
  size_t num_missing = 0;
  for (const auto& run : run_order) {
    for (const auto& task : tasks) {
      auto it = cells.find({run, task});
      if (it == cells.end()) {
        ++num_missing;
        if (missing.size() < 5) missing.push_back(fmt::format("run \"{}\" has no score for task \"{}\"", run, task));
        values.push_back(0.0);
      } else {
        values.push_back(it->second.score);
      }
    }
  }
  if (num_missing > 0) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : "; ") + m;
    if (num_missing > missing.size()) list += fmt::format("; and {} more", num_missing - missing.size());
    return Status::InvalidArgument(fmt::format(
        "{}: {} missing (run, task) cell(s) in a {} runs x {} tasks table: {}. Every run needs exactly one score "
        "for every task: add the missing rows, or remove the incomplete runs (or tasks) from the file",
        source, num_missing, run_order.size(), tasks.size(), list));
  }
  return ScoreMatrix::Create(static_cast<int>(run_order.size()), static_cast<int>(tasks.size()),
                             std::move(values), run_order, tasks);
}

StatusOr<ScoreMatrix> LoadScoresCsv(const std::string& path) {
  TOKENRL_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseScoresCsv(text, path);
}

std::vector<std::string> ShapeWarnings(const ScoreMatrix& scores, bool task_bootstrap) {
  std::vector<std::string> warnings;
  const int runs = scores.num_runs();
  const int tasks = scores.num_tasks();
  if (runs == 1) {
    warnings.push_back(fmt::format(
        "only 1 run per task: resampling runs within tasks cannot vary anything, so the confidence intervals "
        "have zero width{}. Add runs (seeds); rliable recommends at least 3, preferably 5 or more",
        task_bootstrap ? " apart from task resampling" : ""));
  }
  if (tasks == 1 && runs > 1 && task_bootstrap) {
    warnings.push_back(
        "task bootstrap requested with a single task: resampling one task always picks it, so the intervals "
        "only reflect run-to-run variation. Add tasks, or drop task bootstrap");
  } else if (tasks == 1 && runs >= 10) {
    warnings.push_back(fmt::format(
        "a single task with {} runs: if the file lists tasks as runs (a transposed table), swap the `run` and "
        "`task` columns; with one task the aggregates reduce to statistics of that task's runs",
        runs));
  }
  const bool tasks_numeric = std::all_of(scores.task_names().begin(), scores.task_names().end(),
                                         [](const std::string& s) { return IsInteger(s); });
  const bool runs_numeric = std::all_of(scores.run_labels().begin(), scores.run_labels().end(),
                                        [](const std::string& s) { return IsInteger(s); });
  if (tasks > 1 && tasks_numeric && !runs_numeric) {
    warnings.push_back(
        "every task name is an integer while run labels are not: the `run` and `task` columns look swapped "
        "(rows must be runs/seeds, columns tasks/games)");
  }
  return warnings;
}

}  // namespace tokenrl::stats
