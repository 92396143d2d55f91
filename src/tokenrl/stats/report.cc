#include "tokenrl/stats/report.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/csv.h"

namespace tokenrl::stats {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kConfigFile = "config.resolved.toml";
constexpr std::string_view kMetricsFile = "metrics.csv";

// Colour-blind-safe palette (seaborn "colorblind", as rliable's figures).
constexpr const char* kPalette[] = {"#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
                                    "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"};
std::string Color(size_t i) { return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]; }
long ColorInt(size_t i) { return std::strtol(Color(i).c_str() + 1, nullptr, 16); }

// The order of the table's columns (the brief's: IQM, median, mean, gap).
constexpr Aggregate kTableOrder[] = {Aggregate::kIqm, Aggregate::kMedian, Aggregate::kMean,
                                     Aggregate::kOptimalityGap};

std::string Num(double v) { return fmt::format("{}", v); }  // Shortest round-trip.
std::string Fixed(double v) { return fmt::format("{:.3f}", v); }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')) &&
      (s.empty() || s.front() != '#')) {
    return s;
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Markdown table cell: pipes escaped, no newlines.
std::string MdCell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// A gnuplot double-quoted string literal.
std::string GpString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n' || c == '\t') c = ' ';
    out += c;
  }
  return out + "\"";
}

// A data-file field for gnuplot (tab separated): no tabs/newlines.
std::string GpField(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// File-name-safe version of a variant name.
std::string Slug(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    out += ok ? c : '_';
  }
  while (!out.empty() && out.front() == '.') out.erase(out.begin());
  if (out.empty()) out = "variant";
  return out;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string LastSegment(std::string_view key) {
  const size_t dot = key.rfind('.');
  return std::string(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

// A TOML value's text without the quotes of a plain string.
std::string Unquote(const std::string& v) {
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    return v.substr(1, v.size() - 2);
  }
  return v;
}

StatusOr<int64_t> ParseInteger(const std::string& text, const std::string& where) {
  TOKENRL_ASSIGN_OR_RETURN(const double v, ParseDouble(text, where));
  if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9e15) {
    return Status::InvalidArgument(fmt::format("{}: expected an integer, got \"{}\"", where, text));
  }
  return static_cast<int64_t>(v);
}

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

Status WriteOut(const std::string& out_dir, const std::string& name, std::string_view text,
                std::vector<std::string>& files) {
  const fs::path path = fs::path(out_dir) / name;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", path.parent_path().string(), ec.message()));
  TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(path.string(), text));
  files.push_back(name);
  return Status::Ok();
}

bool NonEmptyFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
}

// ---- Loading -----------------------------------------------------------------

struct LoadedDir {
  FoundRunDir found;
  std::map<std::string, std::string> config;
  std::string env_name;
  std::string variant;
  std::vector<MemberMetrics> members;
  bool done = false;
};

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

// ---- Statistics ----------------------------------------------------------------

StatusOr<std::vector<IntervalEstimate>> CurveIqm(const std::vector<std::vector<double>>& cells, int runs, int tasks,
                                                 int points, const BootstrapOptions& options) {
  // cells[r][m * points + t]: the runs x tasks x points array in rliable's
  // C order, so per-cell run draws follow rliable's sample-efficiency curves.
  std::vector<double> values;
  values.reserve(static_cast<size_t>(runs) * tasks * points);
  for (const auto& row : cells) values.insert(values.end(), row.begin(), row.end());
  std::vector<std::string> names;
  for (int i = 0; i < tasks * points; ++i) names.push_back(fmt::format("c{}", i));
  TOKENRL_ASSIGN_OR_RETURN(const ScoreMatrix matrix,
                           ScoreMatrix::Create(runs, tasks * points, std::move(values), {}, std::move(names)));
  auto scratch = std::make_shared<std::vector<double>>(static_cast<size_t>(runs) * tasks);
  MatrixStatistic statistic = [scratch, runs, tasks, points](ScoreView view, std::span<double> out) {
    for (int t = 0; t < points; ++t) {
      size_t i = 0;
      for (int r = 0; r < runs; ++r)
        for (int m = 0; m < tasks; ++m) (*scratch)[i++] = view.at(r, m * points + t);
      out[t] = TrimmedIqmInPlace(*scratch);
    }
  };
  return StratifiedBootstrapEstimates(matrix, points, statistic, options);
}

// ---- Plots -----------------------------------------------------------------------

// A round tick step giving about `target` intervals over `span`.
double NiceStep(double span, int target) {
  if (!(span > 0.0)) return 1.0;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw * 0.999) return m * mag;
  }
  return 10.0 * mag;
}

// "0", "500", "2.5k", "20k", "1.5M" for env-step axes.
std::string StepLabel(double v) {
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e3) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

// "set xrange/xtics" for values in [lo, hi] with ~`target` round ticks.
std::string AxisRange(char axis, double lo, double hi, int target, double pad_fraction) {
  if (!(hi - lo > 1e-12)) {
    const double w = std::max(0.05, 0.05 * std::fabs(lo));
    lo -= w;
    hi += w;
  }
  const double pad = pad_fraction * (hi - lo);
  lo -= pad;
  hi += pad;
  const double step = NiceStep(hi - lo, target);
  const double start = std::ceil(lo / step - 1e-9) * step;
  return fmt::format("set {0}range [{1}:{2}]\nset {0}tics {3},{4} format \"%g\"\n", axis, lo, hi,
                     std::fabs(start) < 1e-12 * step ? 0.0 : start, step);
}

