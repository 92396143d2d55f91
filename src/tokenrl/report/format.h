#pragma once
// Text and file helpers shared by the report's writers (tables.cc,
// gnuplot.cc, document.cc): number formats, escaping for CSV, Markdown, HTML,
// gnuplot and the shell, the colour palette, and writing one output file.
// Internal to the report component.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/stats/aggregates.h"
#include "tokenrl/stats/bootstrap.h"

namespace tokenrl::report {

struct ReportOptions;  // types.h

// Colour-blind-safe palette (seaborn "colorblind", as rliable's figures):
// "#rrggbb" of variant i, and the same as an integer (gnuplot's rgb variable).
std::string Color(size_t i);
long ColorInt(size_t i);

// The order of the table's columns (the brief's: IQM, median, mean, gap).
inline constexpr stats::Aggregate kTableOrder[] = {stats::Aggregate::kIqm, stats::Aggregate::kMedian,
                                                   stats::Aggregate::kMean, stats::Aggregate::kOptimalityGap};

std::string Num(double v);    // Shortest round-trip.
std::string Fixed(double v);  // 3 decimals.
// "point [lower, upper]" with 3 decimals.
std::string CiText(const stats::IntervalEstimate& e);

std::string CsvField(const std::string& s);
std::string HtmlEscape(std::string_view s);
// Markdown table cell: pipes escaped, no newlines.
std::string MdCell(std::string_view s);
// A gnuplot double-quoted string literal.
std::string GpString(std::string_view s);
// A data-file field for gnuplot (tab separated): no tabs/newlines.
std::string GpField(std::string s);
std::string ShellQuote(std::string_view s);
// File-name-safe version of a variant name.
std::string Slug(std::string_view name);
std::string Join(const std::vector<std::string>& items, std::string_view sep);
// "b" of "a.b".
std::string LastSegment(std::string_view key);
// A TOML value's text without the quotes of a plain string.
std::string Unquote(const std::string& v);
// An integer written as a number ("5000", "5e3"); `where` names it in errors.
StatusOr<int64_t> ParseInteger(const std::string& text, const std::string& where);

// Writes out_dir/name (creating folders) and appends `name` to `files`.
Status WriteOut(const std::string& out_dir, const std::string& name, std::string_view text,
                std::vector<std::string>& files);
bool NonEmptyFile(const std::filesystem::path& p);

// Option-derived labels: "95% CI"; the score axis ("MinAtar-normalized score",
// "Human-normalized score", "Score (raw return)") of a resolved normalization.
std::string CiLabel(const ReportOptions& options);
std::string ScoreLabel(const std::string& normalize);

}  // namespace tokenrl::report
