#pragma once
// ScoreMatrix: the runs x tasks table of (usually normalized) final scores that
// every statistic in tokenrl::stats works on, and its loader from long-format
// CSV (`run,task,score`).
//
// Layout (the rliable convention, ../shared/docs/rliable_spec.md section 0):
// ROWS ARE RUNS (seeds), COLUMNS ARE TASKS (games). Values are stored
// row-major, so element (run r, task t) is values()[r * num_tasks() + t].
// A ScoreMatrix is always rectangular, non-empty and finite: the factories
// reject anything else with an InvalidArgument status, so the statistics never
// have to re-check their input.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"

namespace tokenrl::stats {

// A non-owning, row-major runs x tasks view. Used for bootstrap replicates,
// which live in reused buffers rather than in ScoreMatrix objects.
struct ScoreView {
  const double* data = nullptr;  // num_runs * num_tasks values, row-major.
  int num_runs = 0;
  int num_tasks = 0;

  size_t size() const { return static_cast<size_t>(num_runs) * static_cast<size_t>(num_tasks); }
  // REQUIRES: 0 <= run < num_runs, 0 <= task < num_tasks.
  double at(int run, int task) const {
    return data[static_cast<size_t>(run) * static_cast<size_t>(num_tasks) + static_cast<size_t>(task)];
  }
  std::span<const double> values() const { return {data, size()}; }
};

class ScoreMatrix {
 public:
  // Builds a matrix from row-major `values` (num_runs * num_tasks of them).
  // `run_labels` / `task_names` are optional; when empty they default to
  // "0", "1", ... and "task_0", "task_1", ...; otherwise their sizes must be
  // num_runs / num_tasks and task names must be distinct.
  // Errors (InvalidArgument): num_runs < 1, num_tasks < 1, a size mismatch, a
  // NaN or infinite value, duplicate task names.
  static StatusOr<ScoreMatrix> Create(int num_runs, int num_tasks, std::vector<double> values,
                                      std::vector<std::string> run_labels = {},
                                      std::vector<std::string> task_names = {});

  // Builds a matrix from rows[run][task]. Errors as Create, plus ragged rows.
  static StatusOr<ScoreMatrix> FromRows(const std::vector<std::vector<double>>& rows,
                                        std::vector<std::string> task_names = {});

  int num_runs() const { return num_runs_; }
  int num_tasks() const { return num_tasks_; }
  // num_runs() * num_tasks().
  size_t size() const { return values_.size(); }

  // REQUIRES: 0 <= run < num_runs(), 0 <= task < num_tasks().
  double operator()(int run, int task) const { return view().at(run, task); }
  // All values, row-major (run outer, task inner).
  std::span<const double> values() const { return values_; }
  ScoreView view() const { return ScoreView{values_.data(), num_runs_, num_tasks_}; }

  const std::vector<std::string>& run_labels() const { return run_labels_; }
  const std::vector<std::string>& task_names() const { return task_names_; }

  // Same labels, new values (e.g. after normalization). REQUIRES (checked,
  // InvalidArgument otherwise): values.size() == size() and all finite.
  StatusOr<ScoreMatrix> WithValues(std::vector<double> values) const;

  // The columns named `task_names`, in that order, with the same run labels
  // (e.g. to compare two variants on the tasks both cover). Errors
  // (InvalidArgument): an empty list, a name that is not one of task_names(),
  // a name given twice.
  StatusOr<ScoreMatrix> SelectTasks(const std::vector<std::string>& task_names) const;

 private:
  ScoreMatrix() = default;

  int num_runs_ = 0;
  int num_tasks_ = 0;
  std::vector<double> values_;
  std::vector<std::string> run_labels_;
  std::vector<std::string> task_names_;
};

// Parses a long-format score table: a header line naming the columns `run`,
// `task` and `score` (any order, case-insensitive; extra columns are ignored),
// then one row per (run, task) pair. `run` is any label (a seed, a directory
// name); `task` is a game/environment name. Blank lines and lines starting
// with '#' are skipped; fields may be double-quoted; CRLF line ends are fine.
//
// The result has tasks sorted by name (the order rliable's colab stacks games)
// and runs in order of first appearance.
//
// Errors (InvalidArgument; each message names `source` and the line, and says
// how to fix it): no header or a header without the three columns; a row with
// too few fields; an empty run or task label; a score that is not a number, or
// is NaN or infinite; the same (run, task) twice; a missing (run, task) cell
// (every run needs a score for every task); no data rows.
StatusOr<ScoreMatrix> ParseScoresCsv(std::string_view text, std::string_view source = "<scores>");

// Reads `path` and parses it with ParseScoresCsv. Errors: IoError / NotFound
// when the file cannot be read, otherwise as ParseScoresCsv.
StatusOr<ScoreMatrix> LoadScoresCsv(const std::string& path);

// Warnings (human-readable sentences, each saying what to do) about shapes for
// which rliable-style CIs are misleading; empty when nothing looks wrong. The
// library never prints them; callers decide. Checks:
//  - a single run: run resampling cannot vary anything, CIs have zero width;
//  - a single task with several runs while task_bootstrap is requested: task
//    resampling is a no-op with one task;
//  - a single task with many runs (>= 10): often a transposed matrix;
//  - task names that are all integers while run labels are not: likely the
//    run and task columns are swapped.
std::vector<std::string> ShapeWarnings(const ScoreMatrix& scores, bool task_bootstrap);

}  // namespace tokenrl::stats