struct PlotText {
  std::string score_label;  // "MinAtar-normalized score", ...
  std::string ci_label;     // "95% CI"
};

// A script that draws `body` once as PNG and once as SVG.
std::string GnuplotScript(const std::string& name, int width, int height, const std::string& body) {
  std::string s = fmt::format(
      "# Generated by `tokenrl report`. Run from this directory: gnuplot {0}.gp\n"
      "set encoding utf8\n"
      "set datafile separator \"\\t\"\n"
      "set terminal pngcairo size {1},{2} font \"DejaVu Sans,11\" noenhanced\n"
      "set output \"../{0}.png\"\n",
      name, width, height);
  s += body;
  s += fmt::format(
      "unset output\nreset\n"
      "set encoding utf8\n"
      "set datafile separator \"\\t\"\n"
      "set terminal svg size {1},{2} font \"DejaVu Sans,11\" noenhanced background rgb \"white\"\n"
      "set output \"../{0}.svg\"\n",
      name, width, height);
  s += body;
  s += "unset output\n";
  return s;
}

std::string AggregatesPlot(const ReportResult& r, const PlotText& text, const BootstrapOptions& options, int* width,
                           int* height) {
  const size_t n = r.variants.size();
  size_t longest = 4;
  for (const auto& v : r.variants) longest = std::max(longest, v.name.size());
  *width = 1400;
  *height = static_cast<int>(std::min<size_t>(170 + 48 * n, 1400));
  const double left = std::clamp((40.0 + 8.2 * static_cast<double>(longest)) / *width, 0.06, 0.45);
  const double bottom = 75.0 / *height;
  const double top = 1.0 - 62.0 / *height;
  std::string s;
  s += fmt::format(
      "set multiplot layout 1,4 title {} font \",13\" margins {:.4f},0.985,{:.4f},{:.4f} spacing 0.02,0\n",
      GpString(fmt::format("Aggregate metrics of final scores with {:g}% stratified bootstrap CIs ({} replicates)",
                           100.0 * options.confidence, options.reps)),
      left, bottom, top);
  s += fmt::format("set yrange [{}:0.5]\n", static_cast<double>(n) + 0.5);
  s += "unset key\nset grid xtics lc rgb \"#d0d0d0\" dt 2\n";
  s += "set style fill solid 0.75 border lc rgb \"#404040\"\n";
  s += fmt::format("set xlabel {}\n", GpString(text.score_label));
  s += "set xtics nomirror\nset ytics scale 0 nomirror\nset border 3\n";
  const char* titles[] = {"IQM", "Median", "Mean", "Optimality gap (lower is better)"};
  for (int p = 0; p < 4; ++p) {
    const int col = 4 + 3 * p;  // point, lower, upper
    s += fmt::format("set title {}\n", GpString(titles[p]));
    double lo = 0.0, hi = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const IntervalEstimate& e = r.variants[i].aggregates.Get(kTableOrder[p]);
      const double a = std::min({e.point, e.lower, e.upper}), b = std::max({e.point, e.lower, e.upper});
      lo = i == 0 ? a : std::min(lo, a);
      hi = i == 0 ? b : std::max(hi, b);
    }
    s += AxisRange('x', lo, hi, 4, 0.1);
    if (p == 1) s += "set format y \"\"\n";
    s += fmt::format(
        "plot \"aggregates.dat\" using {0}:1:{1}:{2}:($1-0.3):($1+0.3):3{3} with boxxyerror lc rgb variable, \\\n"
        "     \"\" using {0}:($1-0.3):(0):(0.6) with vectors nohead lw 2.5 lc rgb \"black\"\n",
        col, col + 1, col + 2, p == 0 ? ":ytic(2)" : "");
  }
  s += "unset multiplot\n";
  return s;
}

std::string LearningCurvesPlot(const ReportResult& r, const PlotText& text, const BootstrapOptions& options) {
  std::string s;
  s += fmt::format("set title {}\n",
                   GpString(fmt::format("IQM learning curves ({} bands from {} bootstrap replicates)",
                                        text.ci_label, options.reps)));
  s += "set xlabel \"Environment steps (per run)\"\n";
  s += fmt::format("set ylabel {}\n", GpString("IQM of " + text.score_label));
  s += "set grid lc rgb \"#d0d0d0\" dt 2\nset key below\nset border 3\nset xtics nomirror\nset ytics nomirror\n";
  int64_t max_step = 0;
  for (const auto& v : r.variants)
    if (!v.curve_steps.empty()) max_step = std::max(max_step, v.curve_steps.back());
  {
    const double top = std::max<double>(1.0, static_cast<double>(max_step));
    const double step = NiceStep(top, 5);
    std::vector<std::string> tics;
    for (int i = 0; i * step <= top * 1.04 + 1e-9; ++i) {
      tics.push_back(fmt::format("\"{}\" {}", StepLabel(i * step), i * step));
    }
    s += fmt::format("set xrange [0:{}]\nset xtics ({})\n", top * 1.04, Join(tics, ", "));
  }
  s += "set offsets 0, 0, graph 0.05, graph 0.05\n";
  std::vector<std::string> items;
  int index = 0;
  for (size_t i = 0; i < r.variants.size(); ++i) {
    const auto& v = r.variants[i];
    if (v.curve_steps.empty()) continue;
    items.push_back(fmt::format(
        "\"learning_curves.dat\" index {0} using 1:3:4 with filledcurves fs transparent solid 0.22 noborder "
        "lc rgb \"{1}\" notitle",
        index, Color(i)));
    if (v.curve_steps.size() == 1) {  // A band needs two points: show the interval as an error bar.
      items.push_back(fmt::format(
          "\"learning_curves.dat\" index {0} using 1:2:3:4 with yerrorbars lw 2 pt 7 ps 0.7 lc rgb \"{1}\" "
          "notitle",
          index, Color(i)));
    }
    items.push_back(fmt::format(
        "\"learning_curves.dat\" index {0} using 1:2 with linespoints lw 2 pt 7 ps 0.7 lc rgb \"{1}\" title {2}",
        index, Color(i), GpString(v.name)));
    ++index;
  }
  if (items.empty()) return "";
  s += "plot " + Join(items, ", \\\n     ") + "\n";
  return s;
}

