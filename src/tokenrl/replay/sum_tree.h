#pragma once
// SumTree: a binary tree over a fixed number of non-negative float64
// priorities in which every internal node holds the sum of its children, so
// that proportional sampling is one O(log capacity) descent. This is the data
// structure behind prioritized replay (Schaul et al., 2016), with Dopamine's
// semantics (`dopamine/replay_memory/sum_tree.py`):
//   - leaves start at priority 0 and a priority-0 leaf is never returned;
//   - `max_recorded_priority()` starts at 1.0 and is the largest priority ever
//     Set (it never decreases, not even on overwrite; Clear resets it to 1.0).
//
// Unlike Dopamine, which propagates a delta up the tree, Set recomputes each
// ancestor as the floating-point sum of its two children, so "every internal
// node equals the sum of its children" holds exactly, with no drift over
// millions of updates.
//
// Layout (exposed for tests through `nodes()`): a heap-ordered array of size
// 2 * leaf_offset(); the root is nodes()[1], node k has children 2k and 2k+1,
// and leaf i is nodes()[leaf_offset() + i]. leaf_offset() is the smallest power
// of two >= capacity; padding leaves stay 0.
//
// Not thread-safe; one tree per replay member.

#include <cstdint>
#include <vector>

#include "tokenrl/core/serialization.h"
#include "tokenrl/core/status.h"

namespace tokenrl::replay {

class SumTree {
 public:
  // REQUIRES: capacity > 0.
  explicit SumTree(int64_t capacity);

  int64_t capacity() const { return capacity_; }

  // Sets leaf `index` to `priority` and updates its ancestors; O(log capacity).
  // REQUIRES: 0 <= index < capacity(); priority is finite and >= 0 (a negative,
  // NaN or infinite priority is a programming error upstream: checked, aborts).
  void Set(int64_t index, double priority);

  // The priority of leaf `index`. REQUIRES: 0 <= index < capacity().
  double Get(int64_t index) const;

  // Sum of all priorities (the root); 0 for an empty tree.
  double Total() const { return nodes_[1]; }

  // The leaf i such that (sum of leaves < i) <= value < (sum of leaves <= i),
  // i.e. the leaf that owns `value` when the leaves are laid end to end on
  // [0, Total()). The returned leaf always has a positive priority: a value on
  // a boundary, or one at or past Total() through rounding, goes to the nearest
  // positive leaf on its left (or right if there is none).
  // REQUIRES: Total() > 0; value >= 0 and finite.
  int64_t FindPrefixSum(double value) const;

  // The largest priority ever passed to Set since construction or Clear, and
  // at least 1.0 (Dopamine's initial value). New replay items get this.
  double max_recorded_priority() const { return max_recorded_priority_; }

  // All leaves to 0 and max_recorded_priority() back to 1.0.
  void Clear();

  // Checkpointing. Only the leaves and max_recorded_priority are written;
  // Load rebuilds the internal nodes. Load fails with Corruption on truncated
  // input, a capacity that differs from this tree's, or an invalid priority,
  // and leaves the tree unchanged in that case.
  void Save(ByteWriter& writer) const;
  Status Load(ByteReader& reader);

  // Heap-ordered node array; see the layout note at the top of this file.
  const std::vector<double>& nodes() const { return nodes_; }
  int64_t leaf_offset() const { return leaf_offset_; }

 private:
  void Rebuild();

  int64_t capacity_;
  int64_t leaf_offset_;        // Smallest power of two >= capacity_.
  std::vector<double> nodes_;  // Size 2 * leaf_offset_; nodes_[0] unused.
  double max_recorded_priority_ = 1.0;
};

}  // namespace tokenrl::replay
