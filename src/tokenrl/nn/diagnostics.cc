#include "tokenrl/nn/diagnostics.h"

#include <cmath>

namespace tokenrl::nn {

double DormantFraction(std::span<const double> unit_means, double tau) {
  if (unit_means.empty()) return 0.0;
  double mean = 0.0;
  for (double m : unit_means) mean += m;
  mean /= static_cast<double>(unit_means.size());
  if (!(mean > 0.0)) return 1.0;
  int64_t dormant = 0;
  for (double m : unit_means) dormant += (m / mean <= tau) ? 1 : 0;
  return static_cast<double>(dormant) / static_cast<double>(unit_means.size());
}

std::vector<double> UnitMeanAbs(std::span<const float> values, int64_t rows, int64_t units) {
  std::vector<double> means(static_cast<size_t>(units), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t u = 0; u < units; ++u) means[u] += std::fabs(static_cast<double>(values[r * units + u]));
  if (rows > 0)
    for (double& m : means) m /= static_cast<double>(rows);
  return means;
}

int64_t SRank(std::span<const double> singular_values, double delta) {
  double total = 0.0;
  for (double s : singular_values) total += s;
  if (!(total > 0.0)) return 0;
  double cumulative = 0.0;
  for (size_t k = 0; k < singular_values.size(); ++k) {
    cumulative += singular_values[k];
    if (cumulative >= (1.0 - delta) * total) return static_cast<int64_t>(k + 1);
  }
  return static_cast<int64_t>(singular_values.size());
}

}  // namespace tokenrl::nn
