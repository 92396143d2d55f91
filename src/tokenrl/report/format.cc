#include "tokenrl/report/format.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "tokenrl/core/file_util.h"
#include "tokenrl/report/types.h"
#include "tokenrl/stats/csv.h"

namespace tokenrl::report {

namespace fs = std::filesystem;

// Colour-blind-safe palette (seaborn "colorblind", as rliable's figures).
namespace {

constexpr const char* kPalette[] = {"#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc",
                                    "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9"};

}  // namespace

std::string Color(size_t i) { return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]; }
long ColorInt(size_t i) { return std::strtol(Color(i).c_str() + 1, nullptr, 16); }

std::string Num(double v) { return fmt::format("{}", v); }  // Shortest round-trip.
std::string Fixed(double v) { return fmt::format("{:.3f}", v); }

std::string CiText(const stats::IntervalEstimate& e) {
  return fmt::format("{} [{}, {}]", Fixed(e.point), Fixed(e.lower), Fixed(e.upper));
}

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
  TOKENRL_ASSIGN_OR_RETURN(const double v, stats::ParseDouble(text, where));
  if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9e15) {
    return Status::InvalidArgument(fmt::format("{}: expected an integer, got \"{}\"", where, text));
  }
  return static_cast<int64_t>(v);
}

Status WriteOut(const std::string& out_dir, const std::string& name, std::string_view text,
                std::vector<std::string>& files) {
  const std::filesystem::path path = fs::path(out_dir) / name;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return Status::IoError(fmt::format("cannot create {}: {}", path.parent_path().string(), ec.message()));
  TOKENRL_RETURN_IF_ERROR(WriteFileAtomic(path.string(), text));
  files.push_back(name);
  return Status::Ok();
}

bool NonEmptyFile(const std::filesystem::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && fs::file_size(p, ec) > 0;
}

std::string CiLabel(const ReportOptions& options) { return fmt::format("{:g}% CI", 100.0 * options.confidence); }

std::string ScoreLabel(const std::string& normalize) {
  return normalize == "minatar" ? "MinAtar-normalized score"
         : normalize == "atari" ? "Human-normalized score"
                                : "Score (raw return)";
}

}  // namespace tokenrl::report
