// Which GEMM the linear layers use: OpenBLAS when the addon was built with it, else the own kernel;
// ALPACA_CPU_GEMM=own (or the addon's setGemm) switches to the own kernel, e.g. to test it.
#include "gemm.h"

namespace {
bool use_blas = gemm_blas_available();
}

const char* gemm_select(bool prefer_blas) {
  use_blas = prefer_blas && gemm_blas_available();
  return gemm_name();
}

const char* gemm_name() { return use_blas ? "openblas" : "own"; }

void gemm(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  if (use_blas)
    gemm_blas(M, N, K, A, B, accumulate, C, ldc);
  else
    gemm_own(M, N, K, A, B, accumulate, C, ldc);
}
