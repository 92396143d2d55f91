#pragma once
// Torch-free helpers behind Learner::Diagnostics (learner.h), shared by every
// backend and tested on hand-made values.

#include <cstdint>
#include <span>
#include <vector>

namespace tokenrl::nn {

// Dormant fraction (Sokar et al. 2023) of one layer from its units' mean
// absolute activations `unit_means` (mean |a_u| over the batch): unit u is
// dormant at tau when unit_means[u] / mean(unit_means) <= tau. A layer whose
// mean is 0 (all units silent) is wholly dormant. Empty input: 0.
double DormantFraction(std::span<const double> unit_means, double tau);

// Mean |a| per unit of activations `values` laid out [rows, units].
std::vector<double> UnitMeanAbs(std::span<const float> values, int64_t rows, int64_t units);

// srank_delta (Kumar et al. 2021) of singular values sorted descending: the
// smallest k with sum_{i<=k} s_i >= (1 - delta) sum_i s_i (0 when all zero).
int64_t SRank(std::span<const double> singular_values, double delta = 0.01);

}  // namespace tokenrl::nn
