#include "tokenrl/stats/normalization.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/stats/csv.h"

namespace tokenrl::stats {
namespace {

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) !=
        std::tolower(static_cast<unsigned char>(suffix[i])))
      return false;
  }
  return true;
}

std::string FormatTaskList(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += fmt::format(", ... ({} in all)", names.size());
  return out;
}

}  // namespace

std::string_view NormalizationKindName(NormalizationKind kind) {
  switch (kind) {
    case NormalizationKind::kNone: return "none";
    case NormalizationKind::kAtari: return "atari";
    case NormalizationKind::kMinAtar: return "minatar";
    case NormalizationKind::kMinMax: return "minmax";
  }
  return "?";
}

StatusOr<NormalizationKind> ParseNormalizationKind(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "none") return NormalizationKind::kNone;
  if (lower == "atari" || lower == "human") return NormalizationKind::kAtari;
  if (lower == "minatar") return NormalizationKind::kMinAtar;
  if (lower == "minmax") return NormalizationKind::kMinMax;
  return Status::InvalidArgument(
      fmt::format("unknown normalization \"{}\"; use one of: none, atari, minatar, minmax", name));
}

std::string CanonicalTaskKey(std::string_view task) {
  const size_t sep = task.find_last_of("/:");
  if (sep != std::string_view::npos) task.remove_prefix(sep + 1);
  // "-v<digits>" version suffix.
  size_t end = task.size();
  while (end > 0 && std::isdigit(static_cast<unsigned char>(task[end - 1]))) --end;
  if (end < task.size() && end >= 2 && (task[end - 1] == 'v' || task[end - 1] == 'V') && task[end - 2] == '-') {
    task.remove_suffix(task.size() - (end - 2));
  }
  for (std::string_view suffix : {"NoFrameskip", "Deterministic"}) {
    if (task.size() > suffix.size() && EndsWithIgnoreCase(task, suffix)) task.remove_suffix(suffix.size());
  }
  std::string key;
  for (const char c : task) {
    if (std::isalnum(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return key;
}

StatusOr<std::string> FindReferenceScoresFile(std::string_view file_name, std::string_view explicit_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!explicit_path.empty()) {
    if (fs::is_regular_file(fs::path(explicit_path), ec)) return std::string(explicit_path);
    return Status::NotFound(fmt::format("reference score file \"{}\" does not exist", explicit_path));
  }
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("TOKENRL_DATA_DIR"); dir != nullptr && *dir != '\0') {
    candidates.push_back(fmt::format("{}/reference_scores/{}", dir, file_name));
  }
#ifdef TOKENRL_SOURCE_DIR
  candidates.push_back(fmt::format("{}/data/reference_scores/{}", TOKENRL_SOURCE_DIR, file_name));
#endif
#ifdef TOKENRL_DATA_INSTALL_DIR
  candidates.push_back(fmt::format("{}/reference_scores/{}", TOKENRL_DATA_INSTALL_DIR, file_name));
#endif
  for (const auto& c : candidates) {
    if (fs::is_regular_file(fs::path(c), ec)) return c;
  }
  std::string tried;
  for (const auto& c : candidates) tried += (tried.empty() ? "" : ", ") + c;
  return Status::NotFound(fmt::format(
      "cannot find the reference table {} (tried: {}); set TOKENRL_DATA_DIR to the directory that contains "
      "reference_scores/, or pass the CSV path explicitly",
      file_name, tried));
}

Normalizer Normalizer::None() { return Normalizer(); }

StatusOr<Normalizer> Normalizer::MinMax(double min, double max) {
  if (!std::isfinite(min) || !std::isfinite(max) || min == max) {
    return Status::InvalidArgument(fmt::format(
        "min/max normalization needs two different finite values (got min {}, max {})", min, max));
  }
  Normalizer n;
  n.kind_ = NormalizationKind::kMinMax;
  n.min_ = min;
  n.max_ = max;
  return n;
}

StatusOr<Normalizer> Normalizer::FromCsv(const std::string& path, NormalizationKind kind) {
  TOKENRL_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  TOKENRL_ASSIGN_OR_RETURN(const CsvTable table, ParseCsv(text, path));
  StatusOr<int> task_col = table.Column("game");
  if (!task_col.ok()) task_col = table.Column("task");
  if (!task_col.ok()) return Status::InvalidArgument(path + ": a reference table needs a `game` or `task` column");
  TOKENRL_ASSIGN_OR_RETURN(const int low_col, table.Column("random"));
  StatusOr<int> high_col = table.Column("human");
  if (!high_col.ok()) high_col = table.Column("reference");
  if (!high_col.ok()) {
    return Status::InvalidArgument(path + ": a reference table needs a `human` or `reference` column");
  }
  Normalizer n;
  n.kind_ = kind;
  n.source_ = path;
  for (const CsvRow& row : table.rows) {
    const std::string where = fmt::format("{}:{}", path, row.line);
    TaskReference ref;
    ref.task = row.fields[static_cast<size_t>(*task_col)];
    TOKENRL_ASSIGN_OR_RETURN(ref.low, ParseDouble(row.fields[static_cast<size_t>(low_col)], where));
    TOKENRL_ASSIGN_OR_RETURN(ref.high, ParseDouble(row.fields[static_cast<size_t>(*high_col)], where));
    if (ref.task.empty() || !std::isfinite(ref.low) || !std::isfinite(ref.high) || ref.low == ref.high) {
      return Status::InvalidArgument(
          fmt::format("{}: need a task name and two different finite reference scores", where));
    }
    std::string key = CanonicalTaskKey(ref.task);
    if (std::find(n.keys_.begin(), n.keys_.end(), key) != n.keys_.end()) {
      return Status::InvalidArgument(fmt::format("{}: task \"{}\" is listed twice", where, ref.task));
    }
    n.keys_.push_back(std::move(key));
    n.table_.push_back(std::move(ref));
  }
  if (n.table_.empty()) return Status::InvalidArgument(path + ": the reference table has no rows");
  return n;
}

StatusOr<Normalizer> Normalizer::Atari(std::string_view csv_path) {
  TOKENRL_ASSIGN_OR_RETURN(const std::string path, FindReferenceScoresFile(kAtariReferenceFile, csv_path));
  return FromCsv(path, NormalizationKind::kAtari);
}

StatusOr<Normalizer> Normalizer::MinAtar(std::string_view csv_path) {
  TOKENRL_ASSIGN_OR_RETURN(const std::string path, FindReferenceScoresFile(kMinAtarReferenceFile, csv_path));
  return FromCsv(path, NormalizationKind::kMinAtar);
}

std::optional<TaskReference> Normalizer::Find(std::string_view task) const {
  switch (kind_) {
    case NormalizationKind::kNone: return TaskReference{std::string(task), 0.0, 1.0};
    case NormalizationKind::kMinMax: return TaskReference{std::string(task), min_, max_};
    default: break;
  }
  const std::string key = CanonicalTaskKey(task);
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return table_[i];
  }
  return std::nullopt;
}

