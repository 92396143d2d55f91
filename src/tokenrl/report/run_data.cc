#include "tokenrl/report/run_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/report/format.h"
#include "tokenrl/stats/csv.h"

namespace tokenrl::report {
namespace {

namespace fs = std::filesystem;
using stats::CsvTable;
using stats::ParseCsv;
using stats::ParseDouble;

void Flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (auto&& [k, v] : table) {
    const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = v.as_table()) {
      Flatten(*sub, key, out);
      continue;
    }
    std::ostringstream os;
    v.visit([&os](const auto& node) { os << node; });
    out[key] = os.str();
  }
}

// ---- Loading -----------------------------------------------------------------

StatusOr<std::string> VariantOf(const FoundRunDir& d, const std::map<std::string, std::string>& config,
                                const std::vector<std::string>& group_by) {
  if (group_by.empty()) {
    fs::path parent = fs::path(d.relative).parent_path();
    std::string rel = parent.lexically_normal().generic_string();
    if (d.relative == "." || rel.empty() || rel == ".") {
      fs::path root = fs::weakly_canonical(fs::path(d.root));
      rel = root.filename().string();
      if (rel.empty()) rel = "runs";
    }
    while (!rel.empty() && rel.back() == '/') rel.pop_back();
    return rel;
  }
  std::vector<std::string> parts;
  for (const auto& key : group_by) {
    auto it = config.find(key);
    if (it == config.end()) {
      return Status::InvalidArgument(fmt::format(
          "--group-by key \"{}\" is not in {}/{} (keys are dotted TOML paths such as network.mixer.type; see the "
          "file for the available ones)",
          key, d.dir, kConfigFile));
    }
    parts.push_back(group_by.size() == 1 ? Unquote(it->second) : LastSegment(key) + "=" + Unquote(it->second));
  }
  return Join(parts, ", ");
}

// ---- Diagnostics (diagnostics.csv / interventions.csv) ---------------------------

constexpr std::string_view kDiagnosticsFile = "diagnostics.csv";
constexpr std::string_view kInterventionsFile = "interventions.csv";

// Which series a diagnostics.csv column feeds ("" = none), with the sort key
// and label of that series.
struct SeriesSpec {
  int kind = 0;  // 0 penultimate dormant, 1 mean expert dormant, 2 srank, 3 parameter norm, 4 one expert's dormant.
  double tau = 0.0;
  std::string key;
  std::string label;
};

// The series a diagnostics.csv column feeds (none, one, or for an expert's
// dormant fraction both that expert's own series and the mean over experts).
std::vector<SeriesSpec> SeriesOfColumn(const std::string& column) {
  auto tau_of = [](const std::string& text) -> std::optional<double> {
    auto v = ParseDouble(text, "tau");
    if (!v.ok() || !std::isfinite(*v)) return std::nullopt;
    return *v;
  };
  const std::string pen = "penultimate_dormant_";
  if (column.rfind(pen, 0) == 0) {
    const std::string t = column.substr(pen.size());
    auto tau = tau_of(t);
    if (!tau) return {};
    return {SeriesSpec{0, *tau, column, fmt::format("Penultimate dormant fraction (τ = {})", t)}};
  }
  if (column.rfind("expert", 0) == 0) {
    size_t i = 6;
    while (i < column.size() && std::isdigit(static_cast<unsigned char>(column[i]))) ++i;
    const std::string dormant = "_dormant_";
    if (i > 6 && column.compare(i, dormant.size(), dormant) == 0) {
      const std::string t = column.substr(i + dormant.size());
      auto tau = tau_of(t);
      if (!tau) return {};
      return {SeriesSpec{1, *tau, "expert_dormant_mean_" + t, fmt::format("Mean expert dormant fraction (τ = {})", t)},
              SeriesSpec{4, *tau, column,
                         fmt::format("Expert {} dormant fraction (τ = {})", column.substr(6, i - 6), t)}};
    }
    return {};
  }
  if (column == "feature_srank") return {SeriesSpec{2, 0.0, column, "Feature rank (srank)"}};
  if (column == "parameter_norm") return {SeriesSpec{3, 0.0, column, "Parameter norm"}};
  return {};
}

}  // namespace

