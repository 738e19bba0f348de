// GEMM through OpenBLAS's cblas_sgemm (built only when Debian's libopenblas-dev was found). A bf16/f16 or
// quantized B is widened to float32 a tile of stored rows at a time, so no full float32 copy of a weight exists.
#include "gemm.h"

#ifdef HAVE_OPENBLAS
#include <cblas.h>
#include <strings.h>

#include <initializer_list>

#include "../pool.h"
#include "half.h"
#include "quant.h"
#include "simd.h"

namespace {

struct Widen {
  float* dst;
  const void* src;
  int dtype;
  long ld, cols, row0;
};

HOT void widen_rows_task(void* c, long b, long e, int) {
  Widen& k = *(Widen*)c;
  for (long r = b; r < e; r++) widen_any(k.dst + r * k.cols, k.src, k.dtype, (k.row0 + r) * k.ld, k.cols);
}

CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

}  // namespace

bool gemm_blas_available() { return true; }

extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);

const char* gemm_blas_config() { return openblas_get_config(); }

bool gemm_blas_avx512() {
  const char* core = openblas_get_corename();
  for (const char* name : {"skylakex", "cooperlake", "sapphirerapids"})
    if (strcasecmp(core, name) == 0) return true;
  return false;
}

void gemm_blas(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  if (M <= 0 || N <= 0) return;
  const float* a = (const float*)A.p;
  if (B.dtype == F32 || K <= 0) {
    cblas_sgemm(CblasRowMajor, tr(A.trans), tr(B.trans), M, N, K, 1.f, a, A.ld, (const float*)B.p, B.ld,
                accumulate ? 1.f : 0.f, C, ldc);
    return;
  }
  // Stored rows of B are its columns n when transposed, else its rows k.
  long rows = B.trans ? N : K, cols = B.trans ? K : N;
  long tile = lmax(64, (1L << 22) / cols);
  float* buf = pool_scratch2(0, lmin(tile, rows) * cols);
  for (long r0 = 0; r0 < rows; r0 += tile) {
    long nr = lmin(tile, rows - r0);
    Widen w{buf, B.p, B.dtype, B.ld, cols, r0};
    pool_run(nr, pool_grain(nr, cols), widen_rows_task, &w);
    if (B.trans) {
      cblas_sgemm(CblasRowMajor, tr(A.trans), CblasTrans, M, nr, K, 1.f, a, A.ld, buf, cols, accumulate ? 1.f : 0.f, C + r0,
                  ldc);
    } else {
      const float* a0 = A.trans ? a + r0 * A.ld : a + r0;
      cblas_sgemm(CblasRowMajor, tr(A.trans), CblasNoTrans, M, N, nr, 1.f, a0, A.ld, buf, cols,
                  accumulate || r0 > 0 ? 1.f : 0.f, C, ldc);
    }
  }
}

#else

bool gemm_blas_available() { return false; }

bool gemm_blas_avx512() { return false; }

const char* gemm_blas_config() { return ""; }

void gemm_blas(long M, long N, long K, const Operand& A, const Operand& B, bool accumulate, float* C, long ldc) {
  gemm_own(M, N, K, A, B, accumulate, C, ldc);
}

#endif
