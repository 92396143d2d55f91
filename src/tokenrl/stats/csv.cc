#include "tokenrl/stats/csv.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace tokenrl::stats {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Splits one line into fields; returns false on an unterminated quote.
bool SplitLine(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool in_quotes = false;
  bool was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"' && Trim(field).empty()) {
      in_quotes = true;
      was_quoted = true;
      field.clear();
    } else if (c == ',') {
      fields.push_back(was_quoted ? field : std::string(Trim(field)));
      field.clear();
      was_quoted = false;
    } else if (!(was_quoted && (c == ' ' || c == '\t' || c == '\r'))) {
      field += c;
    }
  }
  if (in_quotes) return false;
  fields.push_back(was_quoted ? field : std::string(Trim(field)));
  return true;
}

}  // namespace

StatusOr<int> CsvTable::Column(std::string_view name) const {
  const std::string want = Lower(name);
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == want) return static_cast<int>(i);
  }
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ",") + h;
  return Status::InvalidArgument(
      fmt::format("{}: the header has no column \"{}\" (header is \"{}\")", source, want, have));
}

StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view source) {
  CsvTable table;
  table.source = std::string(source);
  std::vector<std::string> fields;
  int line_number = 0;
  bool have_header = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    if (!SplitLine(line, fields)) {
      return Status::InvalidArgument(fmt::format("{}:{}: unterminated double quote", source, line_number));
    }
    if (!have_header) {
      for (auto& f : fields) f = Lower(f);
      table.header = fields;
      have_header = true;
    } else {
      if (fields.size() != table.header.size()) {
        return Status::InvalidArgument(fmt::format("{}:{}: {} fields, but the header has {} columns", source,
                                                   line_number, fields.size(), table.header.size()));
      }
      table.rows.push_back(CsvRow{line_number, fields});
    }
    if (end == text.size()) break;
  }
  if (!have_header) return Status::InvalidArgument(fmt::format("{}: empty file (no header line)", source));
  return table;
}

StatusOr<double> ParseDouble(std::string_view text, std::string_view where) {
  std::string_view s = Trim(text);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double value = 0.0;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  if (s.empty() || ec == std::errc::invalid_argument || ptr != last) {
    return Status::InvalidArgument(fmt::format("{}: \"{}\" is not a number", where, text));
  }
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument(fmt::format("{}: \"{}\" is out of the range of a double", where, text));
  }
  return value;
}

}  // namespace tokenrl::stats
