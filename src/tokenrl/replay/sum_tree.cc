#include "tokenrl/replay/sum_tree.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tokenrl::replay {

namespace {
bool ValidPriority(double p) { return std::isfinite(p) && p >= 0.0; }
}  // namespace

SumTree::SumTree(int64_t capacity) : capacity_(capacity) {
  TOKENRL_CHECK(capacity > 0, "SumTree capacity must be positive, got {}", capacity);
  leaf_offset_ = 1;
  while (leaf_offset_ < capacity_) leaf_offset_ *= 2;
  nodes_.assign(2 * leaf_offset_, 0.0);
}

void SumTree::Set(int64_t index, double priority) {
  TOKENRL_CHECK(index >= 0 && index < capacity_, "SumTree index {} out of range [0, {})", index, capacity_);
  TOKENRL_CHECK(ValidPriority(priority), "SumTree priority must be finite and >= 0, got {}", priority);
  max_recorded_priority_ = std::max(max_recorded_priority_, priority);
  int64_t node = leaf_offset_ + index;
  nodes_[node] = priority;
  // Recompute (not delta-update) ancestors so each node is exactly the sum of its children.
  for (node /= 2; node >= 1; node /= 2) nodes_[node] = nodes_[2 * node] + nodes_[2 * node + 1];
}

double SumTree::Get(int64_t index) const {
  TOKENRL_CHECK(index >= 0 && index < capacity_, "SumTree index {} out of range [0, {})", index, capacity_);
  return nodes_[leaf_offset_ + index];
}

int64_t SumTree::FindPrefixSum(double value) const {
  TOKENRL_CHECK(Total() > 0.0, "FindPrefixSum on a tree whose total is 0");
  TOKENRL_CHECK(std::isfinite(value) && value >= 0.0, "FindPrefixSum value must be finite and >= 0, got {}", value);
  // Descent invariant: the current node's sum is positive. Go left while the
  // value falls inside the left sum; otherwise subtract it and go right. When
  // rounding would lead into a zero subtree, take the other (positive) child.
  int64_t node = 1;
  while (node < leaf_offset_) {
    const double left = nodes_[2 * node];
    const double right = nodes_[2 * node + 1];
    if (left > 0.0 && (value < left || right <= 0.0)) {
      node = 2 * node;
    } else {
      value -= left;
      node = 2 * node + 1;
    }
  }
  return node - leaf_offset_;
}

void SumTree::Clear() {
  std::fill(nodes_.begin(), nodes_.end(), 0.0);
  max_recorded_priority_ = 1.0;
}

void SumTree::Rebuild() {
  for (int64_t node = leaf_offset_ - 1; node >= 1; --node) nodes_[node] = nodes_[2 * node] + nodes_[2 * node + 1];
}

void SumTree::Save(ByteWriter& writer) const {
  writer.Write<int64_t>(capacity_);
  writer.Write<double>(max_recorded_priority_);
  std::vector<double> leaves(nodes_.begin() + leaf_offset_, nodes_.begin() + leaf_offset_ + capacity_);
  writer.WriteVector(leaves);
}

Status SumTree::Load(ByteReader& reader) {
  int64_t capacity = 0;
  double max_recorded = 0.0;
  std::vector<double> leaves;
  if (!reader.Read(capacity) || !reader.Read(max_recorded) || !reader.ReadVector(leaves)) {
    return Status::Corruption("SumTree: truncated state");
  }
  if (capacity != capacity_ || static_cast<int64_t>(leaves.size()) != capacity_) {
    return Status::Corruption(
        fmt::format("SumTree: saved capacity {} ({} leaves) != capacity {}", capacity, leaves.size(), capacity_));
  }
  // Priorities come from float losses (loss^alpha, alpha <= 1), so none
  // exceeds the largest float; a larger one (finite as a double) would let the
  // total, and the sampling values, overflow to infinity once slots are added
  // at the max recorded priority (found by tests/fuzz/replay_state_fuzz.cc).
  const auto saved_priority = [](double p) { return ValidPriority(p) && p <= std::numeric_limits<float>::max(); };
  if (!saved_priority(max_recorded) || max_recorded < 1.0 || !std::all_of(leaves.begin(), leaves.end(), saved_priority)) {
    return Status::Corruption("SumTree: invalid priority in saved state");
  }
  std::fill(nodes_.begin(), nodes_.end(), 0.0);
  std::copy(leaves.begin(), leaves.end(), nodes_.begin() + leaf_offset_);
  Rebuild();
  max_recorded_priority_ = max_recorded;
  return Status::Ok();
}

}  // namespace tokenrl::replay
