// The single core's float32 FMA peak, the yardstick for the CPU engine's
// GEMM efficiency (docs/benchmarks.md): 16 independent FMA chains per
// instruction set, so that latency never limits. Reports GFLOP/s (2 per FMA).
//   ./build/bench/tokenrl_bench --benchmark_filter=FmaPeak

#include <benchmark/benchmark.h>
#include <immintrin.h>

namespace {

constexpr int64_t kInner = 1 << 16;

#define TOKENRL_X16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define TOKENRL_DECLARE(i) auto a##i = SET1(1.0f + (i) * 1e-3f);
#define TOKENRL_FMA(i) a##i = FMA(a##i, b, c);
#define TOKENRL_KEEP(i) benchmark::DoNotOptimize(a##i);
#define TOKENRL_FMA_LOOP(LANES)                                                                                      \
  TOKENRL_X16(TOKENRL_DECLARE)                                                                                       \
  const auto b = SET1(0.999999f), c = SET1(1e-7f);                                                                   \
  for (auto _ : state) {                                                                                             \
    for (int64_t k = 0; k < kInner; ++k) {                                                                           \
      TOKENRL_X16(TOKENRL_FMA)                                                                                       \
    }                                                                                                                \
    TOKENRL_X16(TOKENRL_KEEP)                                                                                        \
  }                                                                                                                  \
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kInner * 16 * (LANES) * 2, \
                                                 benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);

__attribute__((target("avx512f"))) void BM_FmaPeakAvx512(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512f")) return state.SkipWithError("no AVX-512");
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
  TOKENRL_FMA_LOOP(16)
#undef SET1
#undef FMA
}

__attribute__((target("avx2,fma"))) void BM_FmaPeakAvx2(benchmark::State& state) {
  if (!__builtin_cpu_supports("fma")) return state.SkipWithError("no FMA");
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
  TOKENRL_FMA_LOOP(8)
#undef SET1
#undef FMA
}

BENCHMARK(BM_FmaPeakAvx512);
BENCHMARK(BM_FmaPeakAvx2);

}  // namespace
