// Learning smoke test on the torch backend (~6 s): see
// testing/learning_smoke.h. tests/runner/learning_smoke_test.cc runs the same
// on the CPU engine.

#include "testing/learning_smoke.h"
#include "tokenrl/nn/torch/torch_learner.h"

namespace tokenrl::runner {
namespace {

TEST(LearningSmokeTest, DqnBeatsRandomOnMinatarBreakout) {
  nn::RegisterTorchLearnerBackend();
  testing::ExpectDqnBeatsRandomOnMinatarBreakout("torch");
}

}  // namespace
}  // namespace tokenrl::runner
