#include "tokenrl/nn/cpu/blas.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include "tokenrl/core/status.h"
#include "tokenrl/nn/cpu/vector_isa.h"

// libgomp's: oneDNN (Debian's build) runs on OpenMP.
extern "C" void omp_set_num_threads(int threads);

namespace tokenrl::nn::cpu {

void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  // One OpenMP thread for the GEMMs this thread issues (an OpenMP setting is
  // per calling thread, so each member thread sets its own once). The ISA is
  // resolved before oneDNN's first kernel: it may cap oneDNN's dispatcher.
  static thread_local const bool single_threaded = [] {
    ActiveVectorIsa();
    omp_set_num_threads(1);
    return true;
  }();
  (void)single_threaded;
  const dnnl_status_t status =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  TOKENRL_CHECK(status == dnnl_success, "dnnl_sgemm failed ({}) for {}x{}x{}", static_cast<int>(status), m, n, k);
}

void SetBlasThreads(int threads) { openblas_set_num_threads(threads); }

}  // namespace tokenrl::nn::cpu