StatusOr<LoadedDir> LoadRunDir(const FoundRunDir& d, const std::vector<std::string>& group_by) {
  LoadedDir out;
  out.found = d;
  const std::string config_path = (fs::path(d.dir) / kConfigFile).string();
  TOKENRL_ASSIGN_OR_RETURN(out.config, LoadFlatConfig(config_path));
  auto env = out.config.find("env.name");
  if (env == out.config.end() || Unquote(env->second).empty()) {
    return Status::InvalidArgument(fmt::format("{} has no env.name; is it a tokenrl train config?", config_path));
  }
  out.env_name = Unquote(env->second);
  TOKENRL_ASSIGN_OR_RETURN(out.variant, VariantOf(d, out.config, group_by));
  const std::string metrics_path = (fs::path(d.dir) / kMetricsFile).string();
  TOKENRL_ASSIGN_OR_RETURN(const std::string text, ReadFile(metrics_path));
  TOKENRL_ASSIGN_OR_RETURN(out.members, ParseMetricsCsv(text, metrics_path));
  std::error_code ec;
  out.done = fs::exists(fs::path(d.dir) / "DONE", ec);
  return out;
}

// Reads every run directory's diagnostics.csv and interventions.csv into
// result.diagnostics / result.interventions; problems become warnings.
void LoadDiagnostics(const std::vector<LoadedDir>& dirs, ReportResult& result) {
  std::map<std::string, SeriesSpec> specs;
  // series -> variant -> step -> (dir index, member) -> value (a repeated row: the later wins).
  std::map<std::string, std::map<std::string, std::map<int64_t, std::map<std::pair<size_t, int64_t>, double>>>> data;
  for (size_t di = 0; di < dirs.size(); ++di) {
    const LoadedDir& d = dirs[di];
    const fs::path path = fs::path(d.found.dir) / kDiagnosticsFile;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) continue;
    auto text = ReadFile(path.string());
    if (!text.ok()) {
      result.warnings.push_back(fmt::format("{} skipped: {}", path.string(), text.status().message()));
      continue;
    }
    auto table = ParseCsv(*text, path.string());
    if (!table.ok()) {
      result.warnings.push_back(fmt::format("{} skipped: {}", path.string(), table.status().message()));
      continue;
    }
    auto member_col = table->Column("member");
    auto steps_col = table->Column("env_steps");
    if (!member_col.ok() || !steps_col.ok()) {
      result.warnings.push_back(
          fmt::format("{} skipped: no member/env_steps columns (header: {})", path.string(), Join(table->header, ",")));
      continue;
    }
    std::map<std::string, std::vector<int>> columns;  // series -> columns averaged into it
    for (size_t c = 0; c < table->header.size(); ++c) {
      for (const SeriesSpec& spec : SeriesOfColumn(table->header[c])) {
        specs.emplace(spec.key, spec);
        columns[spec.key].push_back(static_cast<int>(c));
      }
    }
    std::string bad;
    for (const auto& row : table->rows) {
      const std::string where = fmt::format("{}:{}", path.string(), row.line);
      auto member = ParseInteger(row.fields[*member_col], where + " member");
      auto steps = ParseInteger(row.fields[*steps_col], where + " env_steps");
      if (!member.ok() || !steps.ok()) {
        bad = (!member.ok() ? member.status() : steps.status()).message();
        break;
      }
      for (const auto& [key, cols] : columns) {
        double sum = 0.0;
        int n = 0;
        for (int c : cols) {
          const std::string& field = row.fields[c];
          if (field.empty()) continue;
          auto v = ParseDouble(field, where);
          if (!v.ok() || !std::isfinite(*v)) continue;
          sum += *v;
          ++n;
        }
        if (n > 0) data[key][d.variant][*steps][{di, *member}] = sum / n;
      }
    }
    if (!bad.empty()) result.warnings.push_back(fmt::format("{} partly skipped: {}", path.string(), bad));
  }
  std::vector<SeriesSpec> order;
  for (const auto& [key, spec] : specs) order.push_back(spec);
  std::sort(order.begin(), order.end(), [](const SeriesSpec& a, const SeriesSpec& b) {
    return std::tie(a.kind, a.tau, a.key) < std::tie(b.kind, b.tau, b.key);
  });
  for (const auto& spec : order) {
    for (const auto& [variant, by_step] : data[spec.key]) {
      DiagnosticCurve curve;
      curve.series = spec.key;
      curve.label = spec.label;
      curve.variant = variant;
      for (const auto& [step, values] : by_step) {
        double sum = 0.0, lo = 0.0, hi = 0.0;
        bool first = true;
        for (const auto& [who, x] : values) {
          sum += x;
          lo = first ? x : std::min(lo, x);
          hi = first ? x : std::max(hi, x);
          first = false;
        }
        curve.steps.push_back(step);
        curve.runs.push_back(static_cast<int>(values.size()));
        curve.mean.push_back(sum / static_cast<double>(values.size()));
        curve.min.push_back(lo);
        curve.max.push_back(hi);
      }
      if (!curve.steps.empty()) result.diagnostics.push_back(std::move(curve));
    }
  }

  for (const LoadedDir& d : dirs) {
    const fs::path path = fs::path(d.found.dir) / kInterventionsFile;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) continue;
    auto text = ReadFile(path.string());
    auto table = text.ok() ? ParseCsv(*text, path.string()) : StatusOr<CsvTable>(text.status());
    if (!table.ok()) {
      result.warnings.push_back(fmt::format("{} skipped: {}", path.string(), table.status().message()));
      continue;
    }
    auto member_col = table->Column("member");
    auto steps_col = table->Column("env_steps");
    auto type_col = table->Column("type");
    auto experts_col = table->Column("experts");
    if (!member_col.ok() || !steps_col.ok() || !type_col.ok()) {
      result.warnings.push_back(fmt::format("{} skipped: no member/env_steps/type columns (header: {})",
                                            path.string(), Join(table->header, ",")));
      continue;
    }
    for (const auto& row : table->rows) {
      const std::string where = fmt::format("{}:{}", path.string(), row.line);
      auto member = ParseInteger(row.fields[*member_col], where + " member");
      auto steps = ParseInteger(row.fields[*steps_col], where + " env_steps");
      if (!member.ok() || !steps.ok()) {
        result.warnings.push_back(fmt::format("{} partly skipped: {}",
                                              path.string(),
                                              (!member.ok() ? member.status() : steps.status()).message()));
        break;
      }
      ReportIntervention iv;
      iv.variant = d.variant;
      iv.run_dir = d.found.dir;
      iv.member = static_cast<int>(*member);
      iv.env_steps = *steps;
      iv.type = row.fields[*type_col];
      if (experts_col.ok()) iv.experts = row.fields[*experts_col];
      result.interventions.push_back(std::move(iv));
    }
  }
  std::stable_sort(result.interventions.begin(), result.interventions.end(),
                   [](const ReportIntervention& a, const ReportIntervention& b) {
                     return std::tie(a.variant, a.env_steps, a.run_dir, a.member) <
                            std::tie(b.variant, b.env_steps, b.run_dir, b.member);
                   });
}

