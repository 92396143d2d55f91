#pragma once
// The libtorch Learner backend, behind a torch-free header: callers (the CLI,
// agents' tests) register it and then build learners through
// nn::MakeLearner(..., {.backend = "torch"}, ...). The implementation lives in
// torch_learner_impl.h / torch_learner.cc.

namespace tokenrl::nn {

// Registers the "torch" backend with nn::RegisterLearnerBackend. Idempotent.
// Note: building a torch learner calls torch::set_num_threads(
// LearnerConfig::num_threads) (and openblas_set_num_threads where libtorch
// uses an external OpenBLAS), which sets the intra-op thread count for the
// whole process: every learner in it shares that pool, and the last learner
// built decides its size.
void RegisterTorchLearnerBackend();

}  // namespace tokenrl::nn
