#pragma once
// The GEMM the CPU engine is built on: oneDNN's dnnl_sgemm (Debian
// libdnnl-dev), row-major, single-threaded per call: members are spread over
// threads instead (style.md: two threads inside one small GEMM do not scale on
// this machine). oneDNN JIT-compiles kernels for the CPU's widest vector
// instructions (AVX-512 here; vector_isa.h caps it); on this engine's shapes it measured about 2x
// OpenBLAS 0.3.21 (bench: 32x1600x128 57 us vs 131 us, 3200x36x16 21 us vs 40 us).

#include <cstdint>

namespace tokenrl::nn::cpu {

// C[m, n] = alpha * op(A)[m, k] op(B)[k, n] + beta * C, row-major with
// leading dimensions lda, ldb, ldc (op = transpose when trans_*).
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Sets OpenBLAS's thread count (process-wide; the torch backend and LAPACK
// calls go through OpenBLAS); the engine calls it with 1.
void SetBlasThreads(int threads);

}  // namespace tokenrl::nn::cpu