StatusOr<std::vector<FoundRunDir>> FindRunDirectories(const std::vector<std::string>& roots) {
  if (roots.empty()) return Status::InvalidArgument("no directories given: pass one or more run directories");
  std::vector<FoundRunDir> found;
  auto is_run = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p / kConfigFile, ec) && fs::is_regular_file(p / kMetricsFile, ec);
  };
  for (const auto& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) {
      return Status::NotFound(fmt::format("{} is not a directory (pass directories that hold runs of `tokenrl train`)",
                                          root));
    }
    if (is_run(root)) {
      found.push_back({root, root, "."});
      continue;
    }
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) return Status::IoError(fmt::format("cannot list {}: {}", root, ec.message()));
    for (; it != end; it.increment(ec)) {
      if (ec) return Status::IoError(fmt::format("cannot list {}: {}", root, ec.message()));
      std::error_code ec2;
      if (!it->is_directory(ec2) || it->is_symlink(ec2)) continue;
      if (is_run(it->path())) {
        found.push_back({root, it->path().string(), fs::relative(it->path(), root, ec2).generic_string()});
        it.disable_recursion_pending();
      }
    }
  }
  if (found.empty()) {
    return Status::NotFound(fmt::format(
        "no run directories found under {} (a run directory holds {} and {}, as written by `tokenrl train --out "
        "DIR`)",
        Join(roots, ", "), kConfigFile, kMetricsFile));
  }
  std::sort(found.begin(), found.end(),
            [](const FoundRunDir& a, const FoundRunDir& b) { return a.dir < b.dir; });
  found.erase(std::unique(found.begin(), found.end(),
                          [](const FoundRunDir& a, const FoundRunDir& b) {
                            std::error_code ec;
                            return fs::equivalent(a.dir, b.dir, ec);
                          }),
              found.end());
  return found;
}

