#pragma once
// Expert-utilization interventions (paper section 6 / Appendix B.5;
// softmoe_reference.md sections 7.4 and 12), written once against the
// nn::Learner interface (parameter access by name) and nn/init.h, so they work
// on every backend. Torch-free.
//
// Which parameters belong to expert j: every parameter named
// "mixer.experts.*" has the experts as its first per-member dimension
// ([n, ...]); expert j's values are the contiguous block j of numel / n values.
// The router is "mixer.phi" (SoftMoE, [D, n, p]) or "mixer.router.weight"
// (token / expert choice, [D, n]); it is reset as a whole (its expert columns
// are not contiguous). SoftMoE's "mixer.scale" and every other parameter are
// never touched.
//
// Fresh values ("theta_fresh") are drawn exactly as at construction (the same
// InitSpec per parameter as the torch backend's moe.cc), from the stream
// ParameterSeed(seed, member, name) where `seed` is the intervention's own
// seed (the trainer derives it from the learner seed and the env step), so an
// intervention is a pure function of (weights, seed): resume reproduces it.
//  * Reset:           theta_j <- theta_fresh_j.
//  * Shrink & Perturb (Ash & Adams 2020): theta_j <- alpha theta_j + beta
//                     theta_fresh_j.
//  * Prune:           theta_j <- 0. A pruned expert (all its weights and
//                     biases zero) outputs exactly zero for every slot, so
//                     its slots are removed from the output: the tokens keep
//                     their combine weights on the remaining experts'
//                     slots, unrenormalized (the pruned slots' share is
//                     dropped). Gradients would regrow the output bias, so
//                     the trainer re-applies the pruning (values and Adam
//                     moments) after every training iteration: the network
//                     that acts, is evaluated, logged and checkpointed always
//                     has the pruned experts at exactly zero.
// With reset_optimizer, the Adam moments of exactly the touched values are
// zeroed (ReDo convention; Learner::ResetOptimizerStateRange).

#include <cstdint>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/init.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::agents {

// Number of experts n of the learner's network (the first dimension of
// "mixer.experts.*" parameters); 0 when the network has no experts.
int64_t NumExperts(const nn::Learner& learner);

// The names of the parameters an intervention touches: the experts' and, when
// `include_router`, the router's.
std::vector<std::string> ExpertParameterNames(const nn::Learner& learner);
std::vector<std::string> RouterParameterNames(const nn::Learner& learner);

// The initializer of parameter `name` as the network builds it (expert and
// router parameters only). NotFound for any other name.
StatusOr<nn::InitSpec> FreshInitSpec(const nn::Learner& learner, const std::string& name);

struct InterventionTarget {
  std::vector<int> experts;     // Expert indices (each in [0, n)).
  bool include_router = false;  // Also the whole router.
  bool reset_optimizer = true;  // Zero the Adam moments of the touched values.
};

// theta <- alpha theta + beta theta_fresh on the target of member `member`
// (Reset: alpha = 0, beta = 1; Prune: alpha = beta = 0).
Status MixExperts(nn::Learner& learner, int member, const InterventionTarget& target, double alpha, double beta,
                  uint64_t seed);

inline Status ResetExperts(nn::Learner& learner, int member, const InterventionTarget& target, uint64_t seed) {
  return MixExperts(learner, member, target, 0.0, 1.0, seed);
}
inline Status ShrinkPerturbExperts(nn::Learner& learner, int member, const InterventionTarget& target, double alpha,
                                   double beta, uint64_t seed) {
  return MixExperts(learner, member, target, alpha, beta, seed);
}
inline Status PruneExperts(nn::Learner& learner, int member, const InterventionTarget& target) {
  return MixExperts(learner, member, target, 0.0, 0.0, 0);
}

// The k experts with the highest score (e.g. dormant fraction), ties to the
// lower index; k <= 0 or k >= n: all experts. Result sorted ascending.
// `exclude`: experts never chosen (e.g. already pruned).
std::vector<int> TopExperts(const std::vector<double>& scores, int64_t k, const std::vector<int>& exclude = {});

}  // namespace tokenrl::agents
