// Learning smoke test on the built-in CPU engine (torch-free; ~2 s): see
// testing/learning_smoke.h. tests/nn/torch/learning_smoke_test.cc runs the
// same on the torch backend.

#include "testing/learning_smoke.h"

namespace tokenrl::runner {
namespace {

TEST(CpuLearningSmokeTest, DqnBeatsRandomOnMinatarBreakout) {
  testing::ExpectDqnBeatsRandomOnMinatarBreakout("cpu");
}

}  // namespace
}  // namespace tokenrl::runner