StatusOr<std::vector<MemberMetrics>> ParseMetricsCsv(std::string_view text, std::string_view source) {
  auto table = ParseCsv(text, source);
  if (!table.ok()) {
    return Status::InvalidArgument(
        fmt::format("{} (is the metrics.csv of this run damaged?)", table.status().message()));
  }
  int col[4];
  const char* names[] = {"member", "env_steps", "eval_return_mean", "return_mean_recent"};
  for (int i = 0; i < 4; ++i) {
    auto c = table->Column(names[i]);
    if (!c.ok()) {
      return Status::InvalidArgument(fmt::format(
          "{}: no column \"{}\" (header: {}); expected the metrics.csv written by `tokenrl train`", source, names[i],
          Join(table->header, ",")));
    }
    col[i] = *c;
  }
  if (table->rows.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: no rows yet (the run has not logged anything; wait for it or leave it out)", source));
  }
  std::map<int64_t, MemberMetrics> members;
  for (const auto& row : table->rows) {
    const std::string where = fmt::format("{}:{}", source, row.line);
    TOKENRL_ASSIGN_OR_RETURN(const int64_t member, ParseInteger(row.fields[col[0]], where + " member"));
    TOKENRL_ASSIGN_OR_RETURN(const int64_t steps, ParseInteger(row.fields[col[1]], where + " env_steps"));
    if (member < 0 || member > 1'000'000 || steps < 0) {
      return Status::InvalidArgument(fmt::format("{}: member {} / env_steps {} out of range", where, member, steps));
    }
    MemberMetrics& m = members[member];
    m.member = static_cast<int>(member);
    auto add = [&](int c, std::vector<std::pair<int64_t, double>>& series, const char* what) -> Status {
      const std::string& field = row.fields[c];
      if (field.empty()) return Status::Ok();
      auto v = ParseDouble(field, where + " " + what);
      if (!v.ok()) return v.status();
      if (!std::isfinite(*v)) return Status::InvalidArgument(fmt::format("{} {}: not finite ({})", where, what, field));
      if (!series.empty() && series.back().first == steps) {
        series.back().second = *v;  // A repeated point: the later row wins.
      } else if (!series.empty() && series.back().first > steps) {
        return Status::InvalidArgument(
            fmt::format("{}: env_steps {} goes back in time for member {}", where, steps, member));
      } else {
        series.emplace_back(steps, *v);
      }
      return Status::Ok();
    };
    TOKENRL_RETURN_IF_ERROR(add(col[2], m.eval, "eval_return_mean"));
    TOKENRL_RETURN_IF_ERROR(add(col[3], m.train, "return_mean_recent"));
  }
  std::vector<MemberMetrics> out;
  for (auto& [k, m] : members) out.push_back(std::move(m));
  return out;
}

StatusOr<std::map<std::string, std::string>> LoadFlatConfig(const std::string& path) {
  TOKENRL_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::InvalidArgument(
        fmt::format("{}:{}:{}: {}", path, b.line, b.column, std::string(e.description())));
  }
  std::map<std::string, std::string> out;
  Flatten(table, "", out);
  return out;
}

}  // namespace tokenrl::report
