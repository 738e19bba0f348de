// Which GEMM the linear layers use: see gemm_blas_preferred; ALPACA_CPU_GEMM=own|openblas (or the
// addon's setGemm) overrides it, e.g. to test both.
#include "gemm.h"

#include <cstring>

namespace {
bool use_blas = gemm_blas_preferred();
}

bool gemm_blas_preferred() {
  return gemm_blas_available() && (strcmp(gemm_own_isa(), "avx512") != 0 || gemm_blas_avx512());
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
