#pragma once
// A small, strict CSV reader for the stats component's input tables (score
// tables and normalization references). Not a general CSV library: one header
// line, comma separators, optional double quotes ("" inside quotes is a quote),
// '#' comment lines and blank lines skipped, fields trimmed of spaces/tabs.

#include <string>
#include <string_view>
#include <vector>

#include "tokenrl/core/status.h"

namespace tokenrl::stats {

struct CsvRow {
  int line = 0;                     // 1-based line number in the source text.
  std::vector<std::string> fields;  // Exactly as many as the header has.
};

struct CsvTable {
  std::string source;               // File name (or label) for messages.
  std::vector<std::string> header;  // Column names, lower-cased.
  std::vector<CsvRow> rows;

  // Index of the column called `name` (case-insensitive). Errors
  // (InvalidArgument): no such column; the message lists the header.
  StatusOr<int> Column(std::string_view name) const;
};

// Splits `text` into a header and rows. Errors (InvalidArgument, with
// "<source>:<line>"): empty input, an unterminated quote, a row whose field
// count differs from the header's.
StatusOr<CsvTable> ParseCsv(std::string_view text, std::string_view source);

// Parses a whole field as a double (a leading '+' is allowed; "nan"/"inf" parse
// and are left to the caller to reject). Errors (InvalidArgument, prefixed by
// `where`): empty text, trailing characters, not a number.
StatusOr<double> ParseDouble(std::string_view text, std::string_view where);

}  // namespace tokenrl::stats