StatusOr<ScoreMatrix> Normalizer::Normalize(const ScoreMatrix& raw) const {
  if (kind_ == NormalizationKind::kNone) return raw;
  std::vector<TaskReference> refs;
  std::vector<std::string> unknown;
  for (const auto& task : raw.task_names()) {
    auto ref = Find(task);
    if (!ref) {
      unknown.push_back(task);
      refs.push_back({});
    } else {
      refs.push_back(*ref);
    }
  }
  if (!unknown.empty()) {
    std::vector<std::string> known;
    for (const auto& r : table_) known.push_back(r.task);
    return Status::NotFound(fmt::format(
        "no {} reference score for task(s) {} (in {}). Known tasks: {}. Check the task names (matching ignores "
        "case, '_', '-v5' and 'NoFrameskip' suffixes, and 'ALE/' style prefixes), or use --normalize none, or "
        "--min/--max for a fixed range",
        NormalizationKindName(kind_), FormatTaskList(unknown, 10), source_, FormatTaskList(known, 60)));
  }
  std::vector<double> values(raw.values().begin(), raw.values().end());
  const size_t tasks = static_cast<size_t>(raw.num_tasks());
  for (size_t i = 0; i < values.size(); ++i) {
    const TaskReference& r = refs[i % tasks];
    values[i] = (values[i] - r.low) / (r.high - r.low);
  }
  return raw.WithValues(std::move(values));
}

std::vector<std::string> Normalizer::Warnings(const ScoreMatrix& raw) const {
  std::vector<std::string> warnings;
  if (kind_ != NormalizationKind::kAtari) return warnings;
  std::vector<std::string> excluded;
  for (const auto& task : raw.task_names()) {
    const std::string key = CanonicalTaskKey(task);
    if (key == "defender" || key == "surround") excluded.push_back(task);
  }
  if (!excluded.empty()) {
    warnings.push_back(fmt::format(
        "{} included: rliable's and Dopamine's standard 55-game Atari aggregates leave out Defender and Surround "
        "(no human score there); drop them to compare with published numbers",
        FormatTaskList(excluded, 2)));
  }
  return warnings;
}

}  // namespace tokenrl::stats
