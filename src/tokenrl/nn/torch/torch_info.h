#pragma once
// Facts about the linked libtorch, behind a torch-free header so that callers
// never include <torch/torch.h>.

#include <string>

namespace tokenrl::nn {

// "libtorch <version>, CUDA: <yes (N devices)|no>, intra-op threads: <n>".
std::string TorchBackendInfo();

}  // namespace tokenrl::nn