std::string ProfilePlot(const ReportResult& r, const PlotText& text, const BootstrapOptions& options) {
  std::string s;
  s += fmt::format("set title {}\n",
                   GpString(fmt::format("Performance profiles: score distributions ({} bands, {} replicates)",
                                        text.ci_label, options.reps)));
  s += fmt::format("set xlabel {}\n", GpString(text.score_label + " (τ)"));
  s += "set ylabel \"Fraction of runs with score > τ\"\n";
  s += "set yrange [0:1.02]\nset grid lc rgb \"#d0d0d0\" dt 2\nset key below\nset border 3\n"
       "set xtics nomirror\nset ytics nomirror\n";
  s += fmt::format("set xrange [{}:{}]\n", r.taus.front(), r.taus.back());
  std::vector<std::string> items;
  for (size_t i = 0; i < r.variants.size(); ++i) {
    items.push_back(fmt::format(
        "\"performance_profile.dat\" index {0} using 1:3:4 with filledcurves fs transparent solid 0.22 noborder "
        "lc rgb \"{1}\" notitle",
        i, Color(i)));
    items.push_back(fmt::format(
        "\"performance_profile.dat\" index {0} using 1:2 with lines lw 2 lc rgb \"{1}\" title {2}", i, Color(i),
        GpString(r.variants[i].name)));
  }
  s += "plot " + Join(items, ", \\\n     ") + "\n";
  return s;
}

// The diagnostics figure: one panel per series, one line (mean over members)
// and min-max band per variant; dashed verticals at intervention steps.
std::string DiagnosticsPlot(const ReportResult& r, int* width, int* height) {
  std::vector<std::string> series;
  std::map<std::string, std::string> labels;
  int64_t max_step = 0;
  for (const auto& c : r.diagnostics) {
    if (labels.emplace(c.series, c.label).second) series.push_back(c.series);
    max_step = std::max(max_step, c.steps.back());
  }
  if (series.empty()) return "";
  std::map<std::string, size_t> color;  // variant -> palette index (its index among the report's variants)
  for (size_t i = 0; i < r.variants.size(); ++i) color[r.variants[i].name] = i;
  for (const auto& c : r.diagnostics) color.emplace(c.variant, color.size());
  const int n = static_cast<int>(series.size());
  const int cols = n <= 3 ? n : (n == 4 ? 2 : 3);
  const int rows = (n + cols - 1) / cols;
  *width = 560 * cols;
  *height = 400 * rows + 70;
  std::string s;
  const bool marks = !r.interventions.empty();
  s += fmt::format("set multiplot layout {},{} title {} font \",13\"\n", rows, cols,
                   GpString(std::string("Expert-utilization diagnostics: mean over runs per variant, band = min-max "
                                        "over runs") +
                            (marks ? "; dashed lines: interventions" : "")));
  s += "set grid lc rgb \"#d0d0d0\" dt 2\nset border 3\nset xtics nomirror\nset ytics nomirror\n";
  s += "set xlabel \"Environment steps (per run)\"\nset offsets 0, 0, graph 0.05, graph 0.05\n";
  {
    const double top = std::max<double>(1.0, static_cast<double>(max_step));
    const double step = NiceStep(top, 4);
    std::vector<std::string> tics;
    for (int i = 0; i * step <= top * 1.04 + 1e-9; ++i) {
      tics.push_back(fmt::format("\"{}\" {}", StepLabel(i * step), i * step));
    }
    s += fmt::format("set xrange [0:{}]\nset xtics ({})\n", top * 1.04, Join(tics, ", "));
  }
  {
    std::set<std::pair<std::string, int64_t>> seen;
    for (const auto& iv : r.interventions) {
      if (!seen.insert({iv.variant, iv.env_steps}).second) continue;
      s += fmt::format("set arrow from {0}, graph 0 to {0}, graph 1 nohead dt 2 lw 1.5 lc rgb \"{1}\"\n",
                       iv.env_steps, Color(color[iv.variant]));
    }
  }
  int index = 0;
  for (int p = 0; p < n; ++p) {
    s += fmt::format("set title {}\n", GpString(labels[series[p]]));
    const bool fraction = series[p].find("dormant") != std::string::npos;
    double top = 0.0;  // All-zero fractions get a small fixed range instead of gnuplot's [0:1].
    for (const auto& c : r.diagnostics)
      if (c.series == series[p]) top = std::max(top, *std::max_element(c.max.begin(), c.max.end()));
    s += !fraction        ? "set ylabel \"\"\nset yrange [*:*]\n"
         : top > 0.0      ? "set ylabel \"Fraction of units\"\nset yrange [0:*]\n"
                          : "set ylabel \"Fraction of units\"\nset yrange [0:0.05]\n";
    s += p == 0 ? "set key top left font \",10\" opaque box\n" : "unset key\n";
    std::vector<std::string> items;
    for (const auto& c : r.diagnostics) {
      if (c.series != series[p]) continue;
      const std::string col = Color(color[c.variant]);
      if (c.steps.size() > 1) {
        items.push_back(fmt::format(
            "\"diagnostics.dat\" index {0} using 1:3:4 with filledcurves fs transparent solid 0.22 noborder "
            "lc rgb \"{1}\" notitle",
            index, col));
      } else {
        items.push_back(fmt::format(
            "\"diagnostics.dat\" index {0} using 1:2:3:4 with yerrorbars lw 1.5 pt 7 ps 0.7 lc rgb \"{1}\" notitle",
            index, col));
      }
      items.push_back(fmt::format(
          "\"diagnostics.dat\" index {0} using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb \"{1}\" title {2}", index,
          col, GpString(c.variant)));
      ++index;
    }
    s += "plot " + Join(items, ", \\\n     ") + "\n";
  }
  s += "unset multiplot\n";
  return s;
}

