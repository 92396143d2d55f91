// Fuzz target: the CSV readers behind `tokenrl stats` and `tokenrl report`
// (score tables, metrics.csv, the generic reader and its number parser).
// Contract: a Status or a valid table, never a crash; an accepted score table
// has finite scores and a full (run, task) grid.

#include <cmath>
#include <string>

#include "fuzz_support.h"
#include "tokenrl/report/run_data.h"
#include "tokenrl/stats/csv.h"
#include "tokenrl/stats/score_matrix.h"

namespace {
using tokenrl::fuzz::Require;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto table = tokenrl::stats::ParseCsv(text, "fuzz.csv");
  if (table.ok()) {
    for (const auto& row : table->rows) {
      Require(row.fields.size() == table->header.size(), "a row's field count differs from the header's");
      for (const auto& field : row.fields) (void)tokenrl::stats::ParseDouble(field, "fuzz.csv");
    }
  }
  auto scores = tokenrl::stats::ParseScoresCsv(text, "fuzz.csv");
  if (scores.ok()) {
    const auto& m = *scores;
    for (int r = 0; r < m.num_runs(); ++r) {
      for (int t = 0; t < m.num_tasks(); ++t) Require(std::isfinite(m(r, t)), "a non-finite score was accepted");
    }
  } else {
    Require(!scores.status().message().empty(), "a rejected score table must say why");
  }
  auto metrics = tokenrl::report::ParseMetricsCsv(text, "fuzz-metrics.csv");
  Require(metrics.ok() || !metrics.status().message().empty(), "a rejected metrics.csv must say why");
  return 0;
}
