#include "tokenrl/nn/torch/torch_info.h"

#include <torch/torch.h>

#include <fmt/format.h>

namespace tokenrl::nn {

std::string TorchBackendInfo() {
  const bool cuda = torch::cuda::is_available();
  return fmt::format("libtorch {}, CUDA: {}, intra-op threads: {}", TORCH_VERSION,
                     cuda ? fmt::format("yes ({} devices)", torch::cuda::device_count()) : std::string("no"),
                     torch::get_num_threads());
}

}  // namespace tokenrl::nn
