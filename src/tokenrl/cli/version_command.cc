// `tokenrl version`: build facts, including whether the libtorch backend is in.

#include <iostream>

#include "tokenrl/cli/commands.h"
#include "tokenrl/nn/cpu/vector_isa.h"
#ifdef TOKENRL_HAVE_TORCH
#include "tokenrl/nn/torch/torch_info.h"
#endif

namespace tokenrl::cli {

void AddVersionCommand(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the version and the available learner backends");
  cmd->callback([&exit_code] {
    std::cout << "tokenrl 0.1.0\n";
#ifdef TOKENRL_HAVE_TORCH
    std::cout << "libtorch backend: " << nn::TorchBackendInfo() << "\n";
#else
    std::cout << "libtorch backend: not built (configure with libtorch installed, or -DTOKENRL_WITH_TORCH=ON)\n";
#endif
    // The ISA first: resolving it may cap oneDNN, whose answer follows.
    const StatusOr<nn::cpu::VectorIsa> requested = nn::cpu::RequestedVectorIsa();
    const std::string_view loops = nn::cpu::VectorIsaName(nn::cpu::ActiveVectorIsa());
    std::cout << "cpu engine: elementwise loops " << loops << ", oneDNN GEMMs " << nn::cpu::OneDnnIsaName()
              << " (CPU's best: " << nn::cpu::VectorIsaName(nn::cpu::DetectVectorIsa())
              << "; $TOKENRL_CPU_ISA caps both)\n";
    if (!requested.ok()) {
      std::cerr << "error: " << requested.status().message() << "\n";
      exit_code = 1;
      return;
    }
    exit_code = 0;
  });
}

}  // namespace tokenrl::cli
