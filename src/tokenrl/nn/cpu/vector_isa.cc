#include "tokenrl/nn/cpu/vector_isa.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <string>

namespace tokenrl::nn::cpu {

std::string_view VectorIsaName(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::kAvx512: return "avx512";
    case VectorIsa::kAvx2: return "avx2";
    case VectorIsa::kBaseline: break;
  }
  return "baseline";
}

VectorIsa DetectVectorIsa() {
#if TOKENRL_HAVE_VECTOR_CLONES
  if (__builtin_cpu_supports("avx512f")) return VectorIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VectorIsa::kAvx2;
#endif
  return VectorIsa::kBaseline;
}

StatusOr<VectorIsa> RequestedVectorIsa() {
  const char* value = std::getenv("TOKENRL_CPU_ISA");
  const VectorIsa detected = DetectVectorIsa();
  if (value == nullptr || *value == '\0') return detected;
  const std::string name = value;
  VectorIsa isa;
  if (name == "avx512") {
    isa = VectorIsa::kAvx512;
  } else if (name == "avx2") {
    isa = VectorIsa::kAvx2;
  } else if (name == "baseline") {
    isa = VectorIsa::kBaseline;
  } else {
    return Status::InvalidArgument(
        fmt::format("TOKENRL_CPU_ISA=\"{}\": expected avx512, avx2 or baseline (or unset for the CPU's best)", name));
  }
  // A cap: above what the CPU has, the CPU's best.
  return static_cast<int>(isa) < static_cast<int>(detected) ? isa : detected;
}

VectorIsa ActiveVectorIsa() {
  static const VectorIsa active = [] {
    const StatusOr<VectorIsa> requested = RequestedVectorIsa();
    const VectorIsa isa = requested.ok() ? *requested : DetectVectorIsa();
    const char* value = std::getenv("TOKENRL_CPU_ISA");
    if (requested.ok() && value != nullptr && *value != '\0') {
      // Effective only before oneDNN's first kernel: Gemm() resolves the ISA
      // before its first call.
      const dnnl_cpu_isa_t cap = isa == VectorIsa::kAvx512 ? dnnl_cpu_isa_avx512_core
                                 : isa == VectorIsa::kAvx2 ? dnnl_cpu_isa_avx2
                                                           : dnnl_cpu_isa_sse41;
      dnnl_set_max_cpu_isa(cap);
    }
    return isa;
  }();
  return active;
}

std::string_view OneDnnIsaName() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace tokenrl::nn::cpu