// Runs `gnuplot script` in `dir`; "" on success, otherwise what went wrong.
std::string RunGnuplot(const std::string& gnuplot, const fs::path& dir, const std::string& script) {
  const std::string log = script.substr(0, script.size() - 3) + ".log";
  const std::string command = fmt::format("cd {} && {} {} > {} 2>&1", ShellQuote(dir.string()), ShellQuote(gnuplot),
                                          ShellQuote(script), ShellQuote(log));
  const int rc = std::system(command.c_str());
  if (rc == 0) {
    std::error_code ec;
    fs::remove(dir / log, ec);
    return "";
  }
  std::string detail;
  auto text = ReadFile((dir / log).string());
  if (text.ok()) {
    detail = *text;
    if (detail.size() > 600) detail = "..." + detail.substr(detail.size() - 600);
  }
  const int code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : rc;
  return fmt::format("gnuplot {} failed (exit status {}): {}", (dir / script).string(), code, detail);
}

// ---- Report documents ----------------------------------------------------------

struct Doc {
  std::string md;
  std::string html;
};

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
           bool first_col_code = false) {
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

std::string CiText(const IntervalEstimate& e) {
  return fmt::format("{} [{}, {}]", Fixed(e.point), Fixed(e.lower), Fixed(e.upper));
}

}  // namespace

// ---- Public helpers ----------------------------------------------------------------

std::string FindExecutable(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return "";
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
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::InvalidArgument(
        fmt::format("{}:{}:{}: {}", path, b.line, b.column, std::string(e.description())));
  }
  std::map<std::string, std::string> out;
  Flatten(table, "", out);
  return out;
}

// ---- The report ----------------------------------------------------------------------

