// The libtorch backend is linked and usable (the dependency wiring; the
// networks themselves arrive with the networks issue).

#include "tokenrl/nn/torch/torch_info.h"

#include <gtest/gtest.h>

namespace tokenrl::nn {
namespace {

TEST(TorchInfoTest, ReportsLinkedLibtorch) {
  const std::string info = TorchBackendInfo();
  EXPECT_EQ(info.rfind("libtorch ", 0), 0u) << info;
  EXPECT_NE(info.find("CUDA: "), std::string::npos) << info;
}

}  // namespace
}  // namespace tokenrl::nn
