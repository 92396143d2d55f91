// The CPU engine's ISA switch (vector_isa.h): $TOKENRL_CPU_ISA selects the
// elementwise loops' clone and caps oneDNN, so that the ctest entries
// nn_tests_{avx2,baseline} and nn_torch_tests_{avx2,baseline} really run the
// other code paths; a bad value is an error before any work.

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tokenrl/nn/cpu/blas.h"
#include "tokenrl/nn/cpu/vector_isa.h"
#include "tokenrl/nn/learner.h"

namespace tokenrl::nn::cpu {
namespace {

// Sets $TOKENRL_CPU_ISA for one scope; restores the previous value.
class ScopedIsaVariable {
 public:
  explicit ScopedIsaVariable(const char* value) {
    if (const char* old = std::getenv("TOKENRL_CPU_ISA")) old_ = old;
    ::setenv("TOKENRL_CPU_ISA", value, 1);
  }
  ~ScopedIsaVariable() {
    if (old_) {
      ::setenv("TOKENRL_CPU_ISA", old_->c_str(), 1);
    } else {
      ::unsetenv("TOKENRL_CPU_ISA");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(VectorIsaTest, ParsesNamesAsACapAtTheCpusBest) {
  const VectorIsa best = DetectVectorIsa();
  const std::vector<std::pair<const char*, VectorIsa>> cases{
      {"avx512", VectorIsa::kAvx512}, {"avx2", VectorIsa::kAvx2}, {"baseline", VectorIsa::kBaseline}};
  for (const auto& [name, isa] : cases) {
    ScopedIsaVariable scoped(name);
    const auto requested = RequestedVectorIsa();
    ASSERT_TRUE(requested.ok()) << requested.status().ToString();
    EXPECT_EQ(*requested, static_cast<int>(isa) < static_cast<int>(best) ? isa : best) << name;
    EXPECT_EQ(VectorIsaName(isa), name);
  }
  {
    ScopedIsaVariable scoped("");
    EXPECT_EQ(RequestedVectorIsa().value(), best);
  }
}

TEST(VectorIsaTest, UnknownNameIsAnErrorBeforeALearnerIsBuilt) {
  ScopedIsaVariable scoped("avx1024");
  const auto requested = RequestedVectorIsa();
  ASSERT_FALSE(requested.ok());
  EXPECT_NE(requested.status().message().find("expected avx512, avx2 or baseline"), std::string::npos)
      << requested.status().message();
  NetworkConfig network;
  LearnerConfig config;
  config.backend = "cpu";
  auto learner = MakeLearner(network, config, {.channels = 4, .height = 10, .width = 10, .num_actions = 3}, 1);
  ASSERT_FALSE(learner.ok());
  EXPECT_NE(learner.status().message().find("TOKENRL_CPU_ISA"), std::string::npos) << learner.status().message();
}

// What this process runs: the requested cap, in the loops and in oneDNN.
TEST(VectorIsaTest, ActiveIsaFollowsTheEnvironment) {
  const auto requested = RequestedVectorIsa();
  ASSERT_TRUE(requested.ok()) << requested.status().ToString();
  EXPECT_EQ(ActiveVectorIsa(), *requested);
  // A GEMM, so that oneDNN has dispatched.
  const std::vector<float> a{1, 2, 3, 4}, b{5, 6, 7, 8};
  std::vector<float> c(4);
  Gemm(false, false, 2, 2, 2, 1.0f, a.data(), 2, b.data(), 2, 0.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{19, 22, 43, 50}));
  const std::string onednn(OneDnnIsaName());
  std::cout << "loops " << VectorIsaName(ActiveVectorIsa()) << ", oneDNN " << onednn << "\n";
  const char* cap = std::getenv("TOKENRL_CPU_ISA");
  if (cap != nullptr && *cap != '\0') {
    switch (*requested) {
      case VectorIsa::kBaseline: EXPECT_EQ(onednn, "sse41"); break;
      case VectorIsa::kAvx2: EXPECT_EQ(onednn, "avx2"); break;
      case VectorIsa::kAvx512: EXPECT_EQ(onednn.rfind("avx512_core", 0), 0u) << onednn; break;
    }
  }
}

}  // namespace
}  // namespace tokenrl::nn::cpu