StatusOr<ReportResult> RunReport(const ReportOptions& options) {
  if (options.out_dir.empty()) return Status::InvalidArgument("no output directory: pass --out DIR");
  if (options.tau_points < 2) return Status::InvalidArgument("tau_points must be at least 2");
  BootstrapOptions agg_options;
  agg_options.reps = options.reps;
  agg_options.seed = options.seed;
  agg_options.confidence = options.confidence;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(agg_options));
  BootstrapOptions curve_options = agg_options;
  curve_options.reps = options.curve_reps;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(curve_options).WithContext("curve reps"));
  BootstrapOptions profile_options = agg_options;
  profile_options.reps = options.profile_reps;
  TOKENRL_RETURN_IF_ERROR(ValidateBootstrapOptions(profile_options).WithContext("profile reps"));
  if (!std::isfinite(options.gamma)) return Status::InvalidArgument("gamma must be finite");

  ReportResult result;
  auto& warnings = result.warnings;

  // 1. Run directories.
  TOKENRL_ASSIGN_OR_RETURN(const std::vector<FoundRunDir> found, FindRunDirectories(options.roots));
  std::vector<LoadedDir> dirs;
  for (const auto& d : found) {
    TOKENRL_ASSIGN_OR_RETURN(LoadedDir loaded, LoadRunDir(d, options.group_by));
    dirs.push_back(std::move(loaded));
  }

  // Short task names, unless two envs share one.
  std::map<std::string, std::set<std::string>> by_short;
  auto short_name = [](const std::string& env) {
    const size_t slash = env.find_last_of("/:");
    return slash == std::string::npos ? env : env.substr(slash + 1);
  };
  for (const auto& d : dirs) by_short[short_name(d.env_name)].insert(d.env_name);
  auto task_of = [&](const std::string& env) {
    const std::string s = short_name(env);
    return by_short[s].size() == 1 && !s.empty() ? s : env;
  };

  // 2. Runs (members).
  std::vector<std::string> not_done, no_eval;
  for (const auto& d : dirs) {
    if (!d.done) not_done.push_back(d.found.dir);
    int fallback = 0;
    for (const auto& m : d.members) {
      ReportRun run;
      run.run_dir = d.found.dir;
      run.label = fmt::format("{}#{}", d.found.relative == "." ? fs::path(d.found.dir).filename().string()
                                                               : d.found.relative,
                              m.member);
      run.member = m.member;
      run.env_name = d.env_name;
      run.task = task_of(d.env_name);
      run.variant = d.variant;
      const auto& series = m.eval.empty() ? m.train : m.eval;
      if (series.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}/{}: member {} has neither eval_return_mean nor return_mean_recent values; no score to report "
            "(leave this run out, or let it train longer)",
            d.found.dir, kMetricsFile, m.member));
      }
      run.final_from_eval = !m.eval.empty();
      if (!run.final_from_eval) ++fallback;
      run.final_score = series.back().second;
      for (const auto& [step, value] : series) {
        run.curve_steps.push_back(step);
        run.curve_scores.push_back(value);
      }
      result.runs.push_back(std::move(run));
    }
    if (fallback > 0) {
      no_eval.push_back(fmt::format("{} ({} of {} members)", d.found.dir, fallback, d.members.size()));
    }
  }
  if (!not_done.empty()) {
    warnings.push_back(fmt::format(
        "{} run director{} without DONE (still running or stopped early); their last logged values are used: {}",
        not_done.size(), not_done.size() == 1 ? "y" : "ies", Join(not_done, ", ")));
  }
  if (!no_eval.empty()) {
    warnings.push_back(fmt::format(
        "no evaluation (eval_return_mean) in {}: their final scores are the last return_mean_recent, a TRAINING "
        "return with exploration on, not comparable to evaluation scores (set schedule.eval_every_env_steps)",
        Join(no_eval, "; ")));
  }

  // 3. Normalization.
  std::string normalize = options.normalize.empty() ? "auto" : options.normalize;
  std::transform(normalize.begin(), normalize.end(), normalize.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::set<std::string> all_tasks;
  for (const auto& r : result.runs) all_tasks.insert(r.task);
  if (normalize == "auto") {
    const bool all_minatar = std::all_of(dirs.begin(), dirs.end(),
                                         [](const LoadedDir& d) { return d.env_name.rfind("minatar/", 0) == 0; });
    normalize = all_minatar ? "minatar" : "none";
    if (!all_minatar && all_tasks.size() > 1) {
      warnings.push_back(
          "not every task is a minatar/* env, so scores are NOT normalized (--normalize none) and raw returns of "
          "different games are averaged; pass --normalize atari or minatar when the tasks have references");
    }
  }
  std::optional<Normalizer> normalizer;
  if (normalize == "minatar") {
    TOKENRL_ASSIGN_OR_RETURN(normalizer, Normalizer::MinAtar(options.reference));
  } else if (normalize == "atari") {
    TOKENRL_ASSIGN_OR_RETURN(normalizer, Normalizer::Atari(options.reference));
  } else if (normalize == "none") {
    normalizer = Normalizer::None();
  } else {
    return Status::InvalidArgument(
        fmt::format("unknown normalization \"{}\"; use auto, minatar, atari or none", options.normalize));
  }
  result.normalization = normalize;
  result.normalization_source = normalizer->source();

  // 4. Variants.
  std::map<std::string, std::map<std::string, std::vector<int>>> grouped;  // variant -> task -> run indices
  for (size_t i = 0; i < result.runs.size(); ++i) {
    grouped[result.runs[i].variant][result.runs[i].task].push_back(static_cast<int>(i));
  }
  for (auto& [name, tasks] : grouped) {
    ReportVariant v;
    v.name = name;
    size_t n = SIZE_MAX;
    for (const auto& [task, runs] : tasks) n = std::min(n, runs.size());
    for (auto& [task, runs] : tasks) {
      std::sort(runs.begin(), runs.end(), [&](int a, int b) {
        const auto& x = result.runs[a];
        const auto& y = result.runs[b];
        return std::tie(x.run_dir, x.member) < std::tie(y.run_dir, y.member);
      });
      v.dropped_runs += static_cast<int>(runs.size() - n);
      v.tasks.push_back(task);
      v.runs.emplace_back(runs.begin(), runs.begin() + static_cast<std::ptrdiff_t>(n));
      for (int i : runs) v.run_dirs.push_back(result.runs[i].run_dir);
    }
    std::sort(v.run_dirs.begin(), v.run_dirs.end());
    v.run_dirs.erase(std::unique(v.run_dirs.begin(), v.run_dirs.end()), v.run_dirs.end());
    if (v.dropped_runs > 0) {
      std::vector<std::string> counts;
      for (const auto& [task, runs] : tasks) counts.push_back(fmt::format("{} {}", task, runs.size()));
      warnings.push_back(fmt::format(
          "variant \"{}\": tasks have different numbers of runs ({}); the statistics use the first {} run(s) of "
          "each task and leave {} run(s) out. Run the same seeds on every task",
          name, Join(counts, ", "), n, v.dropped_runs));
    }
    const int runs = static_cast<int>(n);
    const int num_tasks = static_cast<int>(v.tasks.size());
    std::vector<double> values(static_cast<size_t>(runs) * num_tasks);
    for (int k = 0; k < runs; ++k)
      for (int m = 0; m < num_tasks; ++m) {
        values[static_cast<size_t>(k) * num_tasks + m] = result.runs[v.runs[m][k]].final_score;
      }
    std::vector<std::string> labels;
    for (int k = 0; k < runs; ++k) labels.push_back(std::to_string(k));
    TOKENRL_ASSIGN_OR_RETURN(v.raw, ScoreMatrix::Create(runs, num_tasks, std::move(values), labels, v.tasks));
    for (const auto& w : ShapeWarnings(*v.raw, false)) warnings.push_back(fmt::format("variant \"{}\": {}", name, w));
    for (const auto& w : normalizer->Warnings(*v.raw)) warnings.push_back(fmt::format("variant \"{}\": {}", name, w));
    auto normalized = normalizer->Normalize(*v.raw);
    if (!normalized.ok()) {
      return normalized.status().WithContext(fmt::format("variant \"{}\" ({} normalization)", name, normalize));
    }
    v.normalized = std::move(*normalized);
    result.variants.push_back(std::move(v));
  }
  {
    std::set<std::string> union_tasks;
    for (const auto& v : result.variants) union_tasks.insert(v.tasks.begin(), v.tasks.end());
    std::vector<std::string> partial;
    for (const auto& v : result.variants) {
      if (v.tasks.size() != union_tasks.size()) {
        partial.push_back(fmt::format("\"{}\" ({})", v.name, Join(v.tasks, ", ")));
      }
    }
    if (!partial.empty()) {
      warnings.push_back(fmt::format(
          "variants cover different tasks (all tasks: {}); aggregates of different task sets are not comparable: {}",
          Join(std::vector<std::string>(union_tasks.begin(), union_tasks.end()), ", "), Join(partial, "; ")));
    }
  }

  // 5. Statistics.
  double lo = 0.0, hi = 0.0;
  bool first = true;
  for (auto& v : result.variants) {
    TOKENRL_ASSIGN_OR_RETURN(v.aggregates, AggregateIntervalEstimates(*v.normalized, agg_options, options.gamma));
    for (double x : v.normalized->values()) {
      lo = first ? x : std::min(lo, x);
      hi = first ? x : std::max(hi, x);
      first = false;
    }
    // Learning curve over the points every run of the matrix has.
    std::vector<int64_t> common;
    bool init = false;
    size_t most_points = 0;
    for (const auto& task_runs : v.runs) {
      for (int i : task_runs) {
        const auto& steps = result.runs[i].curve_steps;
        most_points = std::max(most_points, steps.size());
        if (!init) {
          common = steps;
          init = true;
        } else {
          std::vector<int64_t> both;
          std::set_intersection(common.begin(), common.end(), steps.begin(), steps.end(), std::back_inserter(both));
          common = std::move(both);
        }
      }
    }
    if (common.empty()) {
      warnings.push_back(fmt::format(
          "variant \"{}\": its runs share no evaluation point (different schedules), so it has no learning curve",
          v.name));
      continue;
    }
    if (common.size() < most_points) {
      warnings.push_back(fmt::format(
          "variant \"{}\": the learning curve uses the {} evaluation point(s) all its runs share (some runs have up "
          "to {})",
          v.name, common.size(), most_points));
    }
    const int runs = v.normalized->num_runs();
    const int num_tasks = v.normalized->num_tasks();
    const int points = static_cast<int>(common.size());
    std::vector<std::vector<double>> cells(static_cast<size_t>(runs),
                                           std::vector<double>(static_cast<size_t>(num_tasks) * points));
    for (int m = 0; m < num_tasks; ++m) {
      const TaskReference ref = normalizer->Find(v.tasks[m]).value_or(TaskReference{v.tasks[m], 0.0, 1.0});
      const bool identity = normalizer->kind() == NormalizationKind::kNone;
      for (int k = 0; k < runs; ++k) {
        const ReportRun& run = result.runs[v.runs[m][k]];
        for (int t = 0; t < points; ++t) {
          const auto it = std::lower_bound(run.curve_steps.begin(), run.curve_steps.end(), common[t]);
          const double raw = run.curve_scores[static_cast<size_t>(it - run.curve_steps.begin())];
          cells[k][static_cast<size_t>(m) * points + t] = identity ? raw : (raw - ref.low) / (ref.high - ref.low);
        }
      }
    }
    TOKENRL_ASSIGN_OR_RETURN(v.curve_iqm, CurveIqm(cells, runs, num_tasks, points, curve_options));
    v.curve_steps = std::move(common);
  }
  // Tau grid shared by every variant.
  double tau_lo = lo, tau_hi = hi;
  if (normalize != "none") {
    tau_lo = std::min(0.0, lo);
    tau_hi = std::max(options.gamma, hi);
  }
  if (!(tau_hi > tau_lo)) tau_hi = tau_lo + 1.0;
  const double pad = 0.02 * (tau_hi - tau_lo);
  if (tau_lo < lo || normalize == "none") tau_lo -= pad;
  tau_hi += pad;
  result.taus = Linspace(tau_lo, tau_hi, options.tau_points);
  for (auto& v : result.variants) {
    TOKENRL_ASSIGN_OR_RETURN(PerformanceProfile p, PerformanceProfileEstimates(*v.normalized, result.taus,
                                                                               ProfileKind::kScoreDistribution,
                                                                               profile_options));
    v.profile = std::move(p.profile);
  }

  // 6. Configurations.
  {
    std::set<std::string> keys;
    for (const auto& d : dirs)
      for (const auto& [k, val] : d.config) keys.insert(k);
    const std::string kMissing = "(unset)";
    for (const auto& key : keys) {
      std::map<std::string, std::set<std::string>> per_variant;  // variant -> values
      std::set<std::string> all;
      for (const auto& d : dirs) {
        auto it = d.config.find(key);
        const std::string val = it == d.config.end() ? kMissing : Unquote(it->second);
        per_variant[d.variant].insert(val);
        all.insert(val);
      }
      if (all.size() == 1) {
        result.common_config[key] = *all.begin();
        continue;
      }
      bool varies_within = false;
      bool differs_between = false;
      for (const auto& [name, vals] : per_variant) {
        varies_within |= vals.size() > 1;
        differs_between |= vals != per_variant.begin()->second;
      }
      const bool bookkeeping = LastSegment(key) == "seed" || key == "env.name";
      if (varies_within && (bookkeeping || !differs_between)) {
        result.varying_keys.push_back(key);
        if (bookkeeping) continue;
      }
      if (!differs_between && !varies_within) continue;
      for (auto& v : result.variants) {
        const auto& vals = per_variant[v.name];
        std::vector<std::string> list(vals.begin(), vals.end());
        v.distinct_config[key] = vals.size() == 1 ? list.front() : "varies: " + Join(list, " | ");
      }
    }
  }

  // 6b. Expert-utilization diagnostics (only when some run logged them).
  LoadDiagnostics(dirs, result);

  // 7. Files.
  const std::string& out = options.out_dir;
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", out, ec.message()));
  auto& files = result.files;
  const std::string ci = fmt::format("{:g}% CI", 100.0 * options.confidence);
  const std::string score_label = normalize == "minatar" ? "MinAtar-normalized score"
                                  : normalize == "atari" ? "Human-normalized score"
                                                         : "Score (raw return)";

  // table.csv / table.md
  {
    std::string csv = "variant,runs,tasks";
    for (Aggregate a : kTableOrder) {
      const std::string k(AggregateKey(a));
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
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "table.csv", csv, files));
  }
  std::vector<std::string> table_header = {"variant", "runs", "tasks"};
  for (Aggregate a : kTableOrder) {
    table_header.push_back(std::string(AggregateLabel(a)) + (a == Aggregate::kOptimalityGap ? " ↓" : "") + " [" +
                           ci + "]");
  }
  std::vector<std::vector<std::string>> table_rows;
  for (const auto& v : result.variants) {
    std::vector<std::string> row = {v.name, std::to_string(v.normalized->num_runs()),
                                    std::to_string(v.normalized->num_tasks())};
    for (Aggregate a : kTableOrder) row.push_back(CiText(v.aggregates.Get(a)));
    table_rows.push_back(std::move(row));
  }
  const std::string method_note = fmt::format(
      "Final scores, {} normalization; {} stratified bootstrap ({} replicates, seed {}, runs resampled within "
      "tasks). runs = runs "
      "per task. IQM: mean of the middle 50% of all run x task scores; median and mean: of per-task means; "
      "optimality gap: mean shortfall below {:g} (lower is better).",
      normalize, ci, options.reps, options.seed, options.gamma);
  {
    Doc t;
    Table(t, table_header, table_rows);
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "table.md", t.md + method_note + "\n", files));
  }

  // scores.csv and scores/<variant>.csv
  std::vector<std::string> slugs;
  {
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
      TOKENRL_RETURN_IF_ERROR(WriteOut(out, "scores/" + slugs[vi] + ".csv", one, files));
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "scores.csv", all, files));
  }

  // curves.csv, profiles.csv and the plot data.
  {
    std::string csv = "variant,env_steps,iqm,iqm_lower,iqm_upper\n";
    std::string dat = "# env_steps\tiqm\tlower\tupper (one block per variant with a curve)\n";
    for (const auto& v : result.variants) {
      if (v.curve_steps.empty()) continue;
      dat += "# " + GpField(v.name) + "\n";
      for (size_t t = 0; t < v.curve_steps.size(); ++t) {
        const auto& e = v.curve_iqm[t];
        csv += fmt::format("{},{},{},{},{}\n", CsvField(v.name), v.curve_steps[t], Num(e.point), Num(e.lower),
                           Num(e.upper));
        dat += fmt::format("{}\t{}\t{}\t{}\n", v.curve_steps[t], Num(e.point), Num(e.lower), Num(e.upper));
      }
      dat += "\n\n";
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "curves.csv", csv, files));
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "plots/learning_curves.dat", dat, files));
  }
  {
    std::string csv = "variant,tau,fraction,fraction_lower,fraction_upper\n";
    std::string dat = "# tau\tfraction\tlower\tupper (one block per variant)\n";
    for (const auto& v : result.variants) {
      dat += "# " + GpField(v.name) + "\n";
      for (size_t t = 0; t < result.taus.size(); ++t) {
        const auto& e = v.profile[t];
        csv += fmt::format("{},{},{},{},{}\n", CsvField(v.name), Num(result.taus[t]), Num(e.point), Num(e.lower),
                           Num(e.upper));
        dat += fmt::format("{}\t{}\t{}\t{}\n", Num(result.taus[t]), Num(e.point), Num(e.lower), Num(e.upper));
      }
      dat += "\n\n";
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "profiles.csv", csv, files));
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "plots/performance_profile.dat", dat, files));
  }
  {
    std::string dat = "# index\tvariant\tcolor";
    for (Aggregate a : kTableOrder) dat += fmt::format("\t{0}\t{0}_lower\t{0}_upper", AggregateKey(a));
    dat += "\n";
    for (size_t i = 0; i < result.variants.size(); ++i) {
      const auto& v = result.variants[i];
      dat += fmt::format("{}\t{}\t{}", i + 1, GpField(v.name), ColorInt(i));
      for (Aggregate a : kTableOrder) {
        const auto& e = v.aggregates.Get(a);
        dat += fmt::format("\t{}\t{}\t{}", Num(e.point), Num(e.lower), Num(e.upper));
      }
      dat += "\n";
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "plots/aggregates.dat", dat, files));
  }

  // diagnostics_curves.csv and its plot data.
  if (!result.diagnostics.empty()) {
    std::string csv = "series,variant,env_steps,runs,mean,min,max\n";
    std::string dat = "# env_steps\tmean\tmin\tmax\truns (one block per series and variant)\n";
    for (const auto& c : result.diagnostics) {
      dat += "# " + GpField(c.series + " " + c.variant) + "\n";
      for (size_t t = 0; t < c.steps.size(); ++t) {
        csv += fmt::format("{},{},{},{},{},{},{}\n", c.series, CsvField(c.variant), c.steps[t], c.runs[t],
                           Num(c.mean[t]), Num(c.min[t]), Num(c.max[t]));
        dat += fmt::format("{}\t{}\t{}\t{}\t{}\n", c.steps[t], Num(c.mean[t]), Num(c.min[t]), Num(c.max[t]),
                           c.runs[t]);
      }
      dat += "\n\n";
    }
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "diagnostics_curves.csv", csv, files));
    TOKENRL_RETURN_IF_ERROR(WriteOut(out, "plots/diagnostics.dat", dat, files));
  }

  // gnuplot scripts, then the images.
  const PlotText text{score_label, ci};
  struct Figure {
    std::string name;
    std::string body;
    int width = 900;
    int height = 560;
  };
  std::vector<Figure> figures;
  {
    Figure f{"aggregates", ""};
    f.body = AggregatesPlot(result, text, agg_options, &f.width, &f.height);
    figures.push_back(f);
    const std::string curves = LearningCurvesPlot(result, text, curve_options);
    if (!curves.empty()) figures.push_back({"learning_curves", curves});
    figures.push_back({"performance_profile", ProfilePlot(result, text, profile_options)});
    Figure diag{"diagnostics", ""};
    diag.body = DiagnosticsPlot(result, &diag.width, &diag.height);
    if (!diag.body.empty()) figures.push_back(diag);
  }
  for (const auto& f : figures) {
    TOKENRL_RETURN_IF_ERROR(
        WriteOut(out, "plots/" + f.name + ".gp", GnuplotScript(f.name, f.width, f.height, f.body), files));
  }
  std::set<std::string> drawn;
  if (options.plots) {
    const std::string gnuplot = FindExecutable(options.gnuplot.empty() ? "gnuplot" : options.gnuplot);
    if (gnuplot.empty()) {
      warnings.push_back(fmt::format(
          "GNUPLOT NOT FOUND{}: NO PLOTS WERE DRAWN. The data and scripts are in {}/plots/; install gnuplot "
          "(Debian/Ubuntu: apt-get install gnuplot-nox) and run `cd {}/plots && for f in *.gp; do gnuplot $f; "
          "done`, or rerun tokenrl report",
          options.gnuplot.empty() ? " on $PATH" : " (" + options.gnuplot + ")", out, out));
    } else {
      for (const auto& f : figures) {
        const std::string error = RunGnuplot(gnuplot, fs::path(out) / "plots", f.name + ".gp");
        const bool ok = NonEmptyFile(fs::path(out) / (f.name + ".png")) &&
                        NonEmptyFile(fs::path(out) / (f.name + ".svg"));
        if (!error.empty() || !ok) {
          warnings.push_back(error.empty() ? fmt::format("gnuplot produced no {}.png/.svg", f.name) : error);
          continue;
        }
        drawn.insert(f.name);
        files.push_back(f.name + ".png");
        files.push_back(f.name + ".svg");
      }
    }
  }
  result.plots_drawn = drawn.size() == figures.size();

  // report.md / report.html
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
                   fmt::format("Final score of a run: its last evaluation return (eval_return_mean); confidence "
                               "intervals: {} stratified bootstrap, seed {} ({} replicates for the table, {} for "
                               "curves, {} for profiles)",
                               ci, options.seed, options.reps, options.curve_reps, options.profile_reps),
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
  Heading(d, 2, "Performance profiles");
  Paragraph(d, fmt::format("Fraction of all run x task final scores above each threshold τ, with pointwise {} "
                           "bands. A curve above another is better everywhere on the grid.",
                           ci));
  Image(d, "performance_profile", "Performance profiles", drawn.count("performance_profile") > 0);
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
  return result;
}

}  // namespace tokenrl::stats
