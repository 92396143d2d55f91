#pragma once
// Which vector instructions the CPU engine runs with, and one switch that caps
// them, so that every code path a user's CPU can take is testable on any
// AVX-512 machine (CI runs the nn tests under each cap, .ci/run).
//
// Two parts of the engine depend on the CPU:
//  * oneDNN's GEMMs, JIT-compiled for the widest ISA oneDNN finds;
//  * the hand-written elementwise loops (Adam, the MoE softmaxes, bias+ReLU,
//    column sums), each compiled three times by TOKENRL_VECTOR_KERNEL below:
//    AVX-512F, AVX2+FMA, and the x86-64 baseline (SSE2).
// $TOKENRL_CPU_ISA = avx512 | avx2 | baseline caps both: the loops run that
// clone, and oneDNN's dispatcher is capped at AVX512_CORE / AVX2 / SSE41
// (oneDNN's own $ONEDNN_MAX_CPU_ISA still works for oneDNN alone). Unset or
// empty: the best the CPU has. The choice is made once per process, before
// the first GEMM. Results are reproducible per (ISA, machine): the clones sum
// in different orders, so they round differently.

#include <string_view>

#include "tokenrl/core/status.h"

namespace tokenrl::nn::cpu {

enum class VectorIsa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// "baseline", "avx2", "avx512".
std::string_view VectorIsaName(VectorIsa isa);

// The widest of the three that this CPU supports.
VectorIsa DetectVectorIsa();

// The ISA that $TOKENRL_CPU_ISA asks for, capped at DetectVectorIsa() (a cap
// above the CPU's best is no cap); DetectVectorIsa() when it is unset or
// empty. InvalidArgument for an unknown name. Reads the environment on every
// call (ActiveVectorIsa() does so once).
StatusOr<VectorIsa> RequestedVectorIsa();

// The ISA in force for this process: RequestedVectorIsa() on the first call
// (which also caps oneDNN when $TOKENRL_CPU_ISA is set), the detected ISA if
// that request was invalid. The CPU learner checks RequestedVectorIsa() first,
// so a bad $TOKENRL_CPU_ISA is an error there, before any work.
VectorIsa ActiveVectorIsa();

// oneDNN's effective maximal ISA, in oneDNN's words ("avx512_core", "avx2",
// "sse41", ...), for version output and tests.
std::string_view OneDnnIsaName();

}  // namespace tokenrl::nn::cpu

// Defines `name(args...)`, which runs `body(args...)` compiled for the active
// ISA, and `name##Avx512`, `name##Avx2`, `name##Baseline` (each clone, for
// tests; the first two only on a CPU that has the ISA). `body` must be an
// `inline [[gnu::always_inline]]` function: it is inlined into, and so
// vectorized for, each clone.
#if defined(__x86_64__) && defined(__GNUC__)
#define TOKENRL_VECTOR_KERNEL(name, body)                                                      \
  template <class... Args>                                                                     \
  [[gnu::target("avx512f")]] void name##Avx512(Args... args) {                                 \
    body(args...);                                                                             \
  }                                                                                            \
  template <class... Args>                                                                     \
  [[gnu::target("avx2,fma")]] void name##Avx2(Args... args) {                                  \
    body(args...);                                                                             \
  }                                                                                            \
  template <class... Args>                                                                     \
  void name##Baseline(Args... args) {                                                          \
    body(args...);                                                                             \
  }                                                                                            \
  template <class... Args>                                                                     \
  void name(Args... args) {                                                                    \
    switch (::tokenrl::nn::cpu::ActiveVectorIsa()) {                                           \
      case ::tokenrl::nn::cpu::VectorIsa::kAvx512: return name##Avx512(args...);               \
      case ::tokenrl::nn::cpu::VectorIsa::kAvx2: return name##Avx2(args...);                   \
      case ::tokenrl::nn::cpu::VectorIsa::kBaseline: break;                                    \
    }                                                                                          \
    name##Baseline(args...);                                                                   \
  }
#define TOKENRL_HAVE_VECTOR_CLONES 1
#else
#define TOKENRL_VECTOR_KERNEL(name, body) \
  template <class... Args>                \
  void name##Baseline(Args... args) {     \
    body(args...);                        \
  }                                       \
  template <class... Args>                \
  void name(Args... args) {               \
    body(args...);                        \
  }
#define TOKENRL_HAVE_VECTOR_CLONES 0
#endif
